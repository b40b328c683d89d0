import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { ClusterLoadAssignmentSchema } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { PushContext } from "../push/push-context.js";
import { snapshotOf } from "../testing/config.js";
import { GRPC_ECHO_CLIENT_ID, GRPC_ECHO_SUBSETS, GRPC_ECHO_YAML } from "../testing/grpc-echo.js";
import { xdsJson } from "../testing/xds-json.js";
import { proxylessCapabilities } from "../translate/capabilities.js";
import { generateProxyless, type ProxylessResources } from "./proxyless-generator.js";

// Golden resources for Istio's proxyless sample (istio/istio samples/grpc-echo/grpc-echo.yaml), as
// Istio's grpc generator builds them (pilot/pkg/networking/grpcgen/lds.go, rds.go, cds.go,
// grpcgen.go; the EDS generator endpoint_builder.go), written out in
// docs/reference/istio-conventions.md §1.4 and checked here against the upstream files: the
// proxyless cluster carries no alt_stat_name (grpcgen `edsCluster` sets none).

const grpcJs = proxylessCapabilities("grpc-js");
const client = parseProxy({ id: GRPC_ECHO_CLIENT_ID, metadata: { GENERATOR: "grpc" } });
const FQDN = "echo.echo-grpc.svc.cluster.local";

function generate(extra: string, names: string[], proxy = client, caps = grpcJs) {
  const push = PushContext.create({ snapshot: snapshotOf(GRPC_ECHO_YAML + extra) });
  return generateProxyless(proxy, push, { listenerNames: names, capabilities: caps });
}

function json(r: ProxylessResources) {
  return {
    listeners: r.listeners.map((l) => xdsJson(ListenerSchema, l)),
    routes: r.routes.map((x) => xdsJson(RouteConfigurationSchema, x)),
    clusters: r.clusters.map((c) => xdsJson(ClusterSchema, c)),
    endpoints: r.endpoints.map((e) => xdsJson(ClusterLoadAssignmentSchema, e)),
  };
}

const DOMAINS = [
  FQDN,
  `${FQDN}:7070`,
  `${FQDN}.`,
  `${FQDN}.:7070`,
  "echo",
  "echo:7070",
  "echo.echo-grpc.svc",
  "echo.echo-grpc.svc:7070",
  "echo.echo-grpc",
  "echo.echo-grpc:7070",
  "10.96.10.10",
  "10.96.10.10:7070",
];
const DEFAULT_RETRY = {
  retry_on: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
  num_retries: 2,
  retry_host_predicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
  host_selection_retry_max_attempts: "5",
};
const endpoint = (ip: string) => ({
  endpoint: { address: { socket_address: { address: ip, port_value: 17070 } } },
  health_status: "HEALTHY",
  load_balancing_weight: 1,
  metadata: { filter_metadata: { istio: { workload: expect.stringMatching(/;echo-grpc;echo;v[12];/) } } },
});

describe("proxyless generator: the grpc-echo sample", () => {
  it("answers xds:///echo.echo-grpc.svc.cluster.local:7070 with Istio's LDS, RDS, CDS and EDS", () => {
    const r = generate("", [`${FQDN}:7070`]);
    expect(r.warnings).toEqual([]);
    expect(json(r)).toEqual({
      listeners: [
        {
          name: `${FQDN}:7070`,
          address: { socket_address: { address: "10.96.10.10", port_value: 7070 } },
          api_listener: {
            api_listener: {
              "@type":
                "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              rds: { config_source: { ads: {} }, route_config_name: `outbound|7070||${FQDN}` },
              http_filters: [
                {
                  name: "envoy.filters.http.fault",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                  },
                },
                {
                  name: "envoy.filters.http.router",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                  },
                },
              ],
            },
          },
        },
      ],
      routes: [
        {
          name: `outbound|7070||${FQDN}`,
          virtual_hosts: [
            {
              name: `${FQDN}:7070`,
              domains: DOMAINS,
              routes: [
                {
                  name: "default",
                  match: { prefix: "/" },
                  route: {
                    cluster: `outbound|7070||${FQDN}`,
                    timeout: "0s",
                    max_grpc_timeout: "0s",
                    retry_policy: DEFAULT_RETRY,
                  },
                  decorator: { operation: `${FQDN}:7070/*` },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: `outbound|7070||${FQDN}`,
          type: "EDS",
          eds_cluster_config: { eds_config: { ads: {} }, service_name: `outbound|7070||${FQDN}` },
        },
      ],
      endpoints: [
        {
          cluster_name: `outbound|7070||${FQDN}`,
          endpoints: [
            {
              locality: {},
              lb_endpoints: [endpoint("10.244.1.10"), endpoint("10.244.1.11")],
              load_balancing_weight: 2,
            },
          ],
        },
      ],
    });
  });

  it("names listeners exactly as dialled and expands short names only in the client's namespace (lds_test.go TestListenerNameFilter)", () => {
    const r = generate("", [
      "echo:7070",
      "echo.echo-grpc:7070",
      "echo.echo-grpc.svc:80",
      "echo.other:7070",
      "missing:7070",
    ]);
    // As in Istio, the names that resolve to one service share its port filter: every requested form
    // gets a listener for every requested port (a client only subscribes to what it dialled).
    expect(r.listeners.map((l) => l.name).sort()).toEqual([
      "echo.echo-grpc.svc:7070",
      "echo.echo-grpc.svc:80",
      "echo.echo-grpc:7070",
      "echo.echo-grpc:80",
      "echo:7070",
      "echo:80",
    ]);
    expect(r.routes.map((x) => x.name).sort()).toEqual([`outbound|7070||${FQDN}`, `outbound|80||${FQDN}`]);
    // A name without a port means every port of the service.
    expect(generate("", [FQDN]).listeners.map((l) => l.name)).toEqual([
      `${FQDN}:80`,
      `${FQDN}:7070`,
      `${FQDN}:9090`,
    ]);
  });

  it("keeps only the other-namespace domain forms for a client elsewhere", () => {
    const other = parseProxy({
      id: "sidecar~10.244.9.9~c.default~default.svc.cluster.local",
      metadata: { GENERATOR: "grpc" },
    });
    const r = generate("", [`${FQDN}:7070`], other);
    expect(r.routes[0]?.virtualHosts[0]?.domains).toEqual([
      FQDN,
      `${FQDN}:7070`,
      `${FQDN}.`,
      `${FQDN}.:7070`,
      "echo.echo-grpc.svc",
      "echo.echo-grpc.svc:7070",
      "echo.echo-grpc",
      "echo.echo-grpc:7070",
      "10.96.10.10",
      "10.96.10.10:7070",
    ]);
  });

  it("shifts 20/80 to subset clusters with max_stream_duration, and sends only the subsets in use (grpcecho_test.go)", () => {
    const r = generate(
      `${GRPC_ECHO_SUBSETS}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: echo-grpc }
spec:
  hosts: [echo.echo-grpc.svc.cluster.local]
  http:
    - route:
        - { destination: { host: echo.echo-grpc.svc.cluster.local, subset: v1 }, weight: 20 }
        - { destination: { host: echo.echo-grpc.svc.cluster.local, subset: v2 }, weight: 80 }
`,
      [`${FQDN}:7070`],
    );
    const j = json(r);
    expect(j.routes[0]).toMatchObject({
      virtual_hosts: [
        {
          routes: [
            {
              route: {
                weighted_clusters: {
                  clusters: [
                    { name: `outbound|7070|v1|${FQDN}`, weight: 20 },
                    { name: `outbound|7070|v2|${FQDN}`, weight: 80 },
                  ],
                },
                timeout: "0s",
                max_stream_duration: { max_stream_duration: "0s" },
              },
              metadata: {
                filter_metadata: {
                  istio: { config: "/apis/networking.istio.io/v1/namespaces/echo-grpc/virtual-service/echo" },
                },
              },
              decorator: { operation: "echo:7070/*" },
            },
          ],
        },
      ],
    });
    expect(r.clusters.map((c) => c.name)).toEqual([`outbound|7070|v1|${FQDN}`, `outbound|7070|v2|${FQDN}`]);
    expect(
      j.endpoints.map((e) => (e as { endpoints: { lb_endpoints: unknown[] }[] }).endpoints[0]?.lb_endpoints),
    ).toEqual([[endpoint("10.244.1.10")], [endpoint("10.244.1.11")]]);
  });

  it("ends a virtual host whose routes gRPC cannot match with a BlackHoleCluster route, so C-core does not NACK it", () => {
    // grpc/grpc xds_route_config.cc RoutePathMatchParse: a path that is not /<service>/<method> (or
    // a prefix with more than two "/") never matches a gRPC request and the route is skipped; a
    // virtual host left without routes NACKs the RouteConfiguration ("No valid routes specified.").
    const vs = (uri: string) => `${GRPC_ECHO_SUBSETS}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: echo-grpc }
spec:
  hosts: [echo]
  http:
    - match: [{ uri: ${uri} }]
      route: [{ destination: { host: echo, subset: v1 } }]
---`;
    const r = generate(vs("{ exact: /healthz }"), [`${FQDN}:7070`]);
    const routes = (json(r).routes[0] as { virtual_hosts: { routes: unknown[] }[] }).virtual_hosts[0]?.routes;
    expect(routes).toHaveLength(2);
    expect(routes?.[0]).toMatchObject({ match: { path: "/healthz" } });
    expect(routes?.[1]).toEqual({
      match: { prefix: "/" },
      route: {
        cluster: "BlackHoleCluster",
        timeout: "0s",
        max_stream_duration: { max_stream_duration: "0s" },
      },
    });
    expect(json(r).clusters.map((c) => (c as { name: string }).name)).toContain("BlackHoleCluster");
    expect(r.warnings.map((w) => [w.code, w.config?.name])).toEqual([
      ["UNSUPPORTED_BY_CLIENT", "echo"],
      ["UNSUPPORTED_BY_CLIENT", "echo"],
    ]);
    for (const uri of ["{ prefix: /a/b/c }", "{ prefix: //x }", "{ prefix: healthz }", "{ exact: /a/b/c }"]) {
      const other = generate(vs(uri), [`${FQDN}:7070`]);
      const vh = (json(other).routes[0] as { virtual_hosts: { routes: unknown[] }[] }).virtual_hosts[0];
      expect(vh?.routes, uri).toHaveLength(2);
    }
    // Paths gRPC can match are left alone.
    for (const uri of [
      "{ exact: /echo.Echo/Call }",
      "{ prefix: /echo.Echo/ }",
      "{ prefix: /echo.Echo }",
      "{ regex: /x.* }",
    ]) {
      const ok = generate(vs(uri), [`${FQDN}:7070`]);
      const vh = (json(ok).routes[0] as { virtual_hosts: { routes: unknown[] }[] }).virtual_hosts[0];
      expect(vh?.routes, uri).toHaveLength(1);
      expect(ok.warnings, uri).toEqual([]);
    }
  });

  it("generates no resource for listener and cluster names the client made up (Istio ignores names it does not know)", () => {
    // gRFC A27: for LDS and CDS over SotW, a requested name absent from the response does not exist.
    const push = PushContext.create({ snapshot: snapshotOf(GRPC_ECHO_YAML) });
    const r = generateProxyless(client, push, {
      listenerNames: ["nosuch.example.com:7070", `${FQDN}:7070`],
      clusterNames: [
        "outbound|7070||nosuch.example.com",
        `outbound|9999||${FQDN}`,
        `outbound|7070|nosubset|${FQDN}`,
        `outbound|7070||${FQDN}`,
      ],
      capabilities: grpcJs,
    });
    expect(r.listeners.map((l) => l.name)).toEqual([`${FQDN}:7070`]);
    expect(r.clusters.map((c) => c.name)).toEqual([`outbound|7070||${FQDN}`]);
    expect(r.endpoints.map((e) => e.clusterName)).toEqual([`outbound|7070||${FQDN}`]);
    expect(r.warnings.filter((w) => w.message.includes("not generated"))).toHaveLength(3);
  });

  it("keeps warnings about hostile resource names short and escaped, and never throws on them", () => {
    const long = `outbound|7070|${"x".repeat(100_000)}|${FQDN}`;
    const names = [
      `outbound|7070|\u001b[31mred|${FQDN}`,
      long,
      "outbound|abc||x",
      "outbound|99999999999999999999||x",
      "|||",
      "inbound|7070||",
    ];
    const push = PushContext.create({ snapshot: snapshotOf(GRPC_ECHO_YAML) });
    const r = generateProxyless(client, push, {
      listenerNames: [`xds.istio.io/grpc/lds/inbound/${"y".repeat(100_000)}`, "x".repeat(100_000)],
      clusterNames: names,
      capabilities: grpcJs,
    });
    expect(r.warnings.length).toBeGreaterThan(0);
    for (const w of r.warnings) {
      expect(w.message.length).toBeLessThan(800);
      expect(w.message).not.toContain("\u001b");
    }
    expect(r.warnings.map((w) => w.message).join("\n")).toContain("\\u001b[31mred");
  });

  it("does not fall back to the default route when every route of the VirtualService matches on what gRPC cannot see", () => {
    // Envoy answers requests that match no route of the VirtualService with 404; gRPC has no query
    // string and no JWT filter, so such routes are left out — and no request may reach the service
    // through the default route instead.
    const r = generate(
      `${GRPC_ECHO_SUBSETS}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: echo-grpc }
spec:
  hosts: [echo]
  http:
    - match: [{ queryParams: { canary: { exact: "1" } } }]
      route: [{ destination: { host: echo, subset: v2 } }]
---`,
      [`${FQDN}:7070`],
    );
    const vh = (json(r).routes[0] as { virtual_hosts: { routes: unknown[] }[] }).virtual_hosts[0];
    expect(vh?.routes).toEqual([
      {
        match: { prefix: "/" },
        route: {
          cluster: "BlackHoleCluster",
          timeout: "0s",
          max_stream_duration: { max_stream_duration: "0s" },
        },
      },
    ]);
    expect(r.clusters.map((c) => c.name)).toEqual(["BlackHoleCluster"]);
    expect(r.warnings.map((w) => w.code)).toEqual(["UNSUPPORTED_BY_CLIENT", "UNSUPPORTED_BY_CLIENT"]);
    // A VirtualService whose routes are all for another port still leaves this port the default route.
    const other = generate(
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: echo-grpc }
spec:
  hosts: [echo]
  http:
    - match: [{ port: 80 }]
      route: [{ destination: { host: echo, port: { number: 80 } } }]
---`,
      [`${FQDN}:7070`],
    );
    expect(other.clusters.map((c) => c.name)).toEqual([`outbound|7070||${FQDN}`]);
    expect(other.warnings).toEqual([]);
  });

  it("says why a DNS or NONE-resolution ServiceEntry gets no endpoints for proxyless gRPC (Istio sends none either)", () => {
    // istio/istio pilot/pkg/xds/endpoints/endpoint_builder.go returns no endpoints for DNS
    // clusters; gRPC cannot resolve hostname endpoints from EDS nor pass through.
    const se = (name: string, host: string, resolution: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: echo-grpc }
spec:
  hosts: [${host}]
  location: MESH_EXTERNAL
  resolution: ${resolution}
  ports: [{ number: 443, name: grpc, protocol: GRPC }]
---`;
    const r = generate(se("dns", "api.example.com", "DNS") + se("none", "raw.example.com", "NONE"), [
      "api.example.com:443",
      "raw.example.com:443",
    ]);
    expect(r.endpoints.map((e) => [e.clusterName, e.endpoints.length])).toEqual([
      ["outbound|443||api.example.com", 0],
      ["outbound|443||raw.example.com", 0],
    ]);
    expect(r.warnings.map((w) => [w.code, w.config?.name, w.message.includes("UNAVAILABLE")])).toEqual([
      ["UNSUPPORTED_BY_CLIENT", "dns", true],
      ["UNSUPPORTED_BY_CLIENT", "none", true],
    ]);
    // A STATIC one is served as before, without a warning.
    expect(generate("", [`${FQDN}:7070`]).warnings).toEqual([]);
  });

  it("gives a route to an undefined subset a cluster without endpoints, and says so", () => {
    const r = generate(
      `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: echo-grpc }
spec:
  hosts: [echo]
  http: [{ route: [{ destination: { host: echo, subset: v9 } }] }]
`,
      ["echo:7070"],
    );
    expect(r.clusters.map((c) => c.name)).toEqual([`outbound|7070|v9|${FQDN}`]);
    expect(r.endpoints).toHaveLength(1);
    expect(r.endpoints[0]?.endpoints).toEqual([]);
    expect(r.warnings.map((w) => w.message)).toEqual([expect.stringContaining('subset "v9"')]);
  });

  it("builds the STRICT server listener with a DENY RBAC filter for echo-v1 (grpcgen_test.go initRBACTests)", () => {
    const server = parseProxy({
      id: "sidecar~10.244.1.10~echo-v1-0.echo-grpc~echo-grpc.svc.cluster.local",
      metadata: { GENERATOR: "grpc" },
    });
    const name = "xds.istio.io/grpc/lds/inbound/0.0.0.0:17070";
    const policies = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: echo-grpc }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: echo-deny, namespace: echo-grpc }
spec:
  action: DENY
  rules: [{ when: [{ key: "request.headers[echo]", values: [block] }] }]
---`;
    const r = generate(policies, [name], server, proxylessCapabilities("grpc-c-core"));
    expect(r.warnings).toEqual([]);
    const listener = json(r).listeners[0] as Record<string, unknown>;
    expect(listener).toMatchObject({
      name,
      address: { socket_address: { address: "0.0.0.0", port_value: 17070 } },
      filter_chains: [
        {
          name: "inbound-mtls",
          filters: [
            {
              name: "inbound-hcmmtls",
              typed_config: {
                route_config: {
                  name: "inbound",
                  virtual_hosts: [
                    { domains: ["*"], routes: [{ match: { prefix: "/" }, non_forwarding_action: {} }] },
                  ],
                },
                http_filters: [
                  { name: "envoy.filters.http.rbac.DENY", typed_config: { rules: { action: "DENY" } } },
                  { name: "envoy.filters.http.router" },
                ],
              },
            },
          ],
          transport_socket: {
            name: "envoy.transport_sockets.tls",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
              common_tls_context: {
                tls_certificate_provider_instance: { instance_name: "default", certificate_name: "default" },
                combined_validation_context: {
                  validation_context_certificate_provider_instance: {
                    instance_name: "default",
                    certificate_name: "ROOTCA",
                  },
                },
              },
              require_client_certificate: true,
            },
          },
        },
      ],
    });
    expect(listener.listener_filters).toBeUndefined();
    const rbac = JSON.stringify(listener);
    expect(rbac).toContain('"echo-grpc-echo-deny-0"');
    // Istio's grpcgen writes string_match here; meshlet writes exact_match, which gRPC C-core 1.51 reads.
    expect(rbac).toContain('"header":{"name":"echo","exact_match":"block"}');
  });

  // gRFC A41 (grpc/proposal A41-xds-rbac.md, "RBAC policy"): a header matcher on a `grpc-` header or
  // on `:scheme` is a validation failure that NACKs the listener; `metadata` (what jwt_authn
  // writes) is hard-coded as empty and never matches.
  const rbacServer = parseProxy({
    id: "sidecar~10.244.1.10~echo-v1-0.echo-grpc~echo-grpc.svc.cluster.local",
    metadata: { GENERATOR: "grpc" },
  });
  const serverName = "xds.istio.io/grpc/lds/inbound/0.0.0.0:17070";
  const rbacFilters = (r: ProxylessResources) => {
    const hcm = (json(r).listeners[0] as { filter_chains: { filters: { typed_config: unknown }[] }[] })
      .filter_chains[0]?.filters[0]?.typed_config as {
      http_filters: { name: string; typed_config?: { rules?: { action?: string; policies?: unknown } } }[];
    };
    return Object.fromEntries(hcm.http_filters.map((f) => [f.name, f.typed_config?.rules]));
  };
  const matchAll = {
    permissions: [{ any: true }],
    principals: [{ any: true }],
  };

  it("never sends RBAC that gRPC NACKs: a DENY on a grpc- header or :scheme denies everything instead (gRFC A41)", () => {
    for (const header of ["grpc-trace-bin", "Grpc-Foo", ":scheme"]) {
      const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: hdr, namespace: echo-grpc }
spec:
  action: DENY
  rules: [{ when: [{ key: "request.headers[${header}]", values: [x] }] }]
---`;
      const r = generate(policy, [serverName], rbacServer, proxylessCapabilities("grpc-c-core"));
      expect(r.listeners.map((l) => l.name)).toEqual([serverName]);
      expect(JSON.stringify(json(r).listeners)).not.toContain(`"name":"${header}"`);
      expect(rbacFilters(r)["envoy.filters.http.rbac.DENY"]).toEqual({
        action: "DENY",
        policies: { "echo-grpc-hdr-0": matchAll },
      });
      expect(r.warnings).toEqual([
        expect.objectContaining({
          code: "INVALID_CONFIG",
          message: expect.stringContaining("A41"),
          config: { kind: "AuthorizationPolicy", namespace: "echo-grpc", name: "hdr" },
        }),
      ]);
    }
  });

  it("drops an ALLOW policy that matches a grpc- header: the ALLOW filter stays and allows nothing", () => {
    const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow, namespace: echo-grpc }
spec:
  action: ALLOW
  rules:
    - { when: [{ key: "request.headers[grpc-foo]", values: [x] }] }
---`;
    const r = generate(policy, [serverName], rbacServer, proxylessCapabilities("grpc-c-core"));
    // An ALLOW filter without policies (action ALLOW = 0 and the empty map are not on the wire).
    expect(rbacFilters(r)).toEqual({ "envoy.filters.http.rbac": {}, "envoy.filters.http.router": undefined });
    expect(r.warnings.map((w) => w.code)).toEqual(["INVALID_CONFIG"]);
  });

  it("fails a DENY on JWT claims closed, and says an ALLOW on request principals matches no JWT (gRFC A41: metadata never matches)", () => {
    const deny = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: jwt-deny, namespace: echo-grpc }
spec:
  action: DENY
  rules: [{ when: [{ key: "request.auth.claims[iss]", values: [evil] }] }]
---`;
    const r = generate(deny, [serverName], rbacServer, proxylessCapabilities("grpc-c-core"));
    expect(rbacFilters(r)["envoy.filters.http.rbac.DENY"]).toEqual({
      action: "DENY",
      policies: { "echo-grpc-jwt-deny-0": matchAll },
    });
    expect(r.warnings).toEqual([
      expect.objectContaining({
        code: "INVALID_CONFIG",
        message: expect.stringContaining("metadata never matches"),
      }),
    ]);
    const allow = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: jwt-allow, namespace: echo-grpc }
spec:
  action: ALLOW
  rules: [{ from: [{ source: { requestPrincipals: ["*"] } }] }]
---`;
    const a = generate(allow, [serverName], rbacServer, proxylessCapabilities("grpc-c-core"));
    expect(Object.keys((rbacFilters(a)["envoy.filters.http.rbac"] as { policies: object }).policies)).toEqual(
      ["echo-grpc-jwt-allow-0"],
    );
    expect(a.warnings).toEqual([
      expect.objectContaining({
        code: "UNSUPPORTED_BY_CLIENT",
        message: expect.stringContaining("as if no request carried a verified JWT"),
      }),
    ]);
  });

  it("withholds a server listener that needs RBAC from grpc-js without its RBAC flag, and serves no port no service selects", () => {
    const server = parseProxy({
      id: "sidecar~10.244.1.10~echo-v1-0.echo-grpc~echo-grpc.svc.cluster.local",
      metadata: { GENERATOR: "grpc" },
    });
    const deny = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: echo-grpc }
spec: { action: DENY, rules: [{}] }
---`;
    const names = [
      "xds.istio.io/grpc/lds/inbound/0.0.0.0:17070",
      "xds.istio.io/grpc/lds/inbound/0.0.0.0:5555",
    ];
    const r = generate(deny, names, server, grpcJs);
    expect(r.listeners).toEqual([]);
    expect(r.warnings.map((w) => w.code).sort()).toEqual(["INVALID_CONFIG", "UNSUPPORTED_BY_CLIENT"]);
    const withFlag = generate(deny, names, server, proxylessCapabilities("grpc-js", { rbac: true }));
    expect(withFlag.listeners.map((l) => l.name)).toEqual([names[0]]);
  });
});
