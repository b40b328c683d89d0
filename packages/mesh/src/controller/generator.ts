import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import type { Secret } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { TypeUrl } from "@meshlet/xds";
import { generateProxyless } from "../grpc/proxyless-generator.js";
import type { Proxy, ProxyKind } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { ProxyCapabilities } from "../translate/capabilities.js";
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

/** `(Proxy, PushContext) → resources` for one proxy kind (ARCHITECTURE.md: generators per proxy kind). */
export type ProxyGenerator = (request: GenerateRequest) => GeneratedResources;

/** Generators by proxy kind; the controller serves kinds without one nothing (and says so in its status). */
export type ProxyGenerators = Partial<Record<ProxyKind, ProxyGenerator>>;

/**
 * The proxyless gRPC generator as a {@link ProxyGenerator}: LDS names come from the client's
 * listener subscription (a wildcard or none yet means every service port, Istio's empty filter),
 * cluster names from its CDS subscription.
 */
export const proxylessGenerator: ProxyGenerator = (request) => {
  const listeners = request.subscriptions.get(TypeUrl.Listener);
  const clusters = request.subscriptions.get(TypeUrl.Cluster);
  return generateProxyless(request.proxy, request.push, {
    capabilities: request.capabilities,
    ...(listeners !== undefined ? { listenerNames: listeners } : {}),
    ...(clusters !== undefined ? { clusterNames: clusters } : {}),
  });
};
