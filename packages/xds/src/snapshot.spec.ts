import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as resources from "./resources/index.js";
import { Snapshot } from "./snapshot.js";
import { TypeUrl } from "./type-url.js";

describe("Snapshot", () => {
  it("gives a type's version independent of resource order (content hash)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/), { minLength: 1, maxLength: 8 }),
        (names) => {
          const forward = Snapshot.create({ clusters: names.map((name) => resources.cluster({ name })) });
          const backward = Snapshot.create({
            clusters: [...names].reverse().map((name) => resources.cluster({ name })),
          });
          expect(forward.version(TypeUrl.Cluster)).toBe(backward.version(TypeUrl.Cluster));
        },
      ),
      { numRuns: 50 },
    );
  });

  it("honours explicit versions and reports the empty set for absent types", () => {
    const s = Snapshot.create({
      clusters: [resources.cluster({ name: "c" })],
      versions: { [TypeUrl.Cluster]: "v7" },
    });
    expect(s.version(TypeUrl.Cluster)).toBe("v7");
    expect(s.resources(TypeUrl.Listener).size).toBe(0);
    expect(s.version(TypeUrl.Listener)).toBe(Snapshot.create({}).version(TypeUrl.Listener));
    expect(s.get(TypeUrl.Cluster, "c")?.$typeName).toBe("envoy.config.cluster.v3.Cluster");
  });

  it("encodes each resource once and keeps the bytes", () => {
    const s = Snapshot.create({ clusters: [resources.cluster({ name: "c" })] });
    const r = s.resources(TypeUrl.Cluster).get("c")!;
    expect(r.sotwField()).toBe(r.sotwField());
    expect(r.deltaField()).toBe(r.deltaField());
    expect(r.bytes.length).toBeGreaterThan(0);
  });

  it("rejects a resource without a name, and a custom type without a schema", () => {
    expect(() => Snapshot.create({ clusters: [resources.cluster({ name: "" })] })).toThrow(/empty name/);
    expect(() =>
      Snapshot.create({
        resources: { "type.googleapis.com/acme.Thing": [resources.cluster({ name: "x" })] },
      }),
    ).toThrow(/where acme.Thing resources are expected/);
  });
});
