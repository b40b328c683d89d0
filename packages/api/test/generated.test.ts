// Checks the generated package as users consume it: by proto path from ESM and CommonJS, and
// through the root registry for Any and JSON.
import { createRequire } from "node:module";
import { create, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { protoFiles, registry } from "@meshlet/api";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { IstioCertificateService } from "@meshlet/api/istio/security/v1alpha1/ca_pb";
import { describe, expect, it } from "vitest";

const required = {
  messages: [
    "envoy.config.core.v3.Node",
    "envoy.config.cluster.v3.Cluster",
    "envoy.config.endpoint.v3.ClusterLoadAssignment",
    "envoy.config.listener.v3.Listener",
    "envoy.config.route.v3.RouteConfiguration",
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "envoy.extensions.filters.http.router.v3.Router",
    "envoy.extensions.filters.http.fault.v3.HTTPFault",
    "envoy.extensions.filters.http.rbac.v3.RBAC",
    "envoy.extensions.filters.network.rbac.v3.RBAC",
    "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    "envoy.extensions.filters.http.ratelimit.v3.RateLimit",
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
    "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
    "envoy.extensions.filters.http.cors.v3.Cors",
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
    "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
    "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
    "envoy.extensions.transport_sockets.tls.v3.Secret",
    "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
    "envoy.extensions.access_loggers.file.v3.FileAccessLog",
    "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
    "envoy.config.trace.v3.OpenTelemetryConfig",
    "envoy.config.trace.v3.ZipkinConfig",
    "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin",
    "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash",
    "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality",
    "xds.type.v3.TypedStruct",
    "udpa.type.v1.TypedStruct",
    "google.rpc.Status",
    "istio.v1.auth.IstioCertificateRequest",
    "X509SVIDResponse",
    "io.prometheus.client.MetricFamily",
  ],
  services: [
    "envoy.service.discovery.v3.AggregatedDiscoveryService",
    "envoy.service.cluster.v3.ClusterDiscoveryService",
    "envoy.service.endpoint.v3.EndpointDiscoveryService",
    "envoy.service.listener.v3.ListenerDiscoveryService",
    "envoy.service.route.v3.RouteDiscoveryService",
    "envoy.service.secret.v3.SecretDiscoveryService",
    "envoy.service.auth.v3.Authorization",
    "envoy.service.ratelimit.v3.RateLimitService",
    "envoy.service.accesslog.v3.AccessLogService",
    "envoy.service.metrics.v3.MetricsService",
    "envoy.service.load_stats.v3.LoadReportingService",
    "envoy.service.status.v3.ClientStatusDiscoveryService",
    "istio.v1.auth.IstioCertificateService",
    "SpiffeWorkloadAPI",
  ],
};

describe("@meshlet/api", () => {
  it("generates every type a full control plane needs", () => {
    const missing = [
      ...required.messages.filter((m) => !registry.getMessage(m)),
      ...required.services.filter((s) => !registry.getService(s)),
    ];
    expect(missing).toEqual([]);
    expect(protoFiles.length).toBeGreaterThan(300);
  });

  it("imports by proto path from ESM and CommonJS with the same wire format", () => {
    const require = createRequire(import.meta.url);
    const cjs = require("@meshlet/api/envoy/config/cluster/v3/cluster_pb") as {
      ClusterSchema: typeof ClusterSchema;
    };
    const cluster = create(ClusterSchema, { name: "backend" });
    expect(toBinary(cjs.ClusterSchema, create(cjs.ClusterSchema, { name: "backend" }))).toEqual(
      toBinary(ClusterSchema, cluster),
    );
    expect((require("@meshlet/api") as { protoFiles: string[] }).protoFiles).toEqual(protoFiles);
  });

  it("packs Any and converts JSON through the registry", () => {
    const any = anyPack(
      ClusterSchema,
      create(ClusterSchema, { name: "backend", connectTimeout: { seconds: 5n } }),
    );
    const unpacked = anyUnpack(any, registry);
    expect(unpacked?.$typeName).toBe("envoy.config.cluster.v3.Cluster");
    const json = toJson(
      ClusterSchema,
      create(ClusterSchema, { name: "b", connectTimeout: { seconds: 2n } }),
      { registry },
    );
    expect(json).toEqual({ name: "b", connectTimeout: "2s" });
    expect(fromJson(ClusterSchema, { name: "b", lbPolicy: "LEAST_REQUEST" }).lbPolicy).toBe(1);
  });

  it("keeps the Istio CA API's method path", () => {
    expect(`/${IstioCertificateService.typeName}/${IstioCertificateService.methods[0]?.name}`).toBe(
      "/istio.v1.auth.IstioCertificateService/CreateCertificate",
    );
  });
});
