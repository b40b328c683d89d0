import { describe, expect, it } from "vitest";
import type { Proxy } from "../proxy/proxy.js";
import { PushContext, type PushContextInit } from "../push/push-context.js";
import { BookinfoPolicies, BookinfoProxies, bookinfoSnapshot } from "../testing/bookinfo.js";
import { golden } from "../testing/envoy-golden.js";
import { expectWellFormed } from "../testing/envoy-sim.js";
import { generateEnvoy } from "./generate.js";
import type { EnvoyResources } from "./resources.js";

// Golden files of the Envoy config generated for Istio's Bookinfo sample (fixtures in
// testdata/bookinfo, each citing its upstream file). Envoy cannot run in this repository's CI: the
// expectations are written from Istio's documented conventions (docs/reference/istio-conventions.md
// §2, istio/istio pilot/pkg/networking/core/*.go) and pinned here; the walk tests
// (simulation.spec.ts) check what the config means. Regenerate after an intended change with
// `MESHLET_UPDATE_GOLDEN=1 npx vitest run packages/mesh/src/envoy/golden.spec.ts`, then `npm run
// format` (Biome lays the JSON out), and review the diff.

function build(
  files: string[],
  proxy: Proxy,
  extra = "",
  mesh: PushContextInit["mesh"] = {},
): EnvoyResources {
  const push = PushContext.create({ snapshot: bookinfoSnapshot(files, extra), mesh });
  return generateEnvoy(proxy, push);
}

describe("Envoy golden files (Bookinfo)", () => {
  it("productpage sidecar with destination-rule-all and virtual-service-all-v1", () => {
    const r = build(
      ["destination-rule-all.yaml", "virtual-service-all-v1.yaml"],
      BookinfoProxies.productpage(),
    );
    expectWellFormed(r);
    // Istio's names (reference/istio-conventions.md §2.3).
    expect(r.listeners.map((l) => l.name)).toEqual([
      "0.0.0.0_80",
      "0.0.0.0_9080",
      "10.96.1.10_443",
      "virtualInbound",
      "virtualOutbound",
    ]);
    expect(r.routes.map((x) => x.name)).toEqual(["80", "9080"]);
    const route9080 = r.routes.find((x) => x.name === "9080");
    expect(route9080?.virtualHosts.map((v) => v.name)).toEqual([
      "details.default.svc.cluster.local:9080",
      "productpage.default.svc.cluster.local:9080",
      "ratings.default.svc.cluster.local:9080",
      "reviews.default.svc.cluster.local:9080",
      "allow_any",
    ]);
    expect(route9080?.virtualHosts[3]?.domains).toEqual([
      "reviews.default.svc.cluster.local",
      "reviews.default.svc.cluster.local.",
      "reviews",
      "reviews.default.svc",
      "reviews.default",
      "10.96.0.13",
    ]);
    expect(r.clusters.map((c) => c.name)).toContain("outbound|9080|v3|reviews.default.svc.cluster.local");
    expect(r.clusters.map((c) => c.name)).toContain("inbound|9080||");
    expect(r.warnings).toEqual([]);
    const { want, got } = golden("productpage-all-v1", r);
    expect(got).toEqual(want);
  });

  it("reviews-v1 sidecar: mTLS destination rules, jason to v2, ratings abort for jason", () => {
    const r = build(
      [
        "destination-rule-all-mtls.yaml",
        "virtual-service-reviews-test-v2.yaml",
        "virtual-service-ratings-test-abort.yaml",
      ],
      BookinfoProxies.reviewsV1(),
    );
    expectWellFormed(r);
    const ratings = r.routes
      .find((x) => x.name === "9080")
      ?.virtualHosts.find((v) => v.name === "ratings.default.svc.cluster.local:9080");
    expect(ratings?.routes[0]?.typedPerFilterConfig["envoy.filters.http.fault"]).toBeDefined();
    const { want, got } = golden("reviews-v1-jason-abort-mtls", r);
    expect(got).toEqual(want);
  });

  it("productpage sidecar with virtual-service-reviews-50-v3 (weighted)", () => {
    const r = build(
      ["destination-rule-all.yaml", "virtual-service-reviews-50-v3.yaml"],
      BookinfoProxies.productpage(),
    );
    expectWellFormed(r);
    const reviews = r.routes
      .find((x) => x.name === "9080")
      ?.virtualHosts.find((v) => v.name === "reviews.default.svc.cluster.local:9080");
    const action = reviews?.routes[0]?.action;
    expect(
      action?.case === "route" && action.value.clusterSpecifier.case === "weightedClusters"
        ? action.value.clusterSpecifier.value.clusters.map((c) => [c.name, c.weight])
        : undefined,
    ).toEqual([
      ["outbound|9080|v1|reviews.default.svc.cluster.local", 50],
      ["outbound|9080|v3|reviews.default.svc.cluster.local", 50],
    ]);
    const { want, got } = golden("productpage-reviews-50-v3", r);
    expect(got).toEqual(want);
  });

  it("ingress gateway with bookinfo-gateway", () => {
    const r = build(["destination-rule-all.yaml", "bookinfo-gateway.yaml"], BookinfoProxies.ingressgateway());
    expectWellFormed(r);
    // Gateway names (reference/istio-conventions.md §2.3): listener 0.0.0.0_8080, route http.8080.
    expect(r.listeners.map((l) => l.name)).toEqual(["0.0.0.0_8080"]);
    expect(r.routes.map((x) => x.name)).toEqual(["http.8080"]);
    expect(r.routes[0]?.virtualHosts.map((v) => [v.name, v.domains])).toEqual([["*:8080", ["*"]]]);
    const { want, got } = golden("ingressgateway-bookinfo", r);
    expect(got).toEqual(want);
  });

  it("productpage sidecar: STRICT mTLS and an ALLOW policy for the ingress gateway (authn-policy, authz-http tasks)", () => {
    const r = build(
      ["destination-rule-all-mtls.yaml"],
      BookinfoProxies.productpage(),
      `${BookinfoPolicies.strict}---\n${BookinfoPolicies.productpageViewer}`,
    );
    expectWellFormed(r);
    const inbound = r.listeners.find((l) => l.name === "virtualInbound");
    // STRICT: only TLS chains for the service port (Istio's table), none in plaintext.
    expect(
      inbound?.filterChains
        .filter((c) => c.name === "0.0.0.0_9080")
        .map((c) => c.filterChainMatch?.transportProtocol),
    ).toEqual(["tls"]);
    const { want, got } = golden("productpage-strict-authz", r);
    expect(got).toEqual(want);
  });

  it("ingress gateway: HTTPS SIMPLE with credentialName and its Secret (secure-ingress task)", () => {
    const r = build(
      [],
      BookinfoProxies.ingressgateway(),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: bookinfo-https
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 443
      name: https
      protocol: HTTPS
    tls:
      mode: SIMPLE
      credentialName: bookinfo-credential
    hosts:
    - bookinfo.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo-https
  namespace: default
spec:
  hosts:
  - bookinfo.example.com
  gateways:
  - bookinfo-https
  http:
  - route:
    - destination:
        host: productpage
        port:
          number: 9080
---
apiVersion: v1
kind: Secret
metadata:
  name: bookinfo-credential
  namespace: istio-system
type: kubernetes.io/tls
data:
  tls.crt: Q0VSVA==
  tls.key: S0VZ
`,
    );
    expectWellFormed(r);
    // 443 is the gateway Service's port 443 → targetPort 8443.
    expect(r.listeners.map((l) => l.name)).toEqual(["0.0.0.0_8443"]);
    expect(r.routes.map((x) => x.name)).toEqual(["https.443.https.bookinfo-https.default"]);
    expect(r.secrets.map((x) => x.name)).toEqual(["kubernetes://bookinfo-credential"]);
    const { want, got } = golden("ingressgateway-https-simple", r);
    expect(got).toEqual(want);
  });
});
