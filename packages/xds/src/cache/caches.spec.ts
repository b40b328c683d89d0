import { create } from "@bufbuild/protobuf";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { digestCounter } from "../hash.js";
import { ResourcePool } from "../resource-pool.js";
import * as resources from "../resources/index.js";
import { type ResourceSet, Snapshot } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { LinearCache } from "./linear-cache.js";
import { MuxCache } from "./mux-cache.js";
import { SnapshotCache } from "./snapshot-cache.js";

const node = (id: string, cluster = "") => create(NodeSchema, { id, cluster });

function collect(
  cache: { watch(n: ReturnType<typeof node>, t: string): import("rxjs").Observable<ResourceSet> },
  n: ReturnType<typeof node>,
  typeUrl: string,
) {
  const seen: ResourceSet[] = [];
  const sub = cache.watch(n, typeUrl).subscribe((s) => seen.push(s));
  return { seen, stop: () => sub.unsubscribe() };
}

describe("SnapshotCache", () => {
  it("notifies a watch only when its node's snapshot changes that type", () => {
    const cache = new SnapshotCache();
    const cds = collect(cache, node("a"), TypeUrl.Cluster);
    const other = collect(cache, node("b"), TypeUrl.Cluster);
    cache.setSnapshot("a", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    // Only endpoints change: the CDS watch stays quiet.
    cache.setSnapshot(
      "a",
      Snapshot.create({
        clusters: [resources.cluster({ name: "c1" })],
        endpoints: [resources.loadAssignment({ clusterName: "c1", endpoints: [] })],
      }),
    );
    cache.setSnapshot("a", Snapshot.create({ clusters: [resources.cluster({ name: "c2" })] }));
    expect(cds.seen.map((s) => [...s.resources.keys()])).toEqual([["c1"], ["c2"]]);
    expect(other.seen).toHaveLength(0);
  });

  it("groups nodes by nodeKey", () => {
    const cache = new SnapshotCache({ nodeKey: (n) => n.cluster });
    cache.setSnapshot("frontend", Snapshot.create({ clusters: [resources.cluster({ name: "fe" })] }));
    const a = collect(cache, node("pod-1", "frontend"), TypeUrl.Cluster);
    const b = collect(cache, node("pod-2", "frontend"), TypeUrl.Cluster);
    expect(a.seen[0]?.version).toBe(b.seen[0]?.version);
    expect(cache.nodeKey(node("x", "frontend"))).toBe("frontend");
  });

  it("clearSnapshot removes the snapshot and its status but keeps watches usable", () => {
    const cache = new SnapshotCache();
    const w = collect(cache, node("a"), TypeUrl.Cluster);
    cache.setSnapshot("a", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    cache.record({
      type: "stream-open",
      streamId: 1,
      protocol: "sotw",
      node: node("a"),
      service: "ads",
      peer: "p",
    });
    expect(cache.status("a")?.streams).toBe(1);
    cache.clearSnapshot("a");
    expect(cache.getSnapshot("a")).toBeUndefined();
    expect(cache.status("a")).toBeUndefined();
    expect(cache.keys()).toEqual([]);
    cache.setSnapshot("a", Snapshot.create({ clusters: [resources.cluster({ name: "c2" })] }));
    expect(w.seen.map((s) => [...s.resources.keys()])).toEqual([["c1"], ["c2"]]);
  });
});

describe("SnapshotCache.status", () => {
  const base = { streamId: 1, protocol: "delta" as const, node: node("a"), nonce: "1" };

  it("shows the fields a type has, and a NACK until the next ACK", () => {
    const cache = new SnapshotCache();
    cache.record({ ...base, type: "stream-open", service: "ads", peer: "p" });
    cache.record({ ...base, type: "ack", typeUrl: TypeUrl.Cluster, version: "v0" });
    expect(cache.status("a")?.types[TypeUrl.Cluster]).toStrictEqual({ responses: 0, ackedVersion: "v0" });
    const response = {
      ...base,
      type: "response" as const,
      typeUrl: TypeUrl.Cluster,
      version: "v1",
      resources: ["c1"],
      removed: [],
      heartbeat: false,
      bytes: 10,
    };
    cache.record(response);
    cache.record({
      ...base,
      type: "nack",
      typeUrl: TypeUrl.Cluster,
      version: "v0",
      rejectedVersion: "v1",
      errorDetail: { code: 3, message: "bad" },
    });
    const nacked = cache.status("a")?.types[TypeUrl.Cluster];
    expect(nacked).toMatchObject({ responses: 1, sentVersion: "v1", ackedVersion: "v0" });
    expect(nacked?.nack).toMatchObject({ version: "v0", rejectedVersion: "v1", message: "bad", code: 3 });
    cache.record({ ...response, version: "v2" });
    cache.record({ ...base, type: "ack", typeUrl: TypeUrl.Cluster, version: "v2" });
    expect(cache.status("a")?.types[TypeUrl.Cluster]).toStrictEqual({
      responses: 2,
      sentVersion: "v2",
      ackedVersion: "v2",
    });
    expect(cache.status("a")?.lastRequestAt).toBeUndefined();
  });

  it("dates the last request with the injected clock", () => {
    let now = new Date("2026-01-02T03:04:05.678Z");
    const cache = new SnapshotCache({ now: () => now });
    const request = {
      ...base,
      type: "request" as const,
      typeUrl: TypeUrl.Cluster,
      versionInfo: "",
      responseNonce: "",
      resourceNames: [],
      unsubscribe: [],
      stale: false,
    };
    cache.record({ ...base, type: "stream-open", service: "ads", peer: "p" });
    cache.record(request);
    expect(cache.status("a")?.lastRequestAt).toEqual(new Date("2026-01-02T03:04:05.678Z"));
    now = new Date(0);
    cache.record(request);
    expect(cache.status("a")?.lastRequestAt).toEqual(new Date(0));
  });

  it("keeps a client's type URL as its own entry, even one named like an Object property", () => {
    // Type URLs come from clients; "__proto__" or "constructor" must neither reach Object's
    // prototype nor read a property every object inherits.
    const cache = new SnapshotCache();
    cache.record({ ...base, type: "stream-open", service: "ads", peer: "p" });
    for (const typeUrl of ["__proto__", "constructor", "toString"]) {
      cache.record({
        ...base,
        type: "response",
        typeUrl,
        version: "v1",
        resources: [],
        removed: [],
        heartbeat: false,
        bytes: 0,
      });
    }
    const types = cache.status("a")?.types ?? {};
    expect(Object.keys(types)).toEqual(["__proto__", "constructor", "toString"]);
    for (const typeUrl of Object.keys(types))
      expect(Object.getOwnPropertyDescriptor(types, typeUrl)?.value).toStrictEqual({
        responses: 1,
        sentVersion: "v1",
      });
    expect(({} as Record<string, unknown>).sentVersion).toBeUndefined();
    expect(Object.getPrototypeOf(types)).toBe(Object.prototype);
  });

  it("keeps such type URLs as own entries through a MuxCache, whose status merges its caches'", () => {
    const mux = new MuxCache({
      caches: { [TypeUrl.Cluster]: new SnapshotCache() },
      fallback: new SnapshotCache(),
    });
    mux.record({ ...base, type: "stream-open", service: "ads", peer: "p" });
    for (const typeUrl of [TypeUrl.Cluster, "__proto__", "constructor"]) {
      mux.record({
        ...base,
        type: "response",
        typeUrl,
        version: "v1",
        resources: [],
        removed: [],
        heartbeat: false,
        bytes: 0,
      });
    }
    const types = mux.status("a")?.types ?? {};
    expect(Object.getPrototypeOf(types)).toBe(Object.prototype);
    expect(Object.keys(types).sort()).toEqual(["__proto__", "constructor", TypeUrl.Cluster].sort());
    expect(Object.getOwnPropertyDescriptor(types, "__proto__")?.value).toStrictEqual({
      responses: 1,
      sentVersion: "v1",
    });
  });
});

describe("SnapshotCache watchers", () => {
  it("tells each remaining watcher of a key, and forgets a key once unwatched and cleared", () => {
    const cache = new SnapshotCache({ nodeKey: (n) => n.cluster });
    const one = collect(cache, node("pod-1", "svc"), TypeUrl.Cluster);
    const two = collect(cache, node("pod-2", "svc"), TypeUrl.Cluster);
    const lds = collect(cache, node("pod-1", "svc"), TypeUrl.Listener);
    // A watcher that unsubscribes another while it is told does not make anyone miss the change.
    const stopper = cache.watch(node("pod-3", "svc"), TypeUrl.Cluster).subscribe(() => one.stop());
    cache.setSnapshot("svc", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    expect(one.seen).toHaveLength(1);
    expect(two.seen).toHaveLength(1);
    stopper.unsubscribe();
    cache.setSnapshot("svc", Snapshot.create({ clusters: [resources.cluster({ name: "c2" })] }));
    expect(one.seen).toHaveLength(1);
    expect(two.seen.map((s) => [...s.resources.keys()])).toEqual([["c1"], ["c2"]]);
    // Listeners were empty in both snapshots: the same (empty) version, told once at the start.
    expect(lds.seen).toHaveLength(1);
    two.stop();
    lds.stop();
    cache.clearSnapshot("svc");
    expect(cache.keys()).toEqual([]);
    const late = collect(cache, node("pod-4", "svc"), TypeUrl.Cluster);
    expect(late.seen).toHaveLength(0);
    cache.setSnapshot("svc", Snapshot.create({ clusters: [resources.cluster({ name: "c3" })] }));
    expect(late.seen.map((s) => [...s.resources.keys()])).toEqual([["c3"]]);
  });
});

describe("LinearCache", () => {
  it("versions each resource by content and the set by its members", () => {
    const cache = new LinearCache(TypeUrl.ClusterLoadAssignment);
    const w = collect(cache, node("any"), TypeUrl.ClusterLoadAssignment);
    cache.update(
      resources.loadAssignment({ clusterName: "a", endpoints: [{ address: "10.0.0.1", port: 80 }] }),
    );
    cache.update(resources.loadAssignment({ clusterName: "b", endpoints: [] }));
    const aVersion = cache.current.resources.get("a")?.version;
    // Same content again: no new version, no emission.
    cache.update(
      resources.loadAssignment({ clusterName: "a", endpoints: [{ address: "10.0.0.1", port: 80 }] }),
    );
    cache.delete("b", "never-existed");
    cache.delete("never-existed");
    expect(w.seen.map((s) => [...s.resources.keys()].sort())).toEqual([[], ["a"], ["a", "b"], ["a"]]);
    expect(cache.current.resources.get("a")?.version).toBe(aVersion);
    cache.set([resources.loadAssignment({ clusterName: "z", endpoints: [] })]);
    expect([...cache.current.resources.keys()]).toEqual(["z"]);
  });

  it("serves only its own type and rejects messages of another type", () => {
    const cache = new LinearCache(TypeUrl.Secret);
    const w = collect(cache, node("any"), TypeUrl.Cluster);
    expect(w.seen).toHaveLength(0);
    expect(() => cache.update(resources.cluster({ name: "c" }))).toThrow(
      /where envoy.extensions.transport_sockets.tls.v3.Secret/,
    );
  });
});

describe("LinearCache.update(upserts, deletes)", () => {
  const cla = (name: string, port = 80) =>
    resources.loadAssignment({ clusterName: name, endpoints: [{ address: "10.0.0.1", port }] });

  it("applies upserts and deletes in one step with one notification", () => {
    const cache = new LinearCache(TypeUrl.ClusterLoadAssignment, { pool: new ResourcePool() });
    cache.update([cla("a"), cla("b"), cla("c")]);
    const w = collect(cache, node("n"), TypeUrl.ClusterLoadAssignment);
    cache.update([cla("a", 81), cla("d")], ["b", "c", "unknown"]);
    expect(w.seen.map((s) => [...s.resources.keys()].sort())).toEqual([
      ["a", "b", "c"],
      ["a", "d"],
    ]);
    // Nothing changes: no notification.
    cache.update([cla("a", 81)], ["never-there"]);
    expect(w.seen).toHaveLength(2);
  });

  it("hashes only the resources that changed", () => {
    const pool = new ResourcePool();
    const cache = new LinearCache(TypeUrl.ClusterLoadAssignment, { pool });
    cache.update(Array.from({ length: 200 }, (_, i) => cla(`c${i}`)));
    const digests = digestCounter.computed;
    const encodes = pool.stats.encodes;
    cache.update([cla("c1", 99)], ["c2"]);
    // c1's new content is encoded and digested; c2 leaves; nothing else is touched.
    expect(digestCounter.computed - digests).toBe(1);
    expect(pool.stats.encodes - encodes).toBe(1);
    expect(cache.current.version).toBe(
      Snapshot.create(
        { endpoints: [...cache.current.resources.values()].map((r) => r.message as ClusterLoadAssignment) },
        { pool: new ResourcePool() },
      ).version(TypeUrl.ClusterLoadAssignment),
    );
  });

  it("refuses the whole update when one upsert is bad, leaving the cache as it was", () => {
    const cache = new LinearCache(TypeUrl.ClusterLoadAssignment, { pool: new ResourcePool() });
    cache.update([cla("a")]);
    const before = cache.current;
    expect(() => cache.update([cla("b"), resources.cluster({ name: "wrong-type" })], ["a"])).toThrow(
      /where envoy.config.endpoint.v3.ClusterLoadAssignment/,
    );
    expect(cache.current).toBe(before);
  });

  it("has the version a snapshot of the same content has, after any sequence of updates", () => {
    const pool = new ResourcePool();
    const op = fc.record({
      upserts: fc.array(
        fc.record({ n: fc.integer({ min: 0, max: 9 }), port: fc.integer({ min: 1, max: 3 }) }),
      ),
      deletes: fc.array(fc.integer({ min: 0, max: 9 }).map((n) => `c${n}`)),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 8 }), (ops) => {
        const cache = new LinearCache(TypeUrl.ClusterLoadAssignment, { pool });
        const model = new Map<string, number>();
        for (const { upserts, deletes } of ops) {
          cache.update(
            upserts.map((u) => cla(`c${u.n}`, u.port)),
            deletes,
          );
          for (const u of upserts) model.set(`c${u.n}`, u.port);
          for (const d of deletes) model.delete(d);
        }
        const expected = Snapshot.create(
          { endpoints: [...model].map(([name, port]) => cla(name, port)) },
          { pool: new ResourcePool() },
        );
        expect([...cache.current.resources.keys()].sort()).toEqual([...model.keys()].sort());
        expect(cache.current.version).toBe(expected.version(TypeUrl.ClusterLoadAssignment));
      }),
      { numRuns: 80 },
    );
  });
});

describe("MuxCache", () => {
  it("routes each type to its cache", () => {
    const snapshots = new SnapshotCache();
    snapshots.setSnapshot("a", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    const endpoints = new LinearCache(TypeUrl.ClusterLoadAssignment);
    endpoints.update(resources.loadAssignment({ clusterName: "c1", endpoints: [] }));
    const mux = new MuxCache({ caches: { [TypeUrl.ClusterLoadAssignment]: endpoints }, fallback: snapshots });
    expect([...(collect(mux, node("a"), TypeUrl.Cluster).seen[0]?.resources.keys() ?? [])]).toEqual(["c1"]);
    expect(collect(mux, node("a"), TypeUrl.ClusterLoadAssignment).seen[0]?.version).toBe(
      endpoints.current.version,
    );
    expect(mux.cacheFor(TypeUrl.Secret)).toBe(snapshots);
  });
});
