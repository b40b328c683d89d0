import { create, type JsonObject } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { CircuitBreakersSchema } from "@meshlet/api/envoy/config/cluster/v3/circuit_breaker_pb";
import {
  type Cluster,
  Cluster_DiscoveryType,
  Cluster_LbPolicy,
  ClusterSchema,
} from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { BindConfigSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { HttpProtocolOptionsSchema } from "@meshlet/api/envoy/extensions/upstreams/http/v3/http_protocol_options_pb";
import { isHttp2Protocol, type Protocol } from "../model/protocol.js";
import type { ServiceTarget } from "../model/service.js";
import { inboundClusterName } from "../naming/cluster-names.js";
import { IstioNames } from "../naming/listener-names.js";
import type { BuildContext } from "./context.js";
import { parseDuration } from "./external-services.js";
import { tcpClusterMetadataExchange } from "./filters.js";
import { ISTIO_METADATA_KEY } from "./well-known.js";

// The clusters every sidecar gets besides the service clusters (istio/istio
// pilot/pkg/networking/core/cluster_builder.go `buildBlackHoleCluster`,
// `buildDefaultPassthroughCluster`, `buildInboundPassthroughCluster`, `buildInboundCluster`).

const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
/** The source address inbound clusters bind to, so iptables does not capture the proxy's own traffic (Istio `InboundPassthroughBindIpv4`). */
export const INBOUND_PASSTHROUGH_BIND_IPV4 = "127.0.0.6";
/** Istio's `maxSecondsValue`: the largest `google.protobuf.Duration` seconds, used to disable cleanup. */
const MAX_SECONDS = 315_576_000_000n;
const MAX_UINT32 = 4_294_967_295;

/** Istio's default circuit breakers: every threshold at its maximum, remaining capacity tracked. */
export function defaultCircuitBreakers() {
  return create(CircuitBreakersSchema, {
    thresholds: [
      {
        maxConnections: MAX_UINT32,
        maxPendingRequests: MAX_UINT32,
        maxRequests: MAX_UINT32,
        maxRetries: MAX_UINT32,
        trackRemaining: true,
      },
    ],
  });
}

function connectTimeout(ctx: BuildContext) {
  return parseDuration(ctx.mesh.connectTimeout);
}

function useDownstreamProtocol() {
  return anyPack(
    HttpProtocolOptionsSchema,
    create(HttpProtocolOptionsSchema, {
      commonHttpProtocolOptions: { idleTimeout: create(DurationSchema, { seconds: 300n }) },
      upstreamProtocolOptions: {
        case: "useDownstreamProtocolConfig",
        value: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
      },
    }),
  );
}

function http2Options() {
  return anyPack(
    HttpProtocolOptionsSchema,
    create(HttpProtocolOptionsSchema, {
      upstreamProtocolOptions: {
        case: "explicitHttpConfig",
        value: { protocolConfig: { case: "http2ProtocolOptions", value: {} } },
      },
    }),
  );
}

/** `BlackHoleCluster`: STATIC with no endpoints; traffic routed to it fails (HTTP 503, connection reset). */
export function blackHoleCluster(ctx: BuildContext): Cluster {
  return create(ClusterSchema, {
    name: IstioNames.blackHoleCluster,
    altStatName: `${IstioNames.blackHoleCluster};`,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.STATIC },
    connectTimeout: connectTimeout(ctx),
    lbPolicy: Cluster_LbPolicy.ROUND_ROBIN,
  });
}

/** `PassthroughCluster`: ORIGINAL_DST to wherever the application connected, with TCP metadata exchange. */
export function passthroughCluster(ctx: BuildContext): Cluster {
  return create(ClusterSchema, {
    name: IstioNames.passthroughCluster,
    altStatName: `${IstioNames.passthroughCluster};`,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST },
    connectTimeout: connectTimeout(ctx),
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    circuitBreakers: defaultCircuitBreakers(),
    typedExtensionProtocolOptions: { [HTTP_PROTOCOL_OPTIONS]: useDownstreamProtocol() },
    filters: [tcpClusterMetadataExchange()],
  });
}

/**
 * `InboundPassthroughCluster`: the passthrough cluster (its stat name kept) without the metadata
 * exchange filter, bound to 127.0.0.6 (Istio `buildInboundPassthroughCluster`).
 */
export function inboundPassthroughCluster(ctx: BuildContext): Cluster {
  const c = passthroughCluster(ctx);
  c.name = IstioNames.inboundPassthroughCluster;
  c.filters = [];
  c.upstreamBindConfig = create(BindConfigSchema, {
    sourceAddress: { address: INBOUND_PASSTHROUGH_BIND_IPV4, portSpecifier: { case: "portValue", value: 0 } },
  });
  return c;
}

/**
 * The inbound cluster of a workload port, `inbound|<targetPort>||` (Istio `buildInboundCluster`
 * with the default inbound passthrough): ORIGINAL_DST to the address the client dialled, bound to
 * 127.0.0.6, never cleaned up; HTTP/2 upstream for HTTP/2 ports and the downstream protocol for
 * undeclared ones; the services it serves in `filter_metadata.istio.services` (telemetry).
 */
export function inboundCluster(
  ctx: BuildContext,
  targetPort: number,
  targets: readonly ServiceTarget[],
): Cluster {
  const first = targets[0] as ServiceTarget;
  const protocol: Protocol = first.port.protocol;
  const name = inboundClusterName(targetPort);
  const services = targets
    .map((t) => ({ host: t.service.hostname, name: t.service.name, namespace: t.service.namespace }))
    .sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
  return create(ClusterSchema, {
    name,
    altStatName: `${name};`,
    clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST },
    connectTimeout: connectTimeout(ctx),
    lbPolicy: Cluster_LbPolicy.CLUSTER_PROVIDED,
    commonLbConfig: {},
    cleanupInterval: create(DurationSchema, { seconds: MAX_SECONDS }),
    circuitBreakers: defaultCircuitBreakers(),
    ...(isHttp2Protocol(protocol)
      ? { typedExtensionProtocolOptions: { [HTTP_PROTOCOL_OPTIONS]: http2Options() } }
      : protocol === "UnsupportedProtocol"
        ? { typedExtensionProtocolOptions: { [HTTP_PROTOCOL_OPTIONS]: useDownstreamProtocol() } }
        : {}),
    upstreamBindConfig: {
      sourceAddress: {
        address: INBOUND_PASSTHROUGH_BIND_IPV4,
        portSpecifier: { case: "portValue", value: 0 },
      },
    },
    metadata: { filterMetadata: { [ISTIO_METADATA_KEY]: { services } as unknown as JsonObject } },
  });
}
