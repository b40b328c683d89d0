import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { TrafficDirection } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import {
  type Filter,
  type FilterChain,
  FilterChainSchema,
} from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import {
  type Route,
  type VirtualHost,
  VirtualHost_TlsRequirementType,
  VirtualHostSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import {
  type RouteConfiguration,
  RouteConfigurationSchema,
} from "@meshlet/api/envoy/config/route/v3/route_pb";
import { type Secret, SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import type { Gateway } from "@meshlet/config";
import { resourceKeyOf } from "@meshlet/config";
import type { GatewayServer, TcpRoute, TlsRoute } from "../config-access.js";
import { MeshError } from "../mesh-error.js";
import { hostSubsetOf } from "../model/host.js";
import { isHttpProtocol, parseProtocol } from "../model/protocol.js";
import { listenerName } from "../naming/listener-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { MeshVirtualService } from "../push/virtual-services.js";
import { buildVirtualServiceRoutes, sortVirtualHostRoutes } from "../translate/route.js";
import { outboundClusters } from "./clusters.js";
import { type BuildContext, buildContext, type EnvoyGeneratorOptions } from "./context.js";
import { downstreamTransportSocket, tlsInspector } from "./filters.js";
import { hcmFilter, httpConnectionManager } from "./http-connection-manager.js";
import { configMetadata } from "./metadata.js";
import { routeContext } from "./outbound-routes.js";
import { rateLimitFilter, rateLimitsFor } from "./rate-limit.js";
import { type EnvoyResources, finishResources } from "./resources.js";
import { extAuthzPerRoute, type SecurityFilters, securityFilters } from "./security-filters.js";
import { type ServerTlsView, serverBindAndName, serverHosts, serverPort, serverTls } from "./spec-views.js";
import { blackHoleCluster, passthroughCluster } from "./special-clusters.js";
import { outboundNetworkFilters } from "./tcp-routes.js";
import { credentialResourceName, gatewayServerTlsContext } from "./tls-context.js";
import { MAX_DIRECT_RESPONSE_BODY_BYTES, SDS_CA_SUFFIX, Wellknown } from "./well-known.js";

// Ingress and egress gateways (`router~…` nodes): Gateway servers merged per port, HTTP
// connection managers over RDS for HTTP and TLS-terminating HTTPS servers, tcp_proxy for TCP, TLS
// and passthrough servers (istio/istio pilot/pkg/model/gateway.go `MergeGateways`,
// pilot/pkg/networking/core/gateway.go `buildGatewayListeners`, `buildGatewayHTTPRouteConfig`,
// `createGatewayTCPFilterChainOpts`).

/** A Gateway server with the gateway that declares it and where it listens. */
interface MergedServer {
  readonly gateway: Gateway;
  /** `namespace/name` of the gateway (how VirtualServices bind to it). */
  readonly gatewayName: string;
  readonly server: GatewayServer;
  /** The port the proxy listens on (the gateway Service's targetPort for a service port). */
  readonly listenPort: number;
  readonly bind: string;
  readonly tls?: ServerTlsView;
  readonly kind: "http" | "https" | "tcp" | "tls-terminate" | "passthrough";
  /** RDS name for HTTP and HTTPS servers. */
  readonly routeName?: string;
}

function serverKind(server: GatewayServer, tls: ServerTlsView | undefined): MergedServer["kind"] {
  const protocol = parseProtocol(serverPort(server).protocol);
  if (isHttpProtocol(protocol)) return "http";
  const passthrough = tls?.mode === "PASSTHROUGH" || tls?.mode === "AUTO_PASSTHROUGH";
  if (protocol === "HTTPS") return passthrough || tls === undefined ? "passthrough" : "https";
  if (protocol === "TLS") return passthrough || tls === undefined ? "passthrough" : "tls-terminate";
  return tls !== undefined && !passthrough ? "tls-terminate" : "tcp";
}

/**
 * Istio `MergeGateways`, simplified to what decides listeners and routes: servers by listen port
 * (service ports translated to the gateway Service's target ports); on a port, plaintext HTTP servers
 * share the route configuration `http.<port>`, each TLS-terminating HTTPS server gets
 * `https.<port>.<portName>.<gateway>.<namespace>`; a port keeps the protocol class of its first
 * (oldest) server and later servers of another class are dropped with a warning.
 */
function mergeServers(ctx: BuildContext, gateways: readonly Gateway[]): Map<string, MergedServer[]> {
  const targets = ctx.push.serviceTargets(ctx.proxy);
  const byPort = new Map<string, MergedServer[]>();
  for (const gw of gateways) {
    const gatewayName = `${gw.metadata.namespace}/${gw.metadata.name}`;
    for (const server of gw.spec.servers ?? []) {
      const port = serverPort(server);
      const { bind } = serverBindAndName(server);
      const t = targets.find((x) => x.port.port === port.number);
      const listenPort = t?.targetPort ?? port.number;
      const tls = serverTls(server);
      const kind = serverKind(server, tls);
      const key = `${bind ?? "0.0.0.0"}|${listenPort}`;
      const list = byPort.get(key) ?? [];
      const first = list[0];
      const plain = (k: MergedServer["kind"]) => k === "http";
      if (first !== undefined && plain(first.kind) !== plain(kind)) {
        ctx.warnings.push({
          code: "gateway-port-conflict",
          message: `Gateway ${gatewayName} server on port ${port.number} (${kind}) conflicts with ${first.gatewayName}'s ${first.kind} server on listener port ${listenPort}; it is ignored`,
          source: resourceKeyOf(gw),
        });
        continue;
      }
      if (
        tls?.serverCertificate !== undefined &&
        tls.credentialName === undefined &&
        tls.mode !== "ISTIO_MUTUAL" &&
        (kind === "https" || kind === "tls-terminate")
      ) {
        ctx.warnings.push({
          code: "server-certificate-files",
          message: `Gateway ${gatewayName} server on port ${port.number} names certificate files; meshlet serves certificates by credentialName only`,
          source: resourceKeyOf(gw),
        });
      }
      const routeName =
        kind === "http"
          ? `http.${listenPort}${bind !== undefined ? `.${bind}` : ""}`
          : kind === "https"
            ? `https.${port.number}.${port.name}.${gw.metadata.name}.${gw.metadata.namespace}${bind !== undefined ? `.${bind}` : ""}`
            : undefined;
      list.push({
        gateway: gw,
        gatewayName,
        server,
        listenPort,
        bind: bind ?? "0.0.0.0",
        ...(tls !== undefined ? { tls } : {}),
        kind,
        ...(routeName !== undefined ? { routeName } : {}),
      });
      byPort.set(key, list);
    }
  }
  return byPort;
}

/** A server's hosts without their namespace part (`ns/host` → `host`), as SNI and vhost names use them. */
function hostsOf(server: GatewayServer): string[] {
  return [...new Set(serverHosts(server).map((h) => (h.includes("/") ? h.slice(h.indexOf("/") + 1) : h)))];
}

/** Server hosts that apply to a VirtualService namespace (`*\/h`, `./h` for the gateway's namespace, `<ns>/h`, or `h`). */
function hostsForNamespace(server: GatewayServer, vsNamespace: string, gatewayNamespace: string): string[] {
  return serverHosts(server).flatMap((h) => {
    const slash = h.indexOf("/");
    if (slash < 0) return [h];
    const ns = h.slice(0, slash);
    const name = h.slice(slash + 1);
    if (ns === "*" || ns === vsNamespace || (ns === "." && vsNamespace === gatewayNamespace)) return [name];
    return [];
  });
}

/** Istio `host.Names.Intersection`: for each overlapping pair, the more specific name. */
function intersectHosts(serverHosts: readonly string[], vsHosts: readonly string[]): string[] {
  const out = new Set<string>();
  for (const s of serverHosts) {
    for (const v of vsHosts) {
      if (hostSubsetOf(v, s)) out.add(v);
      else if (hostSubsetOf(s, v)) out.add(s);
    }
  }
  return [...out];
}

/** SNI names of a TLS server (Istio `getSNIHostsForServer`): its hosts, none when one is `*`. */
function sniHosts(server: GatewayServer): string[] {
  const hosts = hostsOf(server);
  return hosts.includes("*") ? [] : hosts.sort();
}

/**
 * The xDS resources of an ingress or egress gateway (a `router` node): one listener
 * `<bind>_<port>` per port its Gateways' servers use, the route configurations of their HTTP and
 * HTTPS servers with the bound VirtualServices' routes (virtual hosts `<host>:<port>`), clusters
 * for every service visible from the gateway's namespace, and the `credentialName` secrets
 * present in the config. Everything is sorted by name.
 * @throws MeshError `INVALID_ARGUMENT` for a proxy that is not a gateway.
 */
export function generateEnvoyGateway(
  proxy: Proxy,
  push: PushContext,
  options: EnvoyGeneratorOptions = {},
): EnvoyResources {
  if (proxy.kind !== "gateway") {
    throw new MeshError(
      "INVALID_ARGUMENT",
      `generateEnvoyGateway: ${proxy.id} is a ${proxy.kind} proxy, not a gateway`,
    );
  }
  const ctx = buildContext(proxy, push, options);
  const target = { namespace: proxy.namespace, labels: ctx.labels };
  const security = securityFilters(ctx, target);
  const gateways = push.gatewaysForProxy(proxy);
  const merged = mergeServers(ctx, gateways);
  const listeners: Listener[] = [];
  const routeServers = new Map<string, MergedServer[]>();
  const tlsHostsByPort = new Map<string, Set<string>>();
  for (const servers of merged.values()) {
    const first = servers[0] as MergedServer;
    const chains: FilterChain[] = [];
    if (first.kind === "http") {
      for (const s of servers)
        routeServers.set(s.routeName as string, [...(routeServers.get(s.routeName as string) ?? []), s]);
      chains.push(httpChain(ctx, first, security, target, undefined));
    } else {
      for (const s of servers) {
        if (s.kind === "https") {
          routeServers.set(s.routeName as string, [...(routeServers.get(s.routeName as string) ?? []), s]);
          chains.push(httpChain(ctx, s, security, target, s.tls));
        } else chains.push(...tcpChains(ctx, s, security, tlsHostsByPort));
      }
    }
    if (chains.length === 0) continue;
    const needTls = chains.some(
      (c) => (c.filterChainMatch?.serverNames.length ?? 0) > 0 || c.transportSocket !== undefined,
    );
    listeners.push(
      create(ListenerSchema, {
        name: listenerName(first.bind, first.listenPort),
        address: {
          address: {
            case: "socketAddress",
            value: { address: first.bind, portSpecifier: { case: "portValue", value: first.listenPort } },
          },
        },
        trafficDirection: TrafficDirection.OUTBOUND,
        listenerFilters: needTls ? [tlsInspector()] : [],
        filterChains: chains,
        continueOnListenerFiltersTimeout: false,
        listenerFiltersTimeout: create(DurationSchema, {}),
      }),
    );
  }
  const routes = [...routeServers.entries()].map(([name, servers]) =>
    gatewayRouteConfig(ctx, name, servers, security, target),
  );

  const clusters: Cluster[] = [blackHoleCluster(ctx), passthroughCluster(ctx)];
  const endpoints: ClusterLoadAssignment[] = [];
  for (const svc of push.sidecarScope(proxy).services) {
    for (const port of svc.ports) {
      const set = outboundClusters(ctx, svc, port);
      clusters.push(...set.clusters);
      endpoints.push(...set.endpoints);
    }
  }
  clusters.push(...ctx.extraClusters.values());
  const secrets = gatewaySecrets(ctx, [...merged.values()].flat());
  return finishResources({ listeners, routes, clusters, endpoints, secrets }, ctx.warnings);
}

function httpChain(
  ctx: BuildContext,
  s: MergedServer,
  security: SecurityFilters,
  target: { namespace: string; labels: Readonly<Record<string, string>> },
  tls: ServerTlsView | undefined,
): FilterChain {
  const limits = rateLimitsFor(ctx, target, "gateway");
  const rl = limits !== undefined ? rateLimitFilter(ctx, limits.binding) : undefined;
  const { name } = serverBindAndName(s.server);
  const hcm = httpConnectionManager(ctx, {
    class: "gateway",
    statPrefix:
      tls !== undefined && name !== undefined ? name : `outbound_${listenerName(s.bind, s.listenPort)};`,
    rds: s.routeName as string,
    protocol: parseProtocol(serverPort(s.server).protocol),
    security: security.http,
    ...(rl !== undefined ? { rateLimit: rl } : {}),
  });
  return create(FilterChainSchema, {
    filters: [hcmFilter(hcm)],
    ...(tls !== undefined
      ? {
          filterChainMatch: { serverNames: sniHosts(s.server) },
          transportSocket: downstreamTransportSocket(gatewayServerTlsContext(tls)),
        }
      : {}),
  });
}

/** VirtualServices bound to a server's gateway whose hosts overlap the server's (Istio `pickMatchingGatewayHosts`). */
function boundVirtualServices(
  ctx: BuildContext,
  s: MergedServer,
): Array<{ vs: MeshVirtualService; hosts: string[] }> {
  const out: Array<{ vs: MeshVirtualService; hosts: string[] }> = [];
  for (const vs of ctx.push.virtualServicesForGateway(ctx.proxy.namespace, s.gatewayName)) {
    const hosts = intersectHosts(
      hostsForNamespace(s.server, vs.namespace, s.gateway.metadata.namespace),
      vs.hosts,
    );
    if (hosts.length > 0) out.push({ vs, hosts });
  }
  return out;
}

interface L4MatchView {
  readonly port?: number;
  readonly gateways?: readonly string[];
  readonly sniHosts?: readonly string[];
}

/** Istio `l4SingleMatch` for a gateway server: the match's port and gateways must fit. */
function l4Matches(m: L4MatchView | undefined, s: MergedServer): boolean {
  if (m === undefined) return true;
  const portOk = m.port === undefined || m.port === 0 || m.port === serverPort(s.server).number;
  const gws = m.gateways ?? [];
  return portOk && (gws.length === 0 || gws.includes(s.gatewayName));
}

/** TCP, TLS-terminating TCP and passthrough servers (Istio `createGatewayTCPFilterChainOpts`). */
function tcpChains(
  ctx: BuildContext,
  s: MergedServer,
  security: SecurityFilters,
  tlsHostsByPort: Map<string, Set<string>>,
): FilterChain[] {
  const port = serverPort(s.server).number;
  if (s.kind === "passthrough") {
    const out: FilterChain[] = [];
    const seen = tlsHostsByPort.get(`${s.bind}|${s.listenPort}`) ?? new Set<string>();
    tlsHostsByPort.set(`${s.bind}|${s.listenPort}`, seen);
    for (const { vs } of boundVirtualServices(ctx, s)) {
      for (const tls of vs.tls as readonly TlsRoute[]) {
        if ((tls.route ?? []).length === 0) continue;
        for (const m of (tls.match ?? []) as readonly L4MatchView[]) {
          if (!l4Matches(m, s)) continue;
          const snis = [...(m.sniHosts ?? [])];
          if (snis.some((h) => seen.has(h))) {
            ctx.warnings.push({
              code: "duplicate-sni",
              message: `VirtualService ${vs.namespace}/${vs.name}: SNI hosts ${snis.join(",")} are already routed on gateway port ${port}; skipped`,
              source: vs.key,
            });
            continue;
          }
          for (const h of snis) seen.add(h);
          out.push(
            create(FilterChainSchema, {
              filterChainMatch: { serverNames: snis.includes("*") ? [] : [...snis].sort() },
              filters: outboundNetworkFilters(ctx, tls.route ?? [], port, {
                class: "gateway",
                security: security.network,
                vs,
              }),
              metadata: configMetadata(vs),
            }),
          );
        }
      }
    }
    return out;
  }
  const includeMx = s.tls?.mode === "ISTIO_MUTUAL";
  for (const { vs } of boundVirtualServices(ctx, s)) {
    for (const tcp of vs.tcp as readonly TcpRoute[]) {
      const matches = (tcp.match ?? []) as readonly L4MatchView[];
      if (!(matches.length === 0 || matches.some((m) => l4Matches(m, s))) || (tcp.route ?? []).length === 0)
        continue;
      const filters: Filter[] = outboundNetworkFilters(ctx, tcp.route ?? [], port, {
        class: "gateway",
        security: security.network,
        includeMx,
        vs,
      });
      return [
        create(FilterChainSchema, {
          filters,
          metadata: configMetadata(vs),
          ...(s.kind === "tls-terminate" && s.tls !== undefined
            ? {
                filterChainMatch: { serverNames: sniHosts(s.server) },
                transportSocket: downstreamTransportSocket(
                  gatewayServerTlsContext(s.tls, s.tls.mode === "ISTIO_MUTUAL"),
                ),
              }
            : {}),
        }),
      ];
    }
  }
  ctx.warnings.push({
    code: "no-route",
    message: `Gateway ${s.gatewayName} ${s.kind} server on port ${port}: no VirtualService with a matching tcp route; the port has no listener chain for it`,
    source: resourceKeyOf(s.gateway),
  });
  return [];
}

/**
 * Istio `buildGatewayHTTPRouteConfig`: per server of the route, the VirtualServices bound to its
 * gateway whose hosts intersect the server's; one virtual host per intersecting host named
 * `<host>:<server port>` (routes of several VirtualServices for one host appended; HTTPS redirect
 * → `require_tls: ALL`); virtual hosts with identical routes collapsed into one; none at all → a
 * `blackhole:<port>` virtual host without routes (404).
 */
function gatewayRouteConfig(
  ctx: BuildContext,
  routeName: string,
  servers: readonly MergedServer[],
  security: SecurityFilters,
  target: { namespace: string; labels: Readonly<Record<string, string>> },
): RouteConfiguration {
  const vhosts = new Map<string, { vh: VirtualHost; routeSets: Route[][] }>();
  const built = new Map<string, Route[]>();
  const limits = rateLimitsFor(ctx, target, "gateway");
  for (const s of servers) {
    const port = serverPort(s.server).number;
    for (const { vs, hosts } of boundVirtualServices(ctx, s)) {
      const key = `${s.gatewayName}|${vs.namespace}/${vs.name}`;
      let routes = built.get(key);
      if (routes === undefined) {
        routes = buildVirtualServiceRoutes(
          vs,
          routeContext(ctx, port, { gateways: new Set([s.gatewayName]), tls: s.tls !== undefined }),
        );
        built.set(key, routes);
      }
      if (routes.length === 0) continue;
      for (const h of hosts.map((x) => x.toLowerCase())) {
        const existing = vhosts.get(h);
        if (existing !== undefined) {
          existing.vh.routes.push(...routes);
          existing.routeSets.push(routes);
          if (s.tls?.httpsRedirect === true) existing.vh.requireTls = VirtualHost_TlsRequirementType.ALL;
          continue;
        }
        const vh = create(VirtualHostSchema, {
          name: `${h}:${port}`,
          domains: [h],
          routes: [...routes],
          includeRequestAttemptCount: true,
          ...(s.tls?.httpsRedirect === true ? { requireTls: VirtualHost_TlsRequirementType.ALL } : {}),
        });
        vhosts.set(h, { vh, routeSets: [routes] });
      }
    }
    if (s.tls?.httpsRedirect === true) {
      for (const h of hostsOf(s.server).map((x) => x.toLowerCase())) {
        const existing = vhosts.get(h);
        if (existing !== undefined) existing.vh.requireTls = VirtualHost_TlsRequirementType.ALL;
        else
          vhosts.set(h, {
            vh: create(VirtualHostSchema, {
              name: `${h}:${port}`,
              domains: [h],
              includeRequestAttemptCount: true,
              requireTls: VirtualHost_TlsRequirementType.ALL,
            }),
            routeSets: [],
          });
      }
    }
  }
  let list: VirtualHost[];
  if (vhosts.size === 0) {
    const port = serverPort((servers[0] as MergedServer).server).number;
    list = [create(VirtualHostSchema, { name: `blackhole:${port}`, domains: ["*"], routes: [] })];
  } else {
    // Istio collapseDuplicateRoutes: hosts served by the same route lists share one virtual host.
    const keys = [...vhosts.keys()].sort();
    const kept: Array<{ vh: VirtualHost; routeSets: Route[][] }> = [];
    for (const k of keys) {
      const cur = vhosts.get(k) as { vh: VirtualHost; routeSets: Route[][] };
      const same = kept.find(
        (e) =>
          e.routeSets.length === cur.routeSets.length &&
          e.routeSets.every((r, i) => r === cur.routeSets[i]) &&
          e.vh.requireTls === cur.vh.requireTls,
      );
      if (same !== undefined && cur.routeSets.length > 0) same.vh.domains.push(...cur.vh.domains);
      else kept.push(cur);
    }
    list = kept.map((e) => {
      e.vh.routes = sortVirtualHostRoutes(e.vh.routes);
      return e.vh;
    });
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  if (security.extAuthz) {
    for (const vh of list) vh.typedPerFilterConfig[Wellknown.httpExtAuthz] = extAuthzPerRoute(target);
  }
  if (limits !== undefined) for (const vh of list) vh.rateLimits = limits.actions;
  return create(RouteConfigurationSchema, {
    name: routeName,
    virtualHosts: list,
    validateClusters: false,
    ignorePortInHostMatching: true,
    maxDirectResponseBodySizeBytes: MAX_DIRECT_RESPONSE_BODY_BYTES,
  });
}

/**
 * The `credentialName` secrets of TLS-terminating servers, as istiod serves them to gateways over
 * ADS (istio/istio pilot/pkg/credentials/kube/secrets.go `ExtractCertInfo`, `ExtractRoot`):
 * `kubernetes://<name>` from a Secret of the gateway's namespace with `tls.crt`/`tls.key` (or
 * Opaque `cert`/`key`); for MUTUAL, `kubernetes://<name>-cacert` from its `ca.crt` (or `cacert`),
 * else from a separate Secret `<name>-cacert`. A missing Secret or CA is reported (TLS handshakes
 * on that server fail until it exists); the listener's SDS reference stays either way.
 */
function gatewaySecrets(ctx: BuildContext, servers: readonly MergedServer[]): Secret[] {
  const out = new Map<string, Secret>();
  const dataOf = (secretName: string) => {
    const found = ctx.push.snapshot.get("Secret", ctx.proxy.namespace, secretName);
    return found === undefined ? undefined : ((found as { data?: Record<string, string> }).data ?? {});
  };
  const b64 = (data: Record<string, string> | undefined, ...keys: string[]) => {
    for (const k of keys)
      if (typeof data?.[k] === "string") return new Uint8Array(Buffer.from(data[k] as string, "base64"));
    return undefined;
  };
  for (const s of servers) {
    const cn = s.tls?.credentialName;
    if (cn === undefined || cn === "" || (s.kind !== "https" && s.kind !== "tls-terminate")) continue;
    const name = credentialResourceName(cn);
    const secretName = name.startsWith("kubernetes://") ? name.slice("kubernetes://".length) : cn;
    const data = dataOf(secretName);
    const exists = ctx.options.secretExists?.(ctx.proxy.namespace, secretName) ?? data !== undefined;
    const port = serverPort(s.server).number;
    if (!exists) {
      ctx.warnings.push({
        code: "missing-secret",
        message: `Gateway ${s.gatewayName}: credentialName ${cn} names no Secret in ${ctx.proxy.namespace}; TLS handshakes on port ${port} fail until it exists`,
        source: resourceKeyOf(s.gateway),
      });
      continue;
    }
    const crt = b64(data, "tls.crt", "cert");
    const key = b64(data, "tls.key", "key");
    if (crt !== undefined && key !== undefined && !out.has(name)) {
      out.set(
        name,
        create(SecretSchema, {
          name,
          type: {
            case: "tlsCertificate",
            value: {
              certificateChain: { specifier: { case: "inlineBytes", value: crt } },
              privateKey: { specifier: { case: "inlineBytes", value: key } },
            },
          },
        }),
      );
    }
    if (s.tls?.mode !== "MUTUAL" && s.tls?.mode !== "OPTIONAL_MUTUAL") continue;
    const ca =
      b64(data, "ca.crt", "cacert") ?? b64(dataOf(`${secretName}${SDS_CA_SUFFIX}`), "ca.crt", "cacert");
    if (ca === undefined) {
      if (data !== undefined)
        ctx.warnings.push({
          code: "missing-secret",
          message: `Gateway ${s.gatewayName}: ${s.tls.mode} needs a CA: Secret ${ctx.proxy.namespace}/${secretName} has no ca.crt and there is no Secret ${secretName}${SDS_CA_SUFFIX}; client certificates on port ${port} cannot be verified`,
          source: resourceKeyOf(s.gateway),
        });
      continue;
    }
    out.set(
      `${name}${SDS_CA_SUFFIX}`,
      create(SecretSchema, {
        name: `${name}${SDS_CA_SUFFIX}`,
        type: {
          case: "validationContext",
          value: { trustedCa: { specifier: { case: "inlineBytes", value: ca } } },
        },
      }),
    );
  }
  return [...out.values()];
}
