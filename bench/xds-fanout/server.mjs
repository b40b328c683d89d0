// Server child: one meshlet XdsServer (a SnapshotCache whose one snapshot every stream shares, or,
// with --snapshots per-proxy, one snapshot per proxy with most resources shared) and, on another
// port, the raw node:http2 "ceiling" server that writes the same gRPC-framed bytes to every stream.
// Driven over IPC by run.mjs. Everything it measures is measured inside this process.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { Session } from "node:inspector/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  CachedResource,
  defaultResourcePool,
  SnapshotCache,
  silentLogger,
  TypeUrl,
  XdsServer,
} from "@meshlet/xds";
import { serveCommands } from "./ipc.mjs";
import { mallocStats } from "./malloc-stats.mjs";
import { buildOne, buildOwnOnly, countOf, measure, ownOf, PerProxyBuilder } from "./per-proxy.mjs";
import { buildInput, createSnapshot, withOneChanged } from "./snapshot.mjs";
import { FrameCounter, grpcFrame, stringField } from "./wire.mjs";

const types = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];
const fullState = new Set([TypeUrl.Cluster, TypeUrl.Listener]);
const now = () => performance.timeOrigin + performance.now();

// ---- encode counters (see README "Encode work"): installed on the shared prototypes, so they see
// every protobuf-es encode the xds package does, without touching its code.
const counters = { forks: 0, finishes: 0, finishBytes: 0, frameBuilds: 0, concatCalls: 0, concatBytes: 0 };
const proto = BinaryWriter.prototype;
const originalFork = proto.fork;
const originalFinish = proto.finish;
proto.fork = function fork() {
  counters.forks++;
  return originalFork.call(this);
};
proto.finish = function finish() {
  const out = originalFinish.call(this);
  counters.finishes++;
  counters.finishBytes += out.length;
  return out;
};
const originalSotwField = CachedResource.prototype.sotwField;
const originalDeltaField = CachedResource.prototype.deltaField;
CachedResource.prototype.sotwField = function sotwField(heartbeat = false) {
  if (!heartbeat && this.frames?.sotw === undefined) counters.frameBuilds++;
  return originalSotwField.call(this, heartbeat);
};
CachedResource.prototype.deltaField = function deltaField(heartbeat = false) {
  if (!heartbeat && this.frames?.delta === undefined) counters.frameBuilds++;
  return originalDeltaField.call(this, heartbeat);
};
const originalConcat = Buffer.concat;
Buffer.concat = function concat(list, length) {
  const out = originalConcat.call(Buffer, list, length);
  counters.concatCalls++;
  counters.concatBytes += out.length;
  return out;
};
function counterSnapshot() {
  return { ...counters };
}
function counterDelta(before) {
  const out = {};
  for (const k of Object.keys(counters)) out[k] = counters[k] - before[k];
  return out;
}

let frameCounterWorks = true;
let profileDir;
let profiler;

/** With --profile-dir, each push is CPU-profiled on its own (setSnapshot → last ACK). */
async function startProfile() {
  if (!profileDir) return;
  if (!profiler) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.setSamplingInterval", { interval: 200 });
  }
  await profiler.post("Profiler.start");
}

async function stopProfile(name) {
  if (!profileDir) return;
  const { profile } = await profiler.post("Profiler.stop");
  writeFileSync(join(profileDir, `${name}.cpuprofile`), JSON.stringify(profile));
}
let shape;
let generation = 0;
let input;
let snapshot;
let cache;
let xds;
let listening;
let tracker; // ACK tracking of the current wait
// --snapshots per-proxy: one snapshot per node id ("load-<i>"), built from the shared input's
// arrays plus each proxy's own resources (per-proxy.mjs).
let perProxy; // { ownCount, build: "merge" | "arrays", builder: PerProxyBuilder, snapshots: Map<nodeId, Snapshot> }
const nacks = [];
let responses = { count: 0, bytes: 0 };
const rawPayloads = new Map(); // scenario → { protocol → Buffer[] (gRPC frames) }

/** Which build of @meshlet/xds ran: the package is being changed while benchmarks run. */
function distFingerprint() {
  const require = createRequire(import.meta.url);
  const file = require.resolve("@meshlet/xds");
  const hash = createHash("sha256").update(readFileSync(file));
  return { file, sha256: hash.digest("hex").slice(0, 16) };
}

function snapshotStats(s) {
  const out = {};
  for (const t of types) {
    let bytes = 0;
    let count = 0;
    for (const r of s.resources(t).values()) {
      bytes += r.bytes.length;
      count++;
    }
    out[t.slice(t.lastIndexOf(".") + 1)] = { resources: count, bytes, version: s.version(t) };
  }
  return out;
}

/**
 * Checks that the frame-build counter can see CachedResource's private frame cache (it counts
 * sotwField/deltaField builds; the server writes responses from the resources' bytes and builds
 * frames only for TTL'd resources, so frameBuilds is 0 on the push path).
 */
function checkFrameCounter(s) {
  for (const t of types) {
    for (const r of s.resources(t).values()) {
      r.sotwField();
      r.deltaField();
      if (!(r.frames?.sotw instanceof Uint8Array && r.frames?.delta instanceof Uint8Array))
        frameCounterWorks = false;
      return;
    }
  }
}

/**
 * Waits for an ACK of the expected version of every changed type from every stream. `versions`
 * maps a type URL to its version, or (per-proxy) to a function of the node id.
 */
function expectAcks(versions, streams) {
  tracker = { versions, target: streams * versions.size, acked: new Set(), resolve: undefined, doneAt: 0 };
}

/** Expected versions of `types`: one per type, or per proxy when every proxy has its own snapshot. */
function versionsOf(types) {
  if (!perProxy) return new Map(types.map((t) => [t, snapshot.version(t)]));
  return new Map(types.map((t) => [t, (nodeId) => perProxy.snapshots.get(nodeId)?.version(t)]));
}

function onEvent(e) {
  if (e.type === "response") {
    responses.count++;
    responses.bytes += e.bytes;
    return;
  }
  if (e.type === "nack") {
    if (nacks.length < 10) nacks.push({ typeUrl: e.typeUrl, message: e.errorDetail.message });
    return;
  }
  if (e.type !== "ack" || !tracker) return;
  const want = tracker.versions.get(e.typeUrl);
  if ((typeof want === "function" ? want(e.node?.id) : want) !== e.version) return;
  tracker.acked.add(`${e.streamId} ${e.typeUrl}`);
  if (tracker.acked.size === tracker.target && !tracker.doneAt) {
    tracker.doneAt = now();
    tracker.resolve?.();
  }
}

function awaitTracker(timeoutMs) {
  const t = tracker;
  if (t.doneAt) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    t.resolve = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
}

async function collectGarbage() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 60));
  }
}

// ---- raw node:http2 ceiling server
let raw;
function startRaw(window) {
  const streams = [];
  const state = { streams, received: 0, target: Number.POSITIVE_INFINITY, resolve: undefined, doneAt: 0 };
  const server = http2.createServer({
    maxSessionMemory: Number.MAX_SAFE_INTEGER,
    settings: { initialWindowSize: window },
  });
  server.on("session", (session) => session.on("error", () => {}));
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    streams.push(stream);
    const counter = new FrameCounter(() => {
      state.received++;
      if (state.received === state.target && !state.doneAt) {
        state.doneAt = now();
        state.resolve?.();
      }
    });
    stream.on("data", (chunk) => counter.push(chunk));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ server, state, port: server.address().port }));
  });
}

function rawAwait(timeoutMs) {
  const s = raw.state;
  if (s.doneAt) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    s.resolve = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
}

/** The responses the raw server sends for a push: the same message bytes meshlet builds. */
function rawFrames(prev, next, changed) {
  const out = { sotw: [], delta: [] };
  for (const t of changed) {
    const prevSet = prev.resources(t);
    const all = [...next.resources(t).values()];
    const delta = all.filter((r) => prevSet.get(r.name)?.version !== r.version);
    const sotw = fullState.has(t) ? all : delta;
    const version = next.version(t);
    const tail = Buffer.concat([stringField(4, t), stringField(5, "z")]);
    out.sotw.push(
      grpcFrame(Buffer.concat([stringField(1, version), ...sotw.map((r) => r.sotwField()), tail])),
    );
    out.delta.push(
      grpcFrame(Buffer.concat([stringField(1, version), ...delta.map((r) => r.deltaField()), tail])),
    );
  }
  return out;
}

serveCommands({
  async init(args) {
    shape = args.shape;
    profileDir = args.profileDir;
    const t0 = performance.now();
    input = buildInput(shape, generation);
    const f0 = counters.forks;
    snapshot = createSnapshot(input);
    const createMs = performance.now() - t0;
    if (counters.forks === f0) {
      throw new Error(
        "the encode counter saw no BinaryWriter.fork during Snapshot.create: the bench and @meshlet/xds load different @bufbuild/protobuf copies",
      );
    }
    checkFrameCounter(snapshot);
    if (args.snapshots === "per-proxy") {
      perProxy = {
        ownCount: args.ownResources,
        build: args.perProxyBuild,
        builder: undefined,
        snapshots: new Map(),
      };
      cache = new SnapshotCache(); // keyed by node id: every proxy its own snapshot
    } else {
      cache = new SnapshotCache({ nodeKey: () => "all" });
      cache.setSnapshot("all", snapshot);
    }
    xds = new XdsServer({
      cache,
      logger: silentLogger,
      ...(args.maxBytesInFlight ? { maxBytesInFlight: args.maxBytesInFlight } : {}),
    });
    xds.events$.subscribe(onEvent);
    listening = await xds.listen({ address: "127.0.0.1:0" });
    raw = await startRaw(args.window);
    return {
      xdsDist: distFingerprint(),
      port: listening.port,
      rawPort: raw.port,
      pid: process.pid,
      createMs,
      snapshot: snapshotStats(snapshot),
    };
  },

  /**
   * Per-proxy mode: builds and sets one snapshot per proxy, and measures what that costs against
   * building one (per-proxy.mjs): "one" is Snapshot.create of one proxy's whole input from fresh
   * messages into a fresh pool (every resource encoded, hashed, checked, frozen); "ownOnly" the
   * N proxies' own resources alone, the floor no sharing can lower; "all" the N per-proxy
   * snapshots, which share everything but their own resources. CPU time (process.cpuUsage) is
   * the measure: wall time on a shared machine counts other processes' work.
   */
  async buildProxies({ streams }) {
    const one = await buildOne(shape, perProxy.ownCount, generation);
    const ownOnly = await buildOwnOnly(shape, perProxy.ownCount, streams);
    const own = Array.from({ length: streams }, (_, i) => ownOf(shape, perProxy.ownCount, i));
    const ownPerProxy = countOf(own[0]);
    perProxy.builder = new PerProxyBuilder(perProxy.build, own);
    perProxy.builder.prepare(input);
    await collectGarbage();
    const stats0 = { ...defaultResourcePool.stats };
    const c0 = counterSnapshot();
    const all = measure(() => {
      for (let i = 0; i < streams; i++) perProxy.snapshots.set(`load-${i}`, perProxy.builder.build(input, i));
    });
    const work = counterDelta(c0);
    const pool = {};
    for (const k of Object.keys(stats0)) pool[k] = defaultResourcePool.stats[k] - stats0[k];
    for (const [key, s] of perProxy.snapshots) cache.setSnapshot(key, s);
    snapshot = perProxy.snapshots.get("load-0");
    const resourcesPerProxy = types.reduce((a, t) => a + snapshot.resources(t).size, 0);
    return {
      proxies: streams,
      shape: shape.kind,
      build: perProxy.build,
      ownResourcesPerProxy: ownPerProxy,
      resourcesPerProxy,
      sharedFraction: (resourcesPerProxy - ownPerProxy) / resourcesPerProxy,
      one,
      ownOnly: { ms: ownOnly.ms, cpuMs: ownOnly.cpuMs },
      all: { ms: all.ms, cpuMs: all.cpuMs },
      nestedMessageForks: work.forks,
      pool,
    };
  },

  /** Writes a V8 heap snapshot of the server (run.mjs --heap-dir) after a forced GC. */
  async heapSnapshot({ dir, name }) {
    await collectGarbage();
    const { writeHeapSnapshot } = await import("node:v8");
    return { file: writeHeapSnapshot(join(dir, `${name}.heapsnapshot`)) };
  },

  async memory() {
    await collectGarbage();
    const m = process.memoryUsage();
    const malloc = mallocStats();
    return {
      rss: m.rss,
      heapTotal: m.heapTotal,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      ...(malloc ? { malloc } : {}),
    };
  },

  expectConnect({ streams }) {
    responses = { count: 0, bytes: 0 };
    expectAcks(versionsOf(types), streams);
    return { at: now() };
  },

  async awaitAcks({ timeoutMs }) {
    const ok = await awaitTracker(timeoutMs);
    return {
      ok,
      acked: tracker.acked.size,
      target: tracker.target,
      doneAt: tracker.doneAt,
      openStreams: xds.openStreams,
      responses,
      nacks,
    };
  },

  async push({ scenario, streams, timeoutMs, label }) {
    generation++;
    const prev = snapshot;
    let next;
    if (scenario === "all") next = buildInput(shape, generation);
    else next = withOneChanged(input, scenario, generation % shape.clusters, generation, shape);
    const c0 = counterSnapshot();
    const t0 = performance.now();
    // Per-proxy: the snapshots are built inside the timed push below; nothing is built ahead.
    let nextSnapshot = perProxy ? undefined : createSnapshot(next);
    const createMs = performance.now() - t0;
    const create = counterDelta(c0);
    let changed = perProxy ? [] : types.filter((t) => prev.version(t) !== nextSnapshot.version(t));
    input = next;
    snapshot = nextSnapshot;
    responses = { count: 0, bytes: 0 };
    await collectGarbage();
    await startProfile();
    const c1 = counterSnapshot();
    const stalled0 = xds.writes.stalledWrites;
    const cpu0 = process.cpuUsage();
    const startAt = now();
    let rebuildMs;
    let rebuildCpuMs;
    if (perProxy) {
      // Every proxy's snapshot is rebuilt from the new shared arrays and its own listeners, as a
      // control plane does on a shared change; timed as part of the push.
      const built = new Map();
      const cpuBuild = process.cpuUsage();
      for (let i = 0; i < streams; i++) built.set(`load-${i}`, perProxy.builder.build(input, i));
      rebuildMs = now() - startAt;
      const cpuBuilt = process.cpuUsage(cpuBuild);
      rebuildCpuMs = (cpuBuilt.user + cpuBuilt.system) / 1000;
      perProxy.snapshots = built;
      nextSnapshot = built.get("load-0");
      snapshot = nextSnapshot;
      changed = types.filter((t) => prev.version(t) !== nextSnapshot.version(t));
      expectAcks(versionsOf(changed), streams);
      for (const [key, s] of built) cache.setSnapshot(key, s);
    } else {
      expectAcks(versionsOf(changed), streams);
      cache.setSnapshot("all", nextSnapshot);
    }
    const setSnapshotMs = now() - startAt - (rebuildMs ?? 0);
    const ok = await awaitTracker(timeoutMs);
    const cpu = process.cpuUsage(cpu0);
    const work = counterDelta(c1);
    await stopProfile(`server-${label}-${scenario}-g${generation}`);
    // Built after the timed push: building them earlier would warm the lazily framed resources.
    rawPayloads.set(scenario, rawFrames(prev, nextSnapshot, changed));
    return {
      ok,
      changedTypes: changed.map((t) => t.slice(t.lastIndexOf(".") + 1)),
      startAt,
      ms: (tracker.doneAt || now()) - startAt,
      setSnapshotMs,
      rebuildMs,
      rebuildCpuMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      acked: tracker.acked.size,
      target: tracker.target,
      responses: { ...responses },
      nacks: [...nacks],
      snapshotCreate: { ms: createMs, ...create },
      push: { ...work, frameBuilds: frameCounterWorks ? work.frameBuilds : null },
      stalledWrites: xds.writes.stalledWrites - stalled0,
      rssAfter: process.memoryUsage().rss,
    };
  },

  expectRawConnect({ streams, requestsPerStream }) {
    raw.state.received = 0;
    raw.state.doneAt = 0;
    raw.state.target = streams * requestsPerStream;
    return {};
  },

  async awaitRaw({ timeoutMs }) {
    const ok = await rawAwait(timeoutMs);
    return { ok, received: raw.state.received, target: raw.state.target, streams: raw.state.streams.length };
  },

  async rawPush({ scenario, protocol, streams, timeoutMs }) {
    const frames = rawPayloads.get(scenario)?.[protocol];
    if (!frames) throw new Error(`no meshlet push of scenario ${scenario} to replay`);
    const s = raw.state;
    s.received = 0;
    s.doneAt = 0;
    s.target = streams * frames.length;
    const live = s.streams.filter((st) => !st.destroyed);
    await collectGarbage();
    const cpu0 = process.cpuUsage();
    const startAt = now();
    for (const st of live) for (const f of frames) st.write(f);
    const ok = await rawAwait(timeoutMs);
    const cpu = process.cpuUsage(cpu0);
    return {
      ok,
      startAt,
      ms: (s.doneAt || now()) - startAt,
      cpuMs: (cpu.user + cpu.system) / 1000,
      streams: live.length,
      messages: frames.length,
      bytesPerStream: frames.reduce((a, f) => a + f.length, 0),
      received: s.received,
    };
  },

  async close() {
    await listening?.close(500);
    xds?.close();
    return {};
  },

  exit() {
    // Lets --cpu-prof write its profile (a killed process writes none).
    setTimeout(() => process.exit(0), 50);
    return {};
  },
});
