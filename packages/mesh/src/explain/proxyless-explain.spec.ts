import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { BookinfoPolicies, bookinfoSnapshot, proxylessBookinfoSnapshot } from "../testing/bookinfo.js";
import { explain, formatExplanation } from "./explain.js";

// explain() for proxyless gRPC workloads (pods injected with Istio's `grpc-agent` template): the walk
// follows what a gRPC client and server do with the resources the proxyless generator sends.
// Expected names come from Istio's conventions and gRPC's design docs, written here by hand:
// - client listener = the dialled target (gRFC A27; istio/istio pilot/pkg/networking/grpcgen/lds.go),
//   route configuration `outbound|<port>||<fqdn>` and virtual host `<fqdn>:<port>` (grpcgen rds.go),
//   clusters `outbound|<port>|<subset>|<fqdn>` (grpcgen cds.go);
// - server listener `xds.istio.io/grpc/lds/inbound/<ip>:<port>`, filter chain `inbound-mtls` or
//   `inbound-plaintext`, DENY filter `envoy.filters.http.rbac.DENY`, policies `<ns>-<name>-<rule>`
//   (grpcgen lds.go `buildInboundFilterChain`, `buildRBAC`);
// - statuses: a resource that does not exist fails the channel with UNAVAILABLE (gRFC A27), an RBAC
//   denial is PERMISSION_DENIED (gRFC A41).
// Workloads and IPs: src/envoy/testdata/bookinfo/bookinfo.yaml (reviews-v2-0 is 10.244.1.14).

const REVIEWS_V2 = "sidecar~10.244.1.14~reviews-v2-0.default~default.svc.cluster.local";
const PRODUCTPAGE = "sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local";
const GET_REVIEWS = "/bookinfo.Reviews/GetReviews";

const denyProductpage = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-productpage
  namespace: default
spec:
  selector:
    matchLabels:
      app: reviews
  action: DENY
  rules:
    - from:
        - source:
            principals:
              - cluster.local/ns/default/sa/bookinfo-productpage
`;

const mtlsRouting = ["destination-rule-all-mtls.yaml", "virtual-service-reviews-test-v2.yaml"];

describe("explain, proxyless gRPC", () => {
  it("productpage → reviews as jason: the dialled listener, the VirtualService route, subset v2, its endpoint, then reviews-v2's server listener under STRICT mTLS", () => {
    const e = explain(
      {
        proxy: "productpage-v1-0.default",
        to: "xds:///reviews:9080",
        path: GET_REVIEWS,
        headers: { "end-user": "jason" },
      },
      { snapshot: proxylessBookinfoSnapshot(mtlsRouting, BookinfoPolicies.strict) },
    );
    expect(e.hops.map((h) => [h.kind, h.mode, h.proxy])).toEqual([
      ["proxyless", "outbound", PRODUCTPAGE],
      ["proxyless", "inbound", REVIEWS_V2],
    ]);
    const [client, server] = e.hops;
    expect(client?.result).toMatchObject({
      listenerMatched: "reviews:9080",
      routeConfigMatched: "outbound|9080||reviews.default.svc.cluster.local",
      virtualHostMatched: "reviews.default.svc.cluster.local:9080",
      clusterMatched: "outbound|9080|v2|reviews.default.svc.cluster.local",
    });
    const steps = Object.fromEntries((client?.steps ?? []).map((s) => [s.step, s]));
    expect(steps.route?.config.map((c) => [c.kind, c.namespace, c.name])).toEqual([
      ["VirtualService", "default", "reviews"],
    ]);
    // The subset cluster with the Service and the DestinationRule behind it (read from the cluster name).
    expect(steps.cluster?.detail).toContain("subset v2; traffic policy of DestinationRule default/reviews");
    expect(steps.cluster?.config.map((c) => [c.kind, c.name])).toEqual([
      ["Service", "reviews"],
      ["DestinationRule", "reviews"],
    ]);
    // The endpoint of subset v2 and the TLS of the DestinationRule's ISTIO_MUTUAL (certificate provider `default`).
    expect(steps.endpoints?.detail).toContain("10.244.1.14:9080 HEALTHY (default/reviews-v2-0), Istio mTLS");
    expect(server?.result).toMatchObject({
      listenerMatched: "xds.istio.io/grpc/lds/inbound/10.244.1.14:9080",
      filterChainMatched: "inbound-mtls",
      downstreamTls: { requireClientCertificate: true },
    });
    expect(server?.call).toMatchObject({
      tls: "mtls",
      sourcePrincipal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
    });
    const chain = server?.steps.find((s) => s.step === "filter-chain");
    expect(chain?.detail).toContain("PeerAuthentication mode for port 9080: STRICT");
    expect(chain?.config.map((c) => [c.kind, c.name])).toEqual([["PeerAuthentication", "default"]]);
    expect(e.outcome.kind).toBe("forwarded");
    expect(e.outcome.summary).toBe(`served by ${REVIEWS_V2}: the gRPC server's application handles the RPC`);
    expect(formatExplanation(e).join("\n")).toContain("client listener reviews:9080");
  });

  it("without the header the VirtualService's default route sends the RPC to subset v1", () => {
    const e = explain(
      { proxy: "productpage-v1-0.default", to: "reviews:9080", path: GET_REVIEWS, follow: false },
      { snapshot: proxylessBookinfoSnapshot(mtlsRouting) },
    );
    expect(e.hops[0]?.result.clusterMatched).toBe("outbound|9080|v1|reviews.default.svc.cluster.local");
    expect(e.hops[0]?.steps.find((s) => s.step === "endpoints")?.detail).toContain("10.244.1.13:9080");
  });

  it("a DENY AuthorizationPolicy on reviews: PERMISSION_DENIED, naming the policy that decided", () => {
    const e = explain(
      {
        proxy: "productpage-v1-0.default",
        to: "reviews:9080",
        path: GET_REVIEWS,
        headers: { "end-user": "jason" },
      },
      {
        snapshot: proxylessBookinfoSnapshot(mtlsRouting, `${BookinfoPolicies.strict}---\n${denyProductpage}`),
      },
    );
    const server = e.hops[1];
    expect(server?.result.error).toBe("rbac denied");
    const rbac = server?.steps.filter((s) => s.step === "rbac") ?? [];
    expect(rbac.map((s) => s.name)).toEqual(["envoy.filters.http.rbac.DENY"]);
    expect(rbac[0]?.detail).toContain("DENY policy default-deny-productpage-0 matched: denied");
    expect(rbac[0]?.config.map((c) => [c.kind, c.namespace, c.name])).toEqual([
      ["AuthorizationPolicy", "default", "deny-productpage"],
    ]);
    expect(e.outcome).toEqual({
      kind: "refused",
      grpcStatus: "PERMISSION_DENIED",
      summary: `PERMISSION_DENIED at ${REVIEWS_V2}: DENY policy default-deny-productpage-0`,
    });
  });

  it("STRICT mTLS and a client without ISTIO_MUTUAL: the handshake fails, UNAVAILABLE", () => {
    const e = explain(
      { proxy: "productpage-v1-0.default", to: "reviews:9080", path: GET_REVIEWS },
      { snapshot: proxylessBookinfoSnapshot([], BookinfoPolicies.strict) },
    );
    expect(e.hops[1]?.call.tls).toBe("plaintext");
    expect(e.hops[1]?.result.error).toBe("invalid TLS");
    expect(e.outcome.grpcStatus).toBe("UNAVAILABLE");
    expect(e.outcome.summary).toContain(
      "the TLS handshake fails: the server requires mTLS, the client sends plaintext",
    );
  });

  it("a host no service has: no listener exists for it and the RPC fails with UNAVAILABLE", () => {
    const e = explain(
      { proxy: "productpage-v1-0.default", to: "xds:///nosuch:9080", path: GET_REVIEWS },
      { snapshot: proxylessBookinfoSnapshot(mtlsRouting) },
    );
    expect(e.hops).toHaveLength(1);
    expect(e.hops[0]?.result.error).toBe("no listener matched");
    expect(e.outcome.kind).toBe("refused");
    expect(e.outcome.grpcStatus).toBe("UNAVAILABLE");
  });

  it("a connected proxy is explained as its node says: GENERATOR grpc makes it proxyless", () => {
    const snapshot = proxylessBookinfoSnapshot(mtlsRouting);
    const node = parseProxy({
      id: PRODUCTPAGE,
      metadata: {
        NAMESPACE: "default",
        GENERATOR: "grpc",
        LABELS: { app: "productpage", version: "v1" },
        SERVICE_ACCOUNT: "bookinfo-productpage",
      },
    });
    const e = explain(
      { proxy: PRODUCTPAGE, to: "reviews:9080", path: GET_REVIEWS, follow: false },
      { snapshot, connected: (id) => (id === PRODUCTPAGE ? { proxy: node } : undefined) },
    );
    expect(e.hops[0]?.kind).toBe("proxyless");
    expect(e.hops[0]?.result.listenerMatched).toBe("reviews:9080");
  });

  it("a pod without the grpc-agent template is still walked as an Envoy sidecar", () => {
    // The Envoy path is unchanged: productpage's outbound listener is 0.0.0.0_9080 (Istio sidecar naming).
    const e = explain(
      { proxy: "productpage-v1-0.default", to: "reviews:9080", path: "/", follow: false },
      { snapshot: bookinfoSnapshot() },
    );
    expect(e.hops[0]?.kind).toBe("sidecar");
    expect(e.hops[0]?.result.listenerMatched).toBe("0.0.0.0_9080");
  });
});
