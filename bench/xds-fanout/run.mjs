#!/usr/bin/env node
// xDS fan-out benchmark: one XdsServer child, one load child holding N ADS streams; push time
// until every stream ACKed, server CPU and memory, encode work per push, and the raw node:http2
// ceiling for the same bytes. One JSON document on stdout; progress on stderr. See README.md.
import { readFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startChild } from "./ipc.mjs";
import { buildMallinfo } from "./malloc-stats.mjs";

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const t0 = Date.now();
const log = (...a) => console.error(`[xds-fanout +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

const usage = `usage: node bench/xds-fanout/run.mjs [options]
  --streams 100,1000,5000     stream counts (N)
  --protocols sotw,delta      xDS variants
  --connections 10            HTTP/2 connections for multiplexed runs
  --modes mux,per-stream      mux: N streams over --connections connections; per-stream: one each
                              (default both; mux only with --quick)
  --scenarios endpoint,cluster,all   endpoint: one ClusterLoadAssignment changed; cluster: one
                              Cluster changed; all: every resource changed (shared snapshots only)
  --snapshots shared          shared: every stream shares one snapshot; per-proxy: every proxy
                              (node id) has its own snapshot: the shared content plus resources of
                              its own (both: "shared,per-proxy")
  --shape S                   fanout: 1000 clusters, 1000 load assignments, 10 listeners and routes
                              (the default with --snapshots shared); sidecar: an Istio sidecar's
                              100 resources, of which 10 are each proxy's own (its inbound
                              listener, clusters and routes: 90 % shared; the default when
                              --snapshots has per-proxy). Every run of one invocation has the same
                              shape, so per-proxy memory compares with the shared case's
  --per-proxy-build merge     merge: each proxy's snapshot is Snapshot.merge([shared, own]), its own
                              snapshot built once; arrays: Snapshot.create of the shared arrays
                              with its own resources appended (per-proxy.mjs)
  --own-resources K           per-proxy with --shape fanout: listeners of each proxy's own
                              (default 1; the rest is shared)
  --skip-floor                don't measure the bare node:http2 per-connection floor
                              (connection-floor.mjs) after one-connection-per-stream runs
  --clusters 1000 --listeners 10 --endpoints-per-cluster 3 --sans 6   snapshot shape (fanout;
                              the sidecar shape takes --endpoints-per-cluster and --sans)
  --window 4194304 --connection-window 67108864   client HTTP/2 flow-control windows (bytes)
  --ack-delay-ms 0            the load client answers each response this long after receiving it
                              (a proxy applying its configuration first; Envoy ACKs after that)
  --max-bytes-in-flight B     XdsServer's maxBytesInFlight (default: the server's, 256 MiB)
  --push-timeout 300          seconds to wait for one push to be ACKed everywhere
  --max-minutes 40            stop starting new configurations after this
  --repeat R                  (meshlet, raw) push pairs per scenario, median reported (default 3;
                              1 with --quick)
  --repeat-budget 30          seconds per scenario after which no further repeat starts
  --max-server-rss-gb 14      kill the server child (and report it) above this RSS
  --quick                     N=100, mux, one push per scenario (under a minute)
  --default-malloc            run the server child with glibc's default malloc settings instead of
                              MALLOC_MMAP_THRESHOLD_=16384 (docs/xds.md "Memory")
  --server-env K=V,K=V        environment for the server child instead of that default (e.g.
                              MALLOC_MMAP_THRESHOLD_=16384,MALLOC_TOP_PAD_=0)
  --server-node-flags="F F"   extra Node flags for the server child, space-separated (e.g.
                              --server-node-flags=--max-semi-space-size=1)
  --mallinfo                  build bench/xds-fanout/mallinfo (a C compiler and Node's headers) and
                              report glibc malloc's live bytes beside RSS in the memory figures
  --heap-dir DIR              write V8 heap snapshots of the server to DIR, per configuration:
                              with the snapshots set and no stream yet, and once the streams are
                              idle (after the memory measurements)
  --profile-dir DIR           write a V8 CPU profile of the server per push, and of the whole load
                              child, to DIR (profiling slows the server: don't compare timings)
  --help`;

function envList(value) {
  const env = {};
  for (const item of value.split(",").filter((i) => i !== "")) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new Error(`--server-env: "${item}" is not NAME=value`);
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return env;
}

function list(value, what, allowed) {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error(`--${what} is empty; give a comma-separated list`);
  if (allowed) {
    for (const i of items)
      if (!allowed.includes(i)) throw new Error(`--${what}: "${i}" is not one of ${allowed.join(", ")}`);
  }
  return items;
}

function positiveInt(value, what, min = 1) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${what} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

function options() {
  const { values } = parseArgs({
    options: {
      streams: { type: "string", default: "100,1000,5000" },
      protocols: { type: "string", default: "sotw,delta" },
      connections: { type: "string", default: "10" },
      modes: { type: "string" },
      scenarios: { type: "string", default: "endpoint,cluster,all" },
      snapshots: { type: "string", default: "shared" },
      shape: { type: "string" },
      "per-proxy-build": { type: "string", default: "merge" },
      "own-resources": { type: "string" },
      "skip-floor": { type: "boolean", default: false },
      clusters: { type: "string" },
      listeners: { type: "string" },
      "endpoints-per-cluster": { type: "string", default: "3" },
      sans: { type: "string", default: "6" },
      window: { type: "string", default: String(4 * 1024 * 1024) },
      "connection-window": { type: "string", default: String(64 * 1024 * 1024) },
      "ack-delay-ms": { type: "string", default: "0" },
      "max-bytes-in-flight": { type: "string" },
      "push-timeout": { type: "string", default: "300" },
      "max-minutes": { type: "string", default: "40" },
      "profile-dir": { type: "string" },
      "heap-dir": { type: "string" },
      mallinfo: { type: "boolean", default: false },
      "default-malloc": { type: "boolean", default: false },
      "server-env": { type: "string" },
      "server-node-flags": { type: "string", default: "" },
      repeat: { type: "string" },
      "repeat-budget": { type: "string", default: "30" },
      "max-server-rss-gb": { type: "string", default: "14" },
      quick: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.error(usage);
    process.exit(0);
  }
  const streams = values.quick
    ? [100]
    : list(values.streams, "streams").map((s) => positiveInt(s, "streams"));
  const snapshots = list(values.snapshots, "snapshots", ["shared", "per-proxy"]);
  // Issue 10's per-proxy case is a sidecar's snapshot, 90 % shared; the shared runs of the same
  // invocation take the same shape, so that memory per proxy compares with a stream of it.
  const shapeKind = values.shape ?? (snapshots.includes("per-proxy") ? "sidecar" : "fanout");
  if (!["fanout", "sidecar"].includes(shapeKind))
    throw new Error(`--shape: "${shapeKind}" is not one of fanout, sidecar`);
  if (shapeKind === "sidecar" && values["own-resources"] !== undefined)
    throw new Error(
      "--own-resources applies to --shape fanout (a sidecar's own resources are its inbound side)",
    );
  if (shapeKind === "sidecar" && (values.listeners !== undefined || values.clusters !== undefined))
    throw new Error("--clusters and --listeners shape --shape fanout; the sidecar shape is fixed");
  return {
    streams,
    protocols: list(values.protocols, "protocols", ["sotw", "delta"]),
    connections: positiveInt(values.connections, "connections"),
    // --quick keeps to the multiplexed layout so it stays under a minute on a busy 2-core machine.
    modes: list(values.modes ?? (values.quick ? "mux" : "mux,per-stream"), "modes", ["mux", "per-stream"]),
    scenarios: list(values.scenarios, "scenarios", ["endpoint", "cluster", "all"]),
    snapshots,
    perProxyBuild: list(values["per-proxy-build"], "per-proxy-build", ["merge", "arrays"])[0],
    ownResources: positiveInt(values["own-resources"] ?? "1", "own-resources"),
    floor: !values["skip-floor"] && !values.quick,
    shape: {
      kind: shapeKind,
      // The sidecar shape: 40 outbound services (an mTLS cluster and its load assignment each).
      clusters: shapeKind === "sidecar" ? 40 : positiveInt(values.clusters ?? "1000", "clusters"),
      listeners: shapeKind === "sidecar" ? 4 : positiveInt(values.listeners ?? "10", "listeners"),
      endpointsPerCluster: positiveInt(values["endpoints-per-cluster"], "endpoints-per-cluster"),
      sanCount: positiveInt(values.sans, "sans", 0),
    },
    window: positiveInt(values.window, "window", 65535),
    connectionWindow: positiveInt(values["connection-window"], "connection-window", 65535),
    ackDelayMs: positiveInt(values["ack-delay-ms"], "ack-delay-ms", 0),
    maxBytesInFlight:
      values["max-bytes-in-flight"] === undefined
        ? undefined
        : positiveInt(values["max-bytes-in-flight"], "max-bytes-in-flight", 1),
    pushTimeoutMs: positiveInt(values["push-timeout"], "push-timeout") * 1000,
    deadline: Date.now() + positiveInt(values["max-minutes"], "max-minutes") * 60_000,
    quick: values.quick,
    profileDir: values["profile-dir"],
    heapDir: values["heap-dir"],
    mallinfo: values.mallinfo,
    defaultMalloc: values["default-malloc"],
    serverEnv: values["server-env"] === undefined ? undefined : envList(values["server-env"]),
    serverNodeFlags: values["server-node-flags"].split(" ").filter((f) => f !== ""),
    repeat: values.repeat !== undefined ? positiveInt(values.repeat, "repeat") : values.quick ? 1 : 3,
    repeatBudgetMs: positiveInt(values["repeat-budget"], "repeat-budget") * 1000,
    maxServerRssBytes: positiveInt(values["max-server-rss-gb"], "max-server-rss-gb") * 1024 ** 3,
  };
}

const children = new Set();
function killChildren() {
  for (const c of children) c.kill();
  children.clear();
}
process.on("exit", killChildren);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killChildren();
    process.exit(130);
  });
}

const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

function profileArgs(opt, who) {
  return opt.profileDir
    ? ["--cpu-prof", `--cpu-prof-dir=${opt.profileDir}`, `--cpu-prof-name=${who}-${Date.now()}.cpuprofile`]
    : [];
}

async function runConfig(opt, protocol, mode, n, snapshots) {
  const connections = mode === "per-stream" ? 0 : opt.connections;
  const timeout = opt.pushTimeoutMs;
  const repeat = opt.repeat;
  const result = {
    protocol,
    mode,
    connections: mode === "per-stream" ? n : Math.min(opt.connections, n),
    streams: n,
    snapshots,
    shape: opt.shape.kind,
    repeat,
  };
  let server;
  let load;
  let watch;
  try {
    server = await startWithRetry(here("./server.mjs"), {
      name: "server",
      execArgv: serverExecArgv(opt),
      env: serverEnv(opt),
    });
    load = await startWithRetry(here("./load.mjs"), {
      name: "load",
      execArgv: ["--max-old-space-size=4096", ...profileArgs(opt, "load")],
    });
    watch = watchRss({ server, load }, opt.maxServerRssBytes);
    const init = await server.call(
      "init",
      {
        shape: opt.shape,
        window: opt.window,
        profileDir: opt.profileDir,
        maxBytesInFlight: opt.maxBytesInFlight,
        snapshots,
        ownResources: opt.ownResources,
        perProxyBuild: opt.perProxyBuild,
      },
      120_000,
    );
    result.xdsDist = init.xdsDist;
    result.serverEnv = serverEnv(opt);
    result.serverNodeFlags = opt.serverNodeFlags;
    result.snapshot = init.snapshot;
    result.initialSnapshotCreateMs = round(init.createMs);
    const before = await server.call("memory");
    if (snapshots === "per-proxy") {
      // Built after the baseline: the per-proxy snapshots are charged to the proxies' memory.
      const b = await server.call("buildProxies", { streams: n }, 900_000);
      const overOne = (x) => round(x / b.one.cpuMs, 2);
      result.build = {
        method:
          "CPU time of the server process (process.cpuUsage, user + system, GC threads included), after a forced GC; wall ms beside it",
        proxies: b.proxies,
        shape: b.shape,
        build: b.build,
        resourcesPerProxy: b.resourcesPerProxy,
        ownResourcesPerProxy: b.ownResourcesPerProxy,
        sharedFraction: round(b.sharedFraction, 4),
        oneSnapshotCpuMs: round(b.one.cpuMs, 2),
        oneSnapshotCpuMsAll: b.one.cpuMsAll.map((x) => round(x, 2)),
        oneSnapshotMs: round(b.one.ms, 2),
        allSnapshotsCpuMs: round(b.all.cpuMs),
        allSnapshotsMs: round(b.all.ms),
        allOverOne: overOne(b.all.cpuMs),
        perProxyCpuUs: round((b.all.cpuMs * 1000) / n),
        // The floor: the N proxies' own resources alone (encode, hash, field rules, freeze).
        ownOnlyCpuMs: round(b.ownOnly.cpuMs),
        ownOnlyOverOne: overOne(b.ownOnly.cpuMs),
        // What a proxy costs beyond its own resources: the sharing's bookkeeping.
        overheadPerProxyCpuUs: round(((b.all.cpuMs - b.ownOnly.cpuMs) * 1000) / n),
        nestedMessageForks: b.nestedMessageForks,
        pool: b.pool,
      };
      log(
        `${protocol}/${mode}/N=${n} per-proxy: ${n} snapshots in ${result.build.allSnapshotsCpuMs} ms CPU, one in ${result.build.oneSnapshotCpuMs} ms CPU (×${result.build.allOverOne}; own resources alone ×${result.build.ownOnlyOverOne})`,
      );
    }
    // With the snapshots built and set, before any stream: splits a proxy's memory into its
    // snapshot's and its stream's.
    const withSnapshots = await server.call("memory");
    if (opt.heapDir) {
      const h = await server.call(
        "heapSnapshot",
        { dir: opt.heapDir, name: `server-${protocol}-${mode}-${snapshots}-n${n}-before-streams` },
        600_000,
      );
      log(`heap snapshot: ${h.file}`);
    }
    const connectOpts = {
      protocol,
      streams: n,
      connections,
      window: opt.window,
      connectionWindow: opt.connectionWindow,
      ackDelayMs: opt.ackDelayMs,
      shape: opt.shape,
    };

    // ---- meshlet: connect, initial full-state fan-out, idle memory. One connection per stream
    // connects in two waves (half, then the rest) with memory measured between them: the second
    // wave's cost is the marginal cost of a stream, which memory the allocator kept free before
    // the first stream (a large snapshot's encoding leaves some) cannot lower.
    const waveSizes = mode === "per-stream" && n > 1 ? [Math.ceil(n / 2), Math.floor(n / 2)] : [n];
    const waves = [];
    let half;
    let offset = 0;
    for (const [w, count] of waveSizes.entries()) {
      const exp = await server.call("expectConnect", { streams: count });
      const opened = await load.call(
        "connect",
        { ...connectOpts, streams: count, offset, port: init.port },
        300_000,
      );
      const connected = await server.call("awaitAcks", { timeoutMs: timeout }, timeout + 30_000);
      offset += count;
      waves.push({ streams: count, exp, opened, connected });
      if (!connected.ok) throw new Error(`only ${connected.acked}/${connected.target} initial ACKs arrived`);
      if (w < waveSizes.length - 1) {
        await new Promise((r) => setTimeout(r, 300));
        half = await server.call("memory");
      }
    }
    const last = waves[waves.length - 1].connected;
    const sum = (f) => waves.reduce((a, x) => a + f(x), 0);
    result.connect = {
      ok: true,
      ms: round(sum((x) => x.connected.doneAt - x.exp.at)),
      openStreamsMs: round(sum((x) => x.opened.openedMs)),
      acked: sum((x) => x.connected.acked),
      target: sum((x) => x.connected.target),
      openStreams: last.openStreams,
      responseBytesPerStream: Math.round(sum((x) => x.connected.responses.bytes) / n),
      ...(waves.length > 1
        ? { waves: waves.map((x) => ({ streams: x.streams, ms: round(x.connected.doneAt - x.exp.at) })) }
        : {}),
    };
    log(`${protocol}/${mode}/N=${n} connected: initial fan-out ${result.connect.ms} ms`);
    await new Promise((r) => setTimeout(r, 300));
    const after = await server.call("memory");
    if (opt.heapDir) {
      const h = await server.call(
        "heapSnapshot",
        { dir: opt.heapDir, name: `server-${protocol}-${mode}-${snapshots}-n${n}` },
        600_000,
      );
      log(`heap snapshot: ${h.file}`);
    }
    const perStream = (k) => Math.round((after[k] - before[k]) / n);
    result.memory = {
      before,
      after,
      rssPerStream: perStream("rss"),
      heapPerStream: perStream("heapUsed"),
      // V8 heap committed (used + headroom the GC keeps: young-generation semispaces grow under
      // allocation pressure); RSS minus this and external is native (nghttp2, allocator).
      heapCommittedPerStream: perStream("heapTotal"),
      externalPerStream: perStream("external"),
      retainedPerStream: Math.round(
        (after.heapUsed + after.external - before.heapUsed - before.external) / n,
      ),
      // Of retainedPerStream: what the proxies' snapshots keep (0 when they share one), and the
      // streams (their state, and the responses and lists they keep alive).
      retainedSnapshotsPerProxy: Math.round(
        (withSnapshots.heapUsed + withSnapshots.external - before.heapUsed - before.external) / n,
      ),
      retainedStreamsPerProxy: Math.round(
        (after.heapUsed + after.external - withSnapshots.heapUsed - withSnapshots.external) / n,
      ),
      sharedSnapshotBytes: Object.values(init.snapshot).reduce((a, t) => a + t.bytes, 0),
    };
    if (half) {
      // The second wave alone: what one more stream (and its connection) costs.
      const m = waveSizes[1];
      const per = (k) => Math.round((after[k] - half[k]) / m);
      const native = (x) => x.rss - x.heapTotal - x.external;
      result.memory.marginal = {
        streams: m,
        half,
        rssPerStream: per("rss"),
        heapPerStream: per("heapUsed"),
        heapCommittedPerStream: per("heapTotal"),
        externalPerStream: per("external"),
        nativePerStream: Math.round((native(after) - native(half)) / m),
        ...(after.malloc && half.malloc
          ? {
              mallocUsedPerStream: Math.round((after.malloc.usedBytes - half.malloc.usedBytes) / m),
              mallocMmapPerStream: Math.round((after.malloc.mmapBytes - half.malloc.mmapBytes) / m),
            }
          : {}),
      };
    }

    // ---- raw node:http2 ceiling: N more streams from the same client, same connection layout,
    // to the raw server. Opened after the memory measurement; idle while meshlet pushes.
    await server.call("expectRawConnect", { streams: n, requestsPerStream: 4 });
    await load.call("connect", { ...connectOpts, port: init.rawPort, raw: true }, 300_000);
    const rawConnected = await server.call("awaitRaw", { timeoutMs: 120_000 }, 150_000);
    if (!rawConnected.ok)
      throw new Error(`raw: only ${rawConnected.received}/${rawConnected.target} requests`);

    // ---- pushes: each meshlet push is followed at once by the raw push of the same bytes, so
    // both see the same machine load (other work on a shared machine varies by the minute).
    result.pushes = {};
    // Per-proxy snapshots keep their own listeners across generations; "all" would rebuild them.
    for (const scenario of opt.scenarios.filter((sc) => snapshots === "shared" || sc !== "all")) {
      const pairs = [];
      const scenarioStart = Date.now();
      // Repeats stop early once a scenario has used its time budget: heavy pushes at large N run once.
      for (let i = 0; i < repeat && (i === 0 || Date.now() - scenarioStart < opt.repeatBudgetMs); i++) {
        const l0 = await load.call("stats");
        const pTcp = sampleTcpMemory();
        const p = await server.call(
          "push",
          { scenario, streams: n, timeoutMs: timeout, label: `${protocol}-${mode}-n${n}` },
          timeout + 120_000,
        );
        p.tcpMemPeakPages = pTcp.stop();
        const l1 = await load.call("stats");
        log(`${protocol}/${mode}/N=${n} ${scenario} #${i + 1}: meshlet ${round(p.ms)} ms (ok=${p.ok})`);
        if (!p.ok) throw new Error(`push ${scenario}: only ${p.acked}/${p.target} ACKs`);
        const rTcp = sampleTcpMemory();
        const r = await server.call(
          "rawPush",
          { scenario, protocol, streams: n, timeoutMs: timeout },
          timeout + 60_000,
        );
        r.tcpMemPeakPages = rTcp.stop();
        const l2 = await load.call("stats");
        log(
          `${protocol}/${mode}/N=${n} ${scenario} #${i + 1}: raw ${round(r.ms)} ms → ×${round(p.ms / r.ms, 2)}`,
        );
        if (!r.ok) throw new Error(`raw push ${scenario}: only ${r.received} replies`);
        pairs.push({ p, r, l0, l1, l2, bytesPerStream: (l1.bytes - l0.bytes) / n, ratio: p.ms / r.ms });
      }
      const { p, l0, l1, bytesPerStream } = median(pairs, (x) => x.p.ms);
      const { r, l1: r0, l2: r1 } = median(pairs, (x) => x.r.ms);
      const ratio = median(pairs, (x) => x.ratio).ratio;
      result.pushes[scenario] = {
        meshlet: {
          ok: p.ok,
          changedTypes: p.changedTypes,
          ms: round(p.ms),
          msAll: pairs.map((x) => round(x.p.ms)),
          // Responses that stopped counting against the write budget after writeStallMs without an
          // answer, in each push: a client slow to read or to answer, or a server slow to read the
          // answers (SotW at N=5000 is CPU-bound decoding them).
          stalledWritesAll: pairs.map((x) => x.p.stalledWrites),
          // Peak of the kernel's TCP memory (pages, /proc/net/sockstat) during each push: both
          // sides of every loopback connection. Compare with tcpMemLimitsPages.
          tcpMemPeakPagesAll: pairs.map((x) => x.p.tcpMemPeakPages),
          receivedAllMs: round(l1.lastMessageAt - p.startAt),
          setSnapshotMs: round(p.setSnapshotMs, 2),
          // Per-proxy: building every proxy's new snapshot, inside the timed push (ms includes it).
          rebuildMs: p.rebuildMs === undefined ? undefined : round(p.rebuildMs, 1),
          rebuildCpuMs: p.rebuildCpuMs === undefined ? undefined : round(p.rebuildCpuMs, 1),
          // Rebuilding the N snapshots after a shared change (each differs from its previous one
          // in that resource), over building one from scratch (build.oneSnapshotCpuMs).
          rebuildOverOneSnapshot:
            p.rebuildCpuMs === undefined || !result.build
              ? undefined
              : round(p.rebuildCpuMs / result.build.oneSnapshotCpuMs, 2),
          serverCpuMs: round(p.cpuMs),
          serverCpuMsPerStream: round(p.cpuMs / n, 3),
          loadCpuMs: round(l1.cpuMs - l0.cpuMs),
          // Share of one core the load child used during the push; near 1 means it was the bottleneck.
          loadCpuShare: round((l1.cpuMs - l0.cpuMs) / p.ms, 2),
          acked: p.acked,
          target: p.target,
          nacks: p.nacks,
          responses: p.responses.count,
          bytesPerStream: Math.round(bytesPerStream),
          MBps: round((bytesPerStream * n) / 1e6 / (p.ms / 1000)),
          serverRssAfterMB: Math.round(p.rssAfter / 1048576),
          loadErrors: l1.errors - l0.errors,
        },
        encode: {
          snapshotCreateMs: round(p.snapshotCreate.ms),
          snapshotCreate: {
            nestedMessageForks: p.snapshotCreate.forks,
            writerFinishes: p.snapshotCreate.finishes,
            encodedBytes: p.snapshotCreate.finishBytes,
          },
          pushPath: {
            nestedMessageForks: p.push.forks,
            writerFinishes: p.push.finishes,
            writerFinishesPerStream: round(p.push.finishes / n, 2),
            writerBytesPerStream: round(p.push.finishBytes / n, 1),
            frameBuilds: p.push.frameBuilds,
            bufferConcatBytesPerStream: Math.round(p.push.concatBytes / n),
          },
        },
        raw: {
          ok: r.ok,
          ms: round(r.ms),
          tcpMemPeakPagesAll: pairs.map((x) => x.r.tcpMemPeakPages),
          msAll: pairs.map((x) => round(x.r.ms)),
          serverCpuMs: round(r.cpuMs),
          loadCpuMs: round(r1.cpuMs - r0.cpuMs),
          loadCpuShare: round((r1.cpuMs - r0.cpuMs) / r.ms, 2),
          bytesPerStream: r.bytesPerStream,
          MBps: round((r.bytesPerStream * n) / 1e6 / (r.ms / 1000)),
        },
        ratio: {
          // Median over the back-to-back (meshlet, raw) pairs.
          timeMeshletOverRaw: round(ratio, 2),
          bandwidthMeshletOverRaw: round(1 / ratio, 3),
          bytesMeshletOverRaw: round(bytesPerStream / r.bytesPerStream, 3),
        },
      };
    }
    await load.call("close");
    if (opt.profileDir) {
      await server.call("close", {}, 10_000);
      await Promise.all([server.call("exit"), load.call("exit")]);
      await new Promise((r) => setTimeout(r, 2000));
    }
  } catch (err) {
    result.error = watch?.abortReason ?? (err instanceof Error ? err.message : String(err));
    result.loadStatsAtError = await load?.call("stats", {}, 5000).catch(() => undefined);
    log(`${protocol}/${mode}/N=${n} failed: ${result.error}`);
  } finally {
    watch?.stop();
    if (watch) result.peakRssMB = { server: watch.peak.server, load: watch.peak.load };
    for (const child of [server, load]) {
      if (!child) continue;
      child.kill();
      children.delete(child);
    }
  }
  return result;
}

/**
 * Starts a child, retrying a few times: @meshlet/xds may be rebuilt while a long run goes on, and
 * for a moment its dist is incomplete.
 */
async function startWithRetry(modulePath, options) {
  for (let attempt = 1; ; attempt++) {
    try {
      const child = await startChild(modulePath, options);
      children.add(child);
      return child;
    } catch (err) {
      if (attempt >= 4) throw err;
      log(`${options.name} did not start (${err instanceof Error ? err.message : err}); retrying in 5 s`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

/**
 * The Node flags of both servers measured against each other, meshlet's and the bare node:http2
 * floor (connection-floor.mjs): the same V8 heap limit (it sizes V8's young generation and heap
 * growth), so "measured the same way" holds for the flags as for the waves, GC and environment.
 */
function serverExecArgv(opt) {
  return ["--expose-gc", "--max-old-space-size=8192", ...opt.serverNodeFlags];
}

/**
 * The server child runs as docs/xds.md recommends for a control plane: glibc serves allocations
 * of 16 KiB and more with mmap, so the buffers of a reconnect storm (each stream's subscription,
 * 48 KB here) go back to the OS when freed instead of staying mapped. --default-malloc runs it
 * with glibc's defaults.
 */
function serverEnv(opt) {
  const env = opt.serverEnv ?? (opt.defaultMalloc ? {} : { MALLOC_MMAP_THRESHOLD_: "16384" });
  return opt.mallinfoAddon ? { ...env, XDS_FANOUT_MALLINFO: opt.mallinfoAddon } : env;
}

/**
 * Samples the kernel's TCP memory (pages, from /proc/net/sockstat) every 100 ms until stopped;
 * stop() returns the peak, or null where the file does not exist (not Linux).
 */
function sampleTcpMemory() {
  const read = () => {
    try {
      const m = /^TCP:.* mem (\d+)/m.exec(readFileSync("/proc/net/sockstat", "utf8"));
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  };
  let peak = read();
  const timer = setInterval(() => {
    const v = read();
    if (v !== null && (peak === null || v > peak)) peak = v;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/** The kernel's tcp_mem thresholds (pages): [low, pressure, max], or null. */
function tcpMemLimits() {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_mem", "utf8").trim().split(/\s+/).map(Number);
  } catch {
    return null;
  }
}

function median(items, key) {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Polls the children's RSS (Linux /proc); kills the server when it exceeds the limit. */
function watchRss(procs, limitBytes) {
  const peak = { server: 0, load: 0 };
  const state = { peak, abortReason: undefined };
  const read = (pid) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  };
  const timer = setInterval(() => {
    for (const [name, child] of Object.entries(procs)) {
      const rss = read(child.pid);
      peak[name] = Math.max(peak[name], Math.round(rss / 1048576));
      if (name === "server" && rss > limitBytes && !state.abortReason) {
        state.abortReason = `server RSS ${Math.round(rss / 1048576)} MB exceeded --max-server-rss-gb; killed it`;
        log(state.abortReason);
        child.kill();
      }
    }
  }, 250);
  state.stop = () => clearInterval(timer);
  return state;
}

const KB = 1024;

/**
 * The goals, each with its value and limit, evaluated at the largest N that completed per
 * protocol, mode and snapshot layout. Issue 2 (shared snapshot): one-resource push within 2× raw,
 * full-state push ≥ 50 % of raw bandwidth, memory per idle stream (restated in issue 10: ≤ 20 KB
 * multiplexed; ≤ 5 KB above a bare node:http2 server measured the same way with one connection
 * per stream). Issue 10 (per-proxy snapshots): a shared-resource change within 2× raw, building N
 * per-proxy snapshots ≤ 2× building one, retained memory per proxy ≤ 2× the shared case.
 */
function goals(runs, floors) {
  const out = [];
  const ok = runs.filter((r) => !r.error);
  const largest = (filter) => {
    const rs = ok.filter(filter);
    const n = Math.max(...rs.map((r) => r.streams));
    return rs.filter((r) => r.streams === n);
  };
  const at = (r) => ({
    protocol: r.protocol,
    mode: r.mode,
    snapshots: r.snapshots,
    shape: r.shape,
    streams: r.streams,
    ...(r.streams < 5000 ? { note: `largest N that ran is ${r.streams}; the goal is stated for 5000` } : {}),
  });
  // Issue 2's goals are stated for the fanout content (1,000 clusters …): they are evaluated on
  // shared-snapshot runs of that shape only.
  const shared = (r) => r.snapshots === "shared" && (r.shape ?? "fanout") === "fanout";
  const perProxy = (r) => r.snapshots === "per-proxy";
  for (const r of largest((r) => shared(r) && r.pushes?.endpoint?.ratio)) {
    const ratio = r.pushes.endpoint.ratio.timeMeshletOverRaw;
    out.push({
      goal: "one-resource change ACKed by every stream within 2× raw node:http2 for the same bytes",
      ...at(r),
      value: ratio,
      limit: 2,
      pass: ratio <= 2,
    });
  }
  for (const r of largest((r) => shared(r) && r.pushes?.all?.ratio)) {
    const share = r.pushes.all.ratio.bandwidthMeshletOverRaw;
    out.push({
      goal: "full-state push moves ≥ 50% of raw node:http2 bandwidth",
      ...at(r),
      value: share,
      limit: 0.5,
      pass: share >= 0.5,
    });
  }
  for (const r of largest((r) => shared(r) && r.memory && r.mode === "mux")) {
    out.push({
      goal: "multiplexed: ≤ 20 KB (20480 B) server RSS per idle stream beyond the shared snapshot",
      ...at(r),
      value: r.memory.rssPerStream,
      retainedHeapPlusExternal: r.memory.retainedPerStream,
      limit: 20 * KB,
      pass: r.memory.rssPerStream <= 20 * KB,
    });
  }
  for (const r of largest((r) => shared(r) && r.memory && r.mode === "per-stream")) {
    // Marginal figures (the second wave of connections, run.mjs and connection-floor.mjs alike)
    // when both have them; the whole-N figures stay beside them. Whole-N is from a server with no
    // stream yet, so it reads lower when the allocator kept memory free before the first stream
    // (the snapshot's encoding leaves some) that the streams then reuse.
    const f = floors.find((x) => x.connections === r.streams);
    const marginal =
      r.memory.marginal && f?.marginal
        ? { meshlet: r.memory.marginal.rssPerStream, floor: f.marginal.rss }
        : undefined;
    const wholeAbove =
      f?.perConnection?.rss === undefined ? undefined : r.memory.rssPerStream - f.perConnection.rss;
    const above = marginal ? marginal.meshlet - marginal.floor : wholeAbove;
    out.push({
      goal: "one connection per stream: ≤ 5 KB (5120 B) server RSS per idle stream above a bare node:http2 server measured the same way (connection-floor.mjs)",
      ...at(r),
      value: above ?? null,
      measure: marginal
        ? "marginal: the second half of the connections, both servers"
        : "whole N from an empty server, both servers",
      rssPerStream: marginal?.meshlet ?? r.memory.rssPerStream,
      floorRssPerConnection: marginal?.floor ?? f?.perConnection?.rss ?? null,
      wholeN: {
        rssPerStream: r.memory.rssPerStream,
        floorRssPerConnection: f?.perConnection?.rss ?? null,
        above: wholeAbove ?? null,
      },
      // With --mallinfo: live bytes (V8 heap used + malloc in use + mmap'd chunks) above the
      // floor's, second wave: what both servers hold, free of RSS's pages kept free or unused.
      ...(liveAbove(r.memory.marginal, f?.marginal) ?? {}),
      limit: 5 * KB,
      pass: above === undefined ? null : above <= 5 * KB,
      ...(above === undefined ? { note: "no floor measured at this N (--skip-floor or it failed)" } : {}),
    });
  }
  for (const r of largest((r) => perProxy(r) && r.pushes?.endpoint?.ratio)) {
    const ratio = r.pushes.endpoint.ratio.timeMeshletOverRaw;
    out.push({
      goal: "per-proxy snapshots: one shared-resource change (every proxy's snapshot rebuilt, then set) ACKed by all within 2× raw node:http2 for the same bytes",
      ...at(r),
      value: ratio,
      rebuildMs: r.pushes.endpoint.meshlet.rebuildMs,
      limit: 2,
      pass: ratio <= 2,
    });
  }
  for (const r of largest((r) => perProxy(r) && r.build)) {
    out.push({
      goal: "per-proxy snapshots: building N snapshots that differ in their own resources costs ≤ 2× building one (CPU time)",
      ...at(r),
      value: r.build.allOverOne,
      ownResourcesPerProxy: r.build.ownResourcesPerProxy,
      allSnapshotsCpuMs: r.build.allSnapshotsCpuMs,
      oneSnapshotCpuMs: r.build.oneSnapshotCpuMs,
      // Encoding, hashing and checking the N proxies' own resources alone, over building one: a
      // goal below this is out of reach of any sharing.
      floor: r.build.ownOnlyOverOne,
      // The other reading of "N snapshots that differ in one resource each": rebuilding all N
      // after one shared resource changed, over building one (the endpoint push's rebuild).
      rebuildAfterSharedChangeOverOne: r.pushes?.endpoint?.meshlet.rebuildOverOneSnapshot ?? null,
      limit: 2,
      pass: r.build.allOverOne <= 2,
    });
  }
  for (const r of largest((r) => perProxy(r) && r.memory)) {
    const base = ok.find(
      (s) =>
        s.snapshots === "shared" &&
        s.shape === r.shape &&
        s.memory &&
        s.protocol === r.protocol &&
        s.mode === r.mode &&
        s.streams === r.streams,
    );
    const ratio = base ? r.memory.retainedPerStream / base.memory.retainedPerStream : undefined;
    out.push({
      goal: "per-proxy snapshots: retained memory (heap + external after GC) per proxy ≤ 2× the shared-snapshot case",
      ...at(r),
      value: ratio === undefined ? null : Math.round(ratio * 100) / 100,
      retainedPerProxy: r.memory.retainedPerStream,
      sharedRetainedPerStream: base?.memory.retainedPerStream ?? null,
      limit: 2,
      pass: ratio === undefined ? null : ratio <= 2,
      ...(base ? {} : { note: "no shared-snapshot run of the same protocol, mode and N to compare with" }),
    });
  }
  return out;
}

/** Live bytes per stream above the floor's per connection (marginal, --mallinfo runs only). */
function liveAbove(meshlet, floor) {
  if (meshlet?.mallocUsedPerStream === undefined || floor?.mallocUsed === undefined) return undefined;
  const live = meshlet.heapPerStream + meshlet.mallocUsedPerStream + meshlet.mallocMmapPerStream;
  const floorLive = floor.heapUsed + floor.mallocUsed + floor.mallocMmap;
  return {
    liveBytesPerStream: live,
    floorLiveBytesPerConnection: floorLive,
    liveBytesAbove: live - floorLive,
  };
}

/** The bare node:http2 floor per connection at N (connection-floor.mjs, same server env and flags). */
async function measureFloor(opt, n) {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...serverExecArgv(opt), here("./connection-floor.mjs"), String(n), "stream"],
      { env: { ...process.env, ...serverEnv(opt) }, timeout: 300_000, maxBuffer: 1 << 20 },
      (err, stdout) => {
        try {
          resolve(JSON.parse(stdout));
        } catch {
          resolve({ connections: n, error: err ? err.message : "no JSON from connection-floor.mjs" });
        }
      },
    );
  });
}

async function main() {
  const opt = options();
  if (opt.mallinfo) opt.mallinfoAddon = buildMallinfo();
  const started = new Date();
  const runs = [];
  let skipped = [];
  for (const n of opt.streams) {
    for (const protocol of opt.protocols) {
      for (const mode of opt.modes) {
        for (const snapshots of opt.snapshots) {
          if (Date.now() > opt.deadline) {
            skipped.push({ protocol, mode, snapshots, streams: n, reason: "--max-minutes reached" });
            continue;
          }
          log(`running ${protocol} ${mode} ${snapshots} N=${n}`);
          runs.push(await runConfig(opt, protocol, mode, n, snapshots));
        }
      }
    }
  }
  // The floor beside the largest one-connection-per-stream run (issue 10: "measured the same way").
  const floors = [];
  const perStream = runs.filter((r) => !r.error && r.mode === "per-stream" && r.memory);
  if (opt.floor && perStream.length > 0) {
    const n = Math.max(...perStream.map((r) => r.streams));
    log(`measuring the bare node:http2 floor at N=${n}`);
    floors.push(await measureFloor(opt, n));
  }
  skipped = skipped.length ? skipped : undefined;
  const doc = {
    benchmark: "xds-fanout",
    startedAt: started.toISOString(),
    durationS: round((Date.now() - started.getTime()) / 1000),
    machine: {
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadavgAtEnd: os.loadavg().map((x) => round(x, 2)),
      totalMemMB: Math.round(os.totalmem() / 1048576),
      tcpMemLimitsPages: tcpMemLimits(),
    },
    options: { ...opt, deadline: undefined },
    runs,
    floors,
    skipped,
    goals: goals(runs, floors),
  };
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

main().then(
  () => {
    killChildren();
    process.exit(0);
  },
  (err) => {
    killChildren();
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
