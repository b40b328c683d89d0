import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { Cluster_DiscoveryType } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";

function hcmRouteName(hcm: HttpConnectionManager | undefined): string | undefined {
  return hcm?.routeSpecifier.case === "rds" ? hcm.routeSpecifier.value.routeConfigName : undefined;
}

/**
 * Names of the RouteConfigurations (RDS) a listener depends on: those named by its HTTP connection
 * managers, in filter chains and in an API listener.
 */
export function listenerRouteNames(listener: Listener): string[] {
  const names = new Set<string>();
  const api = listener.apiListener?.apiListener;
  if (api) {
    const name = hcmRouteName(anyUnpack(api, HttpConnectionManagerSchema));
    if (name) names.add(name);
  }
  const chains = [
    ...listener.filterChains,
    ...(listener.defaultFilterChain ? [listener.defaultFilterChain] : []),
  ];
  for (const chain of chains) {
    for (const filter of chain.filters) {
      if (filter.configType.case !== "typedConfig") continue;
      const name = hcmRouteName(anyUnpack(filter.configType.value, HttpConnectionManagerSchema));
      if (name) names.add(name);
    }
  }
  return [...names];
}

/** The ClusterLoadAssignment (EDS) name an EDS cluster depends on, or undefined for other types. */
export function clusterEndpointName(cluster: Cluster): string | undefined {
  if (
    cluster.clusterDiscoveryType.case !== "type" ||
    cluster.clusterDiscoveryType.value !== Cluster_DiscoveryType.EDS
  ) {
    return undefined;
  }
  return cluster.edsClusterConfig?.serviceName || cluster.name;
}
