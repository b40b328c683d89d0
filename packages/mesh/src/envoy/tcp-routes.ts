import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import type { Filter } from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import {
  TcpProxy_WeightedClusterSchema,
  TcpProxySchema,
} from "@meshlet/api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb";
import { HashPolicySchema } from "@meshlet/api/envoy/type/v3/hash_policy_pb";
import type { Destination } from "../config-access.js";
import type { Service } from "../model/service.js";
import { destinationCluster } from "../translate/route.js";
import type { BuildContext } from "./context.js";
import { parseDuration } from "./external-services.js";
import { networkFilter, networkStatsFilter, tcpMetadataExchange, tcpProxyFilter } from "./filters.js";
import { accessLogs } from "./telemetry.js";
import { Wellknown } from "./well-known.js";

// TCP proxying of VirtualService `tcp`/`tls` routes and of services without routes (istio/istio
// pilot/pkg/networking/core/networkfilter.go `buildOutboundNetworkFilters`,
// `buildOutboundNetworkFiltersWithSingleDestination`, `buildOutboundNetworkFiltersWithWeightedClusters`,
// `buildCompleteNetworkFilters`).

/** One `route` entry of a VirtualService `tcp`/`tls` route. */
export interface L4RouteDestination {
  readonly destination: Destination;
  readonly weight?: number;
}

interface TcpSettings {
  idleTimeout?: string;
  maxConnectionDuration?: string;
  useSourceIp: boolean;
}

/** The TCP settings of the DestinationRule that applies to `service` (connection pool, source-IP hashing). */
function tcpSettings(ctx: BuildContext, service: Service | undefined, subset: string): TcpSettings {
  if (service === undefined) return { useSourceIp: false };
  const dr = ctx.push.destinationRule(ctx.proxy, service)?.spec as
    | {
        trafficPolicy?: Record<string, unknown>;
        subsets?: Array<{ name?: string; trafficPolicy?: Record<string, unknown> }>;
      }
    | undefined;
  const policy = dr?.trafficPolicy as
    | {
        connectionPool?: { tcp?: { idleTimeout?: unknown; maxConnectionDuration?: unknown } };
        loadBalancer?: { consistentHash?: { useSourceIp?: unknown } };
      }
    | undefined;
  const tcp = policy?.connectionPool?.tcp;
  let useSourceIp = policy?.loadBalancer?.consistentHash?.useSourceIp === true;
  const sub = (dr?.subsets ?? []).find((s) => s.name === subset);
  const subLb = (
    sub?.trafficPolicy as { loadBalancer?: { consistentHash?: { useSourceIp?: unknown } } } | undefined
  )?.loadBalancer;
  if (subLb !== undefined) useSourceIp = subLb.consistentHash?.useSourceIp === true;
  return {
    ...(typeof tcp?.idleTimeout === "string" ? { idleTimeout: tcp.idleTimeout } : {}),
    ...(typeof tcp?.maxConnectionDuration === "string"
      ? { maxConnectionDuration: tcp.maxConnectionDuration }
      : {}),
    useSourceIp,
  };
}

/** Options of {@link outboundNetworkFilters}. */
export interface NetworkFilterOptions {
  /** Where the chain is: outbound sidecar listeners or gateways (stats reporter). */
  readonly class: "outbound" | "gateway";
  /** Authorization filters (gateways), in Istio's order, before stats. */
  readonly security?: readonly Filter[];
  /** Put TCP metadata exchange first (gateway servers terminating ISTIO_MUTUAL). */
  readonly includeMx?: boolean;
  /** The VirtualService the routes come from (stat prefix of weighted routes). */
  readonly vs?: { readonly name: string; readonly namespace: string };
}

/**
 * The network filters of a TCP route: one destination → `tcp_proxy` to its cluster (stat prefix =
 * cluster), several → `weighted_clusters` (stat prefix `<vs>.<namespace>`), 0-weight destinations
 * dropped; DestinationRule `connectionPool.tcp` idle timeout / max connection duration and
 * consistent-hash `useSourceIp` applied; preceded by security and stats filters.
 */
export function outboundNetworkFilters(
  ctx: BuildContext,
  routes: readonly L4RouteDestination[],
  listenPort: number,
  options: NetworkFilterOptions,
): Filter[] {
  const first = routes[0] as L4RouteDestination;
  const service = ctx.push.serviceForHostname(ctx.proxy, first.destination.host);
  const settings = tcpSettings(ctx, service, routes.length === 1 ? (first.destination.subset ?? "") : "");
  const proxy = create(TcpProxySchema, {});
  if (routes.length === 1) {
    const cluster = destinationCluster(first.destination, service, listenPort);
    proxy.statPrefix = cluster;
    proxy.clusterSpecifier = { case: "cluster", value: cluster };
  } else {
    proxy.statPrefix = `${options.vs?.name ?? ""}.${options.vs?.namespace ?? ""}`;
    const clusters = routes
      .filter((r) => (r.weight ?? 0) > 0)
      .map((r) => ({
        name: destinationCluster(
          r.destination,
          ctx.push.serviceForHostname(ctx.proxy, r.destination.host),
          listenPort,
        ),
        weight: r.weight ?? 0,
      }));
    proxy.clusterSpecifier = {
      case: "weightedClusters",
      value: create(TcpProxy_WeightedClusterSchema, { clusters }),
    };
  }
  if (settings.idleTimeout !== undefined) proxy.idleTimeout = parseDuration(settings.idleTimeout);
  if (settings.maxConnectionDuration !== undefined)
    proxy.maxDownstreamConnectionDuration = parseDuration(settings.maxConnectionDuration);
  if (settings.useSourceIp)
    proxy.hashPolicy = [create(HashPolicySchema, { policySpecifier: { case: "sourceIp", value: {} } })];
  proxy.accessLog = accessLogs(ctx, "tcp");
  return [
    ...(options.includeMx === true ? [tcpMetadataExchange()] : []),
    ...(options.security ?? []),
    networkStatsFilter(options.class),
    networkFilter(Wellknown.tcpProxy, anyPack(TcpProxySchema, proxy)),
  ];
}

/** Istio `buildOutboundCatchAllNetworkFiltersOnly`: stats, then tcp_proxy to PassthroughCluster or BlackHoleCluster. */
export function catchAllNetworkFilters(ctx: BuildContext, cluster: string): Filter[] {
  return [
    networkStatsFilter("outbound"),
    tcpProxyFilter(cluster, cluster, { accessLog: accessLogs(ctx, "tcp") }),
  ];
}
