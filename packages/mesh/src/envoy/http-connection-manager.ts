import { create } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { ApiVersion } from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import {
  Http1ProtocolOptionsSchema,
  Http2ProtocolOptionsSchema,
} from "@meshlet/api/envoy/config/core/v3/protocol_pb";
import type { Filter } from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { GrpcWebSchema } from "@meshlet/api/envoy/extensions/filters/http/grpc_web/v3/grpc_web_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManager_ForwardClientCertDetails,
  HttpConnectionManager_PathWithEscapedSlashesAction,
  HttpConnectionManager_SetCurrentClientCertDetailsSchema,
  HttpConnectionManagerSchema,
  type HttpFilter,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { UuidRequestIdConfigSchema } from "@meshlet/api/envoy/extensions/request_id/uuid/v3/uuid_pb";
import { isHttp2Protocol, type Protocol } from "../model/protocol.js";
import type { BuildContext } from "./context.js";
import {
  alpnFilter,
  corsFilter,
  faultFilter,
  grpcStatsFilter,
  httpFilter,
  httpMetadataExchange,
  httpStatsFilter,
  networkFilter,
  routerFilter,
} from "./filters.js";
import { accessLogs, statsEnabled, tracing } from "./telemetry.js";
import { ENVOY_SERVER_NAME, Wellknown } from "./well-known.js";

/** Where an HTTP connection manager sits (Istio `ListenerClass`). */
export type ListenerClass = "inbound" | "outbound" | "gateway";

/** What {@link httpConnectionManager} builds. */
export interface HcmOptions {
  readonly class: ListenerClass;
  /** Stat prefix, with Istio's `;` delimiter already appended. */
  readonly statPrefix: string;
  /** RDS route config name; or an inline `routeConfig`. */
  readonly rds?: string;
  readonly routeConfig?: RouteConfiguration;
  /** The port's protocol (HTTP/2 ports get `http2_protocol_options` inbound; GRPC-Web adds its filter). */
  readonly protocol: Protocol;
  /** Authorization/authentication filters (inbound and gateways), in Istio's order. */
  readonly security?: readonly HttpFilter[];
  /** `envoy.filters.http.ratelimit`, inserted before the router as Istio's rate-limit task does. */
  readonly rateLimit?: HttpFilter;
}

/**
 * An HTTP connection manager as Istio builds it (istio/istio pilot/pkg/networking/core/listener_builder.go
 * `buildHTTPConnectionManager`, with the per-class settings of listener.go, listener_inbound.go and
 * gateway.go): codec AUTO, path normalization on with escaped slashes kept, websocket upgrades,
 * `stream_idle_timeout: 0s`, RDS over ADS with no initial fetch timeout, the UUID request id
 * extension, access logs and tracing from MeshConfig, and the HTTP filters in Istio's order:
 * `istio.metadata_exchange` (sidecars), security filters (CUSTOM → jwt_authn → RBAC),
 * [`envoy.filters.http.grpc_web`], `envoy.filters.http.grpc_stats`, `istio.alpn` (not inbound),
 * `envoy.filters.http.fault`, `envoy.filters.http.cors`, `istio.stats`, [`envoy.filters.http.ratelimit`],
 * `envoy.filters.http.router`.
 */
export function httpConnectionManager(ctx: BuildContext, opts: HcmOptions): HttpConnectionManager {
  const filters: HttpFilter[] = [];
  if (opts.class !== "gateway") filters.push(httpMetadataExchange(opts.class));
  filters.push(...(opts.security ?? []));
  if (opts.protocol === "GRPC-Web") {
    filters.push(httpFilter(Wellknown.grpcWeb, anyPack(GrpcWebSchema, create(GrpcWebSchema))));
  }
  filters.push(grpcStatsFilter());
  if (opts.class !== "inbound") filters.push(alpnFilter());
  filters.push(faultFilter(), corsFilter());
  if (statsEnabled(ctx)) filters.push(httpStatsFilter(opts.class));
  if (opts.rateLimit !== undefined) filters.push(opts.rateLimit);
  filters.push(routerFilter());

  const hcm = create(HttpConnectionManagerSchema, {
    statPrefix: opts.statPrefix,
    routeSpecifier:
      opts.rds !== undefined
        ? {
            case: "rds",
            value: {
              configSource: {
                configSourceSpecifier: { case: "ads", value: {} },
                initialFetchTimeout: create(DurationSchema, {}),
                resourceApiVersion: ApiVersion.V3,
              },
              routeConfigName: opts.rds,
            },
          }
        : opts.routeConfig !== undefined
          ? { case: "routeConfig", value: opts.routeConfig }
          : { case: undefined },
    httpFilters: filters,
    accessLog: accessLogs(ctx, "http"),
    normalizePath: true,
    pathWithEscapedSlashesAction: HttpConnectionManager_PathWithEscapedSlashesAction.KEEP_UNCHANGED,
    useRemoteAddress: opts.class === "gateway",
    upgradeConfigs: [{ upgradeType: "websocket" }],
    streamIdleTimeout: create(DurationSchema, {}),
    requestIdExtension: {
      typedConfig: anyPack(
        UuidRequestIdConfigSchema,
        create(UuidRequestIdConfigSchema, { useRequestIdForTraceSampling: true }),
      ),
    },
  });
  const trace = tracing(ctx);
  if (trace !== undefined) hcm.tracing = trace;
  if (opts.class === "inbound") {
    // Inbound: `istio-envoy` server name, client cert details appended (Istio buildSidecarInboundHTTPOpts).
    hcm.serverName = ENVOY_SERVER_NAME;
    hcm.forwardClientCertDetails = HttpConnectionManager_ForwardClientCertDetails.APPEND_FORWARD;
    hcm.setCurrentClientCertDetails = create(HttpConnectionManager_SetCurrentClientCertDetailsSchema, {
      subject: true,
      uri: true,
      dns: true,
    });
    if (isHttp2Protocol(opts.protocol)) hcm.http2ProtocolOptions = create(Http2ProtocolOptionsSchema);
  } else if (opts.class === "gateway") {
    // Gateways: SANITIZE_SET client certs, empty HTTP/1 options (Istio buildGatewayConnectionManager).
    hcm.serverName = ENVOY_SERVER_NAME;
    hcm.forwardClientCertDetails = HttpConnectionManager_ForwardClientCertDetails.SANITIZE_SET;
    hcm.setCurrentClientCertDetails = create(HttpConnectionManager_SetCurrentClientCertDetailsSchema, {
      subject: true,
      cert: true,
      dns: true,
      uri: true,
    });
    hcm.httpProtocolOptions = create(Http1ProtocolOptionsSchema);
  }
  return hcm;
}

/** The HCM as a network filter. */
export function hcmFilter(hcm: HttpConnectionManager): Filter {
  return networkFilter(Wellknown.httpConnectionManager, anyPack(HttpConnectionManagerSchema, hcm));
}
