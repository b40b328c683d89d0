#!/usr/bin/env node
// The `meshlet` command. This launcher is committed (not built) so that npm links the bin on
// `npm ci`, before anything is built. In a clone of the meshlet repository where the packages have
// not been built yet, it builds them once (`npm run build` at the repository root), then runs.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, "..", "dist", "main.js");

if (!existsSync(entry)) {
  const root = join(here, "..", "..", "..");
  let workspace = false;
  try {
    workspace = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).name === "meshlet";
  } catch {}
  if (!workspace) {
    process.stderr.write(`meshlet: ${entry} is missing; this installation of @meshlet/cli is incomplete\n`);
    process.exit(2);
  }
  process.stderr.write("meshlet: first run in this clone, building the packages (npm run build)…\n");
  const built = spawnSync("npm", ["run", "-s", "build"], { cwd: root, stdio: ["ignore", 2, 2] });
  if (built.status !== 0 || !existsSync(entry)) {
    process.stderr.write(
      "meshlet: the build failed; run `npm run build` at the repository root to see why\n",
    );
    process.exit(2);
  }
}

const { run } = await import(pathToFileURL(entry).href);
process.exitCode = await run(process.argv.slice(2));
