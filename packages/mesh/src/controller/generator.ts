import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import type { Secret } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { TypeUrl } from "@meshlet/xds";
import { generateProxyless } from "../grpc/proxyless-generator.js";
import { serviceKey } from "../model/service.js";
import { parseSubsetKey } from "../naming/cluster-names.js";
import type { Proxy, ProxyKind } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { ProxyCapabilities } from "../translate/capabilities.js";
import { sharedLoadAssignment } from "../translate/endpoints.js";
import type { TranslationWarning } from "../translate/warnings.js";

/** What a generator is asked to build for one proxy. */
export interface GenerateRequest {
  readonly proxy: Proxy;
  readonly push: PushContext;
  /** What the proxy accepts (from its node: Envoy, or its gRPC library). */
  readonly capabilities: ProxyCapabilities;
  /**
   * The names the proxy subscribed to, per type URL; a type absent from the map, or mapped to
   * undefined, is a wildcard subscription (or not subscribed yet).
   */
  readonly subscriptions: ReadonlyMap<string, ReadonlySet<string> | undefined>;
}

/** What a generator returns: resources per type, and what it left out. */
export interface GeneratedResources {
  readonly listeners?: readonly Listener[];
  readonly routes?: readonly RouteConfiguration[];
  readonly clusters?: readonly Cluster[];
  readonly endpoints?: readonly ClusterLoadAssignment[];
  readonly secrets?: readonly Secret[];
  readonly warnings: readonly TranslationWarning[];
}

/**
 * `(Proxy, PushContext) → resources` for one proxy kind (ARCHITECTURE.md: generators per proxy
 * kind), optionally with an incremental path for endpoint changes.
 */
export interface ProxyGenerator {
  (request: GenerateRequest): GeneratedResources;
  /**
   * The proxy's resources after a change that touched only the endpoints of `services` (keys
   * `<namespace>/<hostname>`; their definitions, the routing config and the proxy's own workload
   * unchanged), from its `previous` resources: Istio's incremental EDS push. Must equal what a full
   * generation returns; undefined when it cannot say (the controller then generates in full).
   */
  readonly updateEndpoints?: (
    request: GenerateRequest,
    previous: GeneratedResources,
    services: ReadonlySet<string>,
  ) => GeneratedResources | undefined;
}

/** Generators by proxy kind; the controller serves kinds without one nothing (and says so in its status). */
export type ProxyGenerators = Partial<Record<ProxyKind, ProxyGenerator>>;

/**
 * The proxyless gRPC generator as a {@link ProxyGenerator}: LDS names come from the client's
 * listener subscription (a wildcard or none yet means every service port, Istio's empty filter),
 * cluster names from its CDS subscription.
 */
export const proxylessGenerator: ProxyGenerator = Object.assign(
  (request: GenerateRequest): GeneratedResources => {
    const listeners = request.subscriptions.get(TypeUrl.Listener);
    const clusters = request.subscriptions.get(TypeUrl.Cluster);
    return generateProxyless(request.proxy, request.push, {
      capabilities: request.capabilities,
      ...(listeners !== undefined ? { listenerNames: listeners } : {}),
      ...(clusters !== undefined ? { clusterNames: clusters } : {}),
    });
  },
  { updateEndpoints: updateLoadAssignments },
);

/**
 * The incremental EDS path of generators whose load assignments are exactly
 * `sharedLoadAssignment` of the service the proxy sees under the cluster's host (the proxyless and
 * Envoy generators): the load assignments of outbound clusters of `services` are rebuilt, every
 * other resource is kept (the same objects). Undefined when a changed host is not one the proxy
 * resolves to a service (a cluster for an unknown host or a service outside its scope), so the
 * controller generates in full.
 */
export function updateLoadAssignments(
  request: GenerateRequest,
  previous: GeneratedResources,
  services: ReadonlySet<string>,
): GeneratedResources | undefined {
  const { proxy, push } = request;
  const before = previous.endpoints;
  if (before === undefined || before.length === 0) return previous;
  const positions = outboundPositions(before);
  let after: ClusterLoadAssignment[] | undefined;
  for (const key of services) {
    const hostname = key.slice(key.indexOf("/") + 1);
    for (const { index, port, subset } of positions.get(hostname) ?? []) {
      const service = push.serviceForHostname(proxy, hostname);
      if (service === undefined) return undefined;
      if (serviceKey(service) !== key) continue;
      after ??= [...before];
      after[index] = sharedLoadAssignment({ push, proxy, service, port, subset });
    }
  }
  return after === undefined ? previous : { ...previous, endpoints: after };
}

/** Where each host's `outbound|…` load assignments sit in a list, by hostname. */
type Positions = ReadonlyMap<string, ReadonlyArray<{ index: number; port: number; subset: string }>>;

/**
 * The positions of a load-assignment list, computed once per list: the controller keeps the lists
 * it hands out canonical (proxies with equal resources hold the same list), so thousands of proxies
 * share one entry, and an endpoint change looks only at the changed hosts' entries.
 */
const POSITIONS = new WeakMap<readonly ClusterLoadAssignment[], Positions>();

function outboundPositions(list: readonly ClusterLoadAssignment[]): Positions {
  let out = POSITIONS.get(list) as Map<string, Array<{ index: number; port: number; subset: string }>>;
  if (out !== undefined) return out;
  out = new Map();
  for (let index = 0; index < list.length; index++) {
    const name = (list[index] as ClusterLoadAssignment).clusterName;
    // Only the `outbound|<port>|<subset>|<host>` form sharedLoadAssignment names.
    if (!name.startsWith("outbound|")) continue;
    const key = parseSubsetKey(name);
    if (key === undefined) continue;
    const entries = out.get(key.hostname);
    const entry = { index, port: key.port, subset: key.subset };
    if (entries === undefined) out.set(key.hostname, [entry]);
    else entries.push(entry);
  }
  POSITIONS.set(list, out);
  return out;
}
