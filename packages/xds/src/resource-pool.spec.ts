import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { toBinary } from "@bufbuild/protobuf";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ResourcePool } from "./resource-pool.js";
import * as resources from "./resources/index.js";
import { Snapshot } from "./snapshot.js";
import { TypeUrl } from "./type-url.js";

/** A full garbage collection (V8's gc(), exposed for this test). */
async function collectGarbage(): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  // A WeakRef target stays alive until the end of the job that created or read it.
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 0));
    gc();
  }
}

const clusters = (n: number, tag = "") =>
  Array.from({ length: n }, (_, i) => resources.cluster({ name: `c${i}${tag}`, connectTimeoutMs: 1000 + i }));

describe("ResourcePool", () => {
  it("builds a snapshot from messages seen before with no encode, and shares their resources", () => {
    const pool = new ResourcePool();
    const shared = clusters(50);
    const first = Snapshot.create({ clusters: shared }, { pool });
    expect(pool.stats.encodes).toBe(50);
    // A per-proxy snapshot: the 50 shared messages (in a new array) and one of its own.
    const own = resources.cluster({ name: "own", connectTimeoutMs: 7 });
    const second = Snapshot.create({ clusters: [...shared, own] }, { pool });
    expect(pool.stats.encodes).toBe(51);
    expect(pool.stats.identityHits).toBe(50);
    expect(second.resources(TypeUrl.Cluster).get("c7")).toBe(first.resources(TypeUrl.Cluster).get("c7"));
    // The same array again: found as a whole, not element by element.
    const hitsBefore = pool.stats.identityHits;
    const third = Snapshot.create({ clusters: shared }, { pool });
    expect(pool.stats.identityHits).toBe(hitsBefore);
    expect(pool.stats.setInputHits).toBe(1);
    expect(third.resourceSet(TypeUrl.Cluster)).toBe(first.resourceSet(TypeUrl.Cluster));
  });

  it("shares one resource between equal messages and one set between equal contents", () => {
    const pool = new ResourcePool();
    const a = Snapshot.create({ clusters: clusters(5) }, { pool });
    // New message objects with the same content, in another order: encoded, then found by content.
    const b = Snapshot.create({ clusters: clusters(5).reverse() }, { pool });
    expect(pool.stats.contentHits).toBe(5);
    expect(b.resources(TypeUrl.Cluster).get("c3")).toBe(a.resources(TypeUrl.Cluster).get("c3"));
    expect(b.resourceSet(TypeUrl.Cluster)).toBe(a.resourceSet(TypeUrl.Cluster));
    expect(pool.stats.setContentHits).toBe(1);
  });

  it("gives equal contents equal versions in any order, and different contents different ones", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 0, maxLength: 12 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 0, maxLength: 12 }),
        (xs, ys) => {
          const make = (ids: number[]) =>
            Snapshot.create(
              { clusters: ids.map((i) => resources.cluster({ name: `c${i}` })) },
              { pool: new ResourcePool() },
            ).version(TypeUrl.Cluster);
          const same = [...xs].sort().join() === [...ys].sort().join();
          expect(make(xs) === make([...ys].reverse())).toBe(same);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("freezes the messages it holds, so a mutation cannot leave stale bytes behind", () => {
    const pool = new ResourcePool();
    const c = resources.cluster({ name: "frozen", connectTimeoutMs: 1000 });
    Snapshot.create({ clusters: [c] }, { pool });
    expect(() => {
      (c as { name: string }).name = "renamed";
    }).toThrow(TypeError);
    expect(() => {
      if (c.connectTimeout) c.connectTimeout.seconds = 9n;
    }).toThrow(TypeError);
  });

  it("keeps resources and sets with a TTL apart from the same message without one", () => {
    const pool = new ResourcePool();
    const c = resources.cluster({ name: "ttl" });
    const plain = Snapshot.create({ clusters: [c] }, { pool })
      .resources(TypeUrl.Cluster)
      .get("ttl");
    const withTtl = Snapshot.create({ clusters: [resources.withTtl(c, 5000)] }, { pool })
      .resources(TypeUrl.Cluster)
      .get("ttl");
    expect(withTtl?.ttlMs).toBe(5000);
    expect(plain?.ttlMs).toBeUndefined();
    expect(withTtl?.version).not.toBe(plain?.version);
  });

  it("honours explicit versions without mixing them into content-shared sets", () => {
    const pool = new ResourcePool();
    const list = clusters(2);
    const v1 = Snapshot.create({ clusters: list, versions: { [TypeUrl.Cluster]: "v1" } }, { pool });
    const v2 = Snapshot.create({ clusters: list, versions: { [TypeUrl.Cluster]: "v2" } }, { pool });
    const hashed = Snapshot.create({ clusters: list }, { pool });
    expect([v1, v2, hashed].map((s) => s.version(TypeUrl.Cluster)).slice(0, 2)).toEqual(["v1", "v2"]);
    expect(hashed.version(TypeUrl.Cluster)).not.toMatch(/^v\d$/);
  });

  it("keeps a resource's bytes, not its message: once dropped, an equal frozen message is decoded", async () => {
    const pool = new ResourcePool();
    let input: ReturnType<typeof clusters> | undefined = clusters(1, "-weak");
    const expected = toBinary(ClusterSchema, input[0]!);
    const snapshot = Snapshot.create({ clusters: input }, { pool });
    const held = new WeakRef(input[0]!);
    expect(snapshot.get(TypeUrl.Cluster, "c0-weak")).toBe(input[0]);
    input = undefined;
    await collectGarbage();
    expect(held.deref()).toBeUndefined();
    const decoded = snapshot.get(TypeUrl.Cluster, "c0-weak");
    expect(decoded?.$typeName).toBe("envoy.config.cluster.v3.Cluster");
    expect(toBinary(ClusterSchema, decoded as never)).toEqual(expected);
    expect(Object.isFrozen(decoded)).toBe(true);
    // The decoded copy is kept while used: asked again, the same object.
    expect(snapshot.get(TypeUrl.Cluster, "c0-weak")).toBe(decoded);
  });

  it("forgets resources and sets no snapshot uses any more", async () => {
    const pool = new ResourcePool();
    let snapshot: Snapshot | undefined = Snapshot.create({ clusters: clusters(100, "-gone") }, { pool });
    expect(snapshot.resources(TypeUrl.Cluster).size).toBe(100);
    snapshot = undefined;
    await collectGarbage();
    // Dead entries are swept when a table grows: one more set of 100 sweeps the old ones.
    Snapshot.create({ clusters: clusters(100, "-new") }, { pool });
    expect(pool.size.resources).toBeLessThanOrEqual(100 + 64);
  });
});
