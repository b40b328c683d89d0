import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MeshError } from "../mesh-error.js";
import {
  checkProxyIdentity,
  MAX_ISTIO_VERSION,
  type NodeLike,
  parseIstioVersion,
  parseProxy,
} from "./proxy.js";

function refusal(node: NodeLike): MeshError {
  try {
    parseProxy(node);
  } catch (e) {
    if (e instanceof MeshError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(node.id)} to be refused`);
}

describe("parseProxy", () => {
  it("reads Istio's sidecar id: type, IP, pod.namespace id and DNS domain", () => {
    // istio/istio pilot/pkg/model/context_test.go TestServiceNode: memory.HelloProxyV0 serializes to
    // "sidecar~10.1.1.0~v0.default~default.svc.cluster.local".
    const proxy = parseProxy({ id: "sidecar~10.1.1.0~v0.default~default.svc.cluster.local" });
    expect(proxy).toMatchObject({
      type: "sidecar",
      kind: "sidecar",
      ipAddresses: ["10.1.1.0"],
      workloadId: "v0.default",
      dnsDomain: "default.svc.cluster.local",
      namespace: "default",
      clusterId: "",
      interceptionMode: "REDIRECT",
      istioVersion: MAX_ISTIO_VERSION,
    });
  });

  it("takes every INSTANCE_IPS address over the id's IP", () => {
    // istio/istio pilot/pkg/model/context_test.go TestServiceNode: INSTANCE_IPS
    // "10.3.3.3,10.4.4.4,10.5.5.5,10.6.6.6" gives all four addresses for "sidecar~10.3.3.3~random~local".
    const proxy = parseProxy({
      id: "sidecar~10.3.3.3~random~local",
      metadata: { INSTANCE_IPS: "10.3.3.3,10.4.4.4,10.5.5.5,10.6.6.6", NAMESPACE: "default" },
    });
    expect(proxy.ipAddresses).toEqual(["10.3.3.3", "10.4.4.4", "10.5.5.5", "10.6.6.6"]);
    // pilot/pkg/model/context.go ParseServiceNodeWithMetadata: a bad INSTANCE_IPS list falls back to the id.
    const fallback = parseProxy({
      id: "sidecar~10.3.3.3~a.b~b.svc.cluster.local",
      metadata: { INSTANCE_IPS: "10.4.4.4,not-an-ip" },
    });
    expect(fallback.ipAddresses).toEqual(["10.3.3.3"]);
  });

  it("identifies the node of Istio's gRPC bootstrap golden as proxyless", () => {
    // istio/istio pkg/istio-agent/testdata/grpc-bootstrap.json.
    const proxy = parseProxy({
      id: "sidecar~127.0.0.1~pod1.fake-namespace~fake-namespace.svc.cluster.local",
      metadata: {
        GENERATOR: "grpc",
        INSTANCE_IPS: "127.0.0.1",
        ISTIO_VERSION: "version",
        METADATA_DISCOVERY: "false",
        PILOT_SAN: ["istiod.istio-system.svc"],
      },
      locality: {},
    });
    expect(proxy.kind).toBe("proxyless");
    expect(proxy.namespace).toBe("fake-namespace");
    expect(proxy.ipAddresses).toEqual(["127.0.0.1"]);
    expect(proxy.istioVersion).toEqual(MAX_ISTIO_VERSION); // "version" is not a version
    expect(proxy.metadata.metadataDiscovery).toBe(false);
    expect(proxy.metadata.pilotSan).toEqual(["istiod.istio-system.svc"]);
    expect(proxy.locality).toBeUndefined();
  });

  it("reads every field of a real grpc-agent node (Istio 1.14.1)", () => {
    const node = JSON.parse(
      readFileSync(new URL("./testdata/istio-1.14-grpc-agent-node.json", import.meta.url), "utf8"),
    ) as NodeLike;
    const proxy = parseProxy(node, { trustDomain: "cluster.local" });
    expect(proxy).toMatchObject({
      type: "sidecar",
      kind: "proxyless",
      namespace: "dubbo-demo",
      ipAddresses: ["172.17.0.4"],
      serviceAccount: "default",
      identity: "spiffe://cluster.local/ns/dubbo-demo/sa/default",
      clusterId: "Kubernetes",
      istioVersion: { major: 1, minor: 14, patch: 1 },
      labels: { app: "dubbo-demo-consumer-dev", version: "v1" },
    });
    expect(proxy.metadata).toMatchObject({
      meshId: "cluster.local",
      workloadName: "dubbo-demo-consumer-deployment-grpc-agent",
      envoyStatusPort: 15021,
      envoyPrometheusPort: 15090,
      instanceName: "dubbo-demo-consumer-deployment-grpc-agent-58585cb9cd-gp79p",
      appContainers: "app,dubbo-demo-consumer",
    });
    expect(proxy.metadata.podPorts).toEqual([
      { containerPort: 17070, protocol: "TCP" },
      { containerPort: 17171, protocol: "TCP" },
      { containerPort: 8080, protocol: "TCP" },
      { name: "tcp-health-port", containerPort: 3333, protocol: "TCP" },
    ]);
    expect(proxy.metadata.proxyConfig?.discoveryAddress).toBe("istiod.istio-system.svc:15012");
    expect(proxy.metadata.raw.ISTIO_PROXY_SHA).toBe("2b6009118109b480e1d5abf3188fd7d9c0c0acf0");
  });

  it("reads a protobuf-es Node message and does not freeze it", () => {
    const node = create(NodeSchema, {
      id: "router~10.0.0.5~istio-ingressgateway-7d4f.istio-system~istio-system.svc.cluster.local",
      metadata: { LABELS: { istio: "ingressgateway" }, CLUSTER_ID: "Kubernetes" },
      locality: { region: "us-east1", zone: "us-east1-b", subZone: "" },
    });
    const proxy = parseProxy(node);
    expect(proxy.kind).toBe("gateway");
    expect(proxy.type).toBe("router");
    expect(proxy.labels).toEqual({ istio: "ingressgateway" });
    expect(proxy.locality).toEqual({ region: "us-east1", zone: "us-east1-b", subZone: "" });
    expect(Object.isFrozen(proxy)).toBe(true);
    expect(Object.isFrozen(node.metadata)).toBe(false);
  });

  it("takes the namespace from NAMESPACE, then the svc DNS domain, then the pod.namespace id part", () => {
    expect(
      parseProxy({ id: "sidecar~10.0.0.1~p.a~a.svc.cluster.local", metadata: { NAMESPACE: "a" } }).namespace,
    ).toBe("a");
    // Istio's grpc-simple template writes the domain "cluster.local"; the pod.namespace part names the namespace.
    expect(parseProxy({ id: "sidecar~10.0.0.1~echo.test~cluster.local" }).namespace).toBe("test");
    expect(
      parseProxy({ id: "sidecar~10.0.0.1~x~cluster.local", metadata: { NAMESPACE: "ns1" } }).namespace,
    ).toBe("ns1");
  });

  it("parses INTERCEPTION_MODE and defaults to REDIRECT", () => {
    // istio/istio pilot/pkg/model/context.go GetInterceptionMode.
    const id = "sidecar~10.0.0.1~p.a~a.svc.cluster.local";
    expect(parseProxy({ id, metadata: { INTERCEPTION_MODE: "TPROXY" } }).interceptionMode).toBe("TPROXY");
    expect(parseProxy({ id, metadata: { INTERCEPTION_MODE: "NONE" } }).interceptionMode).toBe("NONE");
    expect(parseProxy({ id, metadata: { INTERCEPTION_MODE: "bogus" } }).interceptionMode).toBe("REDIRECT");
  });

  describe("refuses a node without a usable identity, saying what is missing", () => {
    it.each([
      ["", /has no id/],
      ["sidecar~10.0.0.1~p.ns", /has 3 part\(s\).*expected 4/],
      ["ingress~10.0.0.1~p.ns~ns.svc.cluster.local", /type "ingress"; expected "sidecar".*"router"/],
      ["waypoint~10.0.0.1~p.ns~ns.svc.cluster.local", /ambient waypoint/],
      ["sidecar~not-an-ip~p.ns~ns.svc.cluster.local", /no valid IP address.*INSTANCE_IPS is absent/],
      ["sidecar~10.0.0.1~pod~cluster.local", /no namespace.*set NAMESPACE/],
    ])("%j", (id, message) => {
      const error = refusal({ id });
      expect(error.code).toBe("INVALID_NODE");
      expect(error.grpcCode).toBe(3); // INVALID_ARGUMENT, as istiod's initProxyMetadata answers
      expect(error.rawMessage).toMatch(message);
    });

    it("a NAMESPACE that contradicts the DNS domain", () => {
      const error = refusal({ id: "sidecar~10.0.0.1~p.a~a.svc.cluster.local", metadata: { NAMESPACE: "b" } });
      expect(error.rawMessage).toMatch(/namespace "a" in its DNS domain but metadata NAMESPACE is "b"/);
    });

    it.each([
      [{ LABELS: { app: 1 } }, /LABELS\.app must be a string; got number 1/],
      [{ LABELS: ["app"] }, /LABELS must be an object of strings; got an array/],
      [{ NAMESPACE: 7 }, /NAMESPACE must be a string/],
      [{ INSTANCE_IPS: ["10.0.0.1"] }, /INSTANCE_IPS must be a string/],
      [{ DNS_CAPTURE: true }, /DNS_CAPTURE must be a string/],
      [{ DNS_CAPTURE: "yes" }, /DNS_CAPTURE must be a boolean string/],
      [{ ENVOY_STATUS_PORT: "15021" }, /ENVOY_STATUS_PORT must be an integer/],
      [{ POD_PORTS: "[{" }, /POD_PORTS must be a string holding a JSON array/],
      [{ PROXY_CONFIG: "x" }, /PROXY_CONFIG must be an object/],
    ])("metadata %j", (metadata, message) => {
      // istio/istio pkg/model/proxy.go: NodeMetadata is decoded with encoding/json into typed fields
      // (StringList, StringBool, map[string]string, int), so these are decode errors in istiod too.
      const error = refusal({ id: "sidecar~10.0.0.1~p.a~a.svc.cluster.local", metadata });
      expect(error.code).toBe("INVALID_NODE");
      expect(error.rawMessage).toMatch(message);
    });
  });

  it("parses Go-style string booleans the way Istio's StringBool does", () => {
    // istio/istio pkg/model/proxy_test.go TestStringBool: "1" → true, "0" → false.
    const id = "sidecar~10.0.0.1~p.a~a.svc.cluster.local";
    expect(parseProxy({ id, metadata: { DNS_CAPTURE: "1" } }).metadata.dnsCapture).toBe(true);
    expect(parseProxy({ id, metadata: { DNS_CAPTURE: "0" } }).metadata.dnsCapture).toBe(false);
    expect(parseProxy({ id, metadata: { DNS_CAPTURE: "True" } }).metadata.dnsCapture).toBe(true);
  });

  it("splits comma lists like Istio's StringList", () => {
    // istio/istio pkg/model/proxy_test.go TestStringList: "a,b,c" → [a b c], "" → [].
    const id = "sidecar~10.0.0.1~p.a~a.svc.cluster.local";
    expect(
      parseProxy({ id, metadata: { REQUESTED_NETWORK_VIEW: "a,b,c" } }).metadata.requestedNetworkView,
    ).toEqual(["a", "b", "c"]);
    expect(
      parseProxy({ id, metadata: { REQUESTED_NETWORK_VIEW: "" } }).metadata.requestedNetworkView,
    ).toEqual([]);
  });

  describe("property: the id parser", () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    const ipv4 = fc.ipV4();
    const type = fc.constantFrom("sidecar", "router");

    it("round-trips every well-formed Istio id", () => {
      fc.assert(
        fc.property(type, fc.oneof(ipv4, fc.ipV6()), label, label, (t, ip, pod, ns) => {
          const proxy = parseProxy({ id: `${t}~${ip}~${pod}.${ns}~${ns}.svc.cluster.local` });
          expect(proxy.type).toBe(t);
          expect(proxy.ipAddresses).toEqual([ip]);
          expect(proxy.workloadId).toBe(`${pod}.${ns}`);
          expect(proxy.namespace).toBe(ns);
          expect(proxy.dnsDomain).toBe(`${ns}.svc.cluster.local`);
        }),
      );
    });

    it("answers any string with a Proxy or an INVALID_NODE refusal, never another exception", () => {
      const tilde = fc.constantFrom("~", "~", "sidecar~", "router~", "10.0.0.1", ".svc.", ".");
      const text = fc.array(fc.oneof(fc.string(), tilde), { maxLength: 8 }).map((a) => a.join(""));
      fc.assert(
        fc.property(
          text,
          fc.dictionary(fc.constantFrom("NAMESPACE", "INSTANCE_IPS", "LABELS"), fc.jsonValue()),
          (id, metadata) => {
            try {
              const proxy = parseProxy({ id, metadata: metadata as never });
              expect(id.split("~")).toHaveLength(4);
              expect(proxy.ipAddresses.length).toBeGreaterThan(0);
              expect(proxy.namespace).not.toBe("");
            } catch (e) {
              expect(e).toBeInstanceOf(MeshError);
              expect((e as MeshError).code).toBe("INVALID_NODE");
            }
          },
        ),
      );
    });

    it("refuses any mutation of a valid id that breaks its shape", () => {
      fc.assert(
        fc.property(ipv4, label, label, fc.integer({ min: 0, max: 2 }), (ip, pod, ns, drop) => {
          const parts = ["sidecar", ip, `${pod}.${ns}`, `${ns}.svc.cluster.local`];
          parts.splice(drop + 1, 1); // drop one of the last three parts
          expect(() => parseProxy({ id: parts.join("~") })).toThrow(MeshError);
        }),
      );
    });
  });
});

describe("parseIstioVersion", () => {
  it("follows Istio's ParseIstioVersion", () => {
    // istio/istio pilot/pkg/model/context.go: release- prefix stripped, missing patch = 65535,
    // nothing readable = the maximum version.
    expect(parseIstioVersion("1.14.1")).toEqual({ major: 1, minor: 14, patch: 1 });
    expect(parseIstioVersion("release-1.22")).toEqual({ major: 1, minor: 22, patch: 65535 });
    expect(parseIstioVersion("1.24.0-beta.1")).toEqual({ major: 1, minor: 24, patch: 0 });
    expect(parseIstioVersion("")).toEqual(MAX_ISTIO_VERSION);
    expect(parseIstioVersion("master")).toEqual(MAX_ISTIO_VERSION);
  });
});

describe("checkProxyIdentity", () => {
  const proxy = parseProxy({
    id: "sidecar~10.0.0.1~p.bookinfo~bookinfo.svc.cluster.local",
    metadata: { SERVICE_ACCOUNT: "bookinfo-reviews" },
  });

  it("accepts a peer identity in the proxy's namespace and service account", () => {
    // istio/istio pilot/pkg/xds/authentication.go checkConnectionIdentity.
    expect(
      checkProxyIdentity(proxy, [
        "spiffe://cluster.local/ns/other/sa/x",
        "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews",
      ]),
    ).toBe("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews");
  });

  it("refuses identities of another namespace or service account with PERMISSION_DENIED", () => {
    for (const ids of [
      ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"],
      ["spiffe://cluster.local/ns/bookinfo/sa/x"],
      [],
    ]) {
      try {
        checkProxyIdentity(proxy, ids);
        throw new Error("expected a refusal");
      } catch (e) {
        expect(e).toBeInstanceOf(MeshError);
        expect((e as MeshError).code).toBe("IDENTITY_MISMATCH");
        expect((e as MeshError).grpcCode).toBe(7);
      }
    }
  });
});
