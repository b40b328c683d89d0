import { describe, expect, it } from "vitest";
import { ResourcePool } from "../resource-pool.js";
import * as resources from "../resources/index.js";
import { Snapshot } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { ResponseCache } from "./responses.js";

const controlPlane = { sotw: new Uint8Array(0), delta: new Uint8Array(0) };

describe("ResponseCache", () => {
  it("shares one response between lists of the same resources built by different proxies", () => {
    const pool = new ResourcePool();
    const shared = [resources.cluster({ name: "a" }), resources.cluster({ name: "b" })];
    // Two proxies' snapshots, each with its own array: the resources are the same objects.
    const p1 = Snapshot.create({ clusters: [...shared] }, { pool });
    const p2 = Snapshot.create({ clusters: [...shared] }, { pool });
    const list1 = [...p1.resources(TypeUrl.Cluster).values()];
    const list2 = [...p2.resources(TypeUrl.Cluster).values()];
    expect(list1).not.toBe(list2);
    const cache = new ResponseCache(controlPlane);
    const r1 = cache.sotw("v1", TypeUrl.Cluster, list1, false, true);
    const r2 = cache.sotw("v1", TypeUrl.Cluster, list2, false, true);
    expect(r2).toBe(r1);
    const d1 = cache.delta("v1", TypeUrl.Cluster, list1, ["gone"], false);
    const d2 = cache.delta("v1", TypeUrl.Cluster, list2, ["gone"], false);
    expect(d2.framed).toBe(d1.framed);
  });

  it("keeps lists that differ in a resource or in order apart", () => {
    const pool = new ResourcePool();
    const [a, b] = [
      ...Snapshot.create(
        { clusters: [resources.cluster({ name: "a" }), resources.cluster({ name: "b" })] },
        { pool },
      )
        .resources(TypeUrl.Cluster)
        .values(),
    ];
    const cache = new ResponseCache(controlPlane);
    const ab = cache.sotw("v", TypeUrl.Cluster, [a!, b!], false, true);
    const ba = cache.sotw("v", TypeUrl.Cluster, [b!, a!], false, true);
    const aOnly = cache.sotw("v", TypeUrl.Cluster, [a!], false, true);
    expect(new Set([ab.framed, ba.framed, aOnly.framed]).size).toBe(3);
    // Another version of the same list is another response (version_info differs).
    expect(cache.sotw("w", TypeUrl.Cluster, [a!, b!], false, true).framed).not.toBe(ab.framed);
  });

  it("keeps removed-name lists apart even when a name holds the characters between names", () => {
    const cache = new ResponseCache(controlPlane);
    const lists = [["a\u0000b"], ["a", "b"], ["a,b"], ["a", ",b"]];
    const none: never[] = [];
    const removed = lists.map((names) => cache.delta("v", TypeUrl.Cluster, none, names, false).framed);
    expect(new Set(removed).size).toBe(lists.length);
  });
});
