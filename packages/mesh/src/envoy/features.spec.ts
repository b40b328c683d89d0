import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { OpenTelemetryConfigSchema } from "@meshlet/api/envoy/config/trace/v3/opentelemetry_pb";
import { FileAccessLogSchema } from "@meshlet/api/envoy/extensions/access_loggers/file/v3/file_pb";
import { OpenTelemetryAccessLogConfigSchema } from "@meshlet/api/envoy/extensions/access_loggers/open_telemetry/v3/logs_service_pb";
import {
  ExtAuthzPerRouteSchema,
  ExtAuthzSchema,
} from "@meshlet/api/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb";
import { JwtAuthenticationSchema } from "@meshlet/api/envoy/extensions/filters/http/jwt_authn/v3/config_pb";
import { RateLimitSchema } from "@meshlet/api/envoy/extensions/filters/http/ratelimit/v3/rate_limit_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { describe, expect, it } from "vitest";
import { walk } from "../explain/walker.js";
import { parseProxy } from "../proxy/proxy.js";
import type { MeshConfig } from "../push/mesh-config.js";
import { PushContext } from "../push/push-context.js";
import { BookinfoProxies, bookinfoSnapshot } from "../testing/bookinfo.js";
import { expectWalk, expectWellFormed } from "../testing/envoy-sim.js";
import type { EnvoyGeneratorOptions } from "./context.js";
import { generateEnvoy } from "./generate.js";
import type { EnvoyResources } from "./resources.js";

// Per-feature checks of the Envoy generators on the Bookinfo productpage sidecar: what Istio's
// generator emits for CUSTOM authorization (istio/istio pilot/pkg/security/authz/builder/extauthz.go),
// RequestAuthentication (pilot/pkg/security/authn/policy_applier.go), access logs and tracing
// (pilot/pkg/model/telemetry_logging.go, networking/core/tracing.go), TCP RBAC
// (networkfilter.go), plus the rate-limit filter of Istio's rate-limit task. Envoy cannot run
// here: the assertions read the generated protos, and walks (src/explain/walker.ts) check what they mean.

const EXTRAS = `apiVersion: v1
kind: Service
metadata:
  name: ext-authz
  namespace: foo
spec:
  clusterIP: 10.96.5.1
  ports:
  - name: grpc
    port: 9000
---
apiVersion: v1
kind: Service
metadata:
  name: otel-collector
  namespace: observability
spec:
  clusterIP: 10.96.5.2
  ports:
  - name: grpc-otlp
    port: 4317
---
apiVersion: v1
kind: Service
metadata:
  name: ratelimit
  namespace: default
spec:
  clusterIP: 10.96.5.3
  ports:
  - name: grpc
    port: 8081
---
`;

function gen(
  extra: string,
  mesh: Partial<MeshConfig> = {},
  options: EnvoyGeneratorOptions = {},
  proxy = BookinfoProxies.productpage(),
): EnvoyResources {
  const push = PushContext.create({ snapshot: bookinfoSnapshot([], EXTRAS + extra), mesh });
  const r = generateEnvoy(proxy, push, options);
  expectWellFormed(r);
  return r;
}

/** The HTTP connection manager of a listener's chain. */
function hcmOf(l: Listener | undefined, chain: string): HttpConnectionManager {
  const fc = [...(l?.filterChains ?? [])].find(
    (c) =>
      c.name === chain && c.filters.some((f) => f.name === "envoy.filters.network.http_connection_manager"),
  );
  const f = fc?.filters.find((x) => x.name === "envoy.filters.network.http_connection_manager");
  const hcm =
    f?.configType.case === "typedConfig"
      ? anyUnpack(f.configType.value, HttpConnectionManagerSchema)
      : undefined;
  if (hcm === undefined) throw new Error(`no HCM on chain ${chain}`);
  return hcm;
}
const inboundHcm = (r: EnvoyResources) =>
  hcmOf(
    r.listeners.find((l) => l.name === "virtualInbound"),
    "0.0.0.0_9080",
  );
const outboundHcm = (r: EnvoyResources) =>
  hcmOf(
    r.listeners.find((l) => l.name === "0.0.0.0_9080"),
    "",
  );
const IN = { address: "10.244.1.10", port: 9080, callMode: "inbound", protocol: "http" } as const;

describe("AuthorizationPolicy CUSTOM → ext_authz (Istio extauthz.go)", () => {
  const custom = (provider: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext-authz
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: CUSTOM
  provider:
    name: ${provider}
  rules:
  - to:
    - operation:
        paths: ["/admin/*"]
`;
  const providers: Partial<MeshConfig> = {
    extensionProviders: [
      { name: "my-ext-authz", envoyExtAuthzGrpc: { service: "ext-authz.foo.svc.cluster.local", port: 9000 } },
    ],
  };
  it("an RBAC marker then ext_authz gated on it, pointed at the provider's cluster, with the workload's context extensions", () => {
    const r = gen(custom("my-ext-authz"), providers);
    const hcm = inboundHcm(r);
    expect(hcm.httpFilters.map((f) => f.name).slice(0, 3)).toEqual([
      "istio.metadata_exchange",
      "envoy.filters.http.rbac",
      "envoy.filters.http.ext_authz",
    ]);
    const ext =
      hcm.httpFilters[2]?.configType.case === "typedConfig"
        ? anyUnpack(hcm.httpFilters[2].configType.value, ExtAuthzSchema)
        : undefined;
    expect(
      ext?.services.case === "grpcService" && ext.services.value.targetSpecifier.case === "envoyGrpc"
        ? ext.services.value.targetSpecifier.value.clusterName
        : undefined,
    ).toBe("outbound|9000||ext-authz.foo.svc.cluster.local");
    expect(
      ext?.filterEnabledMetadata?.path.map((p) => (p.segment.case === "key" ? p.segment.value : "")),
    ).toEqual(["istio_ext_authz_shadow_effective_policy_id"]);
    // The inbound route tells meshlet's ExtAuthzServer which workload the check is for (docs/policy.md).
    const route =
      hcm.routeSpecifier.case === "routeConfig"
        ? hcm.routeSpecifier.value.virtualHosts[0]?.routes[0]
        : undefined;
    const perRoute = route?.typedPerFilterConfig["envoy.filters.http.ext_authz"];
    const settings = perRoute === undefined ? undefined : anyUnpack(perRoute, ExtAuthzPerRouteSchema);
    expect(
      settings?.override.case === "checkSettings" ? settings.override.value.contextExtensions : undefined,
    ).toEqual({
      "meshlet.io/namespace": "default",
      // The pod's labels, the injector's tlsMode label included.
      "meshlet.io/labels": JSON.stringify({
        app: "productpage",
        "security.istio.io/tlsMode": "istio",
        version: "v1",
      }),
    });
    expect(walk(r, { ...IN, path: "/admin/x" }).extAuthz).toBe(
      "outbound|9000||ext-authz.foo.svc.cluster.local",
    );
    expect(r.clusters.map((c) => c.name)).toContain("outbound|9000||ext-authz.foo.svc.cluster.local");
  });
  it("an unknown provider denies every request (Istio's default-deny-all-due-to-bad-CUSTOM-action)", () => {
    const r = gen(custom("nobody"), providers);
    const got = walk(r, { ...IN, path: "/productpage" });
    expect(got.error).toBe("rbac denied");
    expect(got.rbac?.[0]?.matchedPolicy).toBe("default-deny-all-due-to-bad-CUSTOM-action");
    expect(r.warnings.map((w) => w.code)).toContain("unknown-provider");
  });
});

describe("RequestAuthentication → jwt_authn, AuthorizationPolicy requestPrincipals (tasks/security/authentication/jwt-route)", () => {
  const config = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwks: '{"keys":[{"kty":"RSA","e":"AQAB","n":"xAE7eB6qugXyCAG3yhh7pkDkT65pHymX-P7KfIupjf59vsdo91bSP9C8H07pSAGQO1MV_xFj9VswgsCg4R6otmg5PV2He95lZdHtOcU5DXIg_pbhLdKXbi66GlVeK6ABZOUW3WYtnNHD-91gVuoeJT_DwtGGcp4ignkgXfkiEm4sw-4sfb4qdt5oLbyVpmW6x9cfa7vs2WTfURiCrBoUqgBo_-4WTiULmmHSGZHOjzwa8WtrtOQGsAFjIbno85jp6MnGGGZPYZbDAa_b3y5u-YpW7ypZrvD8BgtKVjgtQgZhLAGezMt0ua3DRrWnKqTZ0BJ_EyxOGuHJrLsn00fnMQ"}]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-jwt
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - from:
    - source:
        requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
`;
  it("jwt_authn before RBAC, one provider per issuer, payload in metadata; RBAC reads the claims", () => {
    const r = gen(config);
    const hcm = inboundHcm(r);
    const names = hcm.httpFilters.map((f) => f.name);
    expect(names.indexOf("envoy.filters.http.jwt_authn")).toBeLessThan(
      names.indexOf("envoy.filters.http.rbac"),
    );
    const jwtFilter = hcm.httpFilters.find((f) => f.name === "envoy.filters.http.jwt_authn");
    const jwt =
      jwtFilter?.configType.case === "typedConfig"
        ? anyUnpack(jwtFilter.configType.value, JwtAuthenticationSchema)
        : undefined;
    expect(Object.keys(jwt?.providers ?? {})).toEqual(["origins-0"]);
    expect(jwt?.providers["origins-0"]?.issuer).toBe("testing@secure.istio.io");
    expect(jwt?.providers["origins-0"]?.payloadInMetadata).toBe("payload");
    const claims = { iss: "testing@secure.istio.io", sub: "testing@secure.istio.io" };
    expect(walk(r, { ...IN, jwtClaims: claims }).error).toBeUndefined();
    expect(walk(r, IN).error).toBe("rbac denied");
  });
});

describe("TCP: AuthorizationPolicy on a TCP port → network RBAC before tcp_proxy", () => {
  it("denies a TCP connection by port (tasks/security/authorization/authz-tcp)", () => {
    const r = gen(`apiVersion: v1
kind: Service
metadata:
  name: tcp-echo
  namespace: default
spec:
  clusterIP: 10.96.0.40
  selector:
    app: productpage
  ports:
  - name: tcp
    port: 9000
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: tcp-policy
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: DENY
  rules:
  - to:
    - operation:
        ports: ["9000"]
`);
    const got = walk(r, { address: "10.244.1.10", port: 9000, protocol: "tcp", callMode: "inbound" });
    expectWalk(got, { error: "rbac denied", filterChainMatched: "0.0.0.0_9000" });
    expect(got.rbac?.[0]).toMatchObject({
      filter: "envoy.filters.network.rbac",
      action: "DENY",
      matchedPolicy: "ns[default]-policy[tcp-policy]-rule[0]",
    });
  });
});

describe("Telemetry from MeshConfig: access logs, tracing, metrics", () => {
  it("accessLogFile: Istio's text format to the file", () => {
    const r = gen("", { accessLogFile: "/dev/stdout" });
    const log = outboundHcm(r).accessLog[0];
    expect(log?.name).toBe("envoy.access_loggers.file");
    const file =
      log?.configType.case === "typedConfig"
        ? anyUnpack(log.configType.value, FileAccessLogSchema)
        : undefined;
    expect(file?.path).toBe("/dev/stdout");
  });
  it("an envoyOtelAls provider: OpenTelemetry access logs over gRPC to the collector's cluster", () => {
    const r = gen("", {
      extensionProviders: [
        {
          name: "otel",
          envoyOtelAls: { service: "otel-collector.observability.svc.cluster.local", port: 4317 },
        },
      ],
      defaultProviders: { accessLogging: ["otel"] },
    });
    const log = inboundHcm(r).accessLog[0];
    expect(log?.name).toBe("envoy.access_loggers.open_telemetry");
    const otel =
      log?.configType.case === "typedConfig"
        ? anyUnpack(log.configType.value, OpenTelemetryAccessLogConfigSchema)
        : undefined;
    const grpc = otel?.commonConfig?.grpcService?.targetSpecifier;
    expect(grpc?.case === "envoyGrpc" ? grpc.value.clusterName : undefined).toBe(
      "outbound|4317||otel-collector.observability.svc.cluster.local",
    );
    expect(otel?.commonConfig?.logName).toBe("otel_envoy_accesslog");
  });
  it("an opentelemetry tracing provider: HCM tracing to the collector, service name from the app label", () => {
    const r = gen("", {
      extensionProviders: [
        {
          name: "otel-tracing",
          opentelemetry: { service: "otel-collector.observability.svc.cluster.local", port: 4317 },
        },
      ],
      defaultProviders: { tracing: ["otel-tracing"] },
    });
    const tracing = outboundHcm(r).tracing;
    expect(tracing?.provider?.name).toBe("envoy.tracers.opentelemetry");
    const cfg =
      tracing?.provider?.configType.case === "typedConfig"
        ? anyUnpack(tracing.provider.configType.value, OpenTelemetryConfigSchema)
        : undefined;
    expect(cfg?.serviceName).toBe("productpage.default");
    expect(outboundHcm(gen("")).tracing).toBeUndefined();
  });
  it("istio.stats on every HTTP chain unless metrics providers exclude Prometheus", () => {
    expect(outboundHcm(gen("")).httpFilters.map((f) => f.name)).toContain("istio.stats");
    expect(
      outboundHcm(gen("", { defaultProviders: { metrics: [] } })).httpFilters.map((f) => f.name),
    ).not.toContain("istio.stats");
  });
});

describe("Global rate limit (tasks/policy-enforcement/rate-limit)", () => {
  it("envoy.filters.http.ratelimit before the router, pointed at the rate-limit service, actions on the inbound vhost", () => {
    const r = gen(
      "",
      {},
      {
        rateLimits: [
          {
            namespace: "default",
            selector: { app: "productpage" },
            domain: "productpage-ratelimit",
            actions: [{ requestHeader: ":path", descriptorKey: "PATH" }],
          },
        ],
        rateLimitService: { host: "ratelimit.default.svc.cluster.local", port: 8081 },
      },
    );
    const hcm = inboundHcm(r);
    const names = hcm.httpFilters.map((f) => f.name);
    expect(names.slice(-2)).toEqual(["envoy.filters.http.ratelimit", "envoy.filters.http.router"]);
    const f = hcm.httpFilters.at(-2);
    const cfg =
      f?.configType.case === "typedConfig" ? anyUnpack(f.configType.value, RateLimitSchema) : undefined;
    expect(cfg?.domain).toBe("productpage-ratelimit");
    const svc = cfg?.rateLimitService?.grpcService?.targetSpecifier;
    expect(svc?.case === "envoyGrpc" ? svc.value.clusterName : undefined).toBe(
      "outbound|8081||ratelimit.default.svc.cluster.local",
    );
    const vh =
      hcm.routeSpecifier.case === "routeConfig" ? hcm.routeSpecifier.value.virtualHosts[0] : undefined;
    expect(vh?.rateLimits[0]?.actions[0]?.actionSpecifier).toMatchObject({
      case: "requestHeaders",
      value: { headerName: ":path", descriptorKey: "PATH" },
    });
    // Without a reachable service: no filter, a warning.
    const none = gen("", {}, { rateLimits: [{ domain: "d", actions: [{ genericKey: "all" }] }] });
    expect(inboundHcm(none).httpFilters.map((x) => x.name)).not.toContain("envoy.filters.http.ratelimit");
    expect(none.warnings.map((w) => w.code)).toContain("unknown-provider");
  });
});

describe("TLS routes on sidecars (VirtualService tls, sniHosts)", () => {
  it("an HTTPS ServiceEntry without VIP: SNI filter chains on 0.0.0.0_443, TLS routed by SNI", () => {
    const r = gen(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external
  namespace: default
spec:
  hosts:
  - www.example.com
  - api.example.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
  namespace: default
spec:
  hosts:
  - api.example.com
  tls:
  - match:
    - port: 443
      sniHosts:
      - api.example.com
    route:
    - destination:
        host: www.example.com
        port:
          number: 443
`);
    expectWalk(
      walk(r, { address: "3.3.3.3", port: 443, protocol: "tcp", tls: "tls", sni: "api.example.com" }),
      { listenerMatched: "0.0.0.0_443", clusterMatched: "outbound|443||www.example.com" },
    );
    expectWalk(
      walk(r, { address: "3.3.3.3", port: 443, protocol: "tcp", tls: "tls", sni: "www.example.com" }),
      { clusterMatched: "outbound|443||www.example.com" },
    );
    expectWalk(walk(r, { address: "3.3.3.3", port: 443, protocol: "tcp", tls: "tls", sni: "other.org" }), {
      clusterMatched: "PassthroughCluster",
    });
  });
});

describe("Egress gateway (tasks/traffic-management/egress/egress-gateway)", () => {
  const config = `apiVersion: v1
kind: Service
metadata:
  name: istio-egressgateway
  namespace: istio-system
spec:
  clusterIP: 10.96.1.20
  selector:
    istio: egressgateway
  ports:
  - name: http2
    port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: istio-egressgateway-0
  namespace: istio-system
  labels:
    app: istio-egressgateway
    istio: egressgateway
spec:
  serviceAccountName: istio-egressgateway-service-account
  containers:
  - name: istio-proxy
    ports:
    - containerPort: 8080
status:
  phase: Running
  podIP: 10.244.3.10
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
  namespace: default
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
  namespace: default
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - edition.cnn.com
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
  namespace: default
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        port:
          number: 80
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 80
      weight: 100
`;
  it("the sidecar sends edition.cnn.com to the egress gateway, which sends it out", () => {
    const sidecar = gen(config);
    expectWalk(walk(sidecar, { address: "3.3.3.3", port: 80, hostHeader: "edition.cnn.com" }), {
      virtualHostMatched: "edition.cnn.com:80",
      clusterMatched: "outbound|80||istio-egressgateway.istio-system.svc.cluster.local",
    });
    const gw = generateEnvoy(
      parseProxy({
        id: "router~10.244.3.10~istio-egressgateway-0.istio-system~istio-system.svc.cluster.local",
        metadata: {
          NAMESPACE: "istio-system",
          LABELS: { app: "istio-egressgateway", istio: "egressgateway" },
          INSTANCE_IPS: "10.244.3.10",
        },
      }),
      PushContext.create({ snapshot: bookinfoSnapshot([], EXTRAS + config) }),
    );
    expectWellFormed(gw);
    expectWalk(walk(gw, { port: 8080, hostHeader: "edition.cnn.com", callMode: "gateway" }), {
      listenerMatched: "0.0.0.0_8080",
      routeConfigMatched: "http.8080",
      virtualHostMatched: "edition.cnn.com:80",
      clusterMatched: "outbound|80||edition.cnn.com",
    });
  });
});
