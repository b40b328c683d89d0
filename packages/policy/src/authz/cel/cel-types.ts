/**
 * The types of meshlet's CEL type checker: CEL's value types (cel-spec `doc/langdef.md`, "Values"),
 * plus `object` for the declared attribute groups, whose fields are fixed.
 */
export type CelCheckType =
  | { kind: "bool" | "int" | "uint" | "double" | "string" | "bytes" | "null" | "dyn" | "type" }
  | { kind: "timestamp" | "duration" }
  | { kind: "list"; elem: CelCheckType }
  | { kind: "map"; key: CelCheckType; value: CelCheckType }
  | { kind: "object"; name: string; fields: Readonly<Record<string, CelCheckType>> };

export const T = {
  bool: { kind: "bool" },
  int: { kind: "int" },
  uint: { kind: "uint" },
  double: { kind: "double" },
  string: { kind: "string" },
  bytes: { kind: "bytes" },
  null: { kind: "null" },
  dyn: { kind: "dyn" },
  type: { kind: "type" },
  timestamp: { kind: "timestamp" },
  duration: { kind: "duration" },
  list: (elem: CelCheckType): CelCheckType => ({ kind: "list", elem }),
  map: (key: CelCheckType, value: CelCheckType): CelCheckType => ({ kind: "map", key, value }),
  object: (name: string, fields: Record<string, CelCheckType>): CelCheckType => ({
    kind: "object",
    name,
    fields,
  }),
} as const satisfies Record<string, CelCheckType | ((...a: never[]) => CelCheckType)>;

/** How a type is written in CEL error messages (`map(string, string)`, `list(dyn)`). */
export function typeName(t: CelCheckType): string {
  switch (t.kind) {
    case "list":
      return `list(${typeName(t.elem)})`;
    case "map":
      return `map(${typeName(t.key)}, ${typeName(t.value)})`;
    case "object":
      return t.name;
    case "timestamp":
      return "google.protobuf.Timestamp";
    case "duration":
      return "google.protobuf.Duration";
    default:
      return t.kind;
  }
}

/** Whether a value of type `b` may stand where `a` is expected (dyn unifies with anything). */
export function assignable(a: CelCheckType, b: CelCheckType): boolean {
  if (a.kind === "dyn" || b.kind === "dyn") return true;
  if (a.kind !== b.kind) return false;
  if (a.kind === "list" && b.kind === "list") return assignable(a.elem, b.elem);
  if (a.kind === "map" && b.kind === "map") return assignable(a.key, b.key) && assignable(a.value, b.value);
  if (a.kind === "object" && b.kind === "object") return a.name === b.name;
  return true;
}

/** The more specific of two assignable types (dyn yields to the other). */
export function join(a: CelCheckType, b: CelCheckType): CelCheckType {
  if (a.kind === "dyn") return b;
  if (b.kind === "dyn") return a;
  return assignable(a, b) ? a : T.dyn;
}
