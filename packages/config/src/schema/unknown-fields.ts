import { type FieldNode, fieldNodes, fieldRoots } from "../gen/field-trees.js";

/** A field the schema does not define, found at `path` (the path includes the field). */
export interface UnknownField {
  readonly path: ReadonlyArray<string | number>;
  readonly field: string;
}

/** The root of the field tree of `group/Kind` (`Kind` for the core group), if meshlet has one. */
export function fieldTreeOf(key: string): number | undefined {
  return fieldRoots[key];
}

/**
 * Every field of `value` that the field tree rooted at `root` does not define, at any depth: how a
 * misspelt `loadBalancr:` or `subet:` is refused, as `kubectl apply --validate=strict` does. Values of
 * the wrong type are left to the schema validator; Struct-typed fields (any keys) are not entered.
 */
export function findUnknownFields(value: unknown, root: number, limit = 20): UnknownField[] {
  const out: UnknownField[] = [];
  const walk = (v: unknown, id: number, path: Array<string | number>): void => {
    if (out.length >= limit) return;
    const node = fieldNodes[id] as FieldNode;
    if (node === 0 || node === 1 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      if (node.a !== undefined)
        v.forEach((item, i) => {
          walk(item, node.a as number, [...path, i]);
        });
      return;
    }
    for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
      if (path.length === 0 && key === "status") continue;
      const known = node.f?.[key];
      if (known !== undefined) walk(child, known, [...path, key]);
      else if (node.m !== undefined) walk(child, node.m, [...path, key]);
      else if (node.f !== undefined) out.push({ path: [...path, key], field: key });
    }
  };
  walk(value, root, []);
  return out;
}
