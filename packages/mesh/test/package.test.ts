import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

// The built package, as users import it (ESM and CommonJS).
describe("@meshlet/mesh package", () => {
  it("exports the same public API to ESM and CommonJS", async () => {
    const esm = await import("@meshlet/mesh");
    const cjs = createRequire(import.meta.url)("@meshlet/mesh") as typeof esm;
    expect(Object.keys(cjs).sort()).toEqual(Object.keys(esm).sort());
    for (const mod of [esm, cjs]) {
      const proxy = mod.parseProxy({ id: "sidecar~10.1.1.0~v0.default~default.svc.cluster.local" });
      expect(mod.outboundClusterName(`reviews.${proxy.namespace}.svc.cluster.local`, 9080, "v1")).toBe(
        "outbound|9080|v1|reviews.default.svc.cluster.local",
      );
    }
    // Contract names of ARCHITECTURE.md.
    for (const name of ["parseProxy", "Registry", "registry$", "PushContext", "analyzeMesh", "MeshError"]) {
      expect(esm).toHaveProperty(name);
    }
  });
});
