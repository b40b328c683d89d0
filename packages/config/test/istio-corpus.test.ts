import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KindRegistry, parseDocuments, validateResource } from "../src/index.js";

// Cases restated from Istio's own examples and test data (each cites its source): Istio is the
// oracle, so `# expect:` records what Istio does with the document, and meshlet must agree — valid
// ones accepted, invalid ones refused at the same field. See test/fixtures/istio/README.md.

const dir = join(import.meta.dirname, "fixtures", "istio");
const registry = new KindRegistry();

interface Case {
  readonly file: string;
  readonly name: string;
  readonly expect: "valid" | "error" | "warning";
  readonly path?: string;
  readonly text: string;
}

function casesOf(file: string): Case[] {
  return readFileSync(join(dir, file), "utf8")
    .split(/^---$/m)
    .map((text) => text.trim())
    .filter((text) => text !== "")
    .map((text) => {
      const name = /^# case: (.*)$/m.exec(text)?.[1];
      const expectation = /^# expect: (valid|error|warning)(?: at (\S+))?$/m.exec(text);
      if (name === undefined || expectation === null)
        throw new Error(`${file}: a case without # case/# expect:\n${text}`);
      return {
        file,
        name,
        expect: expectation[1] as Case["expect"],
        ...(expectation[2] !== undefined ? { path: expectation[2] } : {}),
        text,
      };
    });
}

const cases = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .flatMap(casesOf);

describe("Istio's own examples and test data", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThan(40);
  });

  it.each(
    cases.map((c) => [`${c.file}: ${c.name} → ${c.expect}${c.path ? ` at ${c.path}` : ""}`, c] as const),
  )("%s", (_title, c) => {
    const parsed = parseDocuments(c.text, { source: "corpus", file: c.file });
    expect(parsed.diagnostics).toEqual([]);
    expect(parsed.documents).toHaveLength(1);
    const doc = parsed.documents[0]!;
    const { resource, diagnostics } = validateResource(doc.object, doc.origin, { registry });
    const errors = diagnostics.filter((d) => d.severity === "error");
    if (c.expect === "error") {
      expect(resource, "Istio refuses this document").toBeUndefined();
      expect(errors.map((d) => d.path)).toContain(c.path);
      // Every finding says where: the file, a line and column in it, and the resource.
      for (const d of errors) {
        expect(d).toMatchObject({ file: c.file, line: expect.any(Number), column: expect.any(Number) });
        expect(d.resource).toMatch(/^[A-Za-z]+\//);
      }
    } else {
      expect(errors, "Istio accepts this document").toEqual([]);
      expect(resource?.kind).toBeDefined();
      if (c.expect === "warning") {
        expect(diagnostics.filter((d) => d.severity === "warning").map((d) => d.path)).toContain(c.path);
      }
    }
  });
});
