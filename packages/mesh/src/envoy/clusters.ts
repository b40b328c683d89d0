import { create, type JsonObject } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  type Cluster,
  Cluster_DiscoveryType,
  Cluster_DnsLookupFamily,
  Cluster_LbPolicy,
} from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { MetadataSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type ClusterLoadAssignment,
  ClusterLoadAssignmentSchema,
} from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { type Service, type ServicePort, serviceSourceKey } from "../model/service.js";
import { outboundClusterName } from "../naming/cluster-names.js";
import type { ConsolidatedDestinationRule } from "../push/destination-rules.js";
import { ENVOY_CAPABILITIES } from "../translate/capabilities.js";
import { buildOutboundCluster, type ClusterContext } from "../translate/cluster.js";
import { sharedLoadAssignment } from "../translate/endpoints.js";
import { carriedResult, objectKey } from "../translate/shared-results.js";
import type { BuildContext, EnvoyGeneratorWarning } from "./context.js";
import { tcpClusterMetadataExchange } from "./filters.js";
import { configPath } from "./metadata.js";
import { ISTIO_METADATA_KEY } from "./well-known.js";

// Outbound clusters of Envoy proxies: translate/cluster.ts applies the DestinationRule's traffic
// policy to an EDS cluster; this file adds what is Envoy-specific (istio/istio
// pilot/pkg/networking/core/cluster.go `buildOutboundClusters`, cluster_builder.go
// `applyDestinationRule`, `buildCluster`): STRICT_DNS clusters for DNS-resolved ServiceEntries,
// ORIGINAL_DST clusters for passthrough (headless) services, the TCP metadata-exchange cluster
// filter, and the telemetry metadata (`services`, `default_original_port`, `config`, `subset`).

/** The translate/ cluster context of a build, reporting warnings as generator warnings (to `warn`, by default the build's). */
export function clusterContext(
  ctx: BuildContext,
  warn: (w: EnvoyGeneratorWarning) => void = (w) => ctx.warnings.push(w),
): ClusterContext {
  return {
    push: ctx.push,
    proxy: ctx.proxy,
    capabilities: ENVOY_CAPABILITIES,
    warn: (w) =>
      warn({
        code: w.code,
        message: w.message,
        ...(w.config !== undefined ? { source: w.config } : {}),
      }),
  };
}

/** What {@link outboundClusters} produced: clusters, and the load assignments of the EDS ones. */
export interface ClusterSet {
  readonly clusters: Cluster[];
  readonly endpoints: ClusterLoadAssignment[];
}

const SHARED_CLUSTERS = Symbol("shared outbound clusters");

/** The clusters of a service port for one rule, and the subsets whose clusters are EDS clusters. */
interface SharedClusters {
  readonly clusters: readonly Cluster[];
  readonly edsSubsets: readonly string[];
}

/**
 * The clusters of a service port: `outbound|<port>||<host>` and one per DestinationRule subset,
 * each with the rule's traffic policy and auto mTLS (`tlsMode-istio` transport socket match) unless
 * the destination's PeerAuthentication disables mTLS. EDS clusters come with their load assignment.
 * Clusters are shared by every proxy of the push that gets the same service port and rule, load
 * assignments by those that also share a locality (the same message objects: encoded once).
 */
export function outboundClusters(ctx: BuildContext, service: Service, port: ServicePort): ClusterSet {
  const out: ClusterSet = { clusters: [], endpoints: [] };
  if (port.protocol === "UDP" || service.resolution === "Alias") return out;
  const rule = ctx.push.destinationRule(ctx.proxy, service);
  const key = `${serviceSourceKey(service)}|${port.port}|${port.name}|${port.protocol}|${String(port.targetPort)}|${objectKey(ctx.push, rule)}`;
  // Kept while only endpoints change, with the instance list of the service (SANs, DNS endpoints).
  const shared = carriedResult(
    ctx.push,
    SHARED_CLUSTERS,
    ctx.push.registry.instances(service),
    key,
    (w: EnvoyGeneratorWarning) => ctx.warnings.push(w),
    (warn) => buildOutboundClusters(ctx, service, port, rule, warn),
  );
  out.clusters.push(...shared.clusters);
  for (const subset of shared.edsSubsets) {
    out.endpoints.push(
      sharedLoadAssignment({
        push: ctx.push,
        proxy: ctx.proxy,
        service,
        port: port.port,
        subset,
        rule: rule ?? null,
      }),
    );
  }
  return out;
}

function buildOutboundClusters(
  ctx: BuildContext,
  service: Service,
  port: ServicePort,
  rule: ConsolidatedDestinationRule | undefined,
  warn: (w: EnvoyGeneratorWarning) => void,
): SharedClusters {
  const clusters: Cluster[] = [];
  const edsSubsets: string[] = [];
  const cctx = clusterContext(ctx, warn);
  const serviceMtlsMode =
    service.selector !== undefined
      ? ctx.push.mtlsMode({ namespace: service.namespace, labels: service.selector }, targetPortOf(port))
      : undefined;
  const autoMtls = {
    enabled: ctx.mesh.enableAutoMtls,
    ...(serviceMtlsMode !== undefined ? { serviceMtlsMode } : {}),
  };
  const subsets = ["", ...(rule?.spec.subsets ?? []).map((s) => s.name)];
  for (const subset of subsets) {
    const cluster = buildOutboundCluster(cctx, { service, port, subset, rule: rule ?? null, autoMtls });
    if (cluster === undefined) continue;
    const eds = adaptDiscoveryType(ctx, cluster, service, port, subset, rule);
    cluster.filters.push(tcpClusterMetadataExchange());
    const istio: Record<string, unknown> = {
      services: [{ host: service.hostname, name: service.name, namespace: service.namespace }],
      default_original_port: port.port,
    };
    if (rule !== undefined && rule.from[0] !== undefined) {
      const first = ctx.push.snapshot.get("DestinationRule", rule.from[0].namespace, rule.from[0].name);
      if (first !== undefined) istio.config = configPath(first);
    }
    if (subset !== "") istio.subset = subset;
    cluster.metadata ??= create(MetadataSchema);
    cluster.metadata.filterMetadata[ISTIO_METADATA_KEY] = istio as JsonObject;
    clusters.push(cluster);
    if (eds) edsSubsets.push(subset);
  }
  return { clusters, edsSubsets };
}

function targetPortOf(port: ServicePort): number {
  return typeof port.targetPort === "number" ? port.targetPort : port.port;
}

/**
 * Turns the EDS cluster into what the service's resolution needs (Istio `buildCluster` switch):
 * DNS → STRICT_DNS (DNSRoundRobin → LOGICAL_DNS) with the endpoints' host names (the service host
 * when it lists none), V4_ONLY lookups and the DNS TTL respected; Passthrough → ORIGINAL_DST.
 * @returns whether the cluster stays EDS.
 */
function adaptDiscoveryType(
  ctx: BuildContext,
  cluster: Cluster,
  service: Service,
  port: ServicePort,
  subset: string,
  rule: ConsolidatedDestinationRule | undefined,
): boolean {
  if (service.resolution === "ClientSide") return true;
  cluster.edsClusterConfig = undefined;
  if (service.resolution === "Passthrough") {
    cluster.clusterDiscoveryType = { case: "type", value: Cluster_DiscoveryType.ORIGINAL_DST };
    cluster.lbPolicy = Cluster_LbPolicy.CLUSTER_PROVIDED;
    return false;
  }
  cluster.clusterDiscoveryType = {
    case: "type",
    value:
      service.resolution === "DNSRoundRobin"
        ? Cluster_DiscoveryType.LOGICAL_DNS
        : Cluster_DiscoveryType.STRICT_DNS,
  };
  cluster.dnsLookupFamily = Cluster_DnsLookupFamily.V4_ONLY;
  cluster.respectDnsTtl = true;
  cluster.dnsRefreshRate = create(DurationSchema, { seconds: 60n });
  const labels =
    subset === "" ? undefined : (rule?.spec.subsets ?? []).find((s) => s.name === subset)?.labels;
  const eps = ctx.push.endpoints(service, port.port, labels);
  const targets =
    eps.length > 0
      ? eps.map((e) => ({ host: e.addresses[0] ?? service.hostname, port: e.port }))
      : [{ host: service.hostname, port: port.port }];
  cluster.loadAssignment = create(ClusterLoadAssignmentSchema, {
    clusterName: cluster.name,
    endpoints: [
      {
        lbEndpoints: targets.map((t) => ({
          hostIdentifier: {
            case: "endpoint" as const,
            value: {
              address: {
                address: {
                  case: "socketAddress" as const,
                  value: { address: t.host, portSpecifier: { case: "portValue" as const, value: t.port } },
                },
              },
            },
          },
          loadBalancingWeight: 1,
        })),
      },
    ],
  });
  return false;
}

/** The cluster names a service port produces (the default cluster), for references. */
export function defaultClusterName(service: Service, port: number): string {
  return outboundClusterName(service.hostname, port);
}
