#!/usr/bin/env node
// One bench/mesh-translate scenario in a fresh process (so its memory is its own): generate the
// mesh, serve it through MeshController into a SnapshotCache, measure the full build, then one
// endpoint change and one VirtualService change. Input: one JSON argument (see run.mjs); output:
// one JSON document on stdout, progress on stderr.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ConfigSnapshot, KindRegistry, validateResource } from "@meshlet/config";
import { envoyGenerators, MeshController } from "@meshlet/mesh";
import { ResourcePool, SnapshotCache, TypeUrl } from "@meshlet/xds";
import { Subject } from "rxjs";
import { endpointSlice, generateMesh, proxiesSeeing } from "./mesh.mjs";

setFlagsFromString("--expose-gc");
const gc = globalThis.gc ?? runInNewContext("gc");
const opt = JSON.parse(process.argv[2] ?? "{}");
const t0 = performance.now();
const log = (...a) =>
  console.error(`[mesh-translate ${opt.name} +${((performance.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;
const ms = (x) => Math.round(x * 100) / 100;

function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heapUsedMB: mb(m.heapUsed), rssMB: mb(m.rss), externalMB: mb(m.external + m.arrayBuffers) };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

/** A SnapshotCache that notes when each key got its snapshot. */
class TimedCache extends SnapshotCache {
  setAt = new Map();
  setSnapshot(key, snapshot) {
    super.setSnapshot(key, snapshot);
    this.setAt.set(key, performance.now());
  }
}

// --profile-dir: a V8 CPU profile of each measured phase (build, each change), for `node --cpu-prof`-
// style analysis without the setup in it.
const profiler = opt.profileDir === undefined ? undefined : new Session();
if (profiler !== undefined) {
  profiler.connect();
  await profiler.post("Profiler.enable");
}
async function profiled(name, run) {
  if (profiler === undefined) return run();
  await profiler.post("Profiler.start");
  try {
    return await run();
  } finally {
    const { profile } = await profiler.post("Profiler.stop");
    writeFileSync(join(opt.profileDir, `${opt.name}-${name}.cpuprofile`), JSON.stringify(profile));
  }
}

const TYPES = [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment];

// ---- the mesh, validated as a ConfigStore would --------------------------------------------------
const mesh = generateMesh(opt);
const registry = new KindRegistry();
const tValidate = performance.now();
const resources = new Map();
const validate = (object) => {
  const r = validateResource(object, { source: "bench" }, { registry });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (r.resource === undefined || errors.length > 0) {
    throw new Error(
      `bench config is invalid: ${object.kind}/${object.metadata?.namespace}/${object.metadata?.name}: ${errors.map((d) => `${d.path ?? ""} ${d.message}`).join("; ")}`,
    );
  }
  return r.resource;
};
for (const o of mesh.objects) {
  const r = validate(o);
  resources.set(`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`, r);
}
const counts = {};
for (const r of resources.values()) counts[r.kind] = (counts[r.kind] ?? 0) + 1;
const proxyCounts = { sidecar: 0, proxyless: 0, gateway: 0 };
for (const p of mesh.proxies) proxyCounts[p.kind]++;
log(
  `${resources.size} config objects, ${mesh.proxies.length} proxies; validated in ${ms(performance.now() - tValidate)} ms`,
);

let version = 0;
const snapshotOf = () => {
  const start = performance.now();
  const s = ConfigSnapshot.create(resources.values(), { version: String(++version) });
  return { snapshot: s, createMs: performance.now() - start };
};

// ---- the controller ---------------------------------------------------------------------------------
const config = new Subject();
const events = new Subject();
const cache = new TimedCache();
const pool = new ResourcePool();
const controller = new MeshController({
  config,
  cache,
  pool,
  generators: envoyGenerators(),
  debounceMs: opt.debounceMs,
});
controller.attach({ events$: events });
const pushes = [];
let onPush;
controller.pushes$.subscribe((p) => {
  pushes.push(p);
  onPush?.(p);
});
controller.start();

const waitFor = (predicate) =>
  new Promise((resolve) => {
    onPush = (p) => {
      if (predicate(p)) {
        onPush = undefined;
        resolve(p);
      }
    };
  });

const memoryBefore = memory();
const first = snapshotOf();
let ready = waitFor((p) => p.cause === "config" && p.version === first.snapshot.version);
const tContext = performance.now();
config.next(first.snapshot);
await ready;
const contextMs = performance.now() - tContext;
log(`first config: push context in ${ms(contextMs)} ms`);
const memoryConfig = memory();

// ---- full build: every proxy connects ----------------------------------------------------------------
const byId = new Map(mesh.proxies.map((p) => [p.node.id, p]));
const built = new Set();
ready = new Promise((resolve) => {
  onPush = (p) => {
    for (const id of p.proxies) built.add(id);
    if (built.size === mesh.proxies.length) {
      onPush = undefined;
      resolve();
    }
  };
});
const cpuBuild0 = process.cpuUsage();
const tBuild = performance.now();
await profiled("build", async () => {
  let streamId = 0;
  for (const p of mesh.proxies) {
    // Each proxy's first request on its ADS stream: Envoy asks for every cluster (a wildcard CDS
    // request), a proxyless client for the listeners it dials and serves.
    events.next({
      type: "request",
      streamId: ++streamId,
      protocol: "sotw",
      node: p.node,
      typeUrl: p.kind === "proxyless" ? TypeUrl.Listener : TypeUrl.Cluster,
      versionInfo: "",
      responseNonce: "",
      resourceNames: p.kind === "proxyless" ? p.listenerNames : [],
      unsubscribe: [],
      stale: false,
    });
  }
  await ready;
});
const buildMs = performance.now() - tBuild;
const buildCpu = process.cpuUsage(cpuBuild0);
const loadAfterBuild = os.loadavg();
log(`full build: ${mesh.proxies.length} proxies in ${ms(buildMs)} ms`);
const failed = statusErrors();
const memoryBuilt = memory();

/** Proxies whose build failed (they are left without a snapshot), from the controller's status. */
function statusErrors() {
  let s;
  controller.status$
    .subscribe((x) => {
      s = x;
    })
    .unsubscribe();
  return (s?.proxies ?? []).filter((p) => p.error !== undefined).map((p) => `${p.id}: ${p.error}`);
}

// What the proxies hold: resources per type, and how many distinct resources and sets they share.
const perType = Object.fromEntries(
  TYPES.map((t) => [t.slice(t.lastIndexOf(".") + 1), { total: 0, distinct: new Set(), sets: new Set() }]),
);
for (const p of mesh.proxies) {
  const snap = cache.getSnapshot(p.node.id);
  for (const t of TYPES) {
    const e = perType[t.slice(t.lastIndexOf(".") + 1)];
    const set = snap.resources(t);
    e.total += set.size;
    e.sets.add(set);
    for (const r of set.values()) e.distinct.add(r);
  }
}
const resourcesHeld = Object.fromEntries(
  Object.entries(perType).map(([k, v]) => [
    k,
    {
      perProxyAvg: Math.round(v.total / mesh.proxies.length),
      distinct: v.distinct.size,
      distinctSets: v.sets.size,
    },
  ]),
);

// ---- changes ----------------------------------------------------------------------------------------
function snapshotVersions(id) {
  const s = cache.getSnapshot(id);
  return TYPES.map((t) => s?.version(t) ?? "").join("|");
}

async function measureChange(label, mutate, expected) {
  const before = new Map(mesh.proxies.map((p) => [p.node.id, snapshotVersions(p.node.id)]));
  mutate();
  const next = snapshotOf();
  cache.setAt.clear();
  const touched = new Set();
  const done = waitFor((p) => {
    if (p.version !== next.snapshot.version) return false;
    for (const id of p.proxies) touched.add(id);
    return p.cause === "config";
  });
  const cpu0 = process.cpuUsage();
  let start = 0;
  const event = await profiled(`${label}-${changes.length}`, () => {
    start = performance.now();
    config.next(next.snapshot);
    return done;
  });
  const totalMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const latencies = [...cache.setAt.values()].map((t) => t - start).sort((a, b) => a - b);
  const changed = mesh.proxies
    .filter((p) => snapshotVersions(p.node.id) !== before.get(p.node.id))
    .map((p) => p.node.id);
  const extra = [...touched].filter((id) => !expected.has(id));
  const missing = [...expected].filter((id) => !touched.has(id));
  const changedOutside = changed.filter((id) => !touched.has(id));
  const byKind = (ids) => {
    const out = { sidecar: 0, proxyless: 0, gateway: 0 };
    for (const id of ids) out[byId.get(id).kind]++;
    return out;
  };
  const result = {
    change: label,
    configs: event.configs,
    snapshotCreateMs: ms(next.createMs),
    totalMs: ms(totalMs),
    controllerMs: event.durationMs,
    cpuMs: ms((cpu.user + cpu.system) / 1000),
    perProxyMs: {
      p50: ms(percentile(latencies, 50) ?? Number.NaN),
      p99: ms(percentile(latencies, 99) ?? Number.NaN),
      max: ms(latencies[latencies.length - 1] ?? Number.NaN),
    },
    proxies: {
      expected: expected.size,
      touched: touched.size,
      touchedByKind: byKind(touched),
      changed: changed.length,
      changedByKind: byKind(changed),
      touchedNotExpected: extra.length,
      expectedNotTouched: missing.length,
      changedNotTouched: changedOutside.length,
    },
    resourcesChanged: event.resourcesChanged,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  log(
    `${label}: ${result.proxies.touched} touched (expected ${expected.size}, changed ${changed.length}), total ${result.totalMs} ms, p99 ${result.perProxyMs.p99} ms`,
  );
  return result;
}

// The endpoint change: one pod of a mid-mesh service with several replicas goes not-ready.
const endpointTarget =
  mesh.services
    .filter((s) => !s.grpc && s.pods.length >= 3)
    .sort((a, b) => Math.abs(a.i - mesh.services.length / 2) - Math.abs(b.i - mesh.services.length / 2))[0] ??
  mesh.services.find((s) => s.pods.length > 0);
const vsTarget = mesh.virtualServices
  .filter((v) => v.weighted)
  .sort(
    (a, b) =>
      Math.abs(a.service.i - mesh.services.length / 3) - Math.abs(b.service.i - mesh.services.length / 3),
  )[0];

const changes = [];
for (let r = 0; r < opt.repeat; r++) {
  const down = endpointTarget.pods[r % endpointTarget.pods.length];
  changes.push(
    await measureChange(
      "endpoint",
      () => {
        const slice = validate(endpointSlice(endpointTarget, endpointTarget.pods, down.name));
        resources.set(`EndpointSlice/${slice.metadata.namespace}/${slice.metadata.name}`, slice);
      },
      proxiesSeeing(mesh, endpointTarget.ns),
    ),
  );
  if (vsTarget !== undefined) {
    const v1 = 90 - 5 * (r + 1);
    changes.push(
      await measureChange(
        "virtual-service",
        () => {
          const old = resources.get(`VirtualService/${vsTarget.ns}/${vsTarget.name}`);
          const spec = structuredClone(old.spec);
          spec.http[0].route[0].weight = v1;
          spec.http[0].route[1].weight = 100 - v1;
          const vs = validate({
            apiVersion: old.apiVersion,
            kind: old.kind,
            metadata: { ...old.metadata },
            spec,
          });
          resources.set(`VirtualService/${vs.metadata.namespace}/${vs.metadata.name}`, vs);
        },
        proxiesSeeing(mesh, vsTarget.ns),
      ),
    );
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
const summary = {};
for (const kind of ["endpoint", "virtual-service"]) {
  const runs = changes.filter((c) => c.change === kind);
  if (runs.length === 0) continue;
  summary[kind] = {
    runs: runs.length,
    totalMsMedian: median(runs.map((c) => c.totalMs)),
    perProxyP50MsMedian: median(runs.map((c) => c.perProxyMs.p50)),
    perProxyP99MsMedian: median(runs.map((c) => c.perProxyMs.p99)),
    perProxyP99MsMax: Math.max(...runs.map((c) => c.perProxyMs.p99)),
    cpuMsMedian: median(runs.map((c) => c.cpuMs)),
    expected: runs[0].proxies.expected,
    touched: runs[0].proxies.touched,
    changed: runs[0].proxies.changed,
    onlyAffectedTouched: runs.every(
      (c) => c.proxies.touchedNotExpected === 0 && c.proxies.expectedNotTouched === 0,
    ),
  };
}

const out = {
  scenario: opt.name,
  seed: opt.seed,
  isolation: opt.isolation,
  debounceMs: opt.debounceMs,
  node: process.version,
  cpus: os.cpus().length,
  config: { objects: resources.size, byKind: counts, services: mesh.services.length },
  proxies: { total: mesh.proxies.length, ...proxyCounts },
  firstConfig: { snapshotCreateMs: ms(first.createMs), pushContextMs: ms(contextMs) },
  build: {
    wallMs: ms(buildMs),
    cpuMs: ms((buildCpu.user + buildCpu.system) / 1000),
    vcpu: Math.round(((buildCpu.user + buildCpu.system) / 1000 / buildMs) * 100) / 100,
    perProxyUs: Math.round((buildMs * 1000) / mesh.proxies.length),
    failed: failed.length,
    ...(failed.length > 0 ? { failures: failed.slice(0, 5) } : {}),
    loadAverage: loadAfterBuild.map((x) => Math.round(x * 100) / 100),
  },
  memory: {
    beforeConfig: memoryBefore,
    configLoaded: memoryConfig,
    afterBuild: memoryBuilt,
    snapshotsHeapMB: Math.round((memoryBuilt.heapUsedMB - memoryConfig.heapUsedMB) * 10) / 10,
  },
  resourcesHeld,
  pool: { ...pool.stats, size: pool.size },
  targets: {
    endpoint: { service: endpointTarget.host, pods: endpointTarget.pods.length },
    ...(vsTarget !== undefined ? { virtualService: `${vsTarget.ns}/${vsTarget.name}` } : {}),
  },
  changes: summary,
  runs: changes,
};
controller.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
