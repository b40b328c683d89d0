import { create } from "@bufbuild/protobuf";
import { type Route, VirtualHostSchema } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import {
  type RouteConfiguration,
  RouteConfigurationSchema,
} from "@meshlet/api/envoy/config/route/v3/route_pb";
import { type Service, UNSPECIFIED_IP } from "../model/service.js";
import { virtualHostName } from "../naming/listener-names.js";
import { joinHostPort, proxylessRouteConfigName } from "../naming/proxyless-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { ProxyCapabilities } from "../translate/capabilities.js";
import {
  buildVirtualServiceRoutes,
  consistentHashToHashPolicy,
  defaultOutboundRoute,
  hashForService,
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
  if (vs !== undefined)
    routes = buildVirtualServiceRoutes(vs, { push, proxy, listenPort: port, capabilities, warn });
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
