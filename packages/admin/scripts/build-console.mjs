#!/usr/bin/env node
// Builds the browser console into dist/console: console/main.ts bundled with esbuild (the
// @connectrpc/connect-web client and the generated MeshAdmin types included, minified), plus the
// page and its stylesheet as they are. The admin listener serves exactly these files.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(pkg, "dist", "console");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(pkg, "console", "main.ts")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  platform: "browser",
  outfile: join(out, "console.js"),
  legalComments: "none",
  logLevel: "warning",
});
for (const f of ["index.html", "console.css"]) copyFileSync(join(pkg, "console", f), join(out, f));
console.log(`@meshlet/admin: console built into ${out}`);
