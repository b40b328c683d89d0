import { create } from "@bufbuild/protobuf";
import {
  type Route,
  RouteActionSchema,
  type RouteMatch,
  RouteMatchSchema,
  RouteSchema,
  VirtualHostSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import {
  type RouteConfiguration,
  RouteConfigurationSchema,
} from "@meshlet/api/envoy/config/route/v3/route_pb";
import type { ResourceKey } from "@meshlet/config";
import { type Service, UNSPECIFIED_IP } from "../model/service.js";
import { virtualHostName } from "../naming/listener-names.js";
import { joinHostPort, proxylessRouteConfigName } from "../naming/proxyless-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { ProxyCapabilities } from "../translate/capabilities.js";
import {
  BLACK_HOLE_CLUSTER,
  buildVirtualServiceRoutes,
  consistentHashToHashPolicy,
  defaultOutboundRoute,
  hashForService,
  setRouteTimeout,
  traceOperation,
} from "../translate/route.js";
import type { WarningSink } from "../translate/warnings.js";

// RDS for proxyless gRPC (istio/istio pilot/pkg/networking/grpcgen/rds.go): the route configuration
// a client listener names, `outbound|<port>||<fqdn>`, holds the one virtual host of that service port,
// built as a sidecar's (httproute.go) but keeping the `:port` domain variants
// (`SidecarIgnorePort` is off for proxyless).

/**
 * The domains of a service port's virtual host for a proxy (Istio `generateVirtualHostDomains` with
 * the absolute-FQDN variants of `PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN`, on by default): the FQDN,
 * `<fqdn>.`, the Kubernetes short forms the proxy can use (`name`, `name.ns.svc`, `name.ns` in its
 * own namespace; `name.ns.svc`, `name.ns` elsewhere), and the service VIPs, each also with `:port`.
 */
export function virtualHostDomains(
  service: Service,
  port: number,
  proxy: Pick<Proxy, "dnsDomain">,
): string[] {
  const out: string[] = [];
  const both = (host: string) => out.push(host, joinHostPort(host, port));
  both(service.hostname);
  both(`${service.hostname}.`);
  const svc = service.hostname.indexOf(".svc.");
  const dot = service.hostname.indexOf(".");
  if (svc > 0 && dot > 0 && dot < svc) {
    const name = service.hostname.slice(0, dot);
    const ns = service.hostname.slice(dot + 1, svc);
    const proxyNs = proxy.dnsDomain.slice(0, Math.max(0, proxy.dnsDomain.indexOf(".svc.")));
    if (ns === proxyNs) both(name);
    both(service.hostname.slice(0, svc + 4));
    both(service.hostname.slice(0, svc));
  }
  for (const vip of service.addresses) if (vip !== UNSPECIFIED_IP && vip !== "") both(vip);
  return [...new Set(out)];
}

/**
 * Why gRPC skips a route's path match, or undefined when it keeps it. gRPC paths are always
 * `/<service>/<method>`, so gRPC C-core (xds_route_config.cc `RoutePathMatchParse`) ignores a
 * route whose `path` is not exactly that shape or whose `prefix` is not empty, `/`, `/<service>`
 * or `/<service>/<method prefix>`; regexes are kept. A virtual host left without routes is NACKed
 * ("No valid routes specified").
 */
export function grpcIgnoredPath(match: RouteMatch | undefined): string | undefined {
  const ps = match?.pathSpecifier;
  if (ps?.case === "prefix") {
    const prefix = ps.value;
    if (prefix === "") return undefined;
    if (!prefix.startsWith("/")) return `prefix ${JSON.stringify(prefix)} does not start with "/"`;
    const parts = prefix.slice(1).split("/");
    if (parts.length > 2) return `prefix ${JSON.stringify(prefix)} has more than two "/"`;
    if (parts.length === 2 && parts[0] === "") return `prefix ${JSON.stringify(prefix)} has no service name`;
    return undefined;
  }
  if (ps?.case === "path") {
    const parts = ps.value.startsWith("/") ? ps.value.slice(1).split("/") : [];
    if (parts.length !== 2 || parts[0] === "" || parts[1] === "")
      return `path ${JSON.stringify(ps.value)} is not /<service>/<method>`;
    return undefined;
  }
  return undefined;
}

/**
 * The routes with what gRPC cannot match reported, and, when gRPC would be left without any route
 * (and NACK the route configuration), a catch-all route to {@link BLACK_HOLE_CLUSTER} at the end:
 * RPCs then fail with UNAVAILABLE, as they do in gRPC when no route matches.
 */
function keepMatchableByGrpc(
  routes: Route[],
  input: RouteConfigInput,
  vhost: string,
  config: ResourceKey | undefined,
): Route[] {
  let kept = 0;
  for (const r of routes) {
    const reason = grpcIgnoredPath(r.match);
    if (reason === undefined) {
      kept++;
      continue;
    }
    input.warn({
      code: "UNSUPPORTED_BY_CLIENT",
      message: `a route of ${vhost} can never match a gRPC request (${reason}); gRPC ignores it`,
      ...(config !== undefined ? { config } : {}),
      client: input.capabilities.client,
    });
  }
  if (kept > 0) return routes;
  const action = create(RouteActionSchema, {
    clusterSpecifier: { case: "cluster", value: BLACK_HOLE_CLUSTER },
  });
  setRouteTimeout(action, undefined, input.capabilities);
  input.warn({
    code: "UNSUPPORTED_BY_CLIENT",
    message: `no route of ${vhost} can match a gRPC request: a catch-all route to ${BLACK_HOLE_CLUSTER} is added so the route configuration is not NACKed; RPCs fail with UNAVAILABLE`,
    ...(config !== undefined ? { config } : {}),
    client: input.capabilities.client,
  });
  return [
    ...routes,
    create(RouteSchema, {
      match: create(RouteMatchSchema, { pathSpecifier: { case: "prefix", value: "/" } }),
      action: { case: "route", value: action },
    }),
  ];
}

/** What {@link buildRouteConfiguration} needs. */
export interface RouteConfigInput {
  readonly push: PushContext;
  readonly proxy: Proxy;
  readonly capabilities: ProxyCapabilities;
  readonly warn: WarningSink;
}

/**
 * The route configuration `outbound|<port>||<fqdn>` of a service port for a proxyless client: one
 * virtual host `<fqdn>:<port>` whose routes are the VirtualService's for the host and port (Istio:
 * the sidecar vhost of the service, rds.go filtering the route config down to it), else the default
 * route to the service's default cluster (with a hash policy when its DestinationRule hashes).
 */
export function buildRouteConfiguration(
  input: RouteConfigInput,
  service: Service,
  port: number,
): RouteConfiguration {
  const { push, proxy, capabilities, warn } = input;
  const name = proxylessRouteConfigName(service.hostname, port);
  let routes: Route[] = [];
  const vs = push.virtualServiceForHost(proxy, service.hostname);
  let leftOut = false;
  if (vs !== undefined) {
    routes = buildVirtualServiceRoutes(vs, { push, proxy, listenPort: port, capabilities, warn });
    // Every route of the VirtualService for this port was left out because the client cannot
    // match on it (query parameters, JWT claims): no request matches the VirtualService, as in
    // Envoy (404 there) — it must not fall back to the default route to the whole service.
    const permissive = { ...capabilities, queryParameterMatch: true, dynamicMetadataMatch: true };
    leftOut =
      routes.length === 0 &&
      buildVirtualServiceRoutes(vs, { push, proxy, listenPort: port, capabilities: permissive }).length > 0;
  }
  if (routes.length > 0 || leftOut)
    routes = keepMatchableByGrpc(routes, input, virtualHostName(service.hostname, port), vs?.key);
  if (routes.length === 0) {
    const route = defaultOutboundRoute(
      name,
      traceOperation(service.hostname, port),
      push.mesh.defaultHttpRetryPolicy,
    );
    const hash = hashForService({ push, proxy }, service, port);
    const policy = hash === undefined ? undefined : consistentHashToHashPolicy(hash, capabilities, warn);
    if (policy !== undefined && route.action.case === "route") route.action.value.hashPolicy.push(policy);
    routes = [route];
  }
  return create(RouteConfigurationSchema, {
    name,
    virtualHosts: [
      create(VirtualHostSchema, {
        name: virtualHostName(service.hostname, port),
        domains: virtualHostDomains(service, port, proxy),
        routes,
      }),
    ],
  });
}
