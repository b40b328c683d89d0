#!/usr/bin/env node
// The build-cost part of the per-proxy benchmark, alone (no server, no streams): building one
// proxy's snapshot from scratch, the N proxies' own resources alone (the floor), and the N
// per-proxy snapshots, in CPU time; with --instructions, in instructions counted by valgrind
// (callgrind), which other work on the machine does not change. One JSON document on stdout.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultResourcePool } from "@meshlet/xds";
import {
  buildOne,
  buildOneFrom,
  buildOwnOnly,
  buildOwnOnlyFrom,
  countOf,
  measure,
  oneInput,
  ownOf,
  PerProxyBuilder,
} from "./per-proxy.mjs";
import { buildInput, createSnapshot } from "./snapshot.mjs";

const usage = `usage: node --expose-gc bench/xds-fanout/build-cost.mjs [options]
  --proxies 5000              N
  --shape sidecar             sidecar (100 resources, 10 own) or fanout (2,020 shared + --own-resources)
  --own-resources 1           fanout: own listeners per proxy
  --per-proxy-build merge     merge or arrays (see run.mjs --help)
  --phase all                 all: every CPU-time figure; one, own-only, all-only: that build
                              alone after the setup; none, none-one, none-own-only: the setup
                              alone (the baselines --instructions subtracts)
  --instructions              run each phase under valgrind --tool=callgrind (and the setup
                              alone), and report instructions per phase (slow: minutes)`;

const { values } = parseArgs({
  options: {
    proxies: { type: "string", default: "5000" },
    shape: { type: "string", default: "sidecar" },
    "own-resources": { type: "string", default: "1" },
    "per-proxy-build": { type: "string", default: "merge" },
    phase: { type: "string", default: "all" },
    instructions: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.error(usage);
  process.exit(0);
}
const n = Number(values.proxies);
const ownCount = Number(values["own-resources"]);
const mode = values["per-proxy-build"];
/** Single builds measured together by --phase one (the sidecar's is a few ms). */
const oneRepeat = values.shape === "sidecar" ? 40 : 4;
const shape =
  values.shape === "sidecar"
    ? { kind: "sidecar", clusters: 40, listeners: 4, endpointsPerCluster: 3, sanCount: 6 }
    : { kind: "fanout", clusters: 1000, listeners: 10, endpointsPerCluster: 3, sanCount: 6 };

if (values.instructions) {
  process.stdout.write(`${JSON.stringify(countInstructions(), null, 2)}\n`);
} else {
  process.stdout.write(`${JSON.stringify(await run(values.phase), null, 2)}\n`);
}

/**
 * The measured phases after a common setup: the shared content built and interned (as a control
 * plane has it), the proxies' own messages made, and the inputs of "one" and "own-only" (which
 * build into fresh pools) made too, so that a phase's instructions are its building alone.
 */
async function run(phase) {
  const input = buildInput(shape, 0);
  createSnapshot(input);
  const out = { proxies: n, shape: shape.kind, build: mode };
  // "one" is measured before the N proxies exist (as in run.mjs): a larger heap makes every
  // collection during it dearer.
  if (phase === "all") out.one = await buildOne(shape, ownCount, 0);
  // The instruction phases keep live only what they build from (a larger heap makes every
  // collection during a build dearer): "one" its inputs, "own-only" the copies, "all-only" the N
  // proxies' own messages.
  const onePhase = phase === "one" || phase === "none-one";
  const ownOnlyPhase = phase === "own-only" || phase === "none-own-only";
  const own = Array.from({ length: onePhase || ownOnlyPhase ? 1 : n }, (_, i) => ownOf(shape, ownCount, i));
  out.ownResourcesPerProxy = countOf(own[0]);
  const builder = new PerProxyBuilder(mode, own);
  builder.prepare(input);
  if (phase === "all") {
    const o = await buildOwnOnly(shape, ownCount, n);
    out.ownOnly = { ms: o.ms, cpuMs: o.cpuMs };
  }
  // One build is small beside the run-to-run spread of a process's instructions (JIT, GC):
  // "one" builds oneRepeat snapshots, each from its own fresh messages, and reports the mean.
  const ones = onePhase ? Array.from({ length: oneRepeat }, () => oneInput(shape, ownCount, 0)) : [];
  const ownCopies = ownOnlyPhase ? Array.from({ length: n }, (_, i) => ownOf(shape, ownCount, i)) : undefined;
  globalThis.gc?.();
  if (phase === "one") {
    const o = measure(() => {
      for (const input of ones) buildOneFrom(input);
    });
    out.one = { ms: o.ms / oneRepeat, cpuMs: o.cpuMs / oneRepeat, builds: oneRepeat };
  }
  if (ownCopies && phase === "own-only") {
    const o = buildOwnOnlyFrom(ownCopies);
    out.ownOnly = { ms: o.ms, cpuMs: o.cpuMs };
  }
  if (phase === "all-only" || phase === "all") {
    const stats0 = { ...defaultResourcePool.stats };
    const snapshots = [];
    const all = measure(() => {
      for (let i = 0; i < n; i++) snapshots.push(builder.build(input, i));
    });
    out.all = { ms: all.ms, cpuMs: all.cpuMs };
    out.pool = {};
    for (const k of Object.keys(stats0)) out.pool[k] = defaultResourcePool.stats[k] - stats0[k];
  }
  if (phase === "all") {
    out.allOverOne = out.all.cpuMs / out.one.cpuMs;
    out.ownOnlyOverOne = out.ownOnly.cpuMs / out.one.cpuMs;
    out.perProxyCpuUs = (out.all.cpuMs * 1000) / n;
    out.overheadPerProxyCpuUs = ((out.all.cpuMs - out.ownOnly.cpuMs) * 1000) / n;
  }
  out.method = "CPU time (process.cpuUsage: user + system, GC threads included) after a forced GC";
  return out;
}

/** Instructions of each phase: callgrind's total for setup + phase, minus the setup alone. */
function countInstructions() {
  const self = fileURLToPath(import.meta.url);
  const dir = os.tmpdir();
  const total = (phase) => {
    const file = join(dir, `build-cost-${process.pid}-${phase}.callgrind`);
    execFileSync(
      "valgrind",
      [
        "--tool=callgrind",
        `--callgrind-out-file=${file}`,
        process.execPath,
        "--expose-gc",
        self,
        "--proxies",
        String(n),
        "--shape",
        shape.kind,
        "--own-resources",
        String(ownCount),
        "--per-proxy-build",
        mode,
        "--phase",
        phase,
      ],
      { stdio: ["ignore", "ignore", "ignore"], maxBuffer: 1 << 26 },
    );
    const summary = /^summary:\s*(\d+)/m.exec(readFileSync(file, "utf8"));
    rmSync(file, { force: true });
    if (!summary) throw new Error(`no callgrind summary for phase ${phase}`);
    return Number(summary[1]);
  };
  // "one" and "own-only" prepare their inputs in the setup; their baseline does the same.
  const none = total("none");
  const one = (total("one") - total("none-one")) / oneRepeat;
  const ownOnly = total("own-only") - total("none-own-only");
  const all = total("all-only") - none;
  return {
    proxies: n,
    shape: shape.kind,
    build: mode,
    method:
      "instructions (valgrind --tool=callgrind, Ir) of the setup plus one phase, minus the setup alone; one = the mean of several single builds",
    instructions: { one, ownOnly, all },
    allOverOne: all / one,
    ownOnlyOverOne: ownOnly / one,
  };
}
