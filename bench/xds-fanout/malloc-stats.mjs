// glibc malloc statistics for the benchmark's servers, when run.mjs --mallinfo built the addon
// (mallinfo/mallinfo.c) and named it in XDS_FANOUT_MALLINFO; undefined otherwise.
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

let addon;
const file = process.env.XDS_FANOUT_MALLINFO;
if (file) {
  const module = { exports: {} };
  process.dlopen(module, file);
  addon = module.exports;
}

/** `{ arenaBytes, mmapBytes, usedBytes, freeBytes }` of the whole process, or undefined. */
export function mallocStats() {
  return addon?.stats();
}

/** Compiles the addon with the system C compiler and Node's headers; returns its path. */
export function buildMallinfo() {
  const include = path.resolve(process.execPath, "../../include/node");
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), "xds-fanout-mallinfo-")), "mallinfo.node");
  const source = fileURLToPath(new URL("./mallinfo/mallinfo.c", import.meta.url));
  execFileSync("cc", ["-shared", "-fPIC", "-O2", `-I${include}`, "-o", out, source], { stdio: "inherit" });
  return out;
}
