import { CORE_SCHEMA, loadAll } from "js-yaml";
import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseAllDocuments,
} from "yaml";
import type { Diagnostic, Origin, SourcePosition } from "./diagnostic.js";
import { DiagnosticCode } from "./diagnostic-code.js";

/** One object read from a YAML/JSON file, with the origin validation uses to point at fields. */
export interface ParsedDocument {
  /** Index of the document in the file (items of a `kind: List` get `doc.item`). */
  readonly index: string;
  readonly object: unknown;
  readonly origin: Origin;
}

/** Everything read from one file: the documents, and syntax errors with positions. */
export interface ParseResult {
  readonly documents: ParsedDocument[];
  readonly diagnostics: Diagnostic[];
}

/**
 * Parses multi-document YAML (JSON is YAML too) into plain objects, keeping enough of the syntax
 * tree that a field path can be mapped back to `line:column`. A `kind: List` document (what
 * `kubectl get -o yaml` prints) is expanded into its items.
 *
 * A file with any syntax error yields no documents at all: a half-written file must not emit the
 * half that happens to parse.
 */
export function parseDocuments(text: string, where: { source: string; file?: string }): ParseResult {
  // Fast path: js-yaml builds plain objects several times faster than a syntax tree. The tree
  // (from `yaml`, which keeps positions) is only built when a field must be located, i.e. when a
  // document has a problem to report, so valid config never pays for it.
  let objects: unknown[];
  try {
    objects = loadAll(text, undefined, { schema: CORE_SCHEMA });
  } catch {
    return parseWithPositions(text, where);
  }
  const starts = documentStarts(text);
  if (starts.length !== objects.length) return parseWithPositions(text, where);

  let tree: { docs: Document.Parsed[]; lineCounter: LineCounter } | undefined;
  const ensureTree = () => {
    if (tree === undefined) {
      const lineCounter = new LineCounter();
      const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
      tree = { docs: Array.isArray(parsed) ? parsed : [], lineCounter };
    }
    return tree;
  };
  const documents: ParsedDocument[] = [];
  objects.forEach((object, docIndex) => {
    if (object === null || object === undefined) return; // empty document (`---` alone)
    const start = starts[docIndex] as SourcePosition;
    const locate = (path: ReadonlyArray<string | number>): SourcePosition | undefined => {
      const { docs, lineCounter } = ensureTree();
      const root = docs[docIndex]?.contents;
      if (root === null || root === undefined) return start;
      const offset = locateOffset(root, path);
      if (offset === undefined) return start;
      const { line, col } = lineCounter.linePos(offset);
      return { line, column: col };
    };
    pushDocuments(documents, object, docIndex, where, start, locate);
  });
  return { documents, diagnostics: [] };
}

/**
 * Where each document of a YAML stream starts (its first content line), index-aligned with what a
 * YAML loader returns, empty documents included. Follows the stream rules: `---` opens a document
 * (closing an open one), `...` closes it, comments and directives outside documents are not content.
 */
function documentStarts(text: string): SourcePosition[] {
  const starts: SourcePosition[] = [];
  let open = false;
  let marker: SourcePosition | undefined;
  let content: SourcePosition | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/^---(\s|$)/.test(line)) {
      if (open) starts.push(content ?? (marker as SourcePosition));
      open = true;
      marker = { line: i + 1, column: 1 };
      content = /^---\s+[^\s#]/.test(line) ? marker : undefined;
    } else if (/^\.\.\.(\s|$)/.test(line)) {
      if (open) starts.push(content ?? (marker as SourcePosition));
      open = false;
      content = undefined;
    } else if (/^\s*(#.*)?\r?$/.test(line) || (!open && line.startsWith("%"))) {
      // blank, comment, or directive: not document content
    } else {
      const column = line.length - line.trimStart().length + 1;
      if (!open) {
        open = true;
        marker = { line: i + 1, column };
      }
      content ??= { line: i + 1, column };
    }
  }
  if (open) starts.push(content ?? (marker as SourcePosition));
  return starts;
}

/** The slow path: one syntax tree for the whole file, for syntax errors and unusual streams. */
function parseWithPositions(text: string, where: { source: string; file?: string }): ParseResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const toPosition = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const diagnostics: Diagnostic[] = [];
  const list = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs)) {
    // parseAllDocuments returns an EmptyStream for empty input.
    return { documents: [], diagnostics };
  }
  for (const doc of list) {
    for (const error of doc.errors) {
      const pos = toPosition(error.pos[0]);
      diagnostics.push({
        severity: "error",
        code: DiagnosticCode.ParseError,
        message: `invalid YAML: ${firstLine(error.message)}`,
        source: where.source,
        ...(where.file !== undefined ? { file: where.file } : {}),
        line: pos.line,
        column: pos.column,
      });
    }
  }
  if (diagnostics.length > 0) return { documents: [], diagnostics };

  const documents: ParsedDocument[] = [];
  list.forEach((doc, docIndex) => {
    const root = doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) return; // empty document (`---` alone)
    const object: unknown = doc.toJS({ maxAliasCount: 100 });
    const locate = (path: ReadonlyArray<string | number>): SourcePosition | undefined => {
      const offset = locateOffset(root, path);
      return offset === undefined ? undefined : toPosition(offset);
    };
    const start = toPosition(root.range?.[0] ?? 0);
    pushDocuments(documents, object, docIndex, where, start, locate);
  });
  return { documents, diagnostics };
}

/**
 * Adds one parsed document, or each item of a `kind: List` document (as kubectl does), with
 * positions that point into the file.
 */
function pushDocuments(
  documents: ParseResult["documents"],
  object: unknown,
  docIndex: number,
  where: { source: string; file?: string },
  start: SourcePosition,
  locate: (path: ReadonlyArray<string | number>) => SourcePosition | undefined,
): void {
  if (isListObject(object)) {
    object.items.forEach((item, itemIndex) => {
      const itemLocate = (path: ReadonlyArray<string | number>) => locate(["items", itemIndex, ...path]);
      documents.push({
        index: `${docIndex}.${itemIndex}`,
        object: item,
        origin: {
          source: where.source,
          ...fileFields(where.file, itemLocate([]) ?? start),
          locate: itemLocate,
        },
      });
    });
    return;
  }
  documents.push({
    index: String(docIndex),
    object,
    origin: { source: where.source, ...fileFields(where.file, start), locate },
  });
}

function fileFields(
  file: string | undefined,
  pos: SourcePosition,
): { file?: string; position?: SourcePosition } {
  return file === undefined ? { position: pos } : { file, position: pos };
}

function firstLine(message: string): string {
  return message.split("\n")[0] ?? message;
}

function isListObject(value: unknown): value is { kind: "List"; items: unknown[] } {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as { kind?: unknown }).kind === "List" &&
    Array.isArray((value as { items?: unknown }).items)
  );
}

/** Offset of the deepest node on `path`: the key of the last map entry found, or the item itself. */
function locateOffset(root: Node, path: ReadonlyArray<string | number>): number | undefined {
  let node: unknown = root;
  let best = (root as Node).range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment),
      );
      if (pair === undefined) break;
      const keyNode = pair.key as Node;
      best = keyNode.range?.[0] ?? best;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment];
      if (item === undefined || item === null) break;
      best = (item as Node).range?.[0] ?? best;
      node = item;
    } else {
      break;
    }
  }
  return best;
}
