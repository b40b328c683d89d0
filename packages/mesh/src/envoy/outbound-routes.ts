import { isIP } from "node:net";
import { create } from "@bufbuild/protobuf";
import {
  type Route,
  RouteSchema,
  type VirtualHost,
  VirtualHostSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import {
  type RouteConfiguration,
  RouteConfigurationSchema,
} from "@meshlet/api/envoy/config/route/v3/route_pb";
import { hostSubsetOf, isWildcardHost } from "../model/host.js";
import { type Service, UNSPECIFIED_IP } from "../model/service.js";
import { outboundClusterName } from "../naming/cluster-names.js";
import { IstioNames, virtualHostName } from "../naming/listener-names.js";
import type { MeshVirtualService } from "../push/virtual-services.js";
import { ENVOY_CAPABILITIES } from "../translate/capabilities.js";
import {
  buildVirtualServiceRoutes,
  consistentHashToHashPolicy,
  defaultOutboundRoute,
  hashForService,
  type RouteContext,
  traceOperation,
} from "../translate/route.js";
import { carriedResult, objectKey, routingLabelsKey } from "../translate/shared-results.js";
import type { BuildContext, EnvoyGeneratorWarning } from "./context.js";
import { untimedRoute } from "./inbound.js";
import { catchAllCluster } from "./outbound-listeners.js";
import { MAX_DIRECT_RESPONSE_BODY_BYTES } from "./well-known.js";

// A sidecar's outbound route configurations (istio/istio pilot/pkg/networking/core/httproute.go
// `buildSidecarOutboundHTTPRouteConfig`, `BuildSidecarOutboundVirtualHosts`,
// `generateVirtualHostDomains`, `GenerateAltVirtualHosts`, `buildCatchAllVirtualHost`; route
// selection per host from route/route.go `BuildSidecarVirtualHostWrapper`). The routes themselves
// come from translate/route.ts.

/** The translate/ route context of a build, for a port. */
export function routeContext(
  ctx: BuildContext,
  listenPort: number,
  extra: Partial<RouteContext> = {},
): RouteContext {
  return {
    push: ctx.push,
    proxy: ctx.proxy,
    listenPort,
    capabilities: ENVOY_CAPABILITIES,
    proxyLabels: ctx.labels,
    warn: (w) =>
      ctx.warnings.push({
        code: w.code,
        message: w.message,
        ...(w.config !== undefined ? { source: w.config } : {}),
      }),
    ...extra,
  };
}

/**
 * Istio `GenerateAltVirtualHosts` for a host seen from a proxy in DNS domain `<ns>.svc.<suffix>`:
 * the absolute FQDN (`host.`), then for Kubernetes hosts of the proxy's namespace `name`,
 * `name.ns.svc`, `name.ns`, of another namespace `name.ns`, `name.ns.svc` (ports left off, the
 * route configuration ignoring ports).
 */
export function altVirtualHosts(hostname: string, proxyDomain: string): string[] {
  const out: string[] = [];
  if (isIP(hostname) === 0) out.push(`${hostname}.`);
  const svcAt = proxyDomain.indexOf(".svc.");
  if (svcAt > 0) {
    if (!hostname.endsWith(proxyDomain.slice(svcAt))) return out;
    const ih = hostname.indexOf(".svc.");
    if (ih <= 0) return out;
    const ns = hostname.indexOf(".");
    if (ns + 1 >= hostname.length || ns + 1 > ih) return out;
    if (hostname.slice(ns + 1, ih) === proxyDomain.slice(0, svcAt)) {
      out.push(hostname.slice(0, ns), `${hostname.slice(0, ih)}.svc`, hostname.slice(0, ih));
    } else out.push(hostname.slice(0, ih), `${hostname.slice(0, ih)}.svc`);
    return out;
  }
  // Non-Kubernetes proxy domains: the unique part of the host (Istio getUniqueAndSharedDNSDomain).
  const h = hostname.split(".").reverse();
  const d = proxyDomain.split(".").reverse();
  let shared = 0;
  while (shared < Math.min(h.length, d.length) && h[shared] === d[shared]) shared++;
  if (shared === 0) return out;
  const unique = h.slice(shared).reverse();
  out.push(unique.join("."));
  if (unique.length === 2) out.push(`${unique.join(".")}.${d[shared - 1] ?? ""}`.replace(/\.$/, ""));
  return out;
}

/** Istio `generateVirtualHostDomains` with ports ignored: host, alt hosts, `*.`-prefixed copies for headless Kubernetes services, VIPs. */
function serviceDomains(ctx: BuildContext, svc: Service): { domains: string[]; alt: string[] } {
  const alt = altVirtualHosts(svc.hostname, ctx.proxy.dnsDomain);
  const domains = [svc.hostname, ...alt];
  if (svc.resolution === "Passthrough" && svc.registry === "Kubernetes") {
    for (const d of [...domains]) domains.push(`*.${d}`);
  }
  for (const a of svc.addresses) if (a !== "" && a !== UNSPECIFIED_IP) domains.push(a);
  if (svc.addresses.length === 0 && svc.defaultAddress !== UNSPECIFIED_IP) domains.push(svc.defaultAddress);
  return { domains, alt };
}

/** The VirtualService a service host takes its routes from: an exact host first, else the most specific wildcard (Istio's sidecar precedence). */
function vsForService(vses: readonly MeshVirtualService[], hostname: string): MeshVirtualService | undefined {
  const exact = vses.find((vs) => vs.hosts.includes(hostname));
  if (exact !== undefined) return exact;
  let best: MeshVirtualService | undefined;
  let longest = -1;
  for (const vs of vses) {
    for (const h of vs.hosts) {
      if (isWildcardHost(h) && hostSubsetOf(hostname, h) && h.length > longest) {
        best = vs;
        longest = h.length;
      }
    }
  }
  return best;
}

/**
 * The outbound route configuration `<port>` (or `<fqdn>:<port>` for a port sniffed on the
 * service's own listener): one virtual host `<host>:<port>` per service on the port, routed by its
 * VirtualService or by a `default` route to `outbound|<port>||<host>`; virtual hosts for hosts of
 * VirtualServices that match no service (on port 80, or when the VirtualService also names a
 * service on the port); sorted by name; then `allow_any` (PassthroughCluster) or `block_all`
 * (502). Ports are ignored in host matching; domains are deduplicated across virtual hosts.
 */
export function outboundRouteConfig(ctx: BuildContext, routeName: string): RouteConfiguration {
  // Shared by the proxies of one scope, namespace, DNS domain and labels (what route building reads
  // of a proxy: Istio's route cache keys on the same, route/route_cache.go).
  const scope = ctx.push.sidecarScope(ctx.proxy);
  const key = [
    objectKey(ctx.push, scope),
    objectKey(ctx.push, ctx.options),
    routeName,
    ctx.proxy.namespace,
    ctx.proxy.dnsDomain,
    routingLabelsKey(ctx.push, ctx.proxy, ctx.labels),
  ].join("|");
  // Routes do not depend on endpoints: kept while only endpoints change, with the scope.
  return carriedResult(
    ctx.push,
    SHARED_ROUTES,
    scope,
    key,
    (w: EnvoyGeneratorWarning) => ctx.warnings.push(w),
    (warn) => {
      const warnings: EnvoyGeneratorWarning[] = [];
      const config = buildOutboundRouteConfig({ ...ctx, warnings }, routeName);
      warnings.forEach(warn);
      return config;
    },
  );
}

const SHARED_ROUTES = Symbol("shared outbound route configurations");

function buildOutboundRouteConfig(ctx: BuildContext, routeName: string): RouteConfiguration {
  const colon = routeName.lastIndexOf(":");
  const sniffed = colon > 0;
  const port = Number(sniffed ? routeName.slice(colon + 1) : routeName);
  const scope = ctx.push.sidecarScope(ctx.proxy);
  const egress =
    scope.egressListeners.find((l) => l.listener?.port?.number === port) ??
    scope.egressListeners.find((l) => l.listener?.port === undefined) ??
    scope.egressListeners[0];
  const services = new Map<string, Service>();
  for (const s of egress?.services ?? []) {
    const p = s.ports.find((x) => x.port === port);
    if (p !== undefined && !services.has(s.hostname)) services.set(s.hostname, { ...s, ports: [p] });
  }
  // Istio keeps only VirtualServices that name a service on the port, except on port 80.
  let vses = [...(egress?.virtualServices ?? [])];
  if (port !== 80) {
    vses = vses.filter((vs) =>
      vs.hosts.some(
        (h) => services.has(h) || (isWildcardHost(h) && [...services.keys()].some((k) => hostSubsetOf(k, h))),
      ),
    );
  }
  const rctx = routeContext(ctx, port);
  const vhosts: VirtualHost[] = [];
  const seenDomains = new Set<string>();
  const knownFqdn = new Set<string>();
  for (const s of services.values()) knownFqdn.add(s.hostname).add(virtualHostName(s.hostname, port));
  const vsRoutes = new Map<MeshVirtualService, Route[]>();
  const routesOf = (vs: MeshVirtualService) => {
    let r = vsRoutes.get(vs);
    if (r === undefined) {
      r = buildVirtualServiceRoutes(vs, rctx);
      vsRoutes.set(vs, r);
    }
    return r;
  };
  const push = (name: string, domains: string[], alt: readonly string[], routes: Route[]) => {
    if (routes.length === 0 || vhosts.some((v) => v.name === name)) return;
    const kept = domains.filter((d) => {
      const lower = d.toLowerCase();
      if (seenDomains.has(lower)) return false;
      if (alt.includes(d) && knownFqdn.has(d)) return false;
      seenDomains.add(lower);
      return true;
    });
    if (kept.length === 0) return;
    vhosts.push(create(VirtualHostSchema, { name, domains: kept, routes, includeRequestAttemptCount: true }));
  };
  // Virtual hosts of VirtualService hosts that match no service on the port (Istio adds them first).
  for (const vs of vses) {
    for (const h of vs.hosts) {
      const matchesService =
        services.has(h) || (isWildcardHost(h) && [...services.keys()].some((k) => hostSubsetOf(k, h)));
      if (matchesService) continue;
      push(virtualHostName(h, port), [h], [], routesOf(vs));
    }
  }
  for (const svc of services.values()) {
    const vs = vsForService(vses, svc.hostname);
    let routes: Route[];
    if (vs !== undefined) routes = routesOf(vs);
    else {
      const route = defaultOutboundRoute(
        outboundClusterName(svc.hostname, port),
        traceOperation(svc.hostname, port),
        ctx.mesh.defaultHttpRetryPolicy,
      );
      const hash = hashForService(rctx, svc, port);
      if (hash !== undefined && route.action.case === "route") {
        const hp = consistentHashToHashPolicy(hash, ENVOY_CAPABILITIES, rctx.warn);
        if (hp !== undefined) route.action.value.hashPolicy = [hp];
      }
      routes = [route];
    }
    const { domains, alt } = serviceDomains(ctx, svc);
    push(virtualHostName(svc.hostname, port), domains, alt, routes);
  }
  vhosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  let out = vhosts;
  if (sniffed) {
    const host = routeName.slice(0, colon);
    const hits = vhosts.filter((v) => v.domains.includes(routeName) || v.domains.includes(host));
    if (hits.length === 1) (hits[0] as VirtualHost).domains = ["*"];
    out = hits;
  } else {
    out = [...vhosts, catchAllVirtualHost(ctx)];
  }
  return create(RouteConfigurationSchema, {
    name: routeName,
    virtualHosts: out,
    validateClusters: false,
    maxDirectResponseBodySizeBytes: MAX_DIRECT_RESPONSE_BODY_BYTES,
    ignorePortInHostMatching: true,
  });
}

/**
 * Istio `buildCatchAllVirtualHost`: `allow_any` → PassthroughCluster without timeout, or
 * `block_all` → direct response 502, for hosts no virtual host names.
 */
export function catchAllVirtualHost(ctx: BuildContext): VirtualHost {
  const cluster = catchAllCluster(ctx);
  if (cluster === IstioNames.passthroughCluster) {
    return create(VirtualHostSchema, {
      name: IstioNames.allowAnyVirtualHost,
      domains: ["*"],
      routes: [untimedRoute(IstioNames.allowAnyVirtualHost, cluster)],
      includeRequestAttemptCount: true,
    });
  }
  return create(VirtualHostSchema, {
    name: IstioNames.blockAllVirtualHost,
    domains: ["*"],
    routes: [
      create(RouteSchema, {
        name: IstioNames.blockAllVirtualHost,
        match: { pathSpecifier: { case: "prefix", value: "/" } },
        action: { case: "directResponse", value: { status: 502 } },
      }),
    ],
    includeRequestAttemptCount: true,
  });
}
