import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { validateFiles } from "@meshlet/config";
import { explain } from "@meshlet/mesh";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platformYaml, WORKLOADS, workloadIp } from "../src/platform.js";

// `meshlet explain` on the reference mesh, which is entirely proxyless gRPC (its pods carry Istio's
// `inject.istio.io/templates: grpc-agent`): the walk follows the proxyless resources, as grpc-js
// uses them. Names expected from Istio's conventions (grpcgen: client listener = dialled target,
// clusters `outbound|<port>|<subset>|<fqdn>`, server listener `xds.istio.io/grpc/lds/inbound/<ip>:<port>`,
// gRPC RBAC policy `<ns>-<name>-<rule>`), statuses from gRFC A27/A41.

const example = fileURLToPath(new URL("..", import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "reference-mesh-explain-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const placed = WORKLOADS.map((w, i) => ({
  ...w,
  ip: workloadIp(i),
  port: 20_000 + i,
  metricsPort: 21_000 + i,
}));
const reviewsV2 = placed.find((w) => w.pod === "reviews-v2-0");

async function snapshotWith(scenario: string) {
  const root = join(dir, scenario);
  await cp(join(example, "config"), root, { recursive: true });
  await cp(join(example, "scenarios", scenario), join(root, "scenario.yaml"));
  await writeFile(join(root, "platform.yaml"), platformYaml(placed));
  return (await validateFiles([root])).snapshot;
}

const request = {
  proxy: "productpage-v1-0.default",
  to: "xds:///reviews:9080",
  path: "/bookinfo.Reviews/GetReviews",
  headers: { "end-user": "jason" },
};

describe("explain on the reference mesh", () => {
  it("reviews-jason-v2: jason's RPC goes to subset v2 and is served by reviews-v2 over Istio mTLS", async () => {
    const e = explain(request, { snapshot: await snapshotWith("reviews-jason-v2.yaml") });
    expect(e.hops.map((h) => h.kind)).toEqual(["proxyless", "proxyless"]);
    expect(e.hops[0]?.result.listenerMatched).toBe("reviews:9080");
    expect(e.hops[0]?.result.clusterMatched).toBe("outbound|9080|v2|reviews.default.svc.cluster.local");
    expect(e.hops[1]?.result.listenerMatched).toBe(
      `xds.istio.io/grpc/lds/inbound/${reviewsV2?.ip}:${reviewsV2?.port}`,
    );
    expect(e.hops[1]?.result.filterChainMatched).toBe("inbound-mtls");
    expect(e.outcome.kind).toBe("forwarded");
  });

  it("deny-reviews: PERMISSION_DENIED by the DENY policy", async () => {
    const e = explain(request, { snapshot: await snapshotWith("deny-reviews.yaml") });
    expect(e.outcome.grpcStatus).toBe("PERMISSION_DENIED");
    expect(e.outcome.summary).toContain("DENY policy default-deny-productpage-0");
    const rbac = e.hops[1]?.steps.find((s) => s.step === "rbac");
    expect(rbac?.config.map((c) => `${c.kind} ${c.namespace}/${c.name}`)).toEqual([
      "AuthorizationPolicy default/deny-productpage",
    ]);
  });
});
