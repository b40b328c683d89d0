// A small RFC 6902 applier written for the tests, independent of the library the injector uses to
// build its patches: a patch that only that library could read back would prove nothing. It
// applies the operations the way the API server does (RFC 6902 section 4; JSON Pointer RFC 6901).

type Json = unknown;

function unescapeToken(token: string): string {
  return token.replaceAll("~1", "/").replaceAll("~0", "~");
}

function tokens(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`invalid JSON pointer ${pointer}`);
  return pointer.slice(1).split("/").map(unescapeToken);
}

function parent(doc: Json, pointer: string): { container: Record<string, Json> | Json[]; key: string } {
  const parts = tokens(pointer);
  const key = parts.pop();
  if (key === undefined) throw new Error("cannot address the document root here");
  let node: Json = doc;
  for (const part of parts) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (typeof node === "object" && node !== null) node = (node as Record<string, Json>)[part];
    else throw new Error(`path ${pointer} does not exist`);
    if (node === undefined) throw new Error(`path ${pointer} does not exist`);
  }
  if (typeof node !== "object" || node === null) throw new Error(`path ${pointer} does not exist`);
  return { container: node as Record<string, Json> | Json[], key };
}

function index(list: Json[], key: string, forAdd: boolean): number {
  if (forAdd && key === "-") return list.length;
  if (!/^(0|[1-9]\d*)$/.test(key)) throw new Error(`bad array index ${key}`);
  const i = Number(key);
  if (i > list.length || (!forAdd && i === list.length)) throw new Error(`array index ${key} out of range`);
  return i;
}

export function applyJsonPatch(document: Json, patch: ReadonlyArray<Record<string, unknown>>): Json {
  const doc = structuredClone(document);
  for (const op of patch) {
    const path = op.path as string;
    const { container, key } = parent(doc, path);
    switch (op.op) {
      case "add":
        if (Array.isArray(container))
          container.splice(index(container, key, true), 0, structuredClone(op.value));
        else container[key] = structuredClone(op.value);
        break;
      case "replace":
        if (Array.isArray(container)) container[index(container, key, false)] = structuredClone(op.value);
        else {
          if (!(key in container)) throw new Error(`replace: ${path} does not exist`);
          container[key] = structuredClone(op.value);
        }
        break;
      case "remove":
        if (Array.isArray(container)) container.splice(index(container, key, false), 1);
        else {
          if (!(key in container)) throw new Error(`remove: ${path} does not exist`);
          delete container[key];
        }
        break;
      default:
        throw new Error(`operation ${String(op.op)} not expected in an injection patch`);
    }
  }
  return doc;
}
