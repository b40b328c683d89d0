#!/usr/bin/env node
// Generates @meshlet/api from the Envoy protos that ship inside the pinned @grpc/grpc-js-xds
// (its deps/ folder) plus the protos this package writes itself (proto/).
//
// Steps:
//   1. Collect every v3 proto (package ends in .v3 or .v3alpha) from deps/envoy-api and deps/xds,
//      plus our own protos, and close the set over their imports. Files whose imports cannot be
//      resolved (e.g. OpenCensus, which grpc-js-xds does not ship) are dropped with their dependents,
//      and the dropped list is printed.
//   2. Copy the closure into build/proto (a working copy). validate.proto is patched there to add
//      the `ignore_empty` fields that newer Envoy protos use; node_modules is never edited.
//   3. Run buf + protoc-gen-es twice: ESM (import_extension=js) into dist/esm, CommonJS into dist/cjs.
//   4. Write dist/{esm,cjs}/index.{js,d.ts}: a registry of every generated file, for Any and JSON.
//
// `--if-stale` skips the work when dist/ was generated from the same inputs (hash in dist/.inputs).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(pkgDir, "package.json"));
const xdsPkgJson = require.resolve("@grpc/grpc-js-xds/package.json");
const depsDir = join(dirname(xdsPkgJson), "deps");
const xdsVersion = JSON.parse(readFileSync(xdsPkgJson, "utf8")).version;
const esPkg = JSON.parse(readFileSync(require.resolve("@bufbuild/protoc-gen-es/package.json"), "utf8"));

// Roots searched for imports, in order. Our own protos come first.
const roots = [
  join(pkgDir, "proto"),
  join(depsDir, "envoy-api"),
  join(depsDir, "xds"),
  join(depsDir, "googleapis"),
  join(depsDir, "protoc-gen-validate"),
];
const workDir = join(pkgDir, "build", "proto");
const distDir = join(pkgDir, "dist");

function walk(dir, base = dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) walk(p, base, out);
    else if (entry.name.endsWith(".proto")) out.push(relative(base, p));
  }
  return out;
}

/** Finds a proto by import path; google/protobuf/* are buf's well-known types. */
function locate(importPath) {
  if (importPath.startsWith("google/protobuf/")) return "wkt";
  for (const root of roots) {
    const p = join(root, importPath);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function parse(file) {
  const text = readFileSync(file, "utf8");
  const pkg = /^package\s+([\w.]+)\s*;/m.exec(text)?.[1] ?? "";
  const imports = [...text.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map((m) => m[1]);
  return { pkg, imports };
}

// 1. Seeds: every v3 file of envoy-api (v2 is long gone from Envoy), all of cncf/xds (xds.* and
// udpa.*, e.g. udpa.type.v1.TypedStruct, which gRPC still accepts), google.rpc, and our own protos.
const seeds = [];
for (const rel of walk(join(depsDir, "envoy-api"))) {
  if (/\.v3(alpha)?$/.test(parse(join(depsDir, "envoy-api", rel)).pkg)) seeds.push(rel);
}
seeds.push(...walk(join(depsDir, "xds")));
seeds.push(...walk(join(depsDir, "googleapis", "google", "rpc")).map((rel) => `google/rpc/${rel}`));
seeds.push(...walk(join(pkgDir, "proto")));

const files = new Map(); // import path -> { path, imports }
const missing = new Map(); // import path -> files importing it
const queue = [...seeds];
while (queue.length > 0) {
  const rel = queue.pop();
  if (files.has(rel)) continue;
  const path = locate(rel);
  if (path === "wkt") continue;
  if (path === undefined) continue;
  const { imports } = parse(path);
  files.set(rel, { path, imports });
  for (const imp of imports) {
    if (locate(imp) === undefined) {
      missing.set(imp, [...(missing.get(imp) ?? []), rel]);
    } else queue.push(imp);
  }
}
// Drop files with unresolved imports, then their dependents, until stable.
const dropped = new Set();
for (const importers of missing.values()) for (const f of importers) dropped.add(f);
let changed = true;
while (changed) {
  changed = false;
  for (const [rel, { imports }] of files) {
    if (!dropped.has(rel) && imports.some((i) => dropped.has(i))) {
      dropped.add(rel);
      changed = true;
    }
  }
}
for (const d of dropped) files.delete(d);
const selected = [...files.keys()].sort();

// Staleness: inputs are the selected protos' contents and the generator versions.
const hash = createHash("sha256");
hash.update(`grpc-js-xds@${xdsVersion} protoc-gen-es@${esPkg.version}\n`);
hash.update(readFileSync(fileURLToPath(import.meta.url)));
for (const rel of selected) hash.update(rel).update(readFileSync(files.get(rel).path));
const inputsHash = hash.digest("hex");
const stampFile = join(distDir, ".inputs");
if (process.argv.includes("--if-stale") && existsSync(stampFile)) {
  if (readFileSync(stampFile, "utf8").trim() === inputsHash) {
    console.log(`@meshlet/api: up to date (${selected.length} protos)`);
    process.exit(0);
  }
}

// 2. Working copy.
rmSync(join(pkgDir, "build"), { recursive: true, force: true });
mkdirSync(workDir, { recursive: true });
for (const rel of selected) {
  const target = join(workDir, rel);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(files.get(rel).path, target);
}
patchValidateProto(join(workDir, "validate", "validate.proto"));

// 3. buf + protoc-gen-es, once per module format.
writeFileSync(join(pkgDir, "build", "buf.yaml"), "version: v2\nmodules:\n  - path: proto\n");
const bin = (name) => join(pkgDir, "node_modules", ".bin", name);
const resolveBin = (name) => {
  for (const dir of [
    join(pkgDir, "node_modules", ".bin"),
    join(pkgDir, "..", "..", "node_modules", ".bin"),
  ]) {
    if (existsSync(join(dir, name))) return join(dir, name);
  }
  return bin(name);
};
const buf = resolveBin("buf");
const protocGenEs = resolveBin("protoc-gen-es");
rmSync(distDir, { recursive: true, force: true });
for (const [format, opts] of [
  ["esm", ["target=js+dts", "import_extension=js"]],
  ["cjs", ["target=js+dts", "js_import_style=legacy_commonjs"]],
]) {
  const template = {
    version: "v2",
    plugins: [{ local: protocGenEs, out: join(distDir, format), opt: opts, strategy: "all" }],
  };
  execFileSync(buf, ["generate", "--template", JSON.stringify(template), "proto"], {
    cwd: join(pkgDir, "build"),
    stdio: "inherit",
  });
}
// CommonJS output lives in a "type": "module" package: mark the folder as CommonJS.
writeFileSync(join(distDir, "cjs", "package.json"), '{ "type": "commonjs" }\n');

// 4. The registry of every generated file.
const fileExports = selected.map((rel) => {
  const mod = `./${rel.replace(/\.proto$/, "_pb")}.js`;
  const ident = `file_${rel.replace(/\.proto$/, "").replace(/[^A-Za-z0-9]/g, "_")}`;
  return { mod, ident };
});
const header = "// Generated by @meshlet/api scripts/generate.mjs. Do not edit.\n";
const doc = `/**
 * A registry holding every message, enum, extension and service generated in @meshlet/api
 * (${selected.length} proto files). Pass it to \`anyPack\`/\`anyUnpack\`, \`toJson\`/\`fromJson\`
 * (\`{ registry }\`) to resolve \`google.protobuf.Any\` type URLs.
 */\n`;
writeFileSync(
  join(distDir, "esm", "index.js"),
  `${header}import { createRegistry } from "@bufbuild/protobuf";\n${fileExports
    .map((f) => `import { ${f.ident} } from "${f.mod}";`)
    .join(
      "\n",
    )}\n${doc}export const registry = createRegistry(\n${fileExports.map((f) => `  ${f.ident},`).join("\n")}\n);\n/** Proto paths of every generated file. */\nexport const protoFiles = ${JSON.stringify(selected)};\n`,
);
writeFileSync(
  join(distDir, "cjs", "index.js"),
  `${header}"use strict";\nconst { createRegistry } = require("@bufbuild/protobuf");\nconst files = [\n${fileExports
    .map((f) => `  require("${f.mod}").${f.ident},`)
    .join(
      "\n",
    )}\n];\n${doc}exports.registry = createRegistry(...files);\n/** Proto paths of every generated file. */\nexports.protoFiles = ${JSON.stringify(selected)};\n`,
);
const dts = `${header}import type { Registry } from "@bufbuild/protobuf";\n${doc}export declare const registry: Registry;\n/** Proto paths of every generated file. */\nexport declare const protoFiles: readonly string[];\n`;
writeFileSync(join(distDir, "esm", "index.d.ts"), dts);
writeFileSync(join(distDir, "cjs", "index.d.ts"), dts);
writeFileSync(stampFile, `${inputsHash}\n`);

console.log(`@meshlet/api: generated ${selected.length} protos from @grpc/grpc-js-xds@${xdsVersion}`);
if (dropped.size > 0) {
  console.log(`@meshlet/api: skipped ${dropped.size} protos whose imports are not shipped:`);
  for (const [imp, importers] of missing) console.log(`  ${imp} (imported by ${importers.join(", ")})`);
}

/**
 * The validate.proto bundled with grpc-js-xds predates `ignore_empty`, which newer Envoy protos set
 * on string rules. Add the field to every rule message that lacks it, with protoc-gen-validate's
 * field numbers, so a strict compiler accepts the options.
 */
function patchValidateProto(path) {
  const numbers = {
    FloatRules: 8,
    DoubleRules: 8,
    Int32Rules: 8,
    Int64Rules: 8,
    UInt32Rules: 8,
    UInt64Rules: 8,
    SInt32Rules: 8,
    SInt64Rules: 8,
    Fixed32Rules: 8,
    Fixed64Rules: 8,
    SFixed32Rules: 8,
    SFixed64Rules: 8,
    StringRules: 26,
    BytesRules: 14,
    RepeatedRules: 5,
    MapRules: 6,
  };
  let text = readFileSync(path, "utf8");
  for (const [message, number] of Object.entries(numbers)) {
    const start = text.indexOf(`message ${message} {`);
    if (start < 0) throw new Error(`validate.proto: message ${message} not found`);
    // The message body ends at the first "\n}" after its start (rule messages have no nested blocks
    // at column 0).
    const end = text.indexOf("\n}", start);
    if (text.slice(start, end).includes("ignore_empty")) continue;
    text = `${text.slice(0, end)}\n    // Added by @meshlet/api: evaluate the rules only when the field is not empty.\n    optional bool ignore_empty = ${number};${text.slice(end)}`;
  }
  writeFileSync(path, text);
}
