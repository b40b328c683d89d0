import { create } from "@bufbuild/protobuf";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import {
  type ClusterLoadAssignment,
  ClusterLoadAssignmentSchema,
} from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { type Service, serviceSourceKey } from "../model/service.js";
import { parseSubsetKey } from "../naming/cluster-names.js";
import {
  PROXYLESS_SERVER_LISTENER_PREFIX,
  parseProxylessServerListenerName,
  proxylessListenerRequests,
} from "../naming/proxyless-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import { type ProxyCapabilities, proxylessCapabilities } from "../translate/capabilities.js";
import { buildOutboundCluster, edsCluster } from "../translate/cluster.js";
import { sharedLoadAssignment } from "../translate/endpoints.js";
import { BLACK_HOLE_CLUSTER } from "../translate/route.js";
import { capabilitiesKey, carriedResult, objectKey, routingLabelsKey } from "../translate/shared-results.js";
import { quoteClientValue, type TranslationWarning, type WarningSink } from "../translate/warnings.js";
import { clientListener, serverListener } from "./listeners.js";
import { buildRouteConfiguration } from "./routes.js";

// The proxyless gRPC generator (Istio's `grpc` generator, istio/istio pilot/pkg/networking/grpcgen/):
// LDS names are what the client dialled or its server template produced; RDS, CDS and EDS follow
// from them. Everything is computed for one client and its subscriptions, as istiod computes it per
// request, so a client only ever receives the services it dials.

/** What to generate for a proxyless client. */
export interface ProxylessGenerateOptions {
  /**
   * The LDS resource names the client subscribed to: dialled targets (`echo.ns.svc.cluster.local:7070`,
   * `echo:7070`, `echo`) and server listener names (`xds.istio.io/grpc/lds/inbound/0.0.0.0:17070`).
   * Undefined = a wildcard subscription: a listener named `<fqdn>:<port>` for every port of every
   * service the client sees (Istio's empty listener filter).
   */
  readonly listenerNames?: Iterable<string>;
  /** CDS names the client asked for beyond those its routes reference. */
  readonly clusterNames?: Iterable<string>;
  /** What the client accepts (default: an unknown gRPC client's, {@link proxylessCapabilities}). */
  readonly capabilities?: ProxyCapabilities;
}

/** The resources of one proxyless client, and what was left out for it. */
export interface ProxylessResources {
  readonly listeners: Listener[];
  readonly routes: RouteConfiguration[];
  readonly clusters: Cluster[];
  readonly endpoints: ClusterLoadAssignment[];
  readonly warnings: TranslationWarning[];
}

/**
 * Generates the LDS, RDS, CDS and EDS resources of a proxyless gRPC client, as Istio's grpc generator
 * does:
 * - a client listener per requested `host[:port]` whose host is (or expands to, in the client's own
 *   namespace) a service the client sees, named exactly as requested, for the requested port or every
 *   port; its route configuration `outbound|<port>||<fqdn>`;
 * - a server listener per requested `xds.istio.io/grpc/lds/inbound/<ip>:<port>` whose port a service
 *   selects the workload on, with mTLS per PeerAuthentication and RBAC per AuthorizationPolicy;
 * - the clusters the routes reference (default and the subsets in use), each with its
 *   ClusterLoadAssignment. A route to a subset or service that does not exist gets a cluster without
 *   endpoints, so its RPCs fail at once with UNAVAILABLE (Istio would leave the cluster out and the
 *   client would wait for its does-not-exist timer). CDS names the client asked for itself get a
 *   cluster only when they resolve to a service port (and subset): an unknown name gets no resource.
 * Features the client would reject are left out and reported in `warnings`.
 */
export function generateProxyless(
  proxy: Proxy,
  push: PushContext,
  options: ProxylessGenerateOptions = {},
): ProxylessResources {
  const capabilities = options.capabilities ?? proxylessCapabilities("grpc-unknown");
  const warnings: TranslationWarning[] = [];
  const seen = new Set<string>();
  const warn: WarningSink = (w) => {
    const key = `${w.code}|${w.path ?? ""}|${w.message}`;
    if (seen.has(key)) return;
    seen.add(key);
    warnings.push(w);
  };
  const listeners: Listener[] = [];
  const routes = new Map<string, RouteConfiguration>();
  const caps = capabilitiesKey(capabilities);
  let labels: string | undefined;
  const addRoute = (service: Service, port: number) => {
    // Shared by the clients of one scope, namespace, DNS domain, labels and capabilities.
    labels ??= routingLabelsKey(push, proxy, push.proxyLabels(proxy));
    const key = [
      objectKey(push, push.sidecarScope(proxy)),
      serviceSourceKey(service),
      service.addresses.join(","),
      port,
      proxy.namespace,
      proxy.dnsDomain,
      labels,
      caps,
    ].join("|");
    const route = carriedResult(push, SHARED_ROUTES, push.sidecarScope(proxy), key, warn, (w) =>
      buildRouteConfiguration({ push, proxy, capabilities, warn: w }, service, port),
    );
    if (!routes.has(route.name)) routes.set(route.name, route);
  };

  const services = push.servicesForProxy(proxy);
  if (options.listenerNames === undefined) {
    for (const service of services) {
      for (const p of service.ports) {
        listeners.push(clientListener(service.hostname, service, p.port));
        addRoute(service, p.port);
      }
    }
  } else {
    const requests = proxylessListenerRequests(options.listenerNames, proxy);
    for (const service of services) {
      const request = requests.get(service.hostname);
      if (request === undefined) continue;
      // One listener per requested name: gRPC may watch both `foo` and `foo.ns` (grpcgen).
      for (const requested of [...request.requestedNames].sort()) {
        for (const p of service.ports) {
          if (request.ports.size > 0 && !request.ports.has(String(p.port))) continue;
          listeners.push(clientListener(requested, service, p.port));
          addRoute(service, p.port);
        }
      }
    }
    for (const name of [...requests.keys()].sort()) {
      if (!name.startsWith(PROXYLESS_SERVER_LISTENER_PREFIX)) continue;
      const address = parseProxylessServerListenerName(name);
      if (address === undefined) {
        warn({
          code: "INVALID_CONFIG",
          message: `server listener name ${quoteClientValue(name)} has no <ip>:<port>`,
        });
        continue;
      }
      const listener = serverListener({ push, proxy, capabilities, warn }, name, address.host, address.port);
      if (listener !== undefined) listeners.push(listener);
    }
  }

  // Names the routes reference get a cluster even when they resolve to nothing (an empty one: RPCs
  // routed there fail at once with UNAVAILABLE). Names only the client asked for get one only when
  // they resolve: Istio generates nothing for a name it does not know, and to a SotW gRPC client
  // a name absent from the response does not exist (gRFC A27), so its channel fails at once
  // instead of the server holding resources for whatever names a client makes up.
  const routed = new Set<string>();
  for (const route of routes.values()) for (const name of referencedClusters(route)) routed.add(name);
  const clusterNames = new Set<string>([...(options.clusterNames ?? []), ...routed]);
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  const empty = (name: string) => {
    clusters.push(edsCluster(name, capabilities));
    endpoints.push(create(ClusterLoadAssignmentSchema, { clusterName: name }));
  };
  for (const name of [...clusterNames].sort()) {
    if (name === BLACK_HOLE_CLUSTER) {
      empty(name);
      continue;
    }
    const key = parseSubsetKey(name);
    if (key === undefined || key.direction !== "outbound") continue;
    const service = push.serviceForHostname(proxy, key.hostname);
    const port = service?.ports.find((p) => p.port === key.port);
    if (service === undefined || port === undefined) {
      if (!routed.has(name)) {
        warn({
          code: "INVALID_CONFIG",
          message: `cluster ${quoteClientValue(name)}: ${service === undefined ? `no service ${quoteClientValue(key.hostname)} is visible to ${proxy.id}` : `service ${key.hostname} has no port ${key.port}`}; not generated (the client sees it does not exist)`,
        });
        continue;
      }
      warn({
        code: "INVALID_CONFIG",
        message: `cluster ${quoteClientValue(name)}: ${service === undefined ? `no service ${quoteClientValue(key.hostname)} is visible to ${proxy.id}` : `service ${key.hostname} has no port ${key.port}`}; its RPCs fail with UNAVAILABLE`,
      });
      empty(name);
      continue;
    }
    const rule = push.destinationRule(proxy, service);
    const cluster = carriedResult(
      push,
      SHARED_CLUSTERS,
      push.registry.instances(service),
      `${serviceSourceKey(service)}|${port.port}|${port.name}|${port.protocol}|${String(port.targetPort)}|${key.subset}|${objectKey(push, rule)}|${caps}`,
      warn,
      (w) =>
        buildOutboundCluster(
          { push, proxy, capabilities, warn: w },
          { service, port, subset: key.subset, rule: rule ?? null },
        ),
    );
    if (cluster === undefined) {
      if (!routed.has(name)) {
        warn({
          code: "INVALID_CONFIG",
          message: `cluster ${quoteClientValue(name)}: no DestinationRule visible to ${proxy.id} defines subset ${quoteClientValue(key.subset)} of ${key.hostname}; not generated (the client sees it does not exist)`,
        });
        continue;
      }
      warn({
        code: "INVALID_CONFIG",
        message: `cluster ${quoteClientValue(name)}: no DestinationRule visible to ${proxy.id} defines subset ${quoteClientValue(key.subset)} of ${key.hostname}; its RPCs fail with UNAVAILABLE`,
      });
      empty(name);
      continue;
    }
    clusters.push(cluster);
    endpoints.push(
      sharedLoadAssignment({ push, proxy, service, port: port.port, subset: key.subset, rule: rule ?? null }),
    );
    if (
      service.resolution === "DNS" ||
      service.resolution === "DNSRoundRobin" ||
      service.resolution === "Passthrough"
    ) {
      // Istio's EDS builder skips DNS and passthrough services (endpoint_builder.go), and gRPC
      // resolves no hostname endpoints nor original destinations: the cluster stays empty.
      warn({
        code: "UNSUPPORTED_BY_CLIENT",
        message: `cluster ${name}: ${service.hostname} has resolution ${service.resolution === "Passthrough" ? "NONE" : "DNS"}, which proxyless gRPC cannot follow (no endpoints are sent, as Istio sends none); its RPCs fail with UNAVAILABLE — give the ServiceEntry resolution STATIC with endpoint IPs`,
        config: service.source,
        client: capabilities.client,
      });
    }
  }
  return { listeners, routes: [...routes.values()], clusters, endpoints, warnings };
}

const SHARED_ROUTES = Symbol("shared proxyless route configurations");
const SHARED_CLUSTERS = Symbol("shared proxyless clusters");

/** The clusters a route configuration sends traffic to (route and weighted clusters). */
export function referencedClusters(config: RouteConfiguration): string[] {
  const out: string[] = [];
  for (const vh of config.virtualHosts) {
    for (const r of vh.routes) {
      if (r.action.case !== "route") continue;
      const spec = r.action.value.clusterSpecifier;
      if (spec.case === "cluster") out.push(spec.value);
      else if (spec.case === "weightedClusters") for (const c of spec.value.clusters) out.push(c.name);
    }
  }
  return out;
}
