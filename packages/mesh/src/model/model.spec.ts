import { describe, expect, it } from "vitest";
import {
  hostSubsetOf,
  hostsOverlap,
  mostSpecificHostMatch,
  resolveGatewayName,
  resolveShortname,
} from "./host.js";
import {
  isGrpcProtocol,
  isHttp2Protocol,
  isHttpProtocol,
  isTcpProtocol,
  isTlsProtocol,
  parseProtocol,
  protocolOfKubernetesPort,
} from "./protocol.js";

describe("host names", () => {
  it.each([
    // istio/istio pkg/config/host/name_test.go TestNameMatches.
    ["", "", true],
    ["", "foo.com", false],
    ["foo.com", "", false],
    ["foo.com", "foo.com", true],
    ["bar.com", "foo.com", false],
    ["bar.foo.com", "foo.com", false],
    ["foo.com", "bar.foo.com", false],
    ["*.com", "foo.com", true],
    ["*.foo.com", "bar.foo.com", true],
    ["*", "foo.com", true],
    ["*", "*.com", true],
    ["*", "com", true],
    ["*", "*", true],
    ["*", "", true],
    ["*.com", "*.foo.com", true],
    ["foo.com", "*.foo.com", false],
    ["*.foo.com", "foo.com", false],
    ["*.foo.bar.baz", "baz", false],
    ["baz", "*.foo.bar.baz", false],
    ["*.foo.bar.baz", "*.baz", true],
    ["foo.bar.baz", "*.baz", true],
  ])("%j overlaps %j: %s (TestNameMatches)", (a, b, want) => {
    expect(hostsOverlap(a, b)).toBe(want);
  });

  it.each([
    // istio/istio pkg/config/host/name_test.go TestNameSubsetOf.
    ["", "", true],
    ["", "foo.com", false],
    ["foo.com", "", false],
    ["foo.com", "foo.com", true],
    ["bar.com", "foo.com", false],
    ["bar.foo.com", "foo.com", false],
    ["foo.com", "bar.foo.com", false],
    ["foo.com", "*.com", true],
    ["bar.foo.com", "*.foo.com", true],
    ["foo.com", "*", true],
    ["*.com", "*", true],
    ["com", "*", true],
    ["*", "*", true],
    ["", "*", true],
    ["*.foo.com", "*.com", true],
    ["*.foo.com", "foo.com", false],
    ["*.foo.bar.baz", "baz", false],
    ["foo.bar.baz", "*.baz", true],
  ])("%j ⊂ %j: %s (TestNameSubsetOf)", (a, b, want) => {
    expect(hostSubsetOf(a, b)).toBe(want);
  });

  it("resolves short names like ResolveShortnameToFQDN", () => {
    // istio/istio pilot/pkg/model/config.go ResolveShortnameToFQDN: "*", IPs and dotted names stay.
    expect(resolveShortname("reviews", "default", "cluster.local")).toBe("reviews.default.svc.cluster.local");
    expect(resolveShortname("reviews.other", "default", "cluster.local")).toBe("reviews.other");
    expect(resolveShortname("*", "default", "cluster.local")).toBe("*");
    expect(resolveShortname("::1", "default", "cluster.local")).toBe("::1");
    expect(resolveShortname("10.0.0.1", "default", "cluster.local")).toBe("10.0.0.1");
  });

  it("resolves gateway references like resolveGatewayName", () => {
    // istio/istio pilot/pkg/model/config.go resolveGatewayName.
    expect(resolveGatewayName("gw", "ns")).toBe("ns/gw");
    expect(resolveGatewayName("./gw", "ns")).toBe("ns/gw");
    expect(resolveGatewayName("other/gw", "ns")).toBe("other/gw");
    expect(resolveGatewayName("gw.other.svc.cluster.local", "ns")).toBe("other/gw");
    expect(resolveGatewayName("gw.other", "ns")).toBe("other/gw");
    expect(resolveGatewayName("mesh", "ns")).toBe("mesh");
  });

  it("picks the exact host, else the longest wildcard (MostSpecificHostMatch)", () => {
    const exact = new Map([["foo.bar.com", "exact"]]);
    const wildcard = new Map([
      ["*.com", "com"],
      ["*.bar.com", "bar"],
      ["*", "any"],
    ]);
    expect(mostSpecificHostMatch("foo.bar.com", exact, wildcard)).toEqual({
      host: "foo.bar.com",
      value: "exact",
    });
    expect(mostSpecificHostMatch("x.bar.com", exact, wildcard)).toEqual({ host: "*.bar.com", value: "bar" });
    expect(mostSpecificHostMatch("x.org", exact, wildcard)).toEqual({ host: "*", value: "any" });
    expect(mostSpecificHostMatch("*.bar.com", exact, wildcard)).toEqual({ host: "*.bar.com", value: "bar" });
    expect(mostSpecificHostMatch("*.x.bar.com", exact, wildcard)).toEqual({
      host: "*.bar.com",
      value: "bar",
    });
    expect(mostSpecificHostMatch("x.org", exact, new Map())).toBeUndefined();
  });
});

describe("protocols", () => {
  it.each([
    // istio/istio pkg/config/protocol/instance_test.go TestParse.
    ["tcp", "TCP"],
    ["http", "HTTP"],
    ["HTTP", "HTTP"],
    ["Http", "HTTP"],
    ["https", "HTTPS"],
    ["http2", "HTTP2"],
    ["grpc", "GRPC"],
    ["grpc-web", "GRPC-Web"],
    ["gRPC-Web", "GRPC-Web"],
    ["grpc-Web", "GRPC-Web"],
    ["udp", "UDP"],
    ["Mongo", "Mongo"],
    ["mongo", "Mongo"],
    ["MONGO", "Mongo"],
    ["Redis", "Redis"],
    ["redis", "Redis"],
    ["REDIS", "Redis"],
    ["Mysql", "MySQL"],
    ["mysql", "MySQL"],
    ["MYSQL", "MySQL"],
    ["MySQL", "MySQL"],
    ["", "UnsupportedProtocol"],
    ["SMTP", "UnsupportedProtocol"],
  ])("parses %j as %s", (name, want) => {
    expect(parseProtocol(name)).toBe(want);
  });

  it.each([
    // istio/istio pkg/config/kube/conversion_test.go TestConvertProtocol.
    ["resolves empty", {}, "UnsupportedProtocol"],
    ["resolves from protocol directly", { protocol: "UDP" }, "UDP"],
    ["resolves from port name", { name: "http-something" }, "HTTP"],
    ["prefers appProto over portName", { name: "http-something", appProtocol: "https" }, "HTTPS"],
    ["resolves from appProto", { name: "something-httpx", appProtocol: "https" }, "HTTPS"],
    ["resolves grpc-web", { name: "grpc-web-x" }, "GRPC-Web"],
    ["makes sure grpc-web is not resolved incorrectly", { name: "grpcweb-x" }, "UnsupportedProtocol"],
    ["resolves based on known ports", { port: 3306, name: "random-name" }, "TCP"],
  ] as const)("%s", (_name, port, want) => {
    expect(protocolOfKubernetesPort(port)).toBe(want);
  });

  it("classifies protocols like Istio's IsHTTP/IsHTTP2/IsTCP/IsTLS/IsGRPC", () => {
    // istio/istio pkg/config/protocol/instance_test.go TestIsHTTP and instance.go.
    expect(isHttpProtocol("UDP")).toBe(false);
    expect(isHttpProtocol("GRPC")).toBe(true);
    expect(isHttp2Protocol("GRPC-Web")).toBe(true);
    expect(isHttp2Protocol("HTTP")).toBe(false);
    expect(isTcpProtocol("MySQL")).toBe(true);
    expect(isTcpProtocol("HTTP")).toBe(false);
    expect(isTlsProtocol("HTTPS")).toBe(true);
    expect(isGrpcProtocol("GRPC")).toBe(true);
  });
});
