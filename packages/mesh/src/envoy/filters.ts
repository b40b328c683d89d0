import { create } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import {
  type Filter as ClusterFilter,
  FilterSchema as ClusterFilterSchema,
} from "@meshlet/api/envoy/config/cluster/v3/filter_pb";
import { type TransportSocket, TransportSocketSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type Filter,
  FilterSchema,
  type ListenerFilter,
  ListenerFilterSchema,
} from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { CorsSchema } from "@meshlet/api/envoy/extensions/filters/http/cors/v3/cors_pb";
import { HTTPFaultSchema } from "@meshlet/api/envoy/extensions/filters/http/fault/v3/fault_pb";
import { FilterConfigSchema as GrpcStatsSchema } from "@meshlet/api/envoy/extensions/filters/http/grpc_stats/v3/config_pb";
import { RouterSchema } from "@meshlet/api/envoy/extensions/filters/http/router/v3/router_pb";
import { HttpInspectorSchema } from "@meshlet/api/envoy/extensions/filters/listener/http_inspector/v3/http_inspector_pb";
import { OriginalDstSchema } from "@meshlet/api/envoy/extensions/filters/listener/original_dst/v3/original_dst_pb";
import { TlsInspectorSchema } from "@meshlet/api/envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector_pb";
import {
  type HttpFilter,
  HttpFilterSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import {
  type TcpProxy,
  TcpProxySchema,
} from "@meshlet/api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb";
import { RawBufferSchema } from "@meshlet/api/envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer_pb";
import {
  type DownstreamTlsContext,
  DownstreamTlsContextSchema,
  type UpstreamTlsContext,
  UpstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { alpnFilterConfig, statsPluginConfig, typedStruct } from "./istio-extensions.js";
import { Wellknown } from "./well-known.js";

// The fixed filters Istio puts in every sidecar and gateway, as istiod builds them (istio/istio
// pilot/pkg/xds/filters/filters.go). Each builder returns a fresh message: callers may not share
// protobuf-es messages they go on to mutate.

/** A listener filter with a typed config. */
function listenerFilter(name: string, typedConfig: Any): ListenerFilter {
  return create(ListenerFilterSchema, { name, configType: { case: "typedConfig", value: typedConfig } });
}

/** `envoy.filters.listener.tls_inspector` with a 512-byte initial read buffer (Istio `xdsfilters.TLSInspector`). */
export function tlsInspector(): ListenerFilter {
  return listenerFilter(
    Wellknown.tlsInspector,
    anyPack(TlsInspectorSchema, create(TlsInspectorSchema, { initialReadBufferSize: 512 })),
  );
}

/** `envoy.filters.listener.http_inspector` (Istio `xdsfilters.HTTPInspector`). */
export function httpInspector(): ListenerFilter {
  return listenerFilter(Wellknown.httpInspector, anyPack(HttpInspectorSchema, create(HttpInspectorSchema)));
}

/** `envoy.filters.listener.original_dst` (Istio `xdsfilters.OriginalDestination`). */
export function originalDst(): ListenerFilter {
  return listenerFilter(Wellknown.originalDst, anyPack(OriginalDstSchema, create(OriginalDstSchema)));
}

/** A network filter with a typed config. */
export function networkFilter(name: string, typedConfig: Any): Filter {
  return create(FilterSchema, { name, configType: { case: "typedConfig", value: typedConfig } });
}

/** An HTTP filter with a typed config. */
export function httpFilter(name: string, typedConfig: Any): HttpFilter {
  return create(HttpFilterSchema, { name, configType: { case: "typedConfig", value: typedConfig } });
}

/** `envoy.filters.network.tcp_proxy` to one cluster (stat prefix = the cluster, as Istio names it). */
export function tcpProxyFilter(
  cluster: string,
  statPrefix = cluster,
  extra: Partial<
    Pick<TcpProxy, "accessLog" | "idleTimeout" | "maxDownstreamConnectionDuration" | "hashPolicy">
  > = {},
): Filter {
  const proxy = create(TcpProxySchema, { statPrefix, clusterSpecifier: { case: "cluster", value: cluster } });
  Object.assign(proxy, extra);
  return networkFilter(Wellknown.tcpProxy, anyPack(TcpProxySchema, proxy));
}

/** `envoy.filters.http.router` (Istio `BuildRouterFilter`: no child spans, Envoy headers kept). */
export function routerFilter(suppressEnvoyHeaders = false): HttpFilter {
  return httpFilter(Wellknown.router, anyPack(RouterSchema, create(RouterSchema, { suppressEnvoyHeaders })));
}

/** The empty `envoy.filters.http.fault` that per-route fault configs need (Istio `xdsfilters.Fault`). */
export function faultFilter(): HttpFilter {
  return httpFilter(Wellknown.fault, anyPack(HTTPFaultSchema, create(HTTPFaultSchema)));
}

/** The empty `envoy.filters.http.cors` that per-route CORS policies need (Istio `xdsfilters.Cors`). */
export function corsFilter(): HttpFilter {
  return httpFilter(Wellknown.cors, anyPack(CorsSchema, create(CorsSchema)));
}

/** `envoy.filters.http.grpc_stats`, emitting filter state, no per-method stats (Istio `xdsfilters.GrpcStats`). */
export function grpcStatsFilter(): HttpFilter {
  return httpFilter(
    Wellknown.grpcStats,
    anyPack(
      GrpcStatsSchema,
      create(GrpcStatsSchema, {
        emitFilterState: true,
        perMethodStatSpecifier: { case: "statsForAllMethods", value: { value: false } },
      }),
    ),
  );
}

/**
 * Istio's outbound `istio.alpn` filter: overrides the upstream ALPN with Istio's mTLS ALPNs per
 * upstream protocol, so that the server sidecar's filter chains can tell HTTP from TCP
 * (istio/istio pilot/pkg/xds/filters/filters.go `Alpn`, `mtlsHTTP1xALPN`).
 */
export function alpnFilter(): HttpFilter {
  return httpFilter(
    Wellknown.alpn,
    alpnFilterConfig([
      { upstreamProtocol: 0, alpnOverride: ["istio-http/1.0", "istio", "http/1.0"] },
      { upstreamProtocol: 1, alpnOverride: ["istio-http/1.1", "istio", "http/1.1"] },
      { upstreamProtocol: 2, alpnOverride: ["istio-h2", "istio", "h2"] },
    ]),
  );
}

const PEER_METADATA = "type.googleapis.com/io.istio.http.peer_metadata.Config";

/**
 * Istio's `istio.metadata_exchange` HTTP filter (`io.istio.http.peer_metadata.Config` as a
 * TypedStruct): inbound discovers the peer from Istio headers or workload discovery and propagates
 * its own; outbound does the same upstream (istio/istio pilot/pkg/xds/filters/filters.go
 * `SidecarInboundMetadataFilter`, `SidecarOutboundMetadataFilter`).
 */
export function httpMetadataExchange(direction: "inbound" | "outbound"): HttpFilter {
  const side = direction === "inbound" ? "downstream" : "upstream";
  return httpFilter(
    Wellknown.metadataExchange,
    typedStruct(PEER_METADATA, {
      [`${side}_discovery`]: [{ istio_headers: {} }, { workload_discovery: {} }],
      [`${side}_propagation`]: [{ istio_headers: {} }],
    }),
  );
}

const TCP_MX = "type.googleapis.com/envoy.tcp.metadataexchange.config.MetadataExchange";
const tcpMxFields = { protocol: "istio-peer-exchange", enable_discovery: true } as const;

/** Istio's TCP metadata exchange network filter (inbound TCP chains; Istio `xdsfilters.TCPListenerMx`). */
export function tcpMetadataExchange(): Filter {
  return networkFilter(Wellknown.metadataExchange, typedStruct(TCP_MX, { ...tcpMxFields }));
}

/** Istio's TCP metadata exchange cluster filter (outbound clusters; Istio `xdsfilters.TCPClusterMx`). */
export function tcpClusterMetadataExchange(): ClusterFilter {
  return create(ClusterFilterSchema, {
    name: Wellknown.metadataExchange,
    typedConfig: typedStruct(TCP_MX, { ...tcpMxFields }),
  });
}

/**
 * Istio's standard metrics filter `istio.stats` (`stats.PluginConfig`): inbound sets
 * `disable_host_header_fallback` (istio/istio pilot/pkg/model/telemetry.go; its test expects the
 * inbound config bytes `MAE=`, field 6 = true), outbound and gateways send the empty config.
 */
export function httpStatsFilter(direction: "inbound" | "outbound" | "gateway"): HttpFilter {
  return httpFilter(
    Wellknown.stats,
    statsPluginConfig(direction === "inbound" ? { disableHostHeaderFallback: true } : {}),
  );
}

/** The network (TCP) form of `istio.stats`. */
export function networkStatsFilter(direction: "inbound" | "outbound" | "gateway"): Filter {
  return networkFilter(
    Wellknown.stats,
    statsPluginConfig(direction === "inbound" ? { disableHostHeaderFallback: true } : {}),
  );
}

/** A TLS transport socket carrying a downstream (server) TLS context. */
export function downstreamTransportSocket(ctx: DownstreamTlsContext): TransportSocket {
  return create(TransportSocketSchema, {
    name: Wellknown.tlsTransportSocket,
    configType: { case: "typedConfig", value: anyPack(DownstreamTlsContextSchema, ctx) },
  });
}

/** A TLS transport socket carrying an upstream (client) TLS context. */
export function upstreamTransportSocket(ctx: UpstreamTlsContext): TransportSocket {
  return create(TransportSocketSchema, {
    name: Wellknown.tlsTransportSocket,
    configType: { case: "typedConfig", value: anyPack(UpstreamTlsContextSchema, ctx) },
  });
}

/** `envoy.transport_sockets.raw_buffer` (Istio `xdsfilters.RawBufferTransportSocket`). */
export function rawBufferTransportSocket(): TransportSocket {
  return create(TransportSocketSchema, {
    name: Wellknown.rawBufferTransportSocket,
    configType: { case: "typedConfig", value: anyPack(RawBufferSchema, create(RawBufferSchema)) },
  });
}
