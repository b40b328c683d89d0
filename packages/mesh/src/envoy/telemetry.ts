import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { type AccessLog, AccessLogSchema } from "@meshlet/api/envoy/config/accesslog/v3/accesslog_pb";
import { ApiVersion } from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import { SubstitutionFormatStringSchema } from "@meshlet/api/envoy/config/core/v3/substitution_format_string_pb";
import { OpenTelemetryConfigSchema } from "@meshlet/api/envoy/config/trace/v3/opentelemetry_pb";
import { FileAccessLogSchema } from "@meshlet/api/envoy/extensions/access_loggers/file/v3/file_pb";
import {
  HttpGrpcAccessLogConfigSchema,
  TcpGrpcAccessLogConfigSchema,
} from "@meshlet/api/envoy/extensions/access_loggers/grpc/v3/als_pb";
import { OpenTelemetryAccessLogConfigSchema } from "@meshlet/api/envoy/extensions/access_loggers/open_telemetry/v3/logs_service_pb";
import {
  type HttpConnectionManager_Tracing,
  HttpConnectionManager_TracingSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { PercentSchema } from "@meshlet/api/envoy/type/v3/percent_pb";
import { AnyValueSchema } from "@meshlet/api/opentelemetry/proto/common/v1/common_pb";
import type { ExtensionProvider } from "../push/mesh-config.js";
import type { BuildContext } from "./context.js";
import { envoyGrpcService, lookupServiceCluster } from "./external-services.js";
import { Wellknown } from "./well-known.js";

// Access logs, tracing and the metrics filter, from MeshConfig (`accessLogFile`,
// `accessLogEncoding`, `accessLogFormat`, `extensionProviders`, `defaultProviders`), as Istio's
// Telemetry defaults apply them (istio/istio pilot/pkg/model/telemetry_logging.go,
// pilot/pkg/networking/core/tracing.go). The Telemetry API resource itself is not read yet.

/** Istio's default text access log format (istio/istio pilot/pkg/model/telemetry_logging.go `EnvoyTextLogFormat`). */
export const ISTIO_TEXT_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  "%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/** Istio's JSON access log fields (`EnvoyJSONLogFormatIstio`). */
export const ISTIO_JSON_LOG_FORMAT: Readonly<Record<string, string>> = {
  start_time: "%START_TIME%",
  route_name: "%ROUTE_NAME%",
  method: "%REQ(:METHOD)%",
  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
  protocol: "%PROTOCOL%",
  response_code: "%RESPONSE_CODE%",
  response_flags: "%RESPONSE_FLAGS%",
  response_code_details: "%RESPONSE_CODE_DETAILS%",
  connection_termination_details: "%CONNECTION_TERMINATION_DETAILS%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  duration: "%DURATION%",
  upstream_service_time: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
  x_forwarded_for: "%REQ(X-FORWARDED-FOR)%",
  user_agent: "%REQ(USER-AGENT)%",
  request_id: "%REQ(X-REQUEST-ID)%",
  authority: "%REQ(:AUTHORITY)%",
  upstream_host: "%UPSTREAM_HOST%",
  upstream_cluster: "%UPSTREAM_CLUSTER_RAW%",
  upstream_local_address: "%UPSTREAM_LOCAL_ADDRESS%",
  downstream_local_address: "%DOWNSTREAM_LOCAL_ADDRESS%",
  downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS%",
  requested_server_name: "%REQUESTED_SERVER_NAME%",
  upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
};

function provider(ctx: BuildContext, name: string): ExtensionProvider | undefined {
  return ctx.mesh.extensionProviders.find((p) => p.name === name);
}

function fileLog(path: string, json: boolean, format: string): AccessLog {
  const logFormat = json
    ? create(SubstitutionFormatStringSchema, {
        format: { case: "jsonFormat", value: { ...ISTIO_JSON_LOG_FORMAT } },
      })
    : create(SubstitutionFormatStringSchema, {
        format: {
          case: "textFormatSource",
          value: {
            specifier: { case: "inlineString", value: format === "" ? ISTIO_TEXT_LOG_FORMAT : format },
          },
        },
      });
  return create(AccessLogSchema, {
    name: Wellknown.fileAccessLog,
    configType: {
      case: "typedConfig",
      value: anyPack(
        FileAccessLogSchema,
        create(FileAccessLogSchema, { path, accessLogFormat: { case: "logFormat", value: logFormat } }),
      ),
    },
  });
}

/**
 * The access loggers of an HTTP connection manager (`kind: "http"`) or tcp_proxy (`"tcp"`):
 * MeshConfig `accessLogFile` (Istio's text or JSON format), then the `defaultProviders.accessLogging`
 * providers: `envoyFileAccessLog`, `envoyOtelAls` (OpenTelemetry, Istio's `otel_envoy_accesslog`
 * log name and text body), `envoyHttpAls`/`envoyTcpAls` (Envoy gRPC ALS). A provider whose service
 * is not in the registry is skipped with a warning.
 */
export function accessLogs(ctx: BuildContext, kind: "http" | "tcp"): AccessLog[] {
  const out: AccessLog[] = [];
  const mesh = ctx.mesh;
  if (mesh.accessLogFile !== "") {
    out.push(fileLog(mesh.accessLogFile, mesh.accessLogEncoding === "JSON", mesh.accessLogFormat));
  }
  for (const name of mesh.defaultProviders.accessLogging ?? []) {
    const p = provider(ctx, name);
    if (p === undefined) {
      ctx.warnings.push({
        code: "unknown-provider",
        message: `access log provider "${name}" is not in MeshConfig extensionProviders`,
      });
      continue;
    }
    if (p.envoyFileAccessLog !== undefined) {
      const text = p.envoyFileAccessLog.logFormat?.text;
      const labels = p.envoyFileAccessLog.logFormat?.labels;
      out.push(
        fileLog(p.envoyFileAccessLog.path, labels !== undefined, typeof text === "string" ? text : ""),
      );
      continue;
    }
    const grpc = p.envoyOtelAls ?? p.envoyHttpAls ?? p.envoyTcpAls;
    if (grpc === undefined) continue;
    const target = lookupServiceCluster(ctx, grpc.service, grpc.port);
    if (target === undefined) {
      ctx.warnings.push({
        code: "unknown-provider",
        message: `access log provider "${name}": service ${grpc.service}:${grpc.port} is not in the registry`,
      });
      continue;
    }
    const common = {
      logName: grpc.logName ?? (p.envoyOtelAls !== undefined ? "otel_envoy_accesslog" : "envoy_accesslog"),
      grpcService: envoyGrpcService(target.cluster, target.host),
      transportApiVersion: ApiVersion.V3,
    };
    if (p.envoyOtelAls !== undefined) {
      out.push(
        create(AccessLogSchema, {
          name: Wellknown.otelAccessLog,
          configType: {
            case: "typedConfig",
            value: anyPack(
              OpenTelemetryAccessLogConfigSchema,
              create(OpenTelemetryAccessLogConfigSchema, {
                commonConfig: common,
                body: create(AnyValueSchema, {
                  value: { case: "stringValue", value: ISTIO_TEXT_LOG_FORMAT },
                }),
              }),
            ),
          },
        }),
      );
    } else if (kind === "http" && p.envoyHttpAls !== undefined) {
      out.push(
        create(AccessLogSchema, {
          name: Wellknown.httpGrpcAccessLog,
          configType: {
            case: "typedConfig",
            value: anyPack(
              HttpGrpcAccessLogConfigSchema,
              create(HttpGrpcAccessLogConfigSchema, { commonConfig: common }),
            ),
          },
        }),
      );
    } else if (kind === "tcp" && p.envoyTcpAls !== undefined) {
      out.push(
        create(AccessLogSchema, {
          name: Wellknown.tcpGrpcAccessLog,
          configType: {
            case: "typedConfig",
            value: anyPack(
              TcpGrpcAccessLogConfigSchema,
              create(TcpGrpcAccessLogConfigSchema, { commonConfig: common }),
            ),
          },
        }),
      );
    }
  }
  return out;
}

/**
 * HCM tracing from the `defaultProviders.tracing` OpenTelemetry provider (Istio
 * `configureFromProviderConfig`, `opentelemetry` case): spans exported over gRPC to the provider's
 * service, the service name being the proxy's canonical service (`app` label, else the workload
 * name) and namespace; sampling 100% of client-forced, 1% random (Istio's default
 * `randomSamplingPercentage` from ProxyConfig), 100% overall. Undefined when no tracing provider is
 * configured (meshlet does not trace by default).
 */
export function tracing(ctx: BuildContext): HttpConnectionManager_Tracing | undefined {
  const name = ctx.mesh.defaultProviders.tracing?.[0];
  if (name === undefined || !ctx.mesh.enableTracing) return undefined;
  const p = provider(ctx, name);
  const otel = p?.opentelemetry;
  if (otel === undefined) {
    ctx.warnings.push({
      code: "unknown-provider",
      message: `tracing provider "${name}" is not an opentelemetry provider in MeshConfig extensionProviders`,
    });
    return undefined;
  }
  const target = lookupServiceCluster(ctx, otel.service, otel.port);
  if (target === undefined) {
    ctx.warnings.push({
      code: "unknown-provider",
      message: `tracing provider "${name}": service ${otel.service}:${otel.port} is not in the registry`,
    });
    return undefined;
  }
  const app = canonicalServiceName(ctx);
  return create(HttpConnectionManager_TracingSchema, {
    clientSampling: create(PercentSchema, { value: 100 }),
    randomSampling: create(PercentSchema, { value: 1 }),
    overallSampling: create(PercentSchema, { value: 100 }),
    provider: {
      name: Wellknown.otelTracer,
      configType: {
        case: "typedConfig",
        value: anyPack(
          OpenTelemetryConfigSchema,
          create(OpenTelemetryConfigSchema, {
            grpcService: envoyGrpcService(target.cluster, target.host),
            serviceName: `${app}.${ctx.proxy.namespace}`,
          }),
        ),
      },
    },
  });
}

/** The proxy's canonical service: its `service.istio.io/canonical-name` or `app` label, else its workload name. */
function canonicalServiceName(ctx: BuildContext): string {
  return (
    ctx.labels["service.istio.io/canonical-name"] ??
    ctx.labels.app ??
    ctx.proxy.workloadId.split(".")[0] ??
    ""
  );
}

/**
 * What of the proxy tracing depends on (its canonical service), `""` when tracing is off: part of the
 * key under which generated listeners are shared.
 */
export function tracingKey(ctx: BuildContext): string {
  const name = ctx.mesh.defaultProviders.tracing?.[0];
  if (name === undefined || !ctx.mesh.enableTracing) return "";
  return canonicalServiceName(ctx);
}

/**
 * Whether Istio's standard metrics (`istio.stats`) are on: yes unless `defaultProviders.metrics`
 * names providers and none of them is a Prometheus provider (Istio's default is `prometheus`).
 */
export function statsEnabled(ctx: BuildContext): boolean {
  const names = ctx.mesh.defaultProviders.metrics;
  if (names === undefined) return true;
  return names.some((n) => n === "prometheus" || provider(ctx, n)?.prometheus !== undefined);
}
