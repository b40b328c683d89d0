import { createHash } from "node:crypto";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LinearCache } from "./cache/linear-cache.js";
import { setVersion, sortedByDigest } from "./hash.js";
import { ResourcePool } from "./resource-pool.js";
import * as resources from "./resources/index.js";
import { Snapshot } from "./snapshot.js";
import { TypeUrl } from "./type-url.js";

// Two sets of 64 clusters each ("p<i>-<j>" and "n<64+i>-<j>", connect timeout 1 s) whose
// additive set versions, the lane-wise sum mod 2^32 of SHA-256(name NUL version)'s first four
// 32-bit lanes, are equal: found with Wagner's generalized-birthday k-tree in about 2^23 hashes
// (test/support/lane-sum-collision.mjs). The j of each list, in list order.
const P = [
  449, 21156, 25736, 78892, 12493, 61014, 42694, 65587, 2266, 78075, 45098, 47606, 54466, 48493, 23739, 6498,
  12105, 28160, 71392, 45402, 44236, 37183, 68682, 32434, 26865, 35055, 60235, 58175, 35499, 17103, 46574,
  21218, 6917, 73292, 13637, 4483, 19387, 15185, 33516, 1646, 1243, 73737, 38693, 33663, 30618, 30519, 57192,
  43663, 1365, 61020, 70639, 710, 32941, 71300, 23537, 35623, 19719, 14516, 29105, 42799, 12885, 81725, 35096,
  78959,
];
const N = [
  3649, 42671, 2040, 14730, 7308, 6119, 43743, 44217, 20808, 31403, 43700, 58618, 22558, 74469, 76886, 45575,
  9346, 68453, 502, 50203, 26022, 12830, 32838, 6906, 23696, 4589, 37690, 36389, 29307, 40901, 67952, 22041,
  5799, 52072, 23860, 66813, 17670, 13477, 9256, 14967, 2270, 78715, 71900, 59326, 40925, 11178, 29083, 69664,
  10020, 74021, 57585, 67152, 64798, 8703, 14165, 33928, 20617, 5659, 28224, 34920, 30478, 13586, 22490,
  29076,
];
const clusters = (prefix: string, offset: number, js: readonly number[]) =>
  js.map((j, i) => resources.cluster({ name: `${prefix}${offset + i}-${j}`, connectTimeoutMs: 1000 }));

/** The old construction, written out here: lane-wise sums of the members' 128-bit digests. */
function laneSum(set: ReadonlyMap<string, { name: string; version: string }>): number[] {
  const sum = [0, 0, 0, 0];
  for (const r of set.values()) {
    const d = createHash("sha256").update(`${r.name}\u0000${r.version}`).digest();
    for (let k = 0; k < 4; k++) sum[k] = (sum[k]! + d.readUInt32LE(4 * k)) >>> 0;
  }
  return sum;
}

describe("set versions", () => {
  it("differ for two sets whose additive (lane-sum) hashes collide (generalized birthday)", () => {
    const pool = new ResourcePool();
    const a = Snapshot.create({ clusters: clusters("p", 0, P) }, { pool });
    const b = Snapshot.create({ clusters: clusters("n", 64, N) }, { pool });
    const setB = b.resources(TypeUrl.Cluster);
    // Each snapshot holds its own clusters (an additive key interned b's set as a's)…
    expect(setB.size).toBe(64);
    expect([...setB.keys()].every((name) => name.startsWith("n"))).toBe(true);
    // …the two really collide under the lane sum…
    expect(laneSum(setB)).toEqual(laneSum(a.resources(TypeUrl.Cluster)));
    // …and their versions differ, so a client holding one is sent the other.
    expect(b.version(TypeUrl.Cluster)).not.toBe(a.version(TypeUrl.Cluster));
    // The same holds for a union (Snapshot.merge) of the two halves of each.
    const halves = (s: Snapshot) => {
      const list = [...s.resources(TypeUrl.Cluster).values()].map((r) => r.message as Cluster);
      return Snapshot.merge(
        [
          Snapshot.create({ clusters: list.slice(0, 32) }, { pool }),
          Snapshot.create({ clusters: list.slice(32) }, { pool }),
        ],
        { pool },
      );
    };
    expect(halves(a).version(TypeUrl.Cluster)).toBe(a.version(TypeUrl.Cluster));
    expect(halves(b).version(TypeUrl.Cluster)).toBe(b.version(TypeUrl.Cluster));
  });

  it("are equal for the same set in any order and any pool", () => {
    const pool = new ResourcePool();
    const list = clusters("p", 0, P.slice(0, 10));
    const v = Snapshot.create({ clusters: list }, { pool }).version(TypeUrl.Cluster);
    expect(
      Snapshot.create({ clusters: [...list].reverse() }, { pool: new ResourcePool() }).version(
        TypeUrl.Cluster,
      ),
    ).toBe(v);
  });

  it("cover each member's name: the same versions under swapped names give another version", () => {
    const [a, b] = ["AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"];
    const version = (members: { name: string; version: string }[]) => setVersion([sortedByDigest(members)]);
    expect(
      version([
        { name: "c1", version: a },
        { name: "c2", version: b },
      ]),
    ).not.toBe(
      version([
        { name: "c1", version: b },
        { name: "c2", version: a },
      ]),
    );
  });

  it("are the same from a LinearCache's updates, a snapshot and a merge of the same resources", () => {
    const make = (i: number, timeout: number) =>
      resources.cluster({ name: `c${i}`, connectTimeoutMs: 1000 + timeout });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(15), fc.option(fc.nat(3), { nil: undefined })), { maxLength: 40 }),
        fc.nat(),
        (steps, cut) => {
          const cache = new LinearCache(TypeUrl.Cluster, { pool: new ResourcePool() });
          const state = new Map<number, number>();
          for (const [i, timeout] of steps) {
            if (timeout === undefined) {
              cache.delete(`c${i}`);
              state.delete(i);
            } else {
              cache.update(make(i, timeout));
              state.set(i, timeout);
            }
          }
          const list = [...state].map(([i, t]) => make(i, t));
          const pool = new ResourcePool();
          const single = Snapshot.create({ clusters: list }, { pool }).version(TypeUrl.Cluster);
          expect(cache.current.version).toBe(single);
          const at = list.length === 0 ? 0 : cut % (list.length + 1);
          const merged = Snapshot.merge(
            [
              Snapshot.create({ clusters: list.slice(0, at) }, { pool }),
              Snapshot.create({ clusters: list.slice(at) }, { pool }),
            ],
            { pool },
          );
          expect(merged.version(TypeUrl.Cluster)).toBe(single);
        },
      ),
      { numRuns: 60 },
    );
  });
});
