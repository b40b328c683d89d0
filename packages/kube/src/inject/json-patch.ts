import jsonPatch from "fast-json-patch";

/** One RFC 6902 JSON Patch operation, as the API server applies a mutating webhook's `patch`. */
export interface JsonPatchOperation {
  readonly op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  readonly path: string;
  readonly value?: unknown;
  readonly from?: string;
}

/** The JSON Patch that turns `before` into `after` (Istio builds its response patch the same way). */
export function createJsonPatch(before: unknown, after: unknown): JsonPatchOperation[] {
  return jsonPatch.compare(before as object, after as object) as JsonPatchOperation[];
}
