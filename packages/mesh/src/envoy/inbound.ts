import { create } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { TrafficDirection } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type Filter,
  type FilterChain,
  FilterChainSchema,
  type ListenerFilter,
  ListenerFilterChainMatchPredicateSchema,
} from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import {
  type Route,
  RouteSchema,
  type VirtualHost,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { RouteConfigurationSchema } from "@meshlet/api/envoy/config/route/v3/route_pb";
import type { DownstreamTlsContext } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { isHttpProtocol, type Protocol } from "../model/protocol.js";
import type { ServiceTarget } from "../model/service.js";
import { inboundClusterName } from "../naming/cluster-names.js";
import { IstioNames, inboundVirtualHostName, listenerName } from "../naming/listener-names.js";
import type { MtlsMode, PolicyTarget } from "../push/security-policies.js";
import type { BuildContext } from "./context.js";
import {
  downstreamTransportSocket,
  httpInspector,
  networkStatsFilter,
  originalDst,
  tcpMetadataExchange,
  tcpProxyFilter,
  tlsInspector,
} from "./filters.js";
import { hcmFilter, httpConnectionManager } from "./http-connection-manager.js";
import { rateLimitFilter, rateLimitsFor } from "./rate-limit.js";
import { extAuthzPerRoute, type SecurityFilters, securityFilters } from "./security-filters.js";
import { inboundCluster } from "./special-clusters.js";
import { accessLogs } from "./telemetry.js";
import { inboundMtlsContext } from "./tls-context.js";
import { Alpn, TransportProtocol, Wellknown } from "./well-known.js";

// The inbound side of a sidecar: the `virtualInbound` listener on 15006 with one set of filter
// chains per workload port and PeerAuthentication mode, and the `inbound|<port>||` clusters
// (istio/istio pilot/pkg/networking/core/listener_inbound.go, filterchain_options.go).

type ListenerProtocol = "http" | "tcp" | "auto";

/** One filter-chain match option (Istio `FilterChainMatchOptions`). */
interface MatchOption {
  readonly applicationProtocols?: readonly string[];
  readonly transportProtocol: string;
  readonly protocol: "http" | "tcp";
  /** Terminate Istio mTLS on this chain. */
  readonly tls: boolean;
}

const { tls: TLS, rawBuffer: RAW } = TransportProtocol;

/**
 * Istio's filter-chain match tables (`getFilterChainMatchOptions`): PERMISSIVE accepts Istio mTLS
 * (by ALPN) and plaintext, and on undeclared ports also TLS it passes through; STRICT keeps the TLS
 * rows; DISABLE the plaintext rows.
 */
export function filterChainMatchOptions(mode: MtlsMode, protocol: ListenerProtocol): readonly MatchOption[] {
  const http = protocol === "http";
  const tcp = protocol === "tcp";
  if (mode === "STRICT") {
    if (http) return [{ protocol: "http", transportProtocol: TLS, tls: true }];
    if (tcp) return [{ protocol: "tcp", transportProtocol: TLS, tls: true }];
    return [
      { applicationProtocols: Alpn.mtlsHttp, protocol: "http", transportProtocol: TLS, tls: true },
      { protocol: "tcp", transportProtocol: TLS, tls: true },
    ];
  }
  if (mode === "PERMISSIVE") {
    if (http)
      return [
        { applicationProtocols: Alpn.allIstioMtls, transportProtocol: TLS, protocol: "http", tls: true },
        { protocol: "http", transportProtocol: RAW, tls: false },
      ];
    if (tcp)
      return [
        { applicationProtocols: Alpn.allIstioMtls, transportProtocol: TLS, protocol: "tcp", tls: true },
        { protocol: "tcp", transportProtocol: RAW, tls: false },
        { transportProtocol: TLS, protocol: "tcp", tls: false },
      ];
    return [
      { applicationProtocols: Alpn.mtlsHttp, transportProtocol: TLS, protocol: "http", tls: true },
      { applicationProtocols: Alpn.plaintextHttp, protocol: "http", transportProtocol: RAW, tls: false },
      { applicationProtocols: Alpn.mtlsTcpWithMxc, transportProtocol: TLS, protocol: "tcp", tls: true },
      { protocol: "tcp", transportProtocol: RAW, tls: false },
      { transportProtocol: TLS, protocol: "tcp", tls: false },
    ];
  }
  if (http) return [{ protocol: "http", transportProtocol: RAW, tls: false }];
  if (tcp) return [{ protocol: "tcp", transportProtocol: RAW, tls: false }];
  return [
    { applicationProtocols: Alpn.plaintextHttp, protocol: "http", transportProtocol: RAW, tls: false },
    { protocol: "tcp", transportProtocol: RAW, tls: false },
  ];
}

/** Istio `ModelProtocolToListenerProtocol`; undefined for UDP (no listener). */
export function listenerProtocolOf(p: Protocol): ListenerProtocol | undefined {
  if (p === "UDP") return undefined;
  if (isHttpProtocol(p)) return "http";
  if (p === "UnsupportedProtocol") return "auto";
  return "tcp";
}

/** One inbound chain config (Istio `inboundChainConfig`). */
interface ChainConfig {
  readonly clusterName: string;
  /** The service port (telemetry, trace operation) and target port (matching, naming). */
  readonly servicePort: number;
  readonly targetPort: number;
  readonly protocol: Protocol;
  readonly hostname: string;
  readonly passthrough: boolean;
}

function chainName(cc: ChainConfig, protocol: "http" | "tcp"): string {
  if (cc.passthrough)
    return protocol === "http" ? IstioNames.virtualInboundCatchAllHttp : IstioNames.virtualInbound;
  return listenerName("0.0.0.0", cc.targetPort);
}

/** The service targets of the proxy grouped by target port, first (oldest) service first, sorted by port. */
export function inboundTargets(ctx: BuildContext): Map<number, ServiceTarget[]> {
  const byPort = new Map<number, ServiceTarget[]>();
  for (const t of ctx.push.serviceTargets(ctx.proxy)) {
    if (t.port.protocol === "UDP") continue;
    const list = byPort.get(t.targetPort);
    if (list === undefined) byPort.set(t.targetPort, [t]);
    else list.push(t);
  }
  return new Map([...byPort.entries()].sort(([a], [b]) => a - b));
}

/** What the inbound side produces. */
export interface InboundResult {
  readonly listener: Listener;
  readonly clusters: Cluster[];
}

/**
 * The `virtualInbound` listener and inbound clusters of a sidecar (Istio `buildInboundListeners`
 * with traffic captured by iptables): chains in Istio's order — `virtualInbound-blackhole` for
 * traffic to 15006 itself, the passthrough chains (`virtualInbound-catchall-http`, `virtualInbound`)
 * for ports no service declares, then per service port (sorted) the chains of its mTLS mode, named
 * `0.0.0.0_<targetPort>`. Listener filters: original_dst, then the TLS and HTTP inspectors, each
 * disabled on the ports whose chains never need it.
 */
export function buildInbound(ctx: BuildContext): InboundResult {
  const target: PolicyTarget = { namespace: ctx.proxy.namespace, labels: ctx.labels };
  const security = securityFilters(ctx, target);
  const targets = inboundTargets(ctx);
  const chains: FilterChain[] = [blackholeChain(ctx)];
  const effective = ctx.push.peerAuthentication(ctx.proxy);

  // Passthrough chains: the workload's mode (port 0), and each port-level mode of a port no service has.
  const passthroughPorts = [
    0,
    ...[...effective.perPort.keys()].filter((p) => !targets.has(p)).sort((a, b) => a - b),
  ];
  for (const port of passthroughPorts) {
    const mode = port === 0 ? effective.mode : (effective.perPort.get(port) as MtlsMode);
    const cc: ChainConfig = {
      clusterName: IstioNames.inboundPassthroughCluster,
      servicePort: 0,
      targetPort: port,
      protocol: "UnsupportedProtocol",
      hostname: "",
      passthrough: true,
    };
    chains.push(...chainsFor(ctx, cc, mode, "auto", security, target));
  }

  const clusters: Cluster[] = [];
  for (const [targetPort, list] of targets) {
    const first = list[0] as ServiceTarget;
    const lp = listenerProtocolOf(first.port.protocol);
    if (lp === undefined) continue;
    const cc: ChainConfig = {
      clusterName: inboundClusterName(targetPort),
      servicePort: first.port.port,
      targetPort,
      protocol: first.port.protocol,
      hostname: first.service.hostname,
      passthrough: false,
    };
    chains.push(...chainsFor(ctx, cc, ctx.push.mtlsMode(ctx.proxy, targetPort), lp, security, target));
    clusters.push(inboundCluster(ctx, targetPort, list));
  }

  const listener = create(ListenerSchema, {
    name: IstioNames.virtualInbound,
    address: {
      address: {
        case: "socketAddress",
        value: {
          address: "0.0.0.0",
          portSpecifier: { case: "portValue", value: ctx.mesh.proxyInboundListenPort },
        },
      },
    },
    trafficDirection: TrafficDirection.INBOUND,
    continueOnListenerFiltersTimeout: true,
    maxConnectionsToAcceptPerSocketEvent: 1,
    filterChains: chains,
    listenerFiltersTimeout: create(DurationSchema, {}),
  });
  listener.listenerFilters = inboundListenerFilters(listener.filterChains);
  if (ctx.proxy.interceptionMode === "TPROXY") listener.transparent = true;
  return { listener, clusters };
}

function chainsFor(
  ctx: BuildContext,
  cc: ChainConfig,
  mode: MtlsMode,
  protocol: ListenerProtocol,
  security: SecurityFilters,
  target: PolicyTarget,
): FilterChain[] {
  const tlsFor = (p: "http" | "tcp"): DownstreamTlsContext =>
    inboundMtlsContext(p, { trustDomainAliases: ctx.mesh.trustDomainAliases });
  return filterChainMatchOptions(mode, protocol).map((opt) =>
    create(FilterChainSchema, {
      name: chainName(cc, opt.protocol),
      filterChainMatch: {
        ...(cc.targetPort > 0 ? { destinationPort: cc.targetPort } : {}),
        transportProtocol: opt.transportProtocol,
        applicationProtocols: [...(opt.applicationProtocols ?? [])],
      },
      filters:
        opt.protocol === "http"
          ? httpChainFilters(ctx, cc, security, target)
          : tcpChainFilters(ctx, cc, security),
      ...(opt.tls ? { transportSocket: downstreamTransportSocket(tlsFor(opt.protocol)) } : {}),
    }),
  );
}

/** Istio `buildInboundNetworkFiltersForHTTP`: metadata exchange, then the HCM with an inline route. */
function httpChainFilters(
  ctx: BuildContext,
  cc: ChainConfig,
  security: SecurityFilters,
  target: PolicyTarget,
): Filter[] {
  const statPrefix = cc.passthrough
    ? `${cc.clusterName};`
    : `inbound_${listenerName("0.0.0.0", cc.targetPort)};`;
  const route = defaultInboundRoute(cc.clusterName, `${cc.hostname}:${cc.servicePort}/*`);
  if (security.extAuthz) route.typedPerFilterConfig[Wellknown.httpExtAuthz] = extAuthzPerRoute(target);
  const limits = rateLimitsFor(ctx, target, "sidecar");
  const vhost: Partial<VirtualHost> = {
    name: inboundVirtualHostName(cc.servicePort),
    domains: ["*"],
    routes: [route],
    ...(limits !== undefined ? { rateLimits: limits.actions } : {}),
  };
  const routeConfig = create(RouteConfigurationSchema, {
    name: cc.clusterName,
    virtualHosts: [vhost as VirtualHost],
    validateClusters: false,
  });
  const hcm = httpConnectionManager(ctx, {
    class: "inbound",
    statPrefix,
    routeConfig,
    protocol: cc.protocol,
    security: security.http,
    ...(limits !== undefined ? { rateLimit: rateLimitFilter(ctx, limits.binding) } : {}),
  });
  return [tcpMetadataExchange(), hcmFilter(hcm)];
}

/** Istio `buildInboundNetworkFilters` + `buildCompleteNetworkFilters` (metadata exchange included). */
function tcpChainFilters(ctx: BuildContext, cc: ChainConfig, security: SecurityFilters): Filter[] {
  return [
    tcpMetadataExchange(),
    ...security.network,
    networkStatsFilter("inbound"),
    tcpProxyFilter(cc.clusterName, cc.clusterName, { accessLog: accessLogs(ctx, "tcp") }),
  ];
}

/**
 * Istio `BuildDefaultHTTPInboundRoute`: route `default`, prefix `/`, to the inbound cluster, no
 * timeout, decorated with the trace operation `<host>:<port>/*`.
 */
export function defaultInboundRoute(cluster: string, operation: string): Route {
  return untimedRoute("default", cluster, operation);
}

/**
 * A catch-all route (prefix `/`) to a cluster without timeouts (`timeout` and `max_grpc_timeout`
 * 0s), as Istio builds the inbound default route and the `allow_any` route.
 */
export function untimedRoute(name: string, cluster: string, operation?: string): Route {
  return create(RouteSchema, {
    name,
    match: { pathSpecifier: { case: "prefix", value: "/" } },
    ...(operation !== undefined ? { decorator: { operation } } : {}),
    action: {
      case: "route",
      value: {
        clusterSpecifier: { case: "cluster", value: cluster },
        timeout: create(DurationSchema, {}),
        maxGrpcTimeout: create(DurationSchema, {}),
      },
    },
  });
}

/** `virtualInbound-blackhole`: traffic sent to 15006 itself goes nowhere (no loop). */
function blackholeChain(ctx: BuildContext): FilterChain {
  return create(FilterChainSchema, {
    name: IstioNames.virtualInboundBlackhole,
    filterChainMatch: { destinationPort: ctx.mesh.proxyInboundListenPort },
    filters: [
      tcpMetadataExchange(),
      networkStatsFilter("inbound"),
      tcpProxyFilter(IstioNames.blackHoleCluster, IstioNames.blackHoleCluster),
    ],
  });
}

/**
 * Istio `populateListenerFilters`: original_dst, then the TLS inspector and HTTP inspector, each
 * disabled (`filter_disabled` destination-port ranges) on ports whose chains never match on TLS
 * or on an HTTP ALPN, so server-first protocols are not delayed.
 */
export function inboundListenerFilters(chains: readonly FilterChain[]): ListenerFilter[] {
  const ports = new Map<number, { tls: boolean; http: boolean }>();
  for (const fc of chains) {
    const port = fc.filterChainMatch?.destinationPort ?? 0;
    const needTls = fc.filterChainMatch?.transportProtocol === TLS;
    const needHttp = (fc.filterChainMatch?.applicationProtocols ?? []).some(
      (a) => a === "http/1.1" || a === "h2c",
    );
    const cur = ports.get(port) ?? { tls: false, http: false };
    ports.set(port, { tls: cur.tls || needTls, http: cur.http || needHttp });
  }
  const out: ListenerFilter[] = [originalDst()];
  const anyTls = [...ports.values()].some((p) => p.tls);
  if (anyTls) {
    const f = tlsInspector();
    if (ports.get(0)?.tls === true) {
      const off = [...ports.entries()].filter(([p, i]) => p !== 0 && !i.tls).map(([p]) => p);
      if (off.length > 0) f.filterDisabled = excludePorts(off);
    } else {
      const on = [...ports.entries()].filter(([p, i]) => p !== 0 && i.tls).map(([p]) => p);
      if (on.length > 0)
        f.filterDisabled = create(ListenerFilterChainMatchPredicateSchema, {
          rule: { case: "notMatch", value: excludePorts(on) },
        });
    }
    out.push(f);
  }
  if ([...ports.values()].some((p) => p.http)) {
    const f = httpInspector();
    const off = [...ports.entries()].filter(([, i]) => !i.http).map(([p]) => p);
    if (off.length > 0) f.filterDisabled = excludePorts(off);
    out.push(f);
  }
  return out;
}

/** Istio `listenerPredicateExcludePorts`: a predicate matching the given destination ports. */
function excludePorts(ports: number[]) {
  const rules = [...ports]
    .sort((a, b) => a - b)
    .map((p) =>
      create(ListenerFilterChainMatchPredicateSchema, {
        rule: { case: "destinationPortRange", value: { start: p, end: p + 1 } },
      }),
    );
  if (rules.length === 1) return rules[0] as (typeof rules)[number];
  return create(ListenerFilterChainMatchPredicateSchema, { rule: { case: "orMatch", value: { rules } } });
}

void anyPack;
