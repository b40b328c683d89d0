import { create } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import {
  type ClusterLoadAssignment,
  ClusterLoadAssignmentSchema,
} from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { HttpConnectionManagerSchema } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { TcpProxySchema } from "@meshlet/api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb";
import type { Secret } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { ENVOY_CAPABILITIES } from "../translate/capabilities.js";
import { edsCluster } from "../translate/cluster.js";
import type { EnvoyGeneratorWarning } from "./context.js";

/** What the Envoy generators produce for one proxy: the xDS resources, by type, and warnings. */
export interface EnvoyResources {
  readonly listeners: Listener[];
  readonly routes: RouteConfiguration[];
  readonly clusters: Cluster[];
  readonly endpoints: ClusterLoadAssignment[];
  /** Gateway `credentialName` secrets found in the config (served over ADS, as istiod does). */
  readonly secrets: Secret[];
  readonly warnings: EnvoyGeneratorWarning[];
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Every cluster a listener or route configuration names (routes, weighted clusters, mirrors, tcp_proxy). */
export function referencedEnvoyClusters(
  listeners: readonly Listener[],
  routes: readonly RouteConfiguration[],
): Set<string> {
  const out = new Set<string>();
  const fromRoutes = (rc: RouteConfiguration) => {
    for (const vh of rc.virtualHosts) {
      for (const r of vh.routes) {
        if (r.action.case !== "route") continue;
        const a = r.action.value;
        if (a.clusterSpecifier.case === "cluster") out.add(a.clusterSpecifier.value);
        if (a.clusterSpecifier.case === "weightedClusters")
          for (const c of a.clusterSpecifier.value.clusters) out.add(c.name);
        for (const m of a.requestMirrorPolicies) if (m.cluster !== "") out.add(m.cluster);
      }
    }
  };
  routes.forEach(fromRoutes);
  for (const l of listeners) {
    for (const fc of [
      ...l.filterChains,
      ...(l.defaultFilterChain !== undefined ? [l.defaultFilterChain] : []),
    ]) {
      for (const f of fc.filters) {
        if (f.configType.case !== "typedConfig") continue;
        if (f.name === "envoy.filters.network.tcp_proxy") {
          const t = anyUnpack(f.configType.value, TcpProxySchema);
          if (t?.clusterSpecifier.case === "cluster") out.add(t.clusterSpecifier.value);
          if (t?.clusterSpecifier.case === "weightedClusters")
            for (const c of t.clusterSpecifier.value.clusters) out.add(c.name);
        } else if (f.name === "envoy.filters.network.http_connection_manager") {
          const h = anyUnpack(f.configType.value, HttpConnectionManagerSchema);
          if (h?.routeSpecifier.case === "routeConfig") fromRoutes(h.routeSpecifier.value);
        }
      }
    }
  }
  return out;
}

/**
 * Sorts every type by name, drops duplicate clusters (the first wins, Istio `normalizeClusters`)
 * and closes dangling references: a cluster a route or tcp_proxy names that does not exist (a
 * VirtualService naming a missing subset or an unknown host) becomes an EDS cluster with no
 * endpoints, so requests fail with 503 (no healthy upstream) instead of Envoy holding a reference
 * to nothing; each is reported.
 */
export function finishResources(
  input: Omit<EnvoyResources, "warnings">,
  warnings: EnvoyGeneratorWarning[],
): EnvoyResources {
  const seen = new Set<string>();
  const clusters = input.clusters.filter((c) => {
    if (seen.has(c.name)) return false;
    seen.add(c.name);
    return true;
  });
  const endpoints = [...input.endpoints];
  const haveEndpoints = new Set(endpoints.map((e) => e.clusterName));
  for (const name of referencedEnvoyClusters(input.listeners, input.routes)) {
    if (seen.has(name)) continue;
    seen.add(name);
    clusters.push(edsCluster(name, ENVOY_CAPABILITIES));
    if (!haveEndpoints.has(name)) {
      endpoints.push(create(ClusterLoadAssignmentSchema, { clusterName: name }));
      haveEndpoints.add(name);
    }
    warnings.push({
      code: "missing-cluster",
      message: `cluster ${name} is referenced by a route but no service or DestinationRule subset defines it; it has no endpoints (requests fail with 503)`,
    });
  }
  const epSeen = new Set<string>();
  const dedupEndpoints = endpoints.filter((e) => {
    if (epSeen.has(e.clusterName)) return false;
    epSeen.add(e.clusterName);
    return true;
  });
  return {
    listeners: [...input.listeners].sort(byName),
    routes: [...input.routes].sort(byName),
    clusters: clusters.sort(byName),
    endpoints: dedupEndpoints.sort((a, b) =>
      a.clusterName < b.clusterName ? -1 : a.clusterName > b.clusterName ? 1 : 0,
    ),
    secrets: [...input.secrets].sort(byName),
    warnings,
  };
}
