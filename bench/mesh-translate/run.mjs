#!/usr/bin/env node
// bench/mesh-translate: Istio config → per-proxy xDS snapshots through MeshController, at mesh scale.
//
//   npm run build && node bench/mesh-translate/run.mjs [--quick] [--scenarios a,b] [--seed 1]
//   (or `npm run -s bench -- --only mesh-translate [--quick]`)
//
// A synthetic mesh (mesh.mjs, deterministic from --seed) is served by MeshController (Envoy
// generators for sidecars and gateways, the proxyless generator for gRPC clients) into a
// SnapshotCache whose per-proxy snapshots share encoded resources through one ResourcePool. Each
// scenario runs in its own process (memory readings are its own) and reports:
//  - build: every proxy connects, time until every proxy has its snapshot (wall and CPU time, the
//    CPU/wall ratio as "vcpu"), memory after a forced GC (heap and RSS) before and after;
//  - changes: one endpoint (a pod of a service goes not-ready: its EndpointSlice changes) and one
//    VirtualService change (weights of a split), repeated; for each the time from the config
//    snapshot reaching the controller until every affected proxy has its new snapshot (per proxy:
//    p50/p99; and total), and how many proxies were touched against the number expected from the
//    topology (Istio's SidecarScope rule, computed by mesh.mjs, not by meshlet) and the number whose
//    snapshot actually changed;
//  - the load average (other processes share the machine: wall time is noisy, CPU time less so);
//  - the goals of issue 14 beside the values.
//
// Times start when the config snapshot is handed to the controller with debounceMs 0: the
// debounce window (100 ms by default) comes on top, as Istio's debounce comes before its push
// (pilot_proxy_convergence_time is measured from the push, after debouncing).
import { spawnSync } from "node:child_process";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = (f) => fileURLToPath(new URL(f, import.meta.url));

const usage = `usage: node bench/mesh-translate/run.mjs [options]
  --scenarios LIST   istio-budget,mesh-5000,mesh-5000-open,quick (default istio-budget,mesh-5000;
                     --quick: quick)
                     istio-budget: 1,000 services, 2,000 Envoy sidecars, namespace isolation
                       (the setting of Istio's published figure)
                     mesh-5000: 1,000 services, 5,000 proxies (4,490 sidecars, 500 proxyless gRPC
                       clients, 10 ingress gateways), namespace isolation
                     mesh-5000-open: the same without Sidecar resources (every proxy sees every
                       service; not in the default set: it runs for many minutes and needs ~3 GB)
                     quick: 200 services, 1,000 proxies, namespace isolation
  --seed N           mesh generator seed (default 1)
  --repeat N         endpoint and VirtualService changes per scenario (default 3; 1 with --quick)
  --debounce-ms N    the controller's debounce (default 0: times exclude the debounce window)
  --node-flags "F"   extra Node flags for the scenario processes
  --profile-dir DIR  write a V8 CPU profile of the build and of each change to DIR (profiling slows
                     the run: don't compare its timings)
  --quick            the quick scenario only (well under a minute)
  --help`;

const { values } = parseArgs({
  options: {
    scenarios: { type: "string" },
    seed: { type: "string", default: "1" },
    repeat: { type: "string" },
    "debounce-ms": { type: "string", default: "0" },
    "node-flags": { type: "string", default: "" },
    "profile-dir": { type: "string" },
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    help: { type: "boolean", default: false },
  },
  strict: false,
});
if (values.help) {
  console.error(usage);
  process.exit(0);
}

const SCENARIOS = {
  "istio-budget": { services: 1000, sidecars: 2000, proxyless: 0, gateways: 0, isolation: "namespace" },
  "mesh-5000": { services: 1000, sidecars: 4490, proxyless: 500, gateways: 10, isolation: "namespace" },
  "mesh-5000-open": { services: 1000, sidecars: 4490, proxyless: 500, gateways: 10, isolation: "none" },
  quick: { services: 200, sidecars: 900, proxyless: 95, gateways: 5, isolation: "namespace" },
};
const names = (values.scenarios ?? (values.quick ? "quick" : "istio-budget,mesh-5000"))
  .split(",")
  .map((s) => s.trim())
  .filter(Boolean);
for (const n of names) {
  if (SCENARIOS[n] === undefined) {
    console.error(`--scenarios: unknown scenario "${n}" (one of ${Object.keys(SCENARIOS).join(", ")})`);
    process.exit(2);
  }
}
const int = (v, what) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${what} must be a non-negative integer, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const seed = int(values.seed, "seed");
const repeat = int(values.repeat ?? (values.quick ? "1" : "3"), "repeat");
const debounceMs = int(values["debounce-ms"], "debounce-ms");
const nodeFlags = values["node-flags"].split(" ").filter((f) => f !== "");

// Istio's published control-plane figure (istio/istio.io
// content/en/docs/ops/deployment/performance-and-scalability/index.md, "Control plane
// performance"): "When namespace isolation is enabled, a single Istiod instance can support 1000
// services, 2000 sidecars with 1 vCPU and 1.5 GB of memory."
const ISTIO = { services: 1000, sidecars: 2000, vcpu: 1, memoryMB: 1.5 * 1024 };
const GOALS = {
  buildMemoryMB: ISTIO.memoryMB / 2,
  buildVcpu: ISTIO.vcpu,
  endpointP99Ms: 100,
};

const loadStart = os.loadavg();
const scenarios = {};
let failed = false;
for (const name of names) {
  const s = SCENARIOS[name];
  const input = JSON.stringify({
    name,
    seed,
    repeat,
    debounceMs,
    servicesPerNamespace: 25,
    ...(values["profile-dir"] !== undefined ? { profileDir: values["profile-dir"] } : {}),
    ...s,
  });
  console.error(`bench mesh-translate: ${name} …`);
  const run = spawnSync(
    process.execPath,
    ["--max-old-space-size=8192", ...nodeFlags, here("./measure.mjs"), input],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      maxBuffer: 64 << 20,
    },
  );
  if (run.status !== 0) {
    failed = true;
    scenarios[name] = { error: `exited with ${run.status ?? run.signal}` };
    continue;
  }
  try {
    scenarios[name] = JSON.parse(run.stdout);
  } catch {
    failed = true;
    scenarios[name] = { error: "did not print JSON", output: run.stdout.slice(0, 2000) };
  }
}

// Goals beside the values.
const goals = {};
const budget = scenarios["istio-budget"] ?? scenarios.quick;
if (budget?.build !== undefined) {
  goals.fullBuild = {
    goal: `1,000 services for 2,000 sidecars within Istio's published budget (${ISTIO.vcpu} vCPU, 1.5 GB) at less than half its memory`,
    source:
      "istio/istio.io content/en/docs/ops/deployment/performance-and-scalability/index.md: with namespace isolation, one istiod supports 1000 services and 2000 sidecars with 1 vCPU and 1.5 GB of memory",
    scenario: budget.scenario,
    rssAfterBuildMB: budget.memory.afterBuild.rssMB,
    memoryGoalMB: GOALS.buildMemoryMB,
    memoryMet: budget.memory.afterBuild.rssMB < GOALS.buildMemoryMB,
    buildVcpu: budget.build.vcpu,
    vcpuGoal: GOALS.buildVcpu,
    vcpuMet: budget.build.vcpu <= GOALS.buildVcpu,
    buildWallMs: budget.build.wallMs,
    buildCpuMs: budget.build.cpuMs,
    ...(budget.scenario !== "istio-budget" ? { note: "quick run: a smaller mesh than the goal's" } : {}),
  };
}
for (const name of ["mesh-5000", "mesh-5000-open", "quick"]) {
  const r = scenarios[name];
  if (r?.changes?.endpoint === undefined) continue;
  goals[`endpointChange:${name}`] = {
    goal: "a one-endpoint change reaches every affected snapshot in ≤ 100 ms p99 at 5,000 proxies",
    proxies: r.proxies.total,
    perProxyP99MsMedian: r.changes.endpoint.perProxyP99MsMedian,
    perProxyP99MsMax: r.changes.endpoint.perProxyP99MsMax,
    totalMsMedian: r.changes.endpoint.totalMsMedian,
    goalMs: GOALS.endpointP99Ms,
    met: r.changes.endpoint.perProxyP99MsMax <= GOALS.endpointP99Ms,
    expected: r.changes.endpoint.expected,
    touched: r.changes.endpoint.touched,
    onlyAffectedTouched: r.changes.endpoint.onlyAffectedTouched,
    ...(r.proxies.total < 5000 ? { note: "quick run: fewer proxies than the goal's" } : {}),
  };
}

process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: "mesh-translate",
      command: `node bench/mesh-translate/run.mjs ${process.argv.slice(2).join(" ")}`.trim(),
      provisional: "measured on a shared machine; the lead re-measures on a quiet one",
      cpus: os.cpus().length,
      loadAverage: {
        start: loadStart.map((x) => Math.round(x * 100) / 100),
        end: os.loadavg().map((x) => Math.round(x * 100) / 100),
      },
      goals,
      scenarios,
    },
    null,
    2,
  )}\n`,
);
process.exit(failed ? 1 : 0);
