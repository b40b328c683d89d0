// Checks the generated package as users consume it: by proto path from ESM and CommonJS, and
// through the root registry for Any and JSON.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { create, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { protoFiles, registry } from "@meshlet/api";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { IstioCertificateService } from "@meshlet/api/istio/security/v1alpha1/ca_pb";
import { consoleLogger, type Logger, silentLogger } from "@meshlet/api/logger";
import { describe, expect, it, vi } from "vitest";

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
    // Istio's OpenTelemetry access logging and tracing (issue 10, §6).
    "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
    "opentelemetry.proto.common.v1.AnyValue",
    "opentelemetry.proto.logs.v1.LogRecord",
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
    "opentelemetry.proto.collector.logs.v1.LogsService",
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

  it("encodes the OpenTelemetry protos with OTLP's field numbers", () => {
    // opentelemetry-proto, opentelemetry/proto/common/v1/common.proto: KeyValue { key = 1;
    // value = 2 }, AnyValue { string_value = 1; int_value = 3 }; logs/v1/logs.proto: LogRecord
    // { observed_time_unix_nano = 11 (fixed64); severity_number = 2; body = 5 }.
    const keyValue = registry.getMessage("opentelemetry.proto.common.v1.KeyValue");
    const logRecord = registry.getMessage("opentelemetry.proto.logs.v1.LogRecord");
    if (!keyValue || !logRecord) throw new Error("OpenTelemetry messages are missing");
    const kv = create(keyValue, { key: "a", value: { value: { case: "stringValue", value: "b" } } });
    expect([...toBinary(keyValue, kv)]).toEqual([0x0a, 0x01, 0x61, 0x12, 0x03, 0x0a, 0x01, 0x62]);
    const record = create(logRecord, {
      observedTimeUnixNano: 1n,
      severityNumber: 9, // SEVERITY_NUMBER_INFO
      body: { value: { case: "intValue", value: 7n } },
    });
    expect([...toBinary(logRecord, record)]).toEqual([
      0x10, 0x09, 0x2a, 0x02, 0x18, 0x07, 0x59, 0x01, 0, 0, 0, 0, 0, 0, 0,
    ]);
    // Envoy's access logger carries the log body as an OTLP AnyValue (logs_service.proto, body = 2).
    const als = registry.getMessage(
      "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
    );
    expect(als?.field.body?.message?.typeName).toBe("opentelemetry.proto.common.v1.AnyValue");
    expect(als?.field.body?.number).toBe(2);
  });

  it("declares every package its built modules import, so a lone install imports", () => {
    const pkgDir = join(import.meta.dirname, "..");
    const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
    };
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(js|d\.ts)$/.test(entry.name)) {
          const text = readFileSync(path, "utf8");
          for (const m of text.matchAll(/(?:^import .* from |^export .* from |require\()"([^".][^"]*)"/gm)) {
            const spec = m[1] ?? "";
            imported.add(spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!);
          }
        }
      }
    };
    walk(join(pkgDir, "dist"));
    expect([...imported].sort()).toEqual(["@bufbuild/protobuf"]);
    // Pinned exactly: the generated code and the runtime must be the same protobuf-es release.
    expect(pkg.dependencies?.["@bufbuild/protobuf"]).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("ships a Logger module from ESM and CommonJS", () => {
    const require = createRequire(import.meta.url);
    const cjs = require("@meshlet/api/logger") as { consoleLogger: Logger; silentLogger: Logger };
    expect(Object.keys(cjs).sort()).toEqual(["consoleLogger", "silentLogger"]);
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const info = vi.spyOn(console, "info").mockImplementation(() => {});
    try {
      consoleLogger.warn("slow proxy", { node: "sidecar~10.0.0.1" });
      consoleLogger.error("failed");
      consoleLogger.info("hidden", { a: 1 });
      consoleLogger.debug("hidden");
      silentLogger.error("hidden", { a: 1 });
      cjs.silentLogger.warn("hidden");
      expect(warn.mock.calls).toEqual([["slow proxy", { node: "sidecar~10.0.0.1" }]]);
      expect(error.mock.calls).toEqual([["failed"]]);
      expect(info).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
      error.mockRestore();
      info.mockRestore();
    }
  });
});
