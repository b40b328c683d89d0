#!/usr/bin/env node
// bench/config-ingest: how fast @meshlet/config turns files into validated snapshots.
// Prints one JSON document:
// - load: time and memory to load + validate + analyze N resources (default 10,000) from files,
//   through ConfigStore + FileSource (first snapshot) and through validateFiles (`meshlet validate`)
// - edit: time from one file edit (atomic rename) to the snapshot that contains it
// - burst: snapshots emitted for a burst of 1,000 edits (files on disk, and in-memory)
// Usage: npm run build -w @meshlet/config && node bench/config-ingest/run.mjs [--quick]
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ConfigStore, FileSource, MemorySource, validateFiles } from "@meshlet/config";

const quick = process.argv.includes("--quick");
const RESOURCES = quick ? 2_000 : 10_000;
const PER_FILE = 50;
const EDITS = quick ? 5 : 20;
const BURST = 1_000;
const DEBOUNCE_MS = 100;
const SETTLE_MS = 50;

// A forced GC before each memory reading, also when bench/run.mjs starts us without --expose-gc.
setFlagsFromString("--expose-gc");
const gc = globalThis.gc ?? runInNewContext("gc");
const mb = (bytes) => Math.round((bytes / 2 ** 20) * 10) / 10;
const ms = (x) => Math.round(x * 10) / 10;

function resource(i, rev = 0) {
  // Each group of five (VirtualService, its DestinationRule, …) shares a namespace.
  const ns = `ns-${Math.floor(i / 5) % 20}`;
  switch (i % 5) {
    case 0:
      return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${i}, namespace: ${ns}}
spec:
  hosts: [svc-${i}]
  http:
  - match: [{uri: {prefix: /v${rev}}}]
    route: [{destination: {host: svc-${i}, subset: v1}, weight: 90}, {destination: {host: svc-${i}, subset: v2}, weight: 10}]
    timeout: 5s
`;
    case 1:
      return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-${i - 1}, namespace: ${ns}}
spec:
  host: svc-${i - 1}
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`;
    case 2:
      return `apiVersion: v1
kind: Service
metadata: {name: svc-${i}, namespace: ${ns}, labels: {app: svc-${i}}}
spec:
  selector: {app: svc-${i}}
  ports: [{name: http, port: 8080, targetPort: 8080}]
`;
    case 3:
      return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: policy-${i}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: svc-${i}}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["cluster.local/ns/${ns}/sa/client"]}}], to: [{operation: {methods: [GET]}}]}]
`;
    default:
      return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext-${i}, namespace: ${ns}}
spec:
  hosts: [api-${i}.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: DNS
`;
  }
}

function fileText(fileIndex, rev = 0) {
  const docs = [];
  for (let j = 0; j < PER_FILE; j++) docs.push(resource(fileIndex * PER_FILE + j, j === 0 ? rev : 0));
  return docs.join("---\n");
}

async function atomicWrite(path, text) {
  const tmp = `${path}.tmp-${process.hrtime.bigint()}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

const dir = await mkdtemp(join(tmpdir(), "meshlet-bench-config-"));
const files = RESOURCES / PER_FILE;
try {
  for (let f = 0; f < files; f++)
    await writeFile(join(dir, `f-${String(f).padStart(4, "0")}.yaml`), fileText(f));

  // 1. `meshlet validate` path: read, parse, validate, analyze once.
  gc();
  let t0 = performance.now();
  const checked = await validateFiles([dir]);
  const validateMs = performance.now() - t0;
  if (checked.diagnostics.length > 0)
    throw new Error(`bench config is not clean: ${JSON.stringify(checked.diagnostics[0])}`);

  // 2. ConfigStore + watched FileSource: until the first snapshot.
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  t0 = performance.now();
  const store = new ConfigStore({
    sources: [new FileSource({ paths: [dir], settleMs: SETTLE_MS })],
    debounceMs: DEBOUNCE_MS,
  }).start();
  const first = await store.synced();
  const loadMs = performance.now() - t0;
  gc();
  const memory = process.memoryUsage();
  if (first.size !== RESOURCES) throw new Error(`expected ${RESOURCES} resources, got ${first.size}`);

  // 3. One edit → new snapshot, repeated.
  const latencies = [];
  for (let e = 1; e <= EDITS; e++) {
    const f = e % files;
    const name = `svc-${f * PER_FILE}`;
    const ns = `ns-${Math.floor((f * PER_FILE) / 5) % 20}`;
    const started = performance.now();
    const next = store.waitFor(
      (s) => s.get("VirtualService", ns, name)?.spec.http?.[0]?.match?.[0]?.uri?.prefix === `/v${e}`,
    );
    await atomicWrite(join(dir, `f-${String(f).padStart(4, "0")}.yaml`), fileText(f, e));
    await next;
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);

  // 4. Burst of 1,000 file edits (atomic renames across all files, as fast as the disk takes them).
  let snapshots = 0;
  const counter = store.snapshots$.subscribe(() => snapshots++);
  snapshots = 0; // the replayed current snapshot is not part of the burst
  const burstStart = performance.now();
  const target = BURST + 1000;
  for (let e = 1001; e <= target; e++) {
    const f = e % files;
    await atomicWrite(join(dir, `f-${String(f).padStart(4, "0")}.yaml`), fileText(f, e));
  }
  const writeMs = performance.now() - burstStart;
  const lastFile = target % files;
  await store.waitFor(
    (s) =>
      s.get(
        "VirtualService",
        `ns-${Math.floor((lastFile * PER_FILE) / 5) % 20}`,
        `svc-${lastFile * PER_FILE}`,
      )?.spec.http?.[0]?.match?.[0]?.uri?.prefix === `/v${target}`,
  );
  const burstSettledMs = performance.now() - burstStart;
  counter.unsubscribe();
  const fileBurstSnapshots = snapshots;
  store.close();

  // 5. Burst of 1,000 in-memory changes (the store's coalescing alone, no filesystem).
  const memory$ = new MemorySource();
  const memStore = new ConfigStore({ sources: [memory$], debounceMs: DEBOUNCE_MS }).start();
  await memStore.synced();
  let memSnapshots = 0;
  const memCounter = memStore.snapshots$.subscribe(() => memSnapshots++);
  memSnapshots = 0;
  for (let e = 0; e < BURST; e++) {
    memory$.set({
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: `vs-${e % 100}`, namespace: "default" },
      spec: { hosts: [`h-${e}`], http: [{ route: [{ destination: { host: `h-${e}` } }] }] },
    });
  }
  await memStore.waitFor(
    (s) => s.get("VirtualService", "default", "vs-99")?.spec.hosts?.[0] === `h-${BURST - 1}`,
  );
  memCounter.unsubscribe();
  memStore.close();

  process.stdout.write(
    `${JSON.stringify(
      {
        node: process.version,
        resources: RESOURCES,
        files,
        load: {
          validateFilesMs: ms(validateMs),
          storeFirstSnapshotMs: ms(loadMs),
          heapUsedMB: mb(memory.heapUsed - heapBefore),
          rssMB: mb(memory.rss),
        },
        edit: {
          settleMs: SETTLE_MS,
          debounceMs: DEBOUNCE_MS,
          samples: latencies.length,
          p50Ms: ms(latencies[Math.floor(latencies.length / 2)]),
          maxMs: ms(latencies.at(-1)),
          minMs: ms(latencies[0]),
        },
        burst: {
          edits: BURST,
          fileSnapshots: fileBurstSnapshots,
          fileWriteMs: ms(writeMs),
          fileSettledMs: ms(burstSettledMs),
          memorySnapshots: memSnapshots,
        },
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
