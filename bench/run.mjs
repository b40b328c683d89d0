#!/usr/bin/env node
// Runs every benchmark (bench/<name>/run.mjs) one after another and prints one JSON document:
// { "<name>": <that benchmark's JSON>, ... }. Arguments after `--` go to every benchmark
// (e.g. `npm run bench -- --quick`); `--only name1,name2` picks benchmarks.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const only = onlyAt >= 0 ? new Set(args.splice(onlyAt, 2)[1]?.split(",")) : undefined;
const results = {};
let failed = false;
for (const name of readdirSync(here).sort()) {
  const script = join(here, name, "run.mjs");
  if (!existsSync(script) || (only && !only.has(name))) continue;
  process.stderr.write(`bench: ${name} …\n`);
  const run = spawnSync(process.execPath, [script, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 << 20,
  });
  if (run.status !== 0) {
    failed = true;
    results[name] = { error: `exited with ${run.status ?? run.signal}` };
    continue;
  }
  try {
    results[name] = JSON.parse(run.stdout);
  } catch {
    failed = true;
    results[name] = { error: "did not print JSON", output: run.stdout.slice(0, 2000) };
  }
}
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
process.exit(failed ? 1 : 0);
