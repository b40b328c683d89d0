import type { StandardIssue, StandardSchemaV1 } from "../standard-schema.js";
import { findUnknownFields } from "./unknown-fields.js";

/** An error as the compiled (ajv) validators of the kubernetes-models packages report it. */
interface CompiledError {
  readonly instancePath: string;
  readonly keyword: string;
  readonly params: Record<string, unknown>;
  readonly message?: string;
}

/** A validator compiled from an upstream OpenAPI schema: true when valid, else `errors` is set. */
export type CompiledValidator = (data: unknown) => { ok: true } | { ok: false; errors: CompiledError[] };

/** An issue with the details meshlet's diagnostics carry. */
export interface SchemaIssue extends StandardIssue {
  readonly path: ReadonlyArray<string | number>;
  /** What was expected at `path`. */
  readonly expected?: string;
}

/**
 * Adapts a validator generated from an upstream schema (Istio's CRD OpenAPI, Kubernetes' OpenAPI) to
 * Standard Schema, adding what a structural schema does not check: unknown fields, at any depth,
 * from the kind's field tree (see scripts/generate-field-trees.mjs).
 */
export function upstreamSchema(
  validate: CompiledValidator,
  fieldRoot: number,
  vendor = "meshlet-upstream",
): StandardSchemaV1 {
  return {
    "~standard": {
      version: 1,
      vendor,
      validate: (value: unknown) => {
        const issues: SchemaIssue[] = [];
        for (const u of findUnknownFields(value, fieldRoot)) {
          issues.push({
            message: `unknown field "${u.field}"`,
            path: u.path,
            expected: "a field defined by the schema (check spelling and nesting)",
          });
        }
        const result = validate(value);
        if (!result.ok) issues.push(...describeErrors(value, result.errors));
        return issues.length > 0 ? { issues } : { value };
      },
    },
  };
}

function describeErrors(root: unknown, errors: readonly CompiledError[]): SchemaIssue[] {
  const oneOfAt = new Set(errors.filter((e) => e.keyword === "oneOf").map((e) => e.instancePath));
  const out: SchemaIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // A oneof is compiled as `oneOf` plus a `not` for the "none set" branch: report the oneOf once.
    if (e.keyword === "not" && oneOfAt.has(e.instancePath)) continue;
    if (e.keyword === "if") continue;
    const path = toPath(root, e.instancePath);
    const value = valueAt(root, path);
    const issue = describe(e, path, value);
    const key = `${e.instancePath}|${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  return out;
}

function describe(e: CompiledError, path: Array<string | number>, value: unknown): SchemaIssue {
  const p = e.params;
  switch (e.keyword) {
    case "required": {
      const field = String(p.missingProperty);
      return { message: `missing required field ${field}`, path: [...path, field], expected: "a value" };
    }
    case "enum": {
      const allowed = (p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ");
      return { message: `invalid value ${JSON.stringify(value)}`, path, expected: `one of ${allowed}` };
    }
    case "type":
      return {
        message: `expected ${String(p.type)}, got ${describeType(value)}`,
        path,
        expected: String(p.type),
      };
    case "oneOf": {
      if (Array.isArray(p.passingSchemas)) {
        const present =
          value !== null && typeof value === "object" ? Object.keys(value as object).join(", ") : "";
        return {
          message: `fields that exclude each other are set together (${present})`,
          path,
          expected: "at most one field of the oneof",
        };
      }
      return {
        message: "matches none of the allowed forms",
        path,
        expected: "exactly one of the oneof forms",
      };
    }
    case "format":
      return {
        message: `${JSON.stringify(value)} is not a valid ${String(p.format)}`,
        path,
        expected: String(p.format),
      };
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return {
        message: `${JSON.stringify(value)} is out of range (must be ${String(p.comparison)} ${String(p.limit)})`,
        path,
        expected: `a number ${String(p.comparison)} ${String(p.limit)}`,
      };
    case "maxLength":
    case "minLength":
    case "maxItems":
    case "minItems":
    case "maxProperties":
    case "minProperties":
    case "pattern":
      return { message: `${e.message ?? e.keyword}`, path, expected: e.message ?? e.keyword };
    default:
      return { message: e.message ?? `fails ${e.keyword}`, path };
  }
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value === "object" ? "object" : `${typeof value} ${JSON.stringify(value)}`;
}

/** `/spec/http/0/route` → `["spec", "http", 0, "route"]` (indexes only where the data is an array). */
function toPath(root: unknown, pointer: string): Array<string | number> {
  if (pointer === "") return [];
  const path: Array<string | number> = [];
  let node: unknown = root;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node) && /^\d+$/.test(seg)) {
      path.push(Number(seg));
      node = node[Number(seg)];
    } else {
      path.push(seg);
      node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return path;
}

function valueAt(root: unknown, path: ReadonlyArray<string | number>): unknown {
  let node: unknown = root;
  for (const seg of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[seg];
  }
  return node;
}
