import { describe, expect, it } from "vitest";
import { BookinfoPolicies, bookinfoSnapshot } from "../testing/bookinfo.js";
import { ExplainError, explain, explanationJson, formatExplanation } from "./explain.js";

// explain() on the Bookinfo fixtures (src/envoy/testdata/bookinfo): the chain of steps a request
// takes through the generated config, and the config objects that decided each step.

const snapshot = (
  extra = "",
  files = ["destination-rule-all-mtls.yaml", "virtual-service-reviews-test-v2.yaml"],
) => bookinfoSnapshot(files, extra);

describe("explain", () => {
  it("productpage → reviews for jason: listener, route of the VirtualService, subset cluster of the DestinationRule, endpoint, then the reviews-v2 sidecar", () => {
    const e = explain(
      {
        proxy: "productpage-v1-0.default",
        to: "reviews:9080",
        path: "/reviews/0",
        headers: { "end-user": "jason" },
      },
      { snapshot: snapshot() },
    );
    expect(e.hops.map((h) => [h.mode, h.proxy])).toEqual([
      ["outbound", "sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local"],
      ["inbound", "sidecar~10.244.1.14~reviews-v2-0.default~default.svc.cluster.local"],
    ]);
    const [out, inbound] = e.hops;
    const steps = Object.fromEntries((out?.steps ?? []).map((s) => [s.step, s]));
    expect(steps.destination?.detail).toBe(
      "reviews resolves to reviews.default.svc.cluster.local, VIP 10.96.0.13, port 9080",
    );
    expect(steps.destination?.config.map((c) => [c.kind, c.namespace, c.name])).toEqual([
      ["Service", "default", "reviews"],
    ]);
    expect(steps.listener?.name).toBe("0.0.0.0_9080");
    expect(steps["virtual-host"]?.name).toBe("reviews.default.svc.cluster.local:9080");
    expect(steps.route?.config.map((c) => [c.kind, c.name])).toEqual([["VirtualService", "reviews"]]);
    expect(steps.cluster?.name).toBe("outbound|9080|v2|reviews.default.svc.cluster.local");
    expect(steps.cluster?.config.map((c) => [c.kind, c.name])).toEqual([
      ["Service", "reviews"],
      ["DestinationRule", "reviews"],
    ]);
    expect(steps.endpoints?.detail).toBe(
      "EDS: 10.244.1.14:9080 HEALTHY (default/reviews-v2-0), Istio mTLS, SNI outbound_.9080_.v2_.reviews.default.svc.cluster.local",
    );
    // File and line of every object named (the fixtures are one multi-document YAML here).
    for (const c of steps.cluster?.config ?? []) {
      expect(c.file).toBe("test.yaml");
      expect(c.line).toBeGreaterThan(0);
    }
    // The destination sidecar: Istio mTLS with productpage's identity, inbound cluster.
    expect(inbound?.call).toMatchObject({
      address: "10.244.1.14",
      port: 9080,
      tls: "mtls",
      sourcePrincipal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
    });
    expect(inbound?.result).toMatchObject({
      listenerMatched: "virtualInbound",
      filterChainMatched: "0.0.0.0_9080",
      clusterMatched: "inbound|9080||",
    });
    expect(e.outcome).toEqual({
      kind: "forwarded",
      summary:
        "forwarded by sidecar~10.244.1.14~reviews-v2-0.default~default.svc.cluster.local to inbound|9080||",
    });
  });

  it("names the AuthorizationPolicy that refused, at the destination sidecar", () => {
    const e = explain(
      { proxy: "productpage-v1-0.default", to: "reviews:9080" },
      {
        snapshot: snapshot(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-from-nobody
  namespace: default
spec:
  selector:
    matchLabels:
      app: reviews
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
`),
      },
    );
    const rbac = e.hops[1]?.steps.find((s) => s.step === "rbac");
    expect(rbac?.detail).toBe(
      "DENY policy ns[default]-policy[reviews-from-nobody]-rule[0] matched: denied (403 RBAC: access denied)",
    );
    expect(rbac?.config.map((c) => [c.kind, c.namespace, c.name])).toEqual([
      ["AuthorizationPolicy", "default", "reviews-from-nobody"],
    ]);
    expect(e.outcome).toMatchObject({ kind: "refused", status: 403 });
  });

  it("inbound: a STRICT PeerAuthentication refuses plaintext, naming the policy", () => {
    const e = explain(
      { proxy: "reviews-v1-0.default", to: "reviews:9080", direction: "inbound" },
      {
        snapshot: snapshot(BookinfoPolicies.strict),
      },
    );
    expect(e.hops).toHaveLength(1);
    expect(e.hops[0]?.result.error).toBe("no filter chains matched");
    expect(e.outcome.kind).toBe("refused");
    // The walk stopped before a chain matched; with mTLS it passes and the step names the policy.
    const ok = explain(
      {
        proxy: "reviews-v1-0.default",
        to: "reviews:9080",
        direction: "inbound",
        tls: "mtls",
        sourcePrincipal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
      },
      {
        snapshot: snapshot(BookinfoPolicies.strict),
      },
    );
    const fc = ok.hops[0]?.steps.find((s) => s.step === "filter-chain");
    expect(fc?.detail).toContain("PeerAuthentication mode for port 9080: STRICT");
    expect(fc?.config.map((c) => [c.kind, c.name])).toEqual([["PeerAuthentication", "default"]]);
  });

  it("ingress gateway: the Gateway behind the listener, the VirtualService behind the route", () => {
    const e = explain(
      { proxy: "istio-ingressgateway-0.istio-system", to: "bookinfo.example.com:8080", path: "/productpage" },
      { snapshot: bookinfoSnapshot(["destination-rule-all.yaml", "bookinfo-gateway.yaml"]) },
    );
    const [gw, pp] = e.hops;
    expect(gw?.mode).toBe("gateway");
    const steps = Object.fromEntries((gw?.steps ?? []).map((s) => [s.step, s]));
    expect(steps.listener?.config.map((c) => [c.kind, c.name])).toEqual([["Gateway", "bookinfo-gateway"]]);
    expect(steps.route?.config.map((c) => [c.kind, c.name])).toEqual([["VirtualService", "bookinfo"]]);
    expect(steps.cluster?.name).toBe("outbound|9080||productpage.default.svc.cluster.local");
    expect(pp?.proxy).toBe("sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local");
    expect(pp?.call.sourcePrincipal).toBe(
      "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    );
    expect(e.outcome.kind).toBe("forwarded");
  });

  it("gateway Service ports are translated to the container port", () => {
    const e = explain(
      { proxy: "istio-ingressgateway-0.istio-system", to: "httpbin.example.com:80", path: "/status/200" },
      {
        snapshot: bookinfoSnapshot(
          [],
          `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["httpbin.example.com"]
`,
        ),
      },
    );
    expect(e.hops[0]?.steps[0]?.detail).toBe(
      "port 80 of istio-ingressgateway.istio-system.svc.cluster.local is port 8080 of istio-ingressgateway-0.istio-system (10.244.2.10)",
    );
    expect(e.hops[0]?.result).toMatchObject({
      listenerMatched: "0.0.0.0_8080",
      virtualHostMatched: "blackhole:80",
      error: "no route matched",
    });
    expect(e.outcome).toMatchObject({ kind: "refused", status: 404 });
  });

  it("fault injection answers for the route (ratings abort for jason)", () => {
    const e = explain(
      { proxy: "reviews-v2-0.default", to: "ratings:9080", headers: { "end-user": "jason" } },
      {
        snapshot: bookinfoSnapshot(["destination-rule-all.yaml", "virtual-service-ratings-test-abort.yaml"]),
      },
    );
    expect(e.hops).toHaveLength(1);
    const fault = e.hops[0]?.steps.find((s) => s.step === "fault");
    expect(fault?.detail).toBe("fault injection: abort with HTTP 500 for 100% of requests");
    expect(fault?.config.map((c) => c.name)).toEqual(["ratings"]);
    expect(e.outcome).toMatchObject({ kind: "answered", status: 500 });
  });

  it("weighted routes list every cluster with its share; unknown hosts follow outboundTrafficPolicy", () => {
    const e = explain(
      { proxy: "productpage-v1-0", to: "reviews:9080" },
      { snapshot: bookinfoSnapshot(["destination-rule-all.yaml", "virtual-service-reviews-50-v3.yaml"]) },
    );
    expect(e.hops[0]?.steps.filter((s) => s.step === "cluster").map((s) => s.detail)).toEqual([
      "outbound|9080|v1|reviews.default.svc.cluster.local (50% of requests), subset v1; traffic policy of DestinationRule default/reviews",
      "outbound|9080|v3|reviews.default.svc.cluster.local (50% of requests), subset v3; traffic policy of DestinationRule default/reviews",
    ]);
    const ext = explain(
      { proxy: "productpage-v1-0", to: "httpbin.org:80" },
      { snapshot: bookinfoSnapshot(), mesh: { outboundTrafficPolicy: { mode: "REGISTRY_ONLY" } } },
    );
    expect(ext.hops[0]?.steps.find((s) => s.step === "virtual-host")?.name).toBe("block_all");
    expect(ext.outcome).toMatchObject({ kind: "refused", status: 502 });
  });

  it("text and JSON forms", () => {
    const e = explain({ proxy: "productpage-v1-0.default", to: "reviews:9080" }, { snapshot: snapshot() });
    const text = formatExplanation(e).join("\n");
    expect(text).toContain(
      "outbound at sidecar~10.244.1.10~productpage-v1-0.default~default.svc.cluster.local:",
    );
    expect(text).toContain("← VirtualService default/reviews (test.yaml:");
    expect(text).toMatch(/=> forwarded by sidecar~10\.244\.1\.13~reviews-v1-0/);
    const json = explanationJson(e) as { hops: { result: { clusterMatched?: string } }[] };
    expect(json.hops[0]?.result.clusterMatched).toBe("outbound|9080|v1|reviews.default.svc.cluster.local");
  });

  it("refuses unknown proxies and malformed destinations", () => {
    expect(() => explain({ proxy: "nope.default", to: "reviews:9080" }, { snapshot: snapshot() })).toThrow(
      ExplainError,
    );
    expect(() =>
      explain({ proxy: "productpage-v1-0.default", to: "reviews" }, { snapshot: snapshot() }),
    ).toThrow(/host:port/);
  });
});
