import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isScalar, LineCounter, parseAllDocuments } from "yaml";
import { parseDocuments } from "./parse-documents.js";

describe("parseDocuments", () => {
  it("reads every document of a multi-document file with its start line, skipping empty ones", () => {
    const text = "---\na: 1\n---\n---\n# only a comment\nb: 2\n...\n";
    const { documents, diagnostics } = parseDocuments(text, { source: "s", file: "f.yaml" });
    expect(diagnostics).toEqual([]);
    expect(documents.map((d) => d.object)).toEqual([{ a: 1 }, { b: 2 }]);
    expect(documents.map((d) => d.origin.position?.line)).toEqual([2, 6]);
  });

  it("locates nested fields, falling back to the deepest existing ancestor", () => {
    const text = "spec:\n  http:\n  - route:\n    - weight: 5\n";
    const doc = parseDocuments(text, { source: "s" }).documents[0]!;
    expect(doc.origin.locate?.(["spec", "http", 0, "route", 0, "weight"])).toEqual({ line: 4, column: 7 });
    expect(doc.origin.locate?.(["spec", "http", 0, "missing", "deeper"])).toEqual({ line: 3, column: 5 });
  });

  it("reads JSON files, which are YAML too, with positions", () => {
    const text = '{\n  "kind": "Namespace",\n  "metadata": {"name": "x"}\n}\n';
    const doc = parseDocuments(text, { source: "s" }).documents[0]!;
    expect(doc.object).toEqual({ kind: "Namespace", metadata: { name: "x" } });
    expect(doc.origin.locate?.(["metadata", "name"])).toEqual({ line: 3, column: 16 });
  });

  it("expands a kind: List into its items, with positions inside the list", () => {
    const text = "apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n  metadata: {name: b}\n";
    const { documents } = parseDocuments(text, { source: "s", file: "l.yaml" });
    expect(documents.map((d) => d.object)).toEqual([{ kind: "A" }, { kind: "B", metadata: { name: "b" } }]);
    expect(documents[1]?.origin.locate?.(["metadata", "name"])).toEqual({ line: 6, column: 14 });
  });

  it("yields no documents at all from a file with a syntax error, and says where", () => {
    // An unclosed flow sequence is reported where the parser gives up: the end of the input.
    const text = "a: 1\n---\nb: [1, 2\n";
    const { documents, diagnostics } = parseDocuments(text, { source: "s", file: "bad.yaml" });
    expect(documents).toEqual([]);
    expect(diagnostics[0]).toMatchObject({ code: "MC0001", severity: "error", file: "bad.yaml", line: 4 });
  });

  it("rejects duplicate keys, which Kubernetes would silently overwrite", () => {
    const { diagnostics } = parseDocuments("a: 1\na: 2\n", { source: "s" });
    expect(diagnostics[0]?.code).toBe("MC0001");
  });
});

describe("parseDocuments fast path", () => {
  // Documents are loaded with js-yaml and positioned by a line scan; the syntax tree of `yaml` is
  // the reference. Any stream of maps, empty documents, comments and end markers must agree.
  const piece = fc.oneof(
    fc.record({ kind: fc.constant("doc"), key: fc.stringMatching(/^[a-z]{1,6}$/), value: fc.integer() }),
    fc.constant({ kind: "empty" }),
    fc.constant({ kind: "comment" }),
    fc.constant({ kind: "end" }),
    fc.constant({ kind: "blank" }),
  );
  it("agrees with the full syntax tree on objects and document start lines", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(piece, { maxLength: 12 }), (leadingMarker, pieces) => {
        let text = leadingMarker ? "---\n" : "";
        for (const p of pieces) {
          if (p.kind === "doc")
            text += `---\n  ${"key" in p ? p.key : "k"}: ${"value" in p ? p.value : 0}\n  other: x\n`;
          else if (p.kind === "empty") text += "---\n";
          else if (p.kind === "comment") text += "# note\n";
          else if (p.kind === "end") text += "...\n";
          else text += "\n";
        }
        const fast = parseDocuments(text, { source: "s" }).documents;
        const reference = parseAllDocuments(text, { lineCounter: new LineCounter() });
        const docs = Array.isArray(reference) ? reference : [];
        const lc = new LineCounter();
        parseAllDocuments(text, { lineCounter: lc });
        const expected = docs
          .filter((d) => d.contents !== null && !(isScalar(d.contents) && d.contents.value === null))
          .map((d) => ({ object: d.toJS(), line: lc.linePos(d.contents?.range[0] ?? 0).line }));
        expect(fast.map((d) => ({ object: d.object, line: d.origin.position?.line }))).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
