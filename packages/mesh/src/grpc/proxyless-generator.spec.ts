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
