// Per-proxy snapshots (--snapshots per-proxy): every proxy's snapshot is the shared content plus
// its own resources, and the build-cost measurement of issue 10 ("building N per-proxy snapshots
// ≤ 2× building one"). Used by server.mjs (inside the fan-out run) and build-cost.mjs (alone,
// e.g. under callgrind).
import { ResourcePool, Snapshot } from "@meshlet/xds";
import { buildInput, ownListeners, sidecarOwn } from "./snapshot.mjs";

const inputKeys = ["clusters", "endpoints", "listeners", "routes"];

/** Proxy `i`'s own resources, per input key: the sidecar's inbound side, or K listeners (fanout). */
export function ownOf(shape, ownCount, i) {
  return shape.kind === "sidecar" ? sidecarOwn(i) : { listeners: ownListeners(i, ownCount) };
}

/** Resources in an input (per-type arrays). */
export function countOf(input) {
  return inputKeys.reduce((a, k) => a + (input[k]?.length ?? 0), 0);
}

/**
 * The inputs of N proxies: each type's shared array, or, for a type the proxy has resources of
 * its own, the shared array followed by them. A combined array is built once per proxy and kept
 * until the shared array of its type changes (a control plane rebuilding a proxy keeps what did
 * not change, and the pool then finds the whole set by its array).
 */
export class PerProxyInputs {
  constructor(own) {
    this.own = own;
    this.combined = new Map(); // input key → { base: shared array, lists: per proxy }
  }

  get size() {
    return this.own.length;
  }

  input(shared, i) {
    const out = {};
    for (const key of inputKeys) {
      const own = this.own[i][key];
      if (!own) {
        out[key] = shared[key];
        continue;
      }
      let c = this.combined.get(key);
      if (!c || c.base !== shared[key]) {
        c = { base: shared[key], lists: [] };
        this.combined.set(key, c);
      }
      c.lists[i] ??= [...shared[key], ...own];
      out[key] = c.lists[i];
    }
    return out;
  }
}

/**
 * Builds proxies' snapshots, one of two ways (--per-proxy-build):
 * - "merge": `Snapshot.merge([shared, own])`, the shared snapshot built once per generation and
 *   each proxy's own snapshot once (after which the bench drops the proxy's own messages: the
 *   snapshot keeps their bytes, a control plane need not keep them);
 * - "arrays": `Snapshot.create` of each proxy's whole input, its per-type arrays the shared
 *   arrays with its own resources appended (PerProxyInputs); the own messages stay referenced.
 */
export class PerProxyBuilder {
  constructor(mode, own) {
    if (mode !== "merge" && mode !== "arrays") throw new Error(`unknown per-proxy build "${mode}"`);
    this.mode = mode;
    this.own = own;
    this.inputs = mode === "arrays" ? new PerProxyInputs(own) : undefined;
    this.ownSnapshots = [];
    this.sharedInput = undefined;
    this.sharedSnapshot = undefined;
  }

  get size() {
    return this.own.length;
  }

  /** What building needs ready before it is timed: the arrays mode's combined input arrays. */
  prepare(shared) {
    if (this.inputs) for (let i = 0; i < this.size; i++) this.inputs.input(shared, i);
  }

  /** Proxy i's snapshot for the shared input `shared`. */
  build(shared, i) {
    if (this.inputs) return Snapshot.create(this.inputs.input(shared, i));
    if (this.sharedInput !== shared) {
      this.sharedSnapshot = Snapshot.create(shared);
      this.sharedInput = shared;
    }
    let own = this.ownSnapshots[i];
    if (!own) {
      own = Snapshot.create(this.own[i]);
      this.ownSnapshots[i] = own;
      this.own[i] = undefined;
    }
    return Snapshot.merge([this.sharedSnapshot, own]);
  }
}

/** Wall and CPU time (process.cpuUsage: user + system, GC threads included) of `fn`. */
export function measure(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, ms, cpuMs: (c.user + c.system) / 1000 };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

const collect = async () => {
  for (let i = 0; i < 2; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** One proxy's whole input from fresh messages (proxy -1: a workload no other proxy has). */
export function oneInput(shape, ownCount, generation) {
  return new PerProxyInputs([ownOf(shape, ownCount, -1)]).input(buildInput(shape, generation), 0);
}

/**
 * Building one snapshot: `Snapshot.create` of one proxy's whole input (shared content and its own
 * resources) into a fresh pool, so every resource is encoded, hashed, checked against the field
 * rules and frozen.
 */
export function buildOneFrom(input) {
  return measure(() => Snapshot.create(input, { pool: new ResourcePool() }));
}

/** {@link buildOneFrom}: the median of `repeat` builds, each from new messages. */
export async function buildOne(shape, ownCount, generation, repeat = 5) {
  const runs = [];
  let resources = 0;
  for (let r = 0; r < repeat; r++) {
    const input = oneInput(shape, ownCount, generation);
    resources = countOf(input);
    await collect();
    runs.push(buildOneFrom(input));
  }
  return {
    ms: median(runs.map((r) => r.ms)),
    cpuMs: median(runs.map((r) => r.cpuMs)),
    cpuMsAll: runs.map((r) => r.cpuMs),
    resources,
  };
}

/**
 * The floor of building N per-proxy snapshots: N snapshots of each proxy's own resources alone
 * (copies with the same content as theirs), in a fresh pool, so each is encoded, hashed, checked
 * and frozen — work no sharing can save, since no two proxies have the same own resources.
 */
export function buildOwnOnlyFrom(own) {
  const pool = new ResourcePool();
  return measure(() => {
    for (const o of own) Snapshot.create(o, { pool });
  });
}

/** {@link buildOwnOnlyFrom} for the N proxies of a shape. */
export async function buildOwnOnly(shape, ownCount, n) {
  const own = Array.from({ length: n }, (_, i) => ownOf(shape, ownCount, i));
  await collect();
  return buildOwnOnlyFrom(own);
}
