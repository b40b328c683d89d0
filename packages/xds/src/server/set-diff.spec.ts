import { describe, expect, it } from "vitest";
import * as resources from "../resources/index.js";
import { Snapshot } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { diffSets, resourceList, within } from "./set-diff.js";

const clusters = (...specs: [string, number][]) =>
  Snapshot.create({
    clusters: specs.map(([name, ms]) => resources.cluster({ name, connectTimeoutMs: ms })),
  }).resourceSet(TypeUrl.Cluster);

describe("diffSets", () => {
  it("names what changed and what was removed, and computes each pair once", () => {
    const a = clusters(["keep", 1000], ["edit", 1000], ["drop", 1000]);
    const b = clusters(["keep", 1000], ["edit", 2000], ["add", 1000]);
    const d = diffSets(a, b);
    expect(d.changed.map((r) => r.name).sort()).toEqual(["add", "edit"]);
    expect(d.removed).toEqual(["drop"]);
    expect(diffSets(a, b)).toBe(d);
    expect(resourceList(b)).toBe(resourceList(b));
    expect(diffSets(b, b).changed).toHaveLength(0);
  });

  it("within() shares one scoped array per (list, subscription) pair, and the list itself when all are in scope", () => {
    const list = resourceList(clusters(["a", 1], ["b", 1], ["c", 1]));
    const ab = new Set(["a", "b"]);
    const scopedAb = within(list, ab);
    expect(scopedAb.map((r) => r.name)).toEqual(["a", "b"]);
    expect(within(list, ab)).toBe(scopedAb);
    expect(within(list, new Set(["a", "b", "c", "d"]))).toBe(list);
    expect(within(["a", "x"], ab)).toEqual(["a"]);
  });
});
