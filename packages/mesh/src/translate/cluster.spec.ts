import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { PushContext } from "../push/push-context.js";
import { snapshotOf } from "../testing/config.js";
import { GRPC_ECHO_CLIENT_ID, GRPC_ECHO_YAML } from "../testing/grpc-echo.js";
import { xdsJson } from "../testing/xds-json.js";
import { ENVOY_CAPABILITIES, type ProxyCapabilities, proxylessCapabilities } from "./capabilities.js";
import { buildOutboundCluster, mergeTrafficPolicy } from "./cluster.js";
import type { TranslationWarning } from "./warnings.js";

// Expected values: Istio's grpcgen cds.go / grpcgen.go (proxyless) and cluster_traffic_policy.go /
// cluster_tls.go (Envoy), and the derived proxyless CDS of docs/reference/istio-conventions.md §1.4.

const client = parseProxy({ id: GRPC_ECHO_CLIENT_ID, metadata: { GENERATOR: "grpc" } });

function clusterFor(trafficPolicy: string, caps: ProxyCapabilities, subset = "", subsets = "") {
  const push = PushContext.create({
    snapshot: snapshotOf(`${GRPC_ECHO_YAML}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: echo-grpc }
spec:
  host: echo.echo-grpc.svc.cluster.local
  trafficPolicy: ${trafficPolicy}
  subsets:
    - { name: v1, labels: { version: v1 }${subsets} }
`),
  });
  const service = push.registry.service("echo.echo-grpc.svc.cluster.local", "echo-grpc");
  if (service === undefined) throw new Error("no echo service");
  const port = service.ports.find((p) => p.port === 7070);
  if (port === undefined) throw new Error("no port 7070");
  const warnings: TranslationWarning[] = [];
  const cluster = buildOutboundCluster(
    { push, proxy: client, capabilities: caps, warn: (w) => warnings.push(w) },
    { service, port, subset },
  );
  const json = cluster === undefined ? {} : (xdsJson(ClusterSchema, cluster) as Record<string, unknown>);
  return { json, built: cluster !== undefined, warnings };
}

const grpcJs = proxylessCapabilities("grpc-js");
const PROVIDER_TLS = {
  name: "envoy.transport_sockets.tls",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    common_tls_context: {
      tls_certificate_provider_instance: { instance_name: "default", certificate_name: "default" },
      tls_certificate_certificate_provider_instance: {
        instance_name: "default",
        certificate_name: "default",
      },
      combined_validation_context: {
        default_validation_context: {
          match_subject_alt_names: [{ exact: "spiffe://cluster.local/ns/echo-grpc/sa/default" }],
          ca_certificate_provider_instance: { instance_name: "default", certificate_name: "ROOTCA" },
        },
        validation_context_certificate_provider_instance: {
          instance_name: "default",
          certificate_name: "ROOTCA",
        },
      },
    },
  },
};

describe("translate/cluster: proxyless gRPC (grpcgen cds.go)", () => {
  it("builds the ISTIO_MUTUAL subset cluster with certificate provider instances and the endpoints' identities", () => {
    const { json, warnings } = clusterFor("{ tls: { mode: ISTIO_MUTUAL } }", grpcJs, "v1");
    expect(warnings).toEqual([]);
    expect(json).toEqual({
      name: "outbound|7070|v1|echo.echo-grpc.svc.cluster.local",
      type: "EDS",
      eds_cluster_config: {
        eds_config: { ads: {} },
        service_name: "outbound|7070|v1|echo.echo-grpc.svc.cluster.local",
      },
      transport_socket: PROVIDER_TLS,
    });
  });

  it("hashes on a ring with Envoy's default size and maps http2MaxRequests to max_requests only (cds_test.go)", () => {
    const { json } = clusterFor(
      "{ loadBalancer: { consistentHash: { httpHeaderName: x-user } }, connectionPool: { http: { http2MaxRequests: 1, http1MaxPendingRequests: 5 }, tcp: { maxConnections: 3 } } }",
      grpcJs,
    );
    expect(json).toMatchObject({
      lb_policy: "RING_HASH",
      ring_hash_lb_config: { minimum_ring_size: "1024" },
      circuit_breakers: { thresholds: [{ max_requests: 1 }] },
    });
    expect((json.circuit_breakers as { thresholds: object[] }).thresholds[0]).toEqual({ max_requests: 1 });
    expect(json.connect_timeout).toBeUndefined();
  });

  it("keeps ROUND_ROBIN instead of LEAST_REQUEST and RING_HASH instead of MAGLEV for grpc-js and C-core, with a warning", () => {
    for (const caps of [grpcJs, proxylessCapabilities("grpc-c-core")]) {
      const least = clusterFor("{ loadBalancer: { simple: LEAST_REQUEST } }", caps);
      expect(least.json.lb_policy).toBeUndefined(); // ROUND_ROBIN, the enum default
      expect(least.warnings.map((w) => [w.code, w.client])).toEqual([["UNSUPPORTED_BY_CLIENT", caps.client]]);
      const maglev = clusterFor(
        "{ loadBalancer: { consistentHash: { httpHeaderName: x, maglev: { tableSize: 65537 } } } }",
        caps,
      );
      expect(maglev.json).toMatchObject({ lb_policy: "RING_HASH" });
      expect(maglev.warnings).toHaveLength(1);
    }
  });

  it("leaves outlier detection out for gRPC with a warning (Istio does not send it)", () => {
    const { json, warnings } = clusterFor("{ outlierDetection: { consecutive5xxErrors: 7 } }", grpcJs);
    expect(json.outlier_detection).toBeUndefined();
    expect(warnings.map((w) => w.path)).toEqual(["spec.trafficPolicy.outlierDetection"]);
  });

  it("applies the subset's policy over the rule's (MergeTrafficPolicy)", () => {
    const { json } = clusterFor(
      "{ loadBalancer: { simple: ROUND_ROBIN } }",
      grpcJs,
      "v1",
      ", trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }",
    );
    expect(json.transport_socket).toEqual(PROVIDER_TLS);
  });

  it("returns nothing for a subset the rule does not define", () => {
    expect(clusterFor("{ loadBalancer: { simple: ROUND_ROBIN } }", grpcJs, "v9").built).toBe(false);
  });
});

describe("translate/cluster: Envoy (cluster_traffic_policy.go, cluster_tls.go)", () => {
  it("gives every cluster Istio's default thresholds, the mesh connect timeout and LEAST_REQUEST", () => {
    const { json } = clusterFor(
      "{ connectionPool: { http: { http2MaxRequests: 100 } } }",
      ENVOY_CAPABILITIES,
    );
    expect(json).toMatchObject({
      name: "outbound|7070||echo.echo-grpc.svc.cluster.local",
      alt_stat_name: "outbound|7070||echo.echo-grpc.svc.cluster.local;",
      type: "EDS",
      eds_cluster_config: {
        eds_config: { ads: {}, initial_fetch_timeout: "0s", resource_api_version: "V3" },
      },
      connect_timeout: "10s",
      lb_policy: "LEAST_REQUEST",
      circuit_breakers: {
        thresholds: [
          {
            max_connections: 4294967295,
            max_pending_requests: 4294967295,
            max_requests: 100,
            max_retries: 4294967295,
            track_remaining: true,
          },
        ],
      },
    });
  });

  it("maps outlier detection as Istio's docs example does (5xx enforced at 100%, panic threshold off)", () => {
    const { json } = clusterFor(
      "{ outlierDetection: { consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m } }",
      ENVOY_CAPABILITIES,
    );
    expect(json).toMatchObject({
      outlier_detection: {
        consecutive_5xx: 7,
        enforcing_consecutive_5xx: 100,
        enforcing_success_rate: 0,
        interval: "300s",
        base_ejection_time: "900s",
      },
      common_lb_config: { healthy_panic_threshold: {} },
    });
  });

  it("sends ISTIO_MUTUAL over SDS default/ROOTCA with Istio's SNI and HTTP/2 ALPN on a gRPC port", () => {
    const { json } = clusterFor("{ tls: { mode: ISTIO_MUTUAL } }", ENVOY_CAPABILITIES, "v1");
    const tls = (json.transport_socket as { typed_config: Record<string, unknown> }).typed_config;
    const sds = (name: string) => ({
      name,
      sds_config: {
        api_config_source: {
          api_type: "GRPC",
          transport_api_version: "V3",
          grpc_services: [{ envoy_grpc: { cluster_name: "sds-grpc" } }],
          set_node_on_first_message_only: true,
        },
        initial_fetch_timeout: "0s",
        resource_api_version: "V3",
      },
    });
    expect(tls).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: "TLSv1_2", tls_maximum_protocol_version: "TLSv1_3" },
        tls_certificate_sds_secret_configs: [sds("default")],
        combined_validation_context: {
          default_validation_context: {
            match_subject_alt_names: [{ exact: "spiffe://cluster.local/ns/echo-grpc/sa/default" }],
          },
          validation_context_sds_secret_config: sds("ROOTCA"),
        },
        alpn_protocols: ["istio-peer-exchange", "istio", "h2"],
      },
      sni: "outbound_.7070_.v1_.echo.echo-grpc.svc.cluster.local",
    });
  });

  it("keeps MAGLEV with its table size for Envoy", () => {
    const { json, warnings } = clusterFor(
      "{ loadBalancer: { consistentHash: { httpHeaderName: x, maglev: { tableSize: 65537 } } } }",
      ENVOY_CAPABILITIES,
    );
    expect(warnings).toEqual([]);
    expect(json).toMatchObject({ lb_policy: "MAGLEV", maglev_lb_config: { table_size: "65537" } });
  });

  it("reads SIMPLE TLS roots from files through SDS (file-root:)", () => {
    const { json } = clusterFor(
      "{ tls: { mode: SIMPLE, caCertificates: /etc/certs/ca.pem, sni: echo.example.com } }",
      ENVOY_CAPABILITIES,
    );
    const tls = (json.transport_socket as { typed_config: Record<string, unknown> }).typed_config;
    expect(tls).toMatchObject({
      sni: "echo.example.com",
      common_tls_context: {
        combined_validation_context: {
          validation_context_sds_secret_config: { name: "file-root:/etc/certs/ca.pem" },
        },
        alpn_protocols: ["h2"],
      },
    });
  });
});

describe("mergeTrafficPolicy", () => {
  it("lets a port-level setting replace, not inherit, the top-level settings for its port", () => {
    const merged = mergeTrafficPolicy(
      undefined,
      {
        loadBalancer: { simple: "RANDOM" },
        tls: { mode: "ISTIO_MUTUAL" },
        portLevelSettings: [{ port: { number: 7070 }, connectionPool: { http: { http2MaxRequests: 1 } } }],
      },
      7070,
    );
    expect(merged).toEqual({ connectionPool: { http: { http2MaxRequests: 1 } } });
    expect(mergeTrafficPolicy(undefined, { loadBalancer: { simple: "RANDOM" } }, 80)).toEqual({
      loadBalancer: { simple: "RANDOM" },
    });
  });
});
