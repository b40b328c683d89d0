#!/usr/bin/env node
// Builds the hand-written modules of @meshlet/api (src/*.ts, e.g. src/logger.ts) next to the
// generated ones: ESM into dist/esm, CommonJS into dist/cjs, each with its .d.ts, so they are
// importable by path like every generated module (`@meshlet/api/logger`). Runs after generate.mjs,
// which owns dist/ and may have just recreated it.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = [
  join(pkgDir, "node_modules", ".bin", "tsc"),
  join(pkgDir, "..", "..", "node_modules", ".bin", "tsc"),
].find((p) => existsSync(p));
if (!tsc) throw new Error("@meshlet/api: tsc not found; run npm install at the repository root");
const common = [
  "-p",
  join(pkgDir, "tsconfig.json"),
  "--noEmit",
  "false",
  "--declaration",
  "--sourceMap",
  "false",
];
execFileSync(tsc, [...common, "--module", "NodeNext", "--outDir", join(pkgDir, "dist", "esm")], {
  stdio: "inherit",
});
// dist/cjs holds a package.json of "type": "commonjs" (written by generate.mjs), so NodeNext emits CommonJS there.
execFileSync(
  tsc,
  [
    ...common,
    "--module",
    "CommonJS",
    "--moduleResolution",
    "Node10",
    "--verbatimModuleSyntax",
    "false",
    "--outDir",
    join(pkgDir, "dist", "cjs"),
  ],
  {
    stdio: "inherit",
  },
);
console.log("@meshlet/api: built src/ (logger) into dist/esm and dist/cjs");
