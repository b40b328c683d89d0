import { isIP } from "node:net";
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { type AccessLog, AccessLogFilterSchema } from "@meshlet/api/envoy/config/accesslog/v3/accesslog_pb";
import { TrafficDirection } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type Filter,
  type FilterChain,
  FilterChainMatchSchema,
  FilterChainSchema,
  type ListenerFilter,
} from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { type Listener, ListenerSchema } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import { labelsMatch } from "@meshlet/config";
import type { TcpRoute, TlsRoute } from "../config-access.js";
import { hostSubsetOf, isWildcardHost } from "../model/host.js";
import { isTlsProtocol, type Protocol } from "../model/protocol.js";
import { type Service, type ServicePort, UNSPECIFIED_IP } from "../model/service.js";
import { IstioNames, listenerName, sidecarOutboundRouteName } from "../naming/listener-names.js";
import type { EgressListenerScope } from "../push/sidecar-scope.js";
import { MESH_GATEWAY, type MeshVirtualService } from "../push/virtual-services.js";
import type { BuildContext } from "./context.js";
import { httpInspector, networkStatsFilter, tcpProxyFilter, tlsInspector } from "./filters.js";
import { hcmFilter, httpConnectionManager } from "./http-connection-manager.js";
import { listenerProtocolOf } from "./inbound.js";
import { configMetadata } from "./metadata.js";
import { catchAllNetworkFilters, outboundNetworkFilters } from "./tcp-routes.js";
import { accessLogs } from "./telemetry.js";
import { Alpn, TransportProtocol } from "./well-known.js";

// A sidecar's outbound listeners (istio/istio pilot/pkg/networking/core/listener.go
// `buildSidecarOutboundListeners`, `buildSidecarOutboundListener`, `buildListenerFromEntry`;
// tls.go for TCP/TLS filter chains; listener_builder.go `buildVirtualOutboundListener`).

/** One filter chain before it becomes a proto (Istio `filterChainOpts`). */
interface ChainOpts {
  sniHosts?: string[];
  destinationCidrs?: string[];
  applicationProtocols?: string[];
  transportProtocol?: string;
  /** An HTTP chain routed by RDS. */
  rds?: string;
  protocol?: Protocol;
  networkFilters?: Filter[];
  metadataFrom?: MeshVirtualService;
}

/** A listener being built (Istio `outboundListenerEntry`). */
interface Entry {
  port: ServicePort;
  bind: string;
  chains: ChainOpts[];
  protocol: Protocol;
  locked: boolean;
}

const WILDCARD = "0.0.0.0";

/** What the outbound side produces: listeners, and the RDS names they reference. */
export interface OutboundResult {
  readonly listeners: Listener[];
  readonly routeNames: string[];
}

/**
 * The outbound listeners of a sidecar: `0.0.0.0_<port>` for HTTP ports (HCM over RDS `<port>`,
 * matched on the HTTP inspector's ALPN, with a `PassthroughFilterChain` default for other traffic),
 * `<vip>_<port>` for TCP, TLS and undeclared ports (tcp_proxy; undeclared ports also sniff HTTP and
 * route it through RDS `<fqdn>:<port>`), one listener per endpoint for headless TCP services, and
 * `virtualOutbound` on 15001. Sidecar egress listeners with a port build only their own services on
 * that port, and ports they claim are not built again by the catch-all listener.
 */
export function buildOutbound(ctx: BuildContext): OutboundResult {
  const scope = ctx.push.sidecarScope(ctx.proxy);
  const entries = new Map<string, Entry>();
  for (const egress of scope.egressListeners) {
    const port = egress.listener?.port;
    if (port !== undefined && port.number !== undefined && port.number !== 0) {
      const listenPort: ServicePort = {
        name: port.name ?? "",
        port: port.number,
        protocol: (listenerProtocolOf(parseOrUnsupported(port.protocol)) === undefined
          ? "UDP"
          : parseOrUnsupported(port.protocol)) as Protocol,
      };
      const bind = egress.listener?.bind ?? "";
      for (const svc of egress.services) buildEntry(ctx, entries, svc, listenPort, bind, egress);
      continue;
    }
    for (const e of entries.values()) e.locked = true;
    for (const svc of egress.services) {
      for (const sp of svc.ports) {
        const headless =
          svc.resolution === "Passthrough" &&
          svc.defaultAddress === UNSPECIFIED_IP &&
          (listenerProtocolOf(sp.protocol) === "tcp" || listenerProtocolOf(sp.protocol) === "auto");
        if (!headless) {
          buildEntry(ctx, entries, svc, sp, "", egress);
          continue;
        }
        const endpoints = ctx.push.endpoints(svc, sp.port);
        if (svc.registry !== "Kubernetes" && endpoints.length === 0 && svc.selector === undefined) {
          buildEntry(ctx, entries, svc, sp, "", egress);
          continue;
        }
        for (const ep of endpoints) {
          const ip = ep.addresses[0];
          if (ip === undefined || isIP(ip) === 0 || ip === ctx.proxy.ipAddresses[0]) continue;
          buildEntry(ctx, entries, svc, sp, ip, egress);
        }
      }
    }
  }
  const listeners: Listener[] = [];
  const routeNames = new Set<string>();
  for (const e of [...entries.values()].sort(
    (a, b) => a.port.port - b.port.port || (a.bind < b.bind ? -1 : a.bind > b.bind ? 1 : 0),
  )) {
    const l = listenerFromEntry(ctx, e);
    for (const c of e.chains) if (c.rds !== undefined) routeNames.add(c.rds);
    listeners.push(l);
  }
  listeners.push(virtualOutbound(ctx));
  return { listeners, routeNames: [...routeNames] };
}

function parseOrUnsupported(p: string | undefined): Protocol {
  const lower = (p ?? "").toLowerCase();
  const known: Record<string, Protocol> = {
    http: "HTTP",
    http2: "HTTP2",
    grpc: "GRPC",
    "grpc-web": "GRPC-Web",
    https: "HTTPS",
    tls: "TLS",
    tcp: "TCP",
    mongo: "Mongo",
    redis: "Redis",
    mysql: "MySQL",
    udp: "UDP",
    http_proxy: "HTTP_PROXY",
  };
  return known[lower] ?? "UnsupportedProtocol";
}

function isTcpLike(p: Protocol): boolean {
  return listenerProtocolOf(p) === "tcp";
}

/** Istio `buildSidecarOutboundListener`, including the HTTP/TCP/auto conflict resolution. */
function buildEntry(
  ctx: BuildContext,
  entries: Map<string, Entry>,
  svc: Service,
  port: ServicePort,
  bindIn: string,
  egress: EgressListenerScope,
): void {
  if (svc.resolution === "Alias") return;
  const lp = listenerProtocolOf(port.protocol);
  if (lp === undefined) return;
  let bind = bindIn;
  let cidr: string | undefined;
  if (lp === "tcp" || lp === "auto") {
    if (bind === "") {
      const addr = svc.defaultAddress;
      if (addr.includes("/")) {
        bind = WILDCARD;
        cidr = addr;
      } else bind = addr;
    }
  } else if (bind === "") bind = WILDCARD;
  const key = `${bind}|${port.port}`;
  const current = entries.get(key);
  if (current?.locked === true) return;

  let opts: ChainOpts[];
  let protocol: Protocol = port.protocol;
  type Conflict =
    | "none"
    | "httpOverTcp"
    | "tcpOverHttp"
    | "tcpOverTcp"
    | "tcpOverAuto"
    | "autoOverHttp"
    | "autoOverTcp";
  let conflict: Conflict = "none";
  if (port.protocol === "HTTP_PROXY") {
    opts = httpOpts(svc, port, bind, lp);
  } else if (lp === "http") {
    if (current !== undefined) {
      if (isTcpLike(current.protocol)) conflict = "httpOverTcp";
      else return;
    }
    opts = httpOpts(svc, port, bind, lp);
    if (bind === WILDCARD) {
      for (const o of opts) {
        o.applicationProtocols = [...Alpn.plaintextHttp];
        o.transportProtocol = TransportProtocol.rawBuffer;
      }
      protocol = "UnsupportedProtocol";
    }
  } else if (lp === "tcp") {
    opts = tcpOpts(ctx, svc, port, bind, cidr, egress);
    if (current !== undefined) {
      if (listenerProtocolOf(current.protocol) === "http") conflict = "tcpOverHttp";
      else if (isTcpLike(current.protocol)) conflict = "tcpOverTcp";
      else conflict = "tcpOverAuto";
    }
  } else {
    if (current !== undefined) {
      if (listenerProtocolOf(current.protocol) === "http") conflict = "autoOverHttp";
      else if (isTcpLike(current.protocol)) conflict = "autoOverTcp";
      else return;
    }
    const tcp = tcpOpts(ctx, svc, port, bind, cidr, egress);
    const http = httpOpts(svc, port, bind, lp);
    for (const o of http) {
      o.applicationProtocols = [...Alpn.plaintextHttp];
      o.transportProtocol = TransportProtocol.rawBuffer;
    }
    opts = [...tcp, ...http];
  }
  // Mongo and MySQL never share a port with another protocol (Istio isConflictWithWellKnownPort).
  if (current !== undefined && conflict !== "none") {
    const wellKnown = (p: Protocol) => p === "Mongo" || p === "MySQL";
    if ((wellKnown(port.protocol) || wellKnown(current.protocol)) && port.protocol !== current.protocol)
      return;
  }
  switch (conflict) {
    case "none":
    case "autoOverHttp":
      entries.set(key, { port, bind, chains: opts, protocol, locked: false });
      break;
    case "httpOverTcp":
    case "tcpOverHttp":
    case "autoOverTcp":
      mergeTcpChains(current as Entry, opts);
      (current as Entry).protocol = "UnsupportedProtocol";
      break;
    default:
      mergeTcpChains(current as Entry, opts);
  }
}

/** Istio `buildSidecarOutboundHTTPListenerOpts`: RDS `<port>`, or `<fqdn>:<port>` for a sniffed port on the service VIP. */
function httpOpts(svc: Service, port: ServicePort, bind: string, lp: "http" | "tcp" | "auto"): ChainOpts[] {
  const rds =
    lp === "auto" && bind !== WILDCARD
      ? sidecarOutboundRouteName(port.port, { sniffedServiceHostname: svc.hostname })
      : sidecarOutboundRouteName(port.port);
  return [{ rds, protocol: port.protocol }];
}

/** VirtualServices of the egress listener whose hosts match the service host (Istio `getConfigsForHost`). */
function vsForHost(egress: EgressListenerScope, hostname: string): MeshVirtualService[] {
  return egress.virtualServices.filter((vs) =>
    vs.hosts.some((h) => h === hostname || (isWildcardHost(h) && hostSubsetOf(hostname, h))),
  );
}

interface L4Match {
  readonly destinationSubnets?: readonly string[];
  readonly sniHosts?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly gateways?: readonly string[];
  readonly sourceNamespace?: string;
}

/** Istio `matchTCP`/`matchTLS`: the static predicates a sidecar evaluates at generation time. */
function staticMatch(ctx: BuildContext, m: L4Match | undefined, port: number): boolean {
  if (m === undefined) return true;
  const gateways = m.gateways ?? [];
  const gw = gateways.length === 0 || gateways.includes(MESH_GATEWAY);
  const labels = labelsMatch(m.sourceLabels ?? {}, ctx.labels);
  const portOk = m.port === undefined || m.port === 0 || m.port === port;
  const ns =
    m.sourceNamespace === undefined || m.sourceNamespace === "" || m.sourceNamespace === ctx.proxy.namespace;
  return gw && labels && portOk && ns;
}

/** Istio `buildSidecarOutboundTCPListenerOpts`: TLS chains for TLS ports, TCP chains otherwise. */
function tcpOpts(
  ctx: BuildContext,
  svc: Service,
  port: ServicePort,
  bind: string,
  cidr: string | undefined,
  egress: EgressListenerScope,
): ChainOpts[] {
  const configs = vsForHost(egress, svc.hostname);
  const cidrs = cidr !== undefined ? [cidr] : [];
  const single = (): ChainOpts => {
    const p = svc.ports.length === 1 ? (svc.ports[0] as ServicePort).port : port.port;
    return {
      ...(cidrs.length > 0 ? { destinationCidrs: cidrs } : {}),
      networkFilters: outboundNetworkFilters(
        ctx,
        [{ destination: { host: svc.hostname, port: { number: p } } }],
        port.port,
        {
          class: "outbound",
        },
      ),
    };
  };
  if (isTlsProtocol(port.protocol)) {
    const out: ChainOpts[] = [];
    const handled = new Set<string>();
    for (const vs of configs) {
      for (const tls of vs.tls as readonly TlsRoute[]) {
        for (const match of (tls.match ?? []) as readonly L4Match[]) {
          if (!staticMatch(ctx, match, port.port)) continue;
          const subnets =
            match.destinationSubnets !== undefined && match.destinationSubnets.length > 0 && port.port > 0
              ? [...match.destinationSubnets]
              : cidrs;
          const key = `${(match.sniHosts ?? []).join(",")}|${(match.destinationSubnets ?? []).join(",")}`;
          if (handled.has(key)) continue;
          handled.add(key);
          out.push({
            sniHosts: [...(match.sniHosts ?? [])],
            ...(subnets.length > 0 ? { destinationCidrs: subnets } : {}),
            networkFilters: outboundNetworkFilters(ctx, tls.route ?? [], port.port, {
              class: "outbound",
              vs,
            }),
            metadataFrom: vs,
          });
        }
      }
    }
    if (out.length === 0) {
      const chain = single();
      // SNI is the only way to tell services apart on a wildcard or CIDR listener (Istio tls.go).
      if (cidrs.length > 0 || bind === "" || bind === WILDCARD) chain.sniHosts = [svc.hostname];
      out.push(chain);
    }
    return out;
  }
  const out: ChainOpts[] = [];
  let defaultAdded = false;
  outer: for (const vs of configs) {
    for (const tcp of vs.tcp as readonly TcpRoute[]) {
      if (tcp.match === undefined || tcp.match.length === 0) {
        out.push({
          ...(cidrs.length > 0 ? { destinationCidrs: cidrs } : {}),
          networkFilters: outboundNetworkFilters(ctx, tcp.route ?? [], port.port, { class: "outbound", vs }),
          metadataFrom: vs,
        });
        defaultAdded = true;
        break outer;
      }
      const subnets: string[] = [];
      for (const match of tcp.match as readonly L4Match[]) {
        if (!staticMatch(ctx, match, port.port)) continue;
        if (
          match.destinationSubnets === undefined ||
          match.destinationSubnets.length === 0 ||
          port.port === 0
        ) {
          out.push({
            ...(cidrs.length > 0 ? { destinationCidrs: cidrs } : {}),
            networkFilters: outboundNetworkFilters(ctx, tcp.route ?? [], port.port, {
              class: "outbound",
              vs,
            }),
            metadataFrom: vs,
          });
          defaultAdded = true;
          break outer;
        }
        subnets.push(...match.destinationSubnets);
      }
      if (subnets.length > 0) {
        out.push({
          destinationCidrs: subnets,
          networkFilters: outboundNetworkFilters(ctx, tcp.route ?? [], port.port, { class: "outbound", vs }),
        });
        if ([...subnets].sort().join(",") === [...cidrs].sort().join(",")) defaultAdded = true;
      }
    }
  }
  if (!defaultAdded) out.push(single());
  return out;
}

function isMatchAll(c: ChainOpts): boolean {
  return (
    (c.sniHosts === undefined || c.sniHosts.length === 0 || c.sniHosts.includes("*")) &&
    (c.applicationProtocols === undefined || c.applicationProtocols.length === 0) &&
    (c.transportProtocol === undefined || c.transportProtocol === "") &&
    (c.destinationCidrs === undefined || c.destinationCidrs.length === 0)
  );
}

/** Istio `filterChainOpts.conflictsWith`: same transport, ALPN, SNI set (ignoring `*`) and CIDR set. */
function conflicts(a: ChainOpts, b: ChainOpts): boolean {
  if ((a.transportProtocol ?? "") !== (b.transportProtocol ?? "")) return false;
  if ((a.applicationProtocols ?? []).join(",") !== (b.applicationProtocols ?? []).join(",")) return false;
  const set = (xs: readonly string[] | undefined, drop: string) =>
    [...new Set((xs ?? []).filter((x) => x !== drop))].sort().join(",");
  if (set(a.sniHosts, "*") !== set(b.sniHosts, "*")) return false;
  return set(a.destinationCidrs, WILDCARD) === set(b.destinationCidrs, WILDCARD);
}

/** Istio `mergeTCPFilterChains`: add chains whose matches differ from every existing one. */
function mergeTcpChains(current: Entry, incoming: ChainOpts[]): void {
  for (const c of incoming) if (!current.chains.some((e) => conflicts(e, c))) current.chains.push(c);
}

function cidrRange(cidr: string) {
  const slash = cidr.indexOf("/");
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const len = slash < 0 ? (isIP(address) === 6 ? 128 : 32) : Number(cidr.slice(slash + 1));
  return { addressPrefix: address, prefixLen: len };
}

/** Istio `buildListenerFromEntry`. */
function listenerFromEntry(ctx: BuildContext, e: Entry): Listener {
  const name = listenerName(e.bind, e.port.port);
  const needTls = e.chains.some((c) => (c.sniHosts?.length ?? 0) > 0);
  const needHttp = e.chains.some((c) => (c.applicationProtocols?.length ?? 0) > 0);
  const listenerFilters: ListenerFilter[] = [];
  if (needTls || needHttp) listenerFilters.push(tlsInspector());
  if (needHttp) listenerFilters.push(httpInspector());
  const chains: FilterChain[] = [];
  let defaultChain: FilterChain | undefined;
  for (const c of e.chains) {
    const filters =
      c.rds !== undefined
        ? [
            hcmFilter(
              httpConnectionManager(ctx, {
                class: "outbound",
                statPrefix: `outbound_${name};`,
                rds: c.rds,
                protocol: c.protocol ?? e.port.protocol,
              }),
            ),
          ]
        : (c.networkFilters ?? []);
    const chain = create(FilterChainSchema, {
      filters,
      ...(c.metadataFrom !== undefined ? { metadata: configMetadata(c.metadataFrom) } : {}),
    });
    if (isMatchAll(c)) {
      defaultChain = chain;
      continue;
    }
    const sni =
      c.sniHosts !== undefined && c.sniHosts.length > 0 && !c.sniHosts.includes("*")
        ? [...c.sniHosts].sort()
        : [];
    chain.filterChainMatch = create(FilterChainMatchSchema, {
      applicationProtocols: [...(c.applicationProtocols ?? [])],
      transportProtocol: c.transportProtocol ?? "",
      serverNames: sni,
      prefixRanges: [...(c.destinationCidrs ?? [])]
        .sort()
        .filter((d) => cidrRange(d).addressPrefix !== WILDCARD)
        .map(cidrRange),
    });
    chains.push(chain);
  }
  const listener = create(ListenerSchema, {
    name,
    address: {
      address: {
        case: "socketAddress",
        value: { address: e.bind, portSpecifier: { case: "portValue", value: e.port.port } },
      },
    },
    trafficDirection: TrafficDirection.OUTBOUND,
    continueOnListenerFiltersTimeout: true,
    bindToPort: false,
    listenerFilters,
    listenerFiltersTimeout: create(DurationSchema, {}),
  });
  if (defaultChain !== undefined && chains.length === 0) {
    listener.filterChains = [defaultChain];
  } else {
    listener.filterChains = chains;
    listener.defaultFilterChain =
      defaultChain ??
      create(FilterChainSchema, {
        name: IstioNames.passthroughFilterChain,
        filterChainMatch: {},
        filters: catchAllNetworkFilters(ctx, catchAllCluster(ctx)),
      });
  }
  return listener;
}

/** `PassthroughCluster` under ALLOW_ANY, `BlackHoleCluster` under REGISTRY_ONLY (the Sidecar's, else the mesh's). */
export function catchAllCluster(ctx: BuildContext): string {
  return ctx.push.sidecarScope(ctx.proxy).outboundTrafficPolicy === "ALLOW_ANY"
    ? IstioNames.passthroughCluster
    : IstioNames.blackHoleCluster;
}

/** Access logs of a listener for requests no filter chain took (Istio `setListenerAccessLog`: response flag `NR`). */
function listenerAccessLogs(ctx: BuildContext): AccessLog[] {
  return accessLogs(ctx, "tcp").map((log) => {
    log.filter = create(AccessLogFilterSchema, {
      filterSpecifier: { case: "responseFlagFilter", value: { flags: ["NR"] } },
    });
    return log;
  });
}

/**
 * `virtualOutbound` on 0.0.0.0:15001 with `use_original_dst` (Istio `buildVirtualOutboundListener`):
 * connections are handed to the listener of their original destination; the rest go to
 * `virtualOutbound-catchall-tcp` (PassthroughCluster, or BlackHoleCluster under REGISTRY_ONLY);
 * connections to 15001 itself to `virtualOutbound-blackhole`.
 */
export function virtualOutbound(ctx: BuildContext): Listener {
  const catchAll = catchAllCluster(ctx);
  return create(ListenerSchema, {
    name: IstioNames.virtualOutbound,
    address: {
      address: {
        case: "socketAddress",
        value: { address: WILDCARD, portSpecifier: { case: "portValue", value: ctx.mesh.proxyListenPort } },
      },
    },
    useOriginalDst: true,
    trafficDirection: TrafficDirection.OUTBOUND,
    ...(ctx.proxy.interceptionMode === "TPROXY" ? { transparent: true } : {}),
    filterChains: [
      {
        name: IstioNames.virtualOutboundBlackhole,
        filterChainMatch: { destinationPort: ctx.mesh.proxyListenPort },
        filters: [networkStatsFilter("outbound"), tcpProxyFilter(IstioNames.blackHoleCluster)],
      },
      { name: IstioNames.virtualOutboundCatchAllTcp, filters: catchAllNetworkFilters(ctx, catchAll) },
    ],
    accessLog: listenerAccessLogs(ctx),
  });
}
