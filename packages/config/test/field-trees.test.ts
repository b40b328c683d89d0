import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// src/gen/field-trees.ts is generated from the type declarations of the installed schema packages;
// this fails when a package was upgraded without regenerating it.
describe("generated field trees", () => {
  it("match what scripts/generate-field-trees.mjs makes from the installed packages", async () => {
    const script = join(import.meta.dirname, "..", "scripts", "generate-field-trees.mjs");
    const { stdout } = await promisify(execFile)(process.execPath, [script, "--check"]);
    expect(stdout).toContain("is up to date");
  }, 120_000);
});
