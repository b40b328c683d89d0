import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MeshError } from "../mesh-error.js";
import {
  dnsSrvSubsetKey,
  inboundClusterName,
  outboundClusterName,
  outboundSni,
  parseSubsetKey,
  subsetKey,
} from "./cluster-names.js";
import { parseWorkloadIdentity, workloadIdentity } from "./identity.js";
import {
  gatewayRouteConfigName,
  IstioNames,
  inboundVirtualHostName,
  listenerName,
  sidecarOutboundRouteName,
  virtualHostName,
} from "./listener-names.js";
import {
  expandProxylessShortName,
  parseProxylessServerListenerName,
  proxylessListenerRequests,
  proxylessRouteConfigName,
  proxylessServerListenerName,
} from "./proxyless-names.js";

describe("cluster names", () => {
  it("builds Istio's subset keys", () => {
    // istio/istio pilot/pkg/model/service.go BuildSubsetKey / BuildInboundSubsetKey /
    // BuildDNSSrvSubsetKey, with the examples of docs (reference/istio-conventions.md §2.1).
    expect(outboundClusterName("reviews.default.svc.cluster.local", 9080, "v1")).toBe(
      "outbound|9080|v1|reviews.default.svc.cluster.local",
    );
    expect(outboundClusterName("reviews.default.svc.cluster.local", 9080)).toBe(
      "outbound|9080||reviews.default.svc.cluster.local",
    );
    expect(inboundClusterName(9080)).toBe("inbound|9080||");
    expect(outboundSni("reviews.default.svc.cluster.local", 9080, "v1")).toBe(
      "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
    );
    expect(subsetKey("outbound", "", "httpbin.org", 80)).toBe("outbound|80||httpbin.org");
  });

  it("parses both key forms back (Istio ParseSubsetKey)", () => {
    expect(parseSubsetKey("outbound|9080|v1|reviews.default.svc.cluster.local")).toEqual({
      direction: "outbound",
      port: 9080,
      subset: "v1",
      hostname: "reviews.default.svc.cluster.local",
    });
    expect(parseSubsetKey("outbound_.9080_.v1_.reviews.default.svc.cluster.local")).toEqual({
      direction: "outbound",
      port: 9080,
      subset: "v1",
      hostname: "reviews.default.svc.cluster.local",
    });
    expect(parseSubsetKey("inbound|8080||")).toEqual({
      direction: "inbound",
      port: 8080,
      subset: "",
      hostname: "",
    });
    expect(parseSubsetKey("virtualInbound")).toBeUndefined();
    expect(parseSubsetKey("outbound|1|a|b|c")).toBeUndefined();
  });

  it("property: parse(build(x)) = x for both forms", () => {
    const host = fc.stringMatching(/^[a-z0-9*][a-z0-9.-]{0,40}$/);
    const subset = fc.stringMatching(/^[a-z0-9-]{0,10}$/);
    fc.assert(
      fc.property(
        fc.constantFrom("inbound", "outbound") as fc.Arbitrary<"inbound" | "outbound">,
        subset,
        host,
        fc.integer({ min: 1, max: 65535 }),
        (d, s, h, p) => {
          expect(parseSubsetKey(subsetKey(d, s, h, p))).toEqual({
            direction: d,
            port: p,
            subset: s,
            hostname: h,
          });
          expect(parseSubsetKey(dnsSrvSubsetKey(d, s, h, p))).toEqual({
            direction: d,
            port: p,
            subset: s,
            hostname: h,
          });
        },
      ),
    );
  });
});

describe("listener, route and vhost names", () => {
  it("names listeners <bind>_<port> (Istio getListenerName)", () => {
    // istio/istio pilot/pkg/networking/core/gateway.go getListenerName.
    expect(listenerName("0.0.0.0", 9080)).toBe("0.0.0.0_9080");
    expect(listenerName("10.96.0.20", 9000)).toBe("10.96.0.20_9000");
    expect(listenerName("0.0.0.0", 443, "udp")).toBe("udp_0.0.0.0_443");
  });

  it("names virtual hosts <fqdn>:<port> and inbound vhosts inbound|http|<port>", () => {
    // istio/istio pilot/pkg/networking/util DomainName; listener_inbound.go.
    expect(virtualHostName("echo.echo-grpc.svc.cluster.local", 7070)).toBe(
      "echo.echo-grpc.svc.cluster.local:7070",
    );
    expect(inboundVirtualHostName(9080)).toBe("inbound|http|9080");
  });

  it("names sidecar outbound routes by port (Istio listener.go rdsName)", () => {
    expect(sidecarOutboundRouteName(9080)).toBe("9080");
    expect(sidecarOutboundRouteName(0, { unixSocket: "unix:///var/run/app.sock" })).toBe(
      "unix:///var/run/app.sock",
    );
    expect(sidecarOutboundRouteName(80, { sniffedServiceHostname: "a.ns.svc.cluster.local" })).toBe(
      "a.ns.svc.cluster.local:80",
    );
  });

  it("names gateway routes like gatewayRDSRouteName", () => {
    // istio/istio pilot/pkg/model/gateway.go gatewayRDSRouteName.
    const gw = { name: "bookinfo-gateway", namespace: "default" };
    expect(gatewayRouteConfigName({ port: { number: 80, protocol: "HTTP", name: "http" } }, gw)).toBe(
      "http.80",
    );
    expect(
      gatewayRouteConfigName({ port: { number: 80, protocol: "HTTP", name: "http" }, bind: "1.1.1.1" }, gw),
    ).toBe("http.80.1.1.1.1");
    expect(
      gatewayRouteConfigName(
        { port: { number: 443, protocol: "HTTPS", name: "https" }, tls: { mode: "SIMPLE" } },
        gw,
      ),
    ).toBe("https.443.https.bookinfo-gateway.default");
    expect(
      gatewayRouteConfigName(
        { port: { number: 443, protocol: "HTTPS", name: "https" }, tls: { mode: "PASSTHROUGH" } },
        gw,
      ),
    ).toBeUndefined();
    expect(
      gatewayRouteConfigName({ port: { number: 31400, protocol: "TCP", name: "tcp" } }, gw),
    ).toBeUndefined();
  });

  it("uses Istio's special names", () => {
    // istio/istio pilot/pkg/model/listener.go and pilot/pkg/networking/util/util.go.
    expect(IstioNames.virtualOutbound).toBe("virtualOutbound");
    expect(IstioNames.virtualInbound).toBe("virtualInbound");
    expect(IstioNames.passthroughCluster).toBe("PassthroughCluster");
    expect(IstioNames.inboundPassthroughCluster).toBe("InboundPassthroughCluster");
    expect(IstioNames.blockAllVirtualHost).toBe("block_all");
    expect(IstioNames.allowAnyVirtualHost).toBe("allow_any");
    expect([IstioNames.sdsDefault, IstioNames.sdsRootCa]).toEqual(["default", "ROOTCA"]);
  });
});

describe("proxyless names", () => {
  // istio/istio pilot/pkg/networking/grpcgen/lds_test.go: node DNSDomain "ns.svc.cluster.local", namespace "ns".
  const client = { namespace: "ns", dnsDomain: "ns.svc.cluster.local" };

  it.each([
    ["foo", "foo.ns.svc.cluster.local"],
    ["foo.ns", "foo.ns.svc.cluster.local"],
    ["foo.ns.svc", "foo.ns.svc.cluster.local"],
    ["foo.ns.svc.cluster.local", undefined],
    ["foo.com", undefined],
    ["foo.ns.com", undefined],
    ["foo.ns.svc.notdnsdomain", undefined],
    ["foo.ns.svc.cluster.local.extra", undefined],
    ["xds.istio.io/grpc/lds/inbound/0.0.0.0:1234", undefined],
  ])("expands %s as TestTryFindFQDN expects", (name, want) => {
    expect(expandProxylessShortName(name, client)).toBe(want);
  });

  it("does not expand another namespace's short names", () => {
    expect(expandProxylessShortName("reviews.other", client)).toBeUndefined();
  });

  const requests = (names: string[]) =>
    Object.fromEntries(
      [...proxylessListenerRequests(names, client)].map(([k, v]) => [
        k,
        { requestedNames: [...v.requestedNames].sort(), ports: [...v.ports].sort() },
      ]),
    );

  it("groups requested names like newListenerNameFilter (TestListenerNameFilter)", () => {
    // istio/istio pilot/pkg/networking/grpcgen/lds_test.go TestListenerNameFilter, case by case.
    expect(requests(["foo.com:80", "foo.com:443", "wildcard.com"])).toEqual({
      "foo.com": { requestedNames: ["foo.com"], ports: ["443", "80"] },
      "wildcard.com": { requestedNames: ["wildcard.com"], ports: [] },
    });
    expect(requests(["foo.com:80", "foo.com"])).toEqual({
      "foo.com": { requestedNames: ["foo.com"], ports: [] },
    });
    expect(requests(["foo.com:80", "foo.com", "foo.com:443"])).toEqual({
      "foo.com": { requestedNames: ["foo.com"], ports: [] },
    });
    const inbound = "xds.istio.io/grpc/lds/inbound/[::]:8076";
    expect(requests(["foo.com:80", inbound])).toEqual({
      "foo.com": { requestedNames: ["foo.com"], ports: ["80"] },
      [inbound]: { requestedNames: [inbound], ports: [] },
    });
    expect(
      requests([
        "bar",
        "bar.ns",
        "bar.ns.svc",
        "bar.ns.svc.cluster.local",
        "foo:80",
        "foo.ns:81",
        "foo.ns.svc:82",
        "foo.ns.svc.cluster.local:83",
      ]),
    ).toEqual({
      bar: { requestedNames: ["bar"], ports: [] },
      "bar.ns": { requestedNames: ["bar.ns"], ports: [] },
      "bar.ns.svc": { requestedNames: ["bar.ns.svc"], ports: [] },
      "bar.ns.svc.cluster.local": {
        requestedNames: ["bar", "bar.ns", "bar.ns.svc", "bar.ns.svc.cluster.local"],
        ports: [],
      },
      foo: { requestedNames: ["foo"], ports: ["80"] },
      "foo.ns": { requestedNames: ["foo.ns"], ports: ["81"] },
      "foo.ns.svc": { requestedNames: ["foo.ns.svc"], ports: ["82"] },
      "foo.ns.svc.cluster.local": {
        requestedNames: ["foo", "foo.ns", "foo.ns.svc", "foo.ns.svc.cluster.local"],
        ports: ["80", "81", "82", "83"],
      },
    });
  });

  it("names server listeners with the bootstrap template and parses them back", () => {
    // istio/istio pkg/istio-agent/grpcxds/grpc_bootstrap.go ServerListenerNamePrefix; examples from
    // grpcgen lds_test.go ("0.0.0.0:1234", "[::]:8076").
    expect(proxylessServerListenerName("0.0.0.0", 17070)).toBe("xds.istio.io/grpc/lds/inbound/0.0.0.0:17070");
    expect(proxylessServerListenerName("::", 8076)).toBe("xds.istio.io/grpc/lds/inbound/[::]:8076");
    expect(parseProxylessServerListenerName("xds.istio.io/grpc/lds/inbound/[::]:8076")).toEqual({
      host: "::",
      port: 8076,
    });
    expect(parseProxylessServerListenerName("xds.istio.io/grpc/lds/inbound/foo")).toBeUndefined();
    expect(parseProxylessServerListenerName("xds.istio.io/grpc/lds/inbound/foo:99999")).toBeUndefined();
    expect(parseProxylessServerListenerName("reviews:9080")).toBeUndefined();
  });

  it("names the route config of a client listener like the default cluster", () => {
    // istio/istio pilot/pkg/networking/grpcgen/lds.go: RouteConfigName = clusterKey(host, port).
    expect(proxylessRouteConfigName("echo.echo-grpc.svc.cluster.local", 7070)).toBe(
      "outbound|7070||echo.echo-grpc.svc.cluster.local",
    );
  });
});

describe("workload identity", () => {
  it("writes spiffe://<td>/ns/<ns>/sa/<sa> and sanitizes @ like Istio", () => {
    // istio/istio pkg/spiffe/spiffe.go genSpiffeURI / sanitizeTrustDomain.
    expect(workloadIdentity("cluster.local", "echo-grpc", "default")).toBe(
      "spiffe://cluster.local/ns/echo-grpc/sa/default",
    );
    expect(workloadIdentity("foo@bar.com", "ns", "sa")).toBe("spiffe://foo.bar.com/ns/ns/sa/sa");
    expect(parseWorkloadIdentity("spiffe://cluster.local/ns/a/sa/b")).toEqual({
      trustDomain: "cluster.local",
      namespace: "a",
      serviceAccount: "b",
    });
    expect(parseWorkloadIdentity("spiffe://cluster.local/workload/x")).toBeUndefined();
  });

  it("refuses an empty namespace or service account (Istio returns an error too)", () => {
    expect(() => workloadIdentity("cluster.local", "", "sa")).toThrow(MeshError);
    expect(() => workloadIdentity("cluster.local", "ns", "")).toThrow(
      /needs a namespace and a service account/,
    );
    expect(() => workloadIdentity("Cluster.Local", "ns", "sa")).toThrow(/must be lowercase/);
  });
});
