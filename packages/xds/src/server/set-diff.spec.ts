import { describe, expect, it } from "vitest";
import * as resources from "../resources/index.js";
import { Snapshot } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { diffSets, resourceList } from "./set-diff.js";

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
});
