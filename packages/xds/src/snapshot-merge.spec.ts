import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ResourcePool } from "./resource-pool.js";
import * as resources from "./resources/index.js";
import { diffSets } from "./server/set-diff.js";
import { Snapshot } from "./snapshot.js";
import { TypeUrl } from "./type-url.js";

const cluster = (name: string, ms = 1000) => resources.cluster({ name, connectTimeoutMs: ms });

describe("Snapshot.merge", () => {
  it("holds every resource of its parts, with the version one snapshot of them would have", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { minLength: 0, maxLength: 20 }),
        fc.integer({ min: 0, max: 20 }),
        (ids, cut) => {
          const pool = new ResourcePool();
          const all = ids.map((i) => cluster(`c${i}`, 1000 + i));
          const merged = Snapshot.merge(
            [
              Snapshot.create({ clusters: all.slice(0, cut) }, { pool }),
              Snapshot.create({ clusters: all.slice(cut) }, { pool }),
            ],
            { pool },
          );
          const one = Snapshot.create({ clusters: [...all].reverse() }, { pool: new ResourcePool() });
          expect(merged.version(TypeUrl.Cluster)).toBe(one.version(TypeUrl.Cluster));
          const set = merged.resources(TypeUrl.Cluster);
          expect(set.size).toBe(ids.length);
          expect([...set.keys()].sort()).toEqual(ids.map((i) => `c${i}`).sort());
          for (const i of ids) expect(set.get(`c${i}`)?.name).toBe(`c${i}`);
          expect(set.has("absent")).toBe(false);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("keeps the set (and explicit version) of a type only one part has", () => {
    const shared = Snapshot.create({
      clusters: [cluster("a")],
      endpoints: [resources.loadAssignment({ clusterName: "a", endpoints: [] })],
      versions: { [TypeUrl.ClusterLoadAssignment]: "eds-7" },
    });
    const own = Snapshot.create({
      clusters: [cluster("b")],
      listeners: [resources.listener({ name: "l", routeConfigName: "r" })],
    });
    const merged = Snapshot.merge([shared, own]);
    expect(merged.resourceSet(TypeUrl.ClusterLoadAssignment)).toBe(
      shared.resourceSet(TypeUrl.ClusterLoadAssignment),
    );
    expect(merged.version(TypeUrl.ClusterLoadAssignment)).toBe("eds-7");
    expect(merged.resourceSet(TypeUrl.Listener)).toBe(own.resourceSet(TypeUrl.Listener));
    expect(merged.typeUrls()).toEqual([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener]);
    expect(merged.get<Cluster>(TypeUrl.Cluster, "b")?.name).toBe("b");
  });

  it("refuses two parts with a resource of the same name and type", () => {
    const a = Snapshot.create({ clusters: [cluster("x"), cluster("y")] });
    const b = Snapshot.create({ clusters: [cluster("y", 2000)] });
    expect(() => Snapshot.merge([a, b])).toThrow(/named "y" in the snapshots merged/);
  });

  it("gives proxies with the same content the same set, and their shared part's diff after a shared change", () => {
    const pool = new ResourcePool();
    const shared1 = Snapshot.create({ clusters: [cluster("s1"), cluster("s2")] }, { pool });
    const shared2 = Snapshot.create({ clusters: [cluster("s1"), cluster("s2", 2000)] }, { pool });
    const ownA = Snapshot.create({ clusters: [cluster("inbound|8080||", 10)] }, { pool });
    const ownB = Snapshot.create({ clusters: [cluster("inbound|8080||", 20)] }, { pool });
    const a1 = Snapshot.merge([shared1, ownA], { pool }).resourceSet(TypeUrl.Cluster);
    const b1 = Snapshot.merge([shared1, ownB], { pool }).resourceSet(TypeUrl.Cluster);
    // A replica of proxy A (same own content, other message objects) gets the very same set.
    const ownA2 = Snapshot.create({ clusters: [cluster("inbound|8080||", 10)] }, { pool });
    expect(Snapshot.merge([shared1, ownA2], { pool }).resourceSet(TypeUrl.Cluster)).toBe(a1);
    const a2 = Snapshot.merge([shared2, ownA], { pool }).resourceSet(TypeUrl.Cluster);
    const b2 = Snapshot.merge([shared2, ownB], { pool }).resourceSet(TypeUrl.Cluster);
    const dA = diffSets(a1, a2);
    expect(dA.changed.map((r) => r.name)).toEqual(["s2"]);
    expect(dA.removed).toEqual([]);
    // Both proxies get one diff object: the shared part's, computed once.
    expect(diffSets(b1, b2)).toBe(dA);
    expect(dA).toBe(diffSets(shared1.resourceSet(TypeUrl.Cluster), shared2.resourceSet(TypeUrl.Cluster)));
  });

  it("diffs unions whose own part changed against that part", () => {
    const pool = new ResourcePool();
    const shared = Snapshot.create({ clusters: [cluster("s")] }, { pool });
    const before = Snapshot.create({ clusters: [cluster("own-1"), cluster("own-2")] }, { pool });
    const after = Snapshot.create({ clusters: [cluster("own-1", 5)] }, { pool });
    const d = diffSets(
      Snapshot.merge([shared, before], { pool }).resourceSet(TypeUrl.Cluster),
      Snapshot.merge([shared, after], { pool }).resourceSet(TypeUrl.Cluster),
    );
    expect(d.changed.map((r) => r.name)).toEqual(["own-1"]);
    expect(d.removed).toEqual(["own-2"]);
  });
});
