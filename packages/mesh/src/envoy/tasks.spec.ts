import { describe, expect, it } from "vitest";
import { clusterEndpoints, walk } from "../explain/walker.js";
import type { Proxy } from "../proxy/proxy.js";
import type { MeshConfig } from "../push/mesh-config.js";
import { PushContext } from "../push/push-context.js";
import { BookinfoPolicies, BookinfoProxies, bookinfoFile, bookinfoSnapshot } from "../testing/bookinfo.js";
import { expectWalk, expectWellFormed } from "../testing/envoy-sim.js";
import { generateEnvoy } from "./generate.js";
import type { EnvoyResources } from "./resources.js";

// Walks of Istio's documented task scenarios on the Bookinfo fixtures (testdata/bookinfo, each
// file citing its upstream; tasks per docs/reference/istio-conventions.md §3.2, istio/istio.io
// content/en/docs/tasks/…). Each expectation is what the task's page shows, read off the config a
// proxy would get: Envoy cannot run here, the walker (src/explain/walker.ts) reads the xDS.

const REVIEWS = { address: "10.96.0.13", port: 9080, hostHeader: "reviews:9080" } as const;
const RATINGS = { address: "10.96.0.12", port: 9080, hostHeader: "ratings:9080" } as const;
const PRODUCTPAGE_IN = { address: "10.244.1.10", port: 9080, callMode: "inbound" } as const;
const FQDN = (s: string) => `${s}.default.svc.cluster.local`;
const JASON = { "end-user": "jason" } as const;

function gen(proxy: Proxy, files: string[], extra = "", mesh: Partial<MeshConfig> = {}): EnvoyResources {
  const push = PushContext.create({ snapshot: bookinfoSnapshot(files, extra), mesh });
  const r = generateEnvoy(proxy, push);
  expectWellFormed(r);
  return r;
}

describe("Request routing (tasks/traffic-management/request-routing)", () => {
  it("virtual-service-all-v1: every request to reviews goes to v1", () => {
    const r = gen(BookinfoProxies.productpage(), [
      "destination-rule-all.yaml",
      "virtual-service-all-v1.yaml",
    ]);
    expectWalk(walk(r, { ...REVIEWS, headers: JASON }), {
      listenerMatched: "0.0.0.0_9080",
      routeConfigMatched: "9080",
      virtualHostMatched: `${FQDN("reviews")}:9080`,
      clusterMatched: `outbound|9080|v1|${FQDN("reviews")}`,
    });
    // The subset cluster reaches only the v1 pod, over Istio mTLS (auto mTLS: the pod has a sidecar).
    const eps = clusterEndpoints(r, `outbound|9080|v1|${FQDN("reviews")}`);
    expect(eps?.type).toBe("EDS");
    expect(
      eps?.endpoints.map((e) => [
        e.address,
        e.port,
        e.tlsMode,
        e.tls?.sni,
        e.tls?.certificate,
        e.tls?.validation,
      ]),
    ).toEqual([
      ["10.244.1.13", 9080, "istio", `outbound_.9080_.v1_.${FQDN("reviews")}`, "default", "ROOTCA"],
    ]);
  });
  it("virtual-service-reviews-test-v2: jason goes to v2, everyone else to v1", () => {
    const r = gen(BookinfoProxies.productpage(), [
      "destination-rule-all.yaml",
      "virtual-service-reviews-test-v2.yaml",
    ]);
    expectWalk(
      walk(r, { ...REVIEWS, headers: JASON }),
      { clusterMatched: `outbound|9080|v2|${FQDN("reviews")}` },
      "jason",
    );
    expectWalk(walk(r, REVIEWS), { clusterMatched: `outbound|9080|v1|${FQDN("reviews")}` }, "anonymous");
    expectWalk(
      walk(r, { ...REVIEWS, headers: { "end-user": "jasonx" } }),
      { clusterMatched: `outbound|9080|v1|${FQDN("reviews")}` },
      "exact match only",
    );
    // The short name, the FQDN and the VIP all reach the same virtual host (Istio's domains).
    for (const host of ["reviews", FQDN("reviews"), "reviews.default", "10.96.0.13:9080"]) {
      expect(walk(r, { ...REVIEWS, hostHeader: host }).virtualHostMatched, host).toBe(
        `${FQDN("reviews")}:9080`,
      );
    }
  });
});

describe("Traffic shifting (tasks/traffic-management/traffic-shifting)", () => {
  it("virtual-service-reviews-50-v3: half to v1, half to v3", () => {
    const r = gen(BookinfoProxies.productpage(), [
      "destination-rule-all.yaml",
      "virtual-service-reviews-50-v3.yaml",
    ]);
    const got = walk(r, REVIEWS);
    expect(got.error).toBeUndefined();
    expect(got.weightedClusters).toEqual([
      { cluster: `outbound|9080|v1|${FQDN("reviews")}`, weight: 50 },
      { cluster: `outbound|9080|v3|${FQDN("reviews")}`, weight: 50 },
    ]);
    expect(
      clusterEndpoints(r, `outbound|9080|v3|${FQDN("reviews")}`)?.endpoints.map((e) => e.address),
    ).toEqual(["10.244.1.15"]);
  });
});

describe("Fault injection (tasks/traffic-management/fault-injection)", () => {
  it("virtual-service-ratings-test-delay: a 7s delay for jason only", () => {
    const r = gen(BookinfoProxies.reviewsV2(), [
      "destination-rule-all.yaml",
      "virtual-service-ratings-test-delay.yaml",
    ]);
    const jason = walk(r, { ...RATINGS, headers: JASON });
    expect(jason.fault).toEqual({ delay: "7s", percent: 100 });
    expect(jason.clusterMatched).toBe(`outbound|9080|v1|${FQDN("ratings")}`);
    expect(walk(r, RATINGS).fault).toBeUndefined();
  });
  it("virtual-service-ratings-test-abort: HTTP 500 for jason only", () => {
    const r = gen(BookinfoProxies.reviewsV2(), [
      "destination-rule-all.yaml",
      "virtual-service-ratings-test-abort.yaml",
    ]);
    expect(walk(r, { ...RATINGS, headers: JASON }).fault).toEqual({ abortHttpStatus: 500, percent: 100 });
    expect(walk(r, RATINGS).fault).toBeUndefined();
    // The fault filter sits before the router (Istio listener_builder.go order).
    expect(walk(r, RATINGS).httpFilters?.slice(-4)).toEqual([
      "envoy.filters.http.fault",
      "envoy.filters.http.cors",
      "istio.stats",
      "envoy.filters.http.router",
    ]);
  });
});

describe("Ingress gateway (tasks/traffic-management/ingress/ingress-control, examples/bookinfo)", () => {
  it("bookinfo-gateway: /productpage on 8080 reaches productpage:9080", () => {
    const r = gen(BookinfoProxies.ingressgateway(), ["destination-rule-all.yaml", "bookinfo-gateway.yaml"]);
    const call = { port: 8080, hostHeader: "bookinfo.example:8080", callMode: "gateway" } as const;
    for (const path of ["/productpage", "/static/style.css", "/login", "/logout", "/api/v1/products/0"]) {
      expectWalk(
        walk(r, { ...call, path }),
        {
          listenerMatched: "0.0.0.0_8080",
          routeConfigMatched: "http.8080",
          virtualHostMatched: "*:8080",
          clusterMatched: `outbound|9080||${FQDN("productpage")}`,
        },
        path,
      );
    }
    expectWalk(walk(r, { ...call, path: "/admin" }), { error: "no route matched" });
    expect(
      clusterEndpoints(r, `outbound|9080||${FQDN("productpage")}`)?.endpoints.map((e) => [
        e.address,
        e.tlsMode,
      ]),
    ).toEqual([["10.244.1.10", "istio"]]);
  });
  it("httpbin-gateway: Host httpbin.example.com, /status and /delay only", () => {
    const r = gen(
      BookinfoProxies.ingressgateway(),
      [],
      HTTPBIN +
        `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: httpbin-gateway
  namespace: default
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "httpbin.example.com"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: default
spec:
  hosts:
  - "httpbin.example.com"
  gateways:
  - httpbin-gateway
  http:
  - match:
    - uri:
        prefix: /status
    - uri:
        prefix: /delay
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
`,
    );
    // Server port 80 is the gateway Service's port 80 → targetPort 8080: Envoy listens on 8080
    // (Istio's gateway port translation, gateway_simulation_test.go TestTargetPort).
    const call = { port: 8080, hostHeader: "httpbin.example.com", callMode: "gateway" } as const;
    expectWalk(walk(r, { ...call, path: "/status/200" }), {
      listenerMatched: "0.0.0.0_8080",
      routeConfigMatched: "http.8080",
      virtualHostMatched: "httpbin.example.com:80",
      clusterMatched: `outbound|8000||${FQDN("httpbin")}`,
    });
    // "/headers" → 404: no route.
    expectWalk(walk(r, { ...call, path: "/headers" }), { error: "no route matched" });
  });
});

const HTTPBIN = `apiVersion: v1
kind: Service
metadata:
  name: httpbin
  namespace: default
  labels:
    app: httpbin
spec:
  clusterIP: 10.96.0.20
  selector:
    app: httpbin
  ports:
  - name: http
    port: 8000
    targetPort: 8080
`;

describe("Secure ingress (tasks/traffic-management/ingress/secure-ingress)", () => {
  const gw = (mode: string) => `${HTTPBIN}---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
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
      mode: ${mode}
      credentialName: httpbin-credential
    hosts:
    - httpbin.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin
  namespace: default
spec:
  hosts:
  - "httpbin.example.com"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: /status
    route:
    - destination:
        port:
          number: 8000
        host: httpbin
`;
  it("SIMPLE: TLS terminated with the credentialName certificate over SDS", () => {
    const r = gen(BookinfoProxies.ingressgateway(), [], gw("SIMPLE"));
    // 443 → targetPort 8443 on the gateway Service.
    const call = {
      port: 8443,
      hostHeader: "httpbin.example.com",
      tls: "tls",
      path: "/status/418",
      callMode: "gateway",
    } as const;
    const got = walk(r, call);
    expectWalk(got, {
      listenerMatched: "0.0.0.0_8443",
      routeConfigMatched: "https.443.https.mygateway.default",
      virtualHostMatched: "httpbin.example.com:443",
      clusterMatched: `outbound|8000||${FQDN("httpbin")}`,
    });
    expect(got.downstreamTls).toEqual({
      requireClientCertificate: false,
      certificate: "kubernetes://httpbin-credential",
    });
    // Plaintext to the TLS port: no SNI, so no chain of the server (they match `server_names`).
    expectWalk(walk(r, { ...call, tls: "plaintext" }), { error: "no filter chains matched" });
    // The Secret is not in the config: reported, and the SDS reference stays (Envoy waits for it).
    expect(r.warnings.map((w) => w.code)).toEqual(["missing-secret"]);
  });
  const b64 = (t: string) => Buffer.from(t).toString("base64");
  const secret = (name: string, data: Record<string, string>, type = "kubernetes.io/tls") => `---
apiVersion: v1
kind: Secret
metadata:
  name: ${name}
  namespace: istio-system
type: ${type}
data:
${Object.entries(data)
  .map(([k, v]) => `  ${k}: ${b64(v)}`)
  .join("\n")}
`;
  it("SIMPLE with the Secret in the gateway's namespace: served over ADS as kubernetes://<name>", () => {
    const r = gen(
      BookinfoProxies.ingressgateway(),
      [],
      gw("SIMPLE") + secret("httpbin-credential", { "tls.crt": "CERT", "tls.key": "KEY" }),
    );
    expect(r.warnings).toEqual([]);
    expect(r.secrets.map((x) => [x.name, x.type.case])).toEqual([
      ["kubernetes://httpbin-credential", "tlsCertificate"],
    ]);
    const t = r.secrets[0]?.type;
    expect(
      t?.case === "tlsCertificate"
        ? new TextDecoder().decode(t.value.certificateChain?.specifier.value as Uint8Array)
        : undefined,
    ).toBe("CERT");
  });
  it("MUTUAL with the CA in a separate <name>-cacert Secret (Opaque cert/key/cacert keys)", () => {
    const r = gen(
      BookinfoProxies.ingressgateway(),
      [],
      gw("MUTUAL") +
        secret("httpbin-credential", { cert: "CERT", key: "KEY" }, "Opaque") +
        secret("httpbin-credential-cacert", { cacert: "CA" }, "Opaque"),
    );
    expect(r.warnings).toEqual([]);
    expect(r.secrets.map((x) => [x.name, x.type.case])).toEqual([
      ["kubernetes://httpbin-credential", "tlsCertificate"],
      ["kubernetes://httpbin-credential-cacert", "validationContext"],
    ]);
    // Without any CA: reported.
    const noCa = gen(
      BookinfoProxies.ingressgateway(),
      [],
      gw("MUTUAL") + secret("httpbin-credential", { "tls.crt": "C", "tls.key": "K" }),
    );
    expect(noCa.warnings.map((w) => w.code)).toEqual(["missing-secret"]);
  });
  it("MUTUAL: client certificates required", () => {
    const r = gen(BookinfoProxies.ingressgateway(), [], gw("MUTUAL"));
    const got = walk(r, {
      port: 8443,
      hostHeader: "httpbin.example.com",
      tls: "tls",
      path: "/status/418",
      callMode: "gateway",
    });
    expect(got.downstreamTls).toEqual({
      requireClientCertificate: true,
      certificate: "kubernetes://httpbin-credential",
    });
    expect(got.error).toBe("invalid mTLS");
  });
  it("PASSTHROUGH (ingress-sni-passthrough): SNI routed to the backend, TLS untouched", () => {
    const r = gen(
      BookinfoProxies.ingressgateway(),
      [],
      `apiVersion: v1
kind: Service
metadata:
  name: my-nginx
  namespace: default
spec:
  clusterIP: 10.96.0.30
  selector:
    run: my-nginx
  ports:
  - port: 443
    protocol: TCP
    name: https
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: mygateway
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
      mode: PASSTHROUGH
    hosts:
    - nginx.example.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: nginx
  namespace: default
spec:
  hosts:
  - nginx.example.com
  gateways:
  - mygateway
  tls:
  - match:
    - port: 443
      sniHosts:
      - nginx.example.com
    route:
    - destination:
        host: my-nginx
        port:
          number: 443
`,
    );
    const got = walk(r, {
      port: 8443,
      tls: "tls",
      sni: "nginx.example.com",
      protocol: "tcp",
      callMode: "gateway",
    });
    expectWalk(got, { listenerMatched: "0.0.0.0_8443", clusterMatched: `outbound|443||${FQDN("my-nginx")}` });
    expect(got.downstreamTls).toBeUndefined();
    expectWalk(
      walk(r, { port: 8443, tls: "tls", sni: "other.example.com", protocol: "tcp", callMode: "gateway" }),
      { error: "no filter chains matched" },
    );
  });
});

describe("Egress control (tasks/traffic-management/egress/egress-control)", () => {
  const httpbinExt = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
  namespace: default
spec:
  hosts:
  - httpbin.org
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: httpbin-ext
  namespace: default
spec:
  hosts:
  - httpbin.org
  http:
  - timeout: 3s
    route:
    - destination:
        host: httpbin.org
      weight: 100
`;
  const call = { address: "3.3.3.3", port: 80, hostHeader: "httpbin.org" } as const;
  it("ALLOW_ANY: unknown hosts pass through", () => {
    const r = gen(BookinfoProxies.productpage(), []);
    expectWalk(walk(r, call), { virtualHostMatched: "allow_any", clusterMatched: "PassthroughCluster" });
    expectWalk(
      walk(r, { address: "3.3.3.3", port: 443, protocol: "tcp", tls: "tls", sni: "www.google.com" }),
      { listenerMatched: "virtualOutbound", clusterMatched: "PassthroughCluster" },
    );
  });
  it("REGISTRY_ONLY: unknown hosts blocked (502 on HTTP ports, BlackHoleCluster otherwise)", () => {
    const r = gen(BookinfoProxies.productpage(), [], "", {
      outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
    });
    const got = walk(r, call);
    expectWalk(got, { virtualHostMatched: "block_all" });
    expect(got.directResponse).toEqual({ status: 502 });
    expectWalk(
      walk(r, { address: "3.3.3.3", port: 443, protocol: "tcp", tls: "tls", sni: "www.google.com" }),
      { clusterMatched: "BlackHoleCluster" },
    );
  });
  it("REGISTRY_ONLY with the httpbin-ext ServiceEntry: outbound|80||httpbin.org, DNS, 3s timeout", () => {
    const r = gen(BookinfoProxies.productpage(), [], httpbinExt, {
      outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
    });
    expectWalk(walk(r, call), {
      virtualHostMatched: "httpbin.org:80",
      clusterMatched: "outbound|80||httpbin.org",
    });
    const eps = clusterEndpoints(r, "outbound|80||httpbin.org");
    expect(eps?.type).toBe("STRICT_DNS");
    expect(eps?.endpoints.map((e) => [e.address, e.port, e.tls])).toEqual([["httpbin.org", 80, undefined]]);
    const route = r.routes.find((x) => x.name === "80")?.virtualHosts.find((v) => v.name === "httpbin.org:80")
      ?.routes[0];
    expect(route?.action.case === "route" ? route.action.value.timeout : undefined).toEqual(
      expect.objectContaining({ seconds: 3n }),
    );
  });
});

describe("TCP traffic shifting (tasks/traffic-management/tcp-traffic-shifting)", () => {
  it("tcp-echo-20-v2: 80/20 weighted tcp_proxy on the service VIP", () => {
    const r = gen(
      BookinfoProxies.productpage(),
      [],
      `apiVersion: v1
kind: Service
metadata:
  name: tcp-echo
  namespace: default
spec:
  clusterIP: 10.96.0.40
  selector:
    app: tcp-echo
  ports:
  - name: tcp
    port: 9000
  - name: tcp-other
    port: 9001
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: tcp-echo-destination
  namespace: default
spec:
  host: tcp-echo
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: tcp-echo
  namespace: default
spec:
  hosts:
  - tcp-echo
  tcp:
  - match:
    - port: 9000
    route:
    - destination:
        host: tcp-echo
        port:
          number: 9000
        subset: v1
      weight: 80
    - destination:
        host: tcp-echo
        port:
          number: 9000
        subset: v2
      weight: 20
`,
    );
    const got = walk(r, { address: "10.96.0.40", port: 9000, protocol: "tcp" });
    expectWalk(got, { listenerMatched: "10.96.0.40_9000" });
    expect(got.weightedClusters).toEqual([
      { cluster: `outbound|9000|v1|${FQDN("tcp-echo")}`, weight: 80 },
      { cluster: `outbound|9000|v2|${FQDN("tcp-echo")}`, weight: 20 },
    ]);
    // No pods carry the label: the subset clusters exist with no endpoints (503 / reset, never a dangling name).
    expect(clusterEndpoints(r, `outbound|9000|v2|${FQDN("tcp-echo")}`)?.endpoints).toEqual([]);
  });
});

describe("Security tasks (tasks/security/authentication/authn-policy, authorization/authz-http)", () => {
  const strict = BookinfoPolicies.strict;
  it("STRICT PeerAuthentication: plaintext to productpage fails, mTLS passes", () => {
    const r = gen(BookinfoProxies.productpage(), [], strict);
    expectWalk(walk(r, { ...PRODUCTPAGE_IN, protocol: "http" }), { error: "no filter chains matched" });
    expectWalk(walk(r, { ...PRODUCTPAGE_IN, protocol: "http", tls: "mtls" }), {
      listenerMatched: "virtualInbound",
      filterChainMatched: "0.0.0.0_9080",
      clusterMatched: "inbound|9080||",
    });
  });
  it("allow-nothing then an ALLOW for GET from the ingress gateway: 403 for others, with the deciding policy", () => {
    const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec: {}
---
${BookinfoPolicies.productpageViewer}`;
    const r = gen(BookinfoProxies.productpage(), [], strict + `---\n${policies}`);
    const call = { ...PRODUCTPAGE_IN, protocol: "http", tls: "mtls", path: "/productpage" } as const;
    const ok = walk(r, {
      ...call,
      sourcePrincipal: "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    });
    expect(ok.error).toBeUndefined();
    expect(ok.clusterMatched).toBe("inbound|9080||");
    expect(ok.rbac?.map((d) => [d.action, d.allowed, d.matchedPolicy])).toEqual([
      ["ALLOW", true, "ns[default]-policy[productpage-viewer]-rule[0]"],
    ]);
    const post = walk(r, {
      ...call,
      method: "POST",
      sourcePrincipal: "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    });
    expect(post.error).toBe("rbac denied");
    const other = walk(r, {
      ...call,
      sourcePrincipal: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
    });
    expect(other.error).toBe("rbac denied");
    expect(other.rbac?.[0]?.matchedPolicy).toBeUndefined();
  });
  it("DENY policy: the deny decides, naming its rule", () => {
    const r = gen(
      BookinfoProxies.productpage(),
      [],
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-logout
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/logout"]
`,
    );
    const denied = walk(r, { ...PRODUCTPAGE_IN, protocol: "http", path: "/logout" });
    expect(denied.error).toBe("rbac denied");
    expect(denied.rbac?.map((d) => [d.action, d.allowed, d.matchedPolicy])).toEqual([
      ["DENY", false, "ns[default]-policy[deny-logout]-rule[0]"],
    ]);
    expect(walk(r, { ...PRODUCTPAGE_IN, protocol: "http", path: "/productpage" }).error).toBeUndefined();
  });
});

describe("Bad input fails cleanly (no dangling reference; Snapshot.consistent holds)", () => {
  it("a VirtualService naming a missing subset: a route to a cluster with no endpoints", () => {
    const r = gen(
      BookinfoProxies.productpage(),
      ["destination-rule-all.yaml"],
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: default
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v9
`,
    );
    const got = walk(r, REVIEWS);
    expect(got.clusterMatched).toBe(`outbound|9080|v9|${FQDN("reviews")}`);
    expect(got.error).toBeUndefined();
    expect(clusterEndpoints(r, got.clusterMatched as string)?.endpoints).toEqual([]);
    expect(r.warnings.map((w) => w.code)).toContain("missing-cluster");
  });
  it("two VirtualServices for one host: one is used, deterministically", () => {
    const vs = (name: string, subset: string, time: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: default
  creationTimestamp: "${time}"
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: ${subset}
---
`;
    const a = gen(
      BookinfoProxies.productpage(),
      ["destination-rule-all.yaml"],
      vs("reviews-a", "v2", "2020-01-01T00:00:00Z") + vs("reviews-b", "v3", "2021-01-01T00:00:00Z"),
    );
    const b = gen(
      BookinfoProxies.productpage(),
      ["destination-rule-all.yaml"],
      vs("reviews-b", "v3", "2021-01-01T00:00:00Z") + vs("reviews-a", "v2", "2020-01-01T00:00:00Z"),
    );
    // Oldest wins (Istio: conflicting VirtualServices, first by creation time).
    expect(walk(a, REVIEWS).clusterMatched).toBe(`outbound|9080|v2|${FQDN("reviews")}`);
    expect(walk(b, REVIEWS).clusterMatched).toBe(`outbound|9080|v2|${FQDN("reviews")}`);
  });
  it("a DestinationRule for an unknown host: no cluster for it, nothing dangling", () => {
    const r = gen(
      BookinfoProxies.productpage(),
      [],
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ghost
  namespace: default
spec:
  host: ghost.default.svc.cluster.local
  subsets:
  - name: v1
    labels:
      version: v1
`,
    );
    expect(r.clusters.some((c) => c.name.includes("ghost"))).toBe(false);
  });
});

describe("Sidecar scoping and exportTo (PushContext scopes, the generator follows)", () => {
  const other = `apiVersion: v1
kind: Service
metadata:
  name: private
  namespace: other
  annotations:
    networking.istio.io/exportTo: "."
spec:
  clusterIP: 10.96.9.1
  ports:
  - name: http
    port: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: shared
  namespace: other
spec:
  clusterIP: 10.96.9.2
  ports:
  - name: http
    port: 9080
---
`;
  const hosts = (r: EnvoyResources) =>
    r.routes.find((x) => x.name === "9080")?.virtualHosts.map((v) => v.name) ?? [];
  it("exportTo '.' hides a service from other namespaces", () => {
    const r = gen(BookinfoProxies.productpage(), [], other);
    expect(hosts(r)).toContain("shared.other.svc.cluster.local:9080");
    expect(hosts(r)).not.toContain("private.other.svc.cluster.local:9080");
    expect(r.clusters.some((c) => c.name.includes("private.other"))).toBe(false);
  });
  it("a Sidecar with egress ./* keeps only the namespace's own services", () => {
    const r = gen(
      BookinfoProxies.productpage(),
      [],
      `${other}apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: default
spec:
  egress:
  - hosts:
    - "./*"
`,
    );
    expect(hosts(r)).toEqual([
      `${FQDN("details")}:9080`,
      `${FQDN("productpage")}:9080`,
      `${FQDN("ratings")}:9080`,
      `${FQDN("reviews")}:9080`,
      "allow_any",
    ]);
    expectWalk(walk(r, { address: "10.96.9.2", port: 9080, hostHeader: "shared.other:9080" }), {
      virtualHostMatched: "allow_any",
      clusterMatched: "PassthroughCluster",
    });
  });
});

it("fixtures are the upstream files (each cites its source)", () => {
  for (const f of [
    "bookinfo.yaml",
    "destination-rule-all.yaml",
    "virtual-service-reviews-test-v2.yaml",
    "bookinfo-gateway.yaml",
  ]) {
    expect(bookinfoFile(f)).toMatch(/istio\/istio|samples\/bookinfo/);
  }
});
