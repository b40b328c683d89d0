import { isIP } from "node:net";
import type { JsonValue } from "@bufbuild/protobuf";
import { type Any, anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { Cluster_DiscoveryType } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { LbEndpoint } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_components_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type {
  FilterChain,
  ListenerFilterChainMatchPredicate,
} from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import type { Listener } from "@meshlet/api/envoy/config/listener/v3/listener_pb";
import type { Route, RouteMatch, VirtualHost } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { VirtualHost_TlsRequirementType } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import type { RouteConfiguration } from "@meshlet/api/envoy/config/route/v3/route_pb";
import { ExtAuthzSchema } from "@meshlet/api/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb";
import { HTTPFaultSchema } from "@meshlet/api/envoy/extensions/filters/http/fault/v3/fault_pb";
import { JwtAuthenticationSchema } from "@meshlet/api/envoy/extensions/filters/http/jwt_authn/v3/config_pb";
import { RBACSchema as HttpRbacSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { RBACSchema as NetworkRbacSchema } from "@meshlet/api/envoy/extensions/filters/network/rbac/v3/rbac_pb";
import {
  type TcpProxy,
  TcpProxySchema,
} from "@meshlet/api/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb";
import {
  type DownstreamTlsContext,
  DownstreamTlsContextSchema,
  type UpstreamTlsContext,
  UpstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import {
  fullMatchRegex,
  type Headers,
  inCidr,
  matchHeader,
  matchQueryParameter,
  matchString,
} from "./matchers.js";
import { evaluateRbac, type RbacOutcome, type RbacRequest } from "./rbac.js";

// A proxy walk over generated xDS resources: which listener, filter chain, route configuration,
// virtual host, route and cluster a call reaches, modelled on Istio's simulation harness
// (istio/istio pilot/pkg/simulation/traffic.go: `Call`, `Result`, the error values) and following
// Envoy's documented matching: listener by address, the filter-chain match sieve
// (api/envoy/config/listener/v3/listener_components.proto `FilterChainMatch`), virtual hosts by
// domain (route_components.proto `VirtualHost.domains`: exact, `*.suffix`, `prefix*`, `*`), routes
// first-match, RBAC per rbac.proto. It reads only the xDS messages it is given.

/** HTTP/1.1, HTTP/2 (h2c or h2 over TLS) or opaque TCP (Istio simulation `Protocol`). */
export type CallProtocol = "http" | "http2" | "tcp";
/** Plaintext, TLS (server authenticated), or Istio mTLS with a workload certificate (`TLSMode`). */
export type CallTls = "plaintext" | "tls" | "mtls";
/** How the connection reaches the proxy (Istio `CallMode`). */
export type CallMode = "outbound" | "inbound" | "gateway";

/** A call to walk (Istio simulation `Call`). */
export interface Call {
  /** Destination IP (default `1.3.3.7`, as in Istio's harness). */
  readonly address?: string;
  readonly port: number;
  readonly path?: string;
  readonly method?: string;
  readonly protocol?: CallProtocol;
  readonly tls?: CallTls;
  /** ALPN the client offers (defaults as Istio: `istio-http/1.1`, `istio-h2`, `istio` for mTLS; `http/1.1`/`h2` for TLS). */
  readonly alpn?: string;
  readonly hostHeader?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** SNI (defaults to the host header for TLS calls). */
  readonly sni?: string;
  readonly callMode?: CallMode;
  /** The caller's identity (URI SAN) on mTLS calls, and its address: what RBAC sees. */
  readonly sourcePrincipal?: string;
  readonly sourceAddress?: string;
  /**
   * Claims of a JWT the request carries, taken as validly signed: `jwt_authn` puts them in its
   * metadata (what RBAC and routes read) when one of its providers has the token's `iss`.
   */
  readonly jwtClaims?: Readonly<Record<string, JsonValue>>;
}

/** Why a walk stopped (Istio simulation errors, plus RBAC and route actions). */
export type WalkError =
  | "no listener matched"
  | "no filter chains matched"
  | "multiple filter chains matched"
  | "invalid TLS"
  | "invalid mTLS"
  | "protocol error"
  | "route configuration not found"
  | "no virtual host matched"
  | "tls required, sending 301"
  | "no route matched"
  | "cluster not found"
  | "rbac denied";

/** A weighted cluster of a route or tcp_proxy. */
export interface WeightedTarget {
  readonly cluster: string;
  readonly weight: number;
}

/** The RBAC filter that decided, when one refused the request. */
export interface RbacDecision extends RbacOutcome {
  /** Position of the filter in the chain and its name. */
  readonly filter: string;
  readonly index: number;
  /** Every policy of the filter's rules, by name (what an ALLOW filter with no match weighed). */
  readonly policies: readonly string[];
}

/** Where the call landed (Istio simulation `Result`, with what explain adds). */
export interface WalkResult {
  readonly error?: WalkError;
  readonly listenerMatched?: string;
  readonly filterChainMatched?: string;
  /** Index of the chain in `filter_chains`, or -1 for the default chain. */
  readonly filterChainIndex?: number;
  readonly routeConfigMatched?: string;
  readonly virtualHostMatched?: string;
  readonly routeMatched?: string;
  readonly clusterMatched?: string;
  readonly weightedClusters?: readonly WeightedTarget[];
  /** The route's `direct_response` status or `redirect`, when it answers itself. */
  readonly directResponse?: { readonly status: number; readonly body?: string };
  readonly redirect?: string;
  /** Faults the route injects (`typed_per_filter_config` of the fault filter). */
  readonly fault?: {
    readonly abortHttpStatus?: number;
    readonly abortGrpcStatus?: number;
    readonly delay?: string;
    readonly percent?: number;
  };
  /** TLS the matched chain terminates: whether client certificates are required, and the certificate SDS name. */
  readonly downstreamTls?: { readonly requireClientCertificate: boolean; readonly certificate: string };
  /** RBAC decisions in filter order, and whether the request would be refused (403 / reset). */
  readonly rbac?: readonly RbacDecision[];
  /** An ext_authz filter (CUSTOM) would be consulted: its cluster. */
  readonly extAuthz?: string;
  /** The route/filter-chain metadata `istio.config` (the config object that made it). */
  readonly routeConfigInfo?: string;
  readonly filterChainConfigInfo?: string;
  /** The HTTP connection manager's HTTP filter names in order, for explain. */
  readonly httpFilters?: readonly string[];
}

/** The xDS resources a walk reads, by type. */
export interface XdsResources {
  readonly listeners: readonly Listener[];
  readonly routes: readonly RouteConfiguration[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
}

/** An Envoy-like view of a request: the call with Istio's harness defaults filled in. */
interface Filled extends Call {
  readonly address: string;
  readonly path: string;
  readonly protocol: CallProtocol;
  readonly tls: CallTls;
  readonly alpn: string;
  readonly sni: string;
  readonly callMode: CallMode;
}

function fill(c: Call): Filled {
  const tls = c.tls ?? "plaintext";
  const protocol = c.protocol ?? "http";
  let alpn = c.alpn ?? "";
  if (alpn === "" && tls === "mtls")
    alpn = protocol === "http" ? "istio-http/1.1" : protocol === "http2" ? "istio-h2" : "istio";
  if (alpn === "" && tls === "tls")
    alpn = protocol === "http" ? "http/1.1" : protocol === "http2" ? "h2" : "";
  return {
    ...c,
    address: c.address ?? "1.3.3.7",
    path: c.path ?? "/",
    protocol,
    tls,
    alpn,
    sni: c.sni ?? (tls !== "plaintext" ? (c.hostHeader ?? "") : ""),
    callMode: c.callMode ?? "outbound",
  };
}

function unpack<T>(any: Any | undefined, schema: Parameters<typeof anyUnpack>[1]): T | undefined {
  if (any === undefined) return undefined;
  return anyUnpack(any, schema as never) as T | undefined;
}

/** The listener a connection lands on: the virtual inbound listener, or by original destination IP:port, then 0.0.0.0:port, then `virtualOutbound`. */
export function matchListener(
  listeners: readonly Listener[],
  call: Pick<Filled, "address" | "port" | "callMode">,
): Listener | undefined {
  if (call.callMode === "inbound") return listeners.find((l) => l.name === "virtualInbound");
  const at = (addr: string) =>
    listeners.find((l) => {
      const a = l.address?.address;
      return (
        a?.case === "socketAddress" &&
        a.value.address === addr &&
        a.value.portSpecifier.case === "portValue" &&
        a.value.portSpecifier.value === call.port
      );
    });
  return (
    at(call.address) ??
    at("0.0.0.0") ??
    (call.callMode === "outbound" ? listeners.find((l) => l.name === "virtualOutbound") : undefined)
  );
}

function predicateMatches(p: ListenerFilterChainMatchPredicate, port: number): boolean {
  const r = p.rule;
  switch (r.case) {
    case "anyMatch":
      return r.value;
    case "destinationPortRange":
      return port >= r.value.start && port < r.value.end;
    case "orMatch":
      return r.value.rules.some((x) => predicateMatches(x, port));
    case "andMatch":
      return r.value.rules.every((x) => predicateMatches(x, port));
    case "notMatch":
      return !predicateMatches(r.value, port);
    default:
      return false;
  }
}

/** Whether a listener filter is present and enabled for a destination port (`filter_disabled`). */
function listenerFilterActive(l: Listener, name: string, port: number): boolean {
  const f = l.listenerFilters.find((x) => x.name === name);
  if (f === undefined) return false;
  return f.filterDisabled === undefined || !predicateMatches(f.filterDisabled, port);
}

/** One step of Envoy's filter-chain sieve: keep the chains that set the criterion and match, else the ones that do not set it. */
function sieve(
  chains: FilterChain[],
  isSet: (fc: FilterChain) => boolean,
  matches: (fc: FilterChain) => boolean,
): FilterChain[] {
  if (!chains.some(isSet)) return chains;
  const hit = chains.filter((c) => isSet(c) && matches(c));
  return hit.length > 0 ? hit : chains.filter((c) => !isSet(c));
}

/**
 * Envoy's filter-chain selection (FilterChainMatch doc): destination port, destination IP (most
 * specific prefix), server name (exact, then longest wildcard), transport protocol, application
 * protocols; ties are an error, no match falls back to the default chain.
 */
export function matchFilterChain(
  l: Listener,
  call: Pick<Filled, "address" | "port" | "sni" | "alpn" | "tls">,
  transportProtocol: string,
): { chain: FilterChain; index: number } | { error: WalkError } {
  let chains = [...l.filterChains];
  chains = sieve(
    chains,
    (fc) => fc.filterChainMatch?.destinationPort !== undefined,
    (fc) => fc.filterChainMatch?.destinationPort === call.port,
  );
  // Destination IP: the most specific matching prefix wins.
  if (chains.some((fc) => (fc.filterChainMatch?.prefixRanges.length ?? 0) > 0)) {
    let best = -1;
    const hits: FilterChain[] = [];
    for (const fc of chains) {
      for (const r of fc.filterChainMatch?.prefixRanges ?? []) {
        const len = r.prefixLen ?? 32;
        if (!inCidr(call.address, r.addressPrefix, len)) continue;
        if (len > best) {
          best = len;
          hits.length = 0;
        }
        if (len === best && !hits.includes(fc)) hits.push(fc);
      }
    }
    chains =
      hits.length > 0 ? hits : chains.filter((fc) => (fc.filterChainMatch?.prefixRanges.length ?? 0) === 0);
  }
  // Server names: exact first, then the longest wildcard suffix.
  if (chains.some((fc) => (fc.filterChainMatch?.serverNames.length ?? 0) > 0)) {
    const sni = call.sni.toLowerCase();
    const exact = chains.filter((fc) =>
      fc.filterChainMatch?.serverNames.some((n) => n.toLowerCase() === sni),
    );
    if (exact.length > 0) chains = exact;
    else {
      let best = 0;
      let hits: FilterChain[] = [];
      for (const fc of chains) {
        for (const n of fc.filterChainMatch?.serverNames ?? []) {
          if (!n.startsWith("*.") || sni === "" || !sni.endsWith(n.slice(1).toLowerCase())) continue;
          if (n.length > best) {
            best = n.length;
            hits = [fc];
          } else if (n.length === best && !hits.includes(fc)) hits.push(fc);
        }
      }
      chains =
        hits.length > 0 ? hits : chains.filter((fc) => (fc.filterChainMatch?.serverNames.length ?? 0) === 0);
    }
  }
  chains = sieve(
    chains,
    (fc) => (fc.filterChainMatch?.transportProtocol ?? "") !== "",
    (fc) => fc.filterChainMatch?.transportProtocol === transportProtocol,
  );
  chains = sieve(
    chains,
    (fc) => (fc.filterChainMatch?.applicationProtocols.length ?? 0) > 0,
    (fc) => (fc.filterChainMatch?.applicationProtocols ?? []).includes(call.alpn),
  );
  if (chains.length > 1) return { error: "multiple filter chains matched" };
  if (chains.length === 0) {
    if (l.defaultFilterChain !== undefined) return { chain: l.defaultFilterChain, index: -1 };
    return { error: "no filter chains matched" };
  }
  const chain = chains[0] as FilterChain;
  return { chain, index: l.filterChains.indexOf(chain) };
}

/**
 * Envoy's virtual host selection (`VirtualHost.domains`): an exact domain, then the longest
 * `*.suffix`/`*suffix` wildcard, then the longest `prefix*`, then `*`. Host names compare
 * case-insensitively; with `ignore_port_in_host_matching` the request's port is dropped first.
 */
/**
 * The route configuration an HTTP connection manager uses: inline (`route_config`), or the one
 * its RDS name (`rds.route_config_name`, returned as `rdsName`) names among `routes`.
 */
export function routeConfigOf(
  hcm: HttpConnectionManager,
  routes: readonly RouteConfiguration[],
): { rc?: RouteConfiguration; rdsName?: string } {
  const spec = hcm.routeSpecifier;
  if (spec.case === "routeConfig") return { rc: spec.value };
  if (spec.case === "rds") {
    const rdsName = spec.value.routeConfigName;
    return { rc: routes.find((r) => r.name === rdsName), rdsName };
  }
  return {};
}

export function matchVirtualHost(rc: RouteConfiguration, hostIn: string): VirtualHost | undefined {
  let host = hostIn.toLowerCase();
  if (rc.ignorePortInHostMatching) host = stripPort(host);
  for (const vh of rc.virtualHosts) if (vh.domains.some((d) => d.toLowerCase() === host)) return vh;
  let best: VirtualHost | undefined;
  let longest = 0;
  for (const vh of rc.virtualHosts) {
    for (const d of vh.domains) {
      if (d === "*" || !d.startsWith("*")) continue;
      if (host.length > d.length - 1 && host.endsWith(d.slice(1).toLowerCase()) && d.length > longest) {
        best = vh;
        longest = d.length;
      }
    }
  }
  if (best !== undefined) return best;
  for (const vh of rc.virtualHosts) {
    for (const d of vh.domains) {
      if (d === "*" || !d.endsWith("*")) continue;
      if (host.length > d.length - 1 && host.startsWith(d.slice(0, -1).toLowerCase()) && d.length > longest) {
        best = vh;
        longest = d.length;
      }
    }
  }
  if (best !== undefined) return best;
  return rc.virtualHosts.find((vh) => vh.domains.includes("*"));
}

function stripPort(host: string): string {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end >= 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.lastIndexOf(":");
  return colon >= 0 && host.indexOf(":") === colon && /^\d+$/.test(host.slice(colon + 1))
    ? host.slice(0, colon)
    : host;
}

/** Whether a route's match accepts the request (path, headers, query parameters; Envoy `RouteMatch`). */
export function routeMatches(
  m: RouteMatch | undefined,
  path: string,
  headers: Headers,
  metadata?: Readonly<Record<string, JsonValue>>,
): boolean {
  if (m === undefined) return false;
  const q = path.indexOf("?");
  const bare = q >= 0 ? path.slice(0, q) : path;
  const query = new URLSearchParams(q >= 0 ? path.slice(q + 1) : "");
  const caseSensitive = m.caseSensitive ?? true;
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase());
  const p = m.pathSpecifier;
  switch (p.case) {
    case "prefix":
      if (!fold(bare).startsWith(fold(p.value))) return false;
      break;
    case "path":
      if (fold(bare) !== fold(p.value)) return false;
      break;
    case "safeRegex":
      if (!(fullMatchRegex(p.value.regex)?.test(bare) ?? false)) return false;
      break;
    case "pathSeparatedPrefix":
      if (!(fold(bare) === fold(p.value) || fold(bare).startsWith(`${fold(p.value)}/`))) return false;
      break;
    case "connectMatcher":
      if (headers.get(":method") !== "CONNECT") return false;
      break;
    default:
      return false;
  }
  if (!m.headers.every((h) => matchHeader(h, headers))) return false;
  if (!m.queryParameters.every((qp) => matchQueryParameter(qp, query))) return false;
  if (m.grpc !== undefined && !(headers.get("content-type") ?? "").startsWith("application/grpc"))
    return false;
  // Dynamic metadata (JWT claims): matched against the claims the call carries, if any.
  for (const dm of m.dynamicMetadata) {
    const claims = metadata?.[dm.filter];
    if (claims === undefined) return false;
    let v: JsonValue | undefined = claims;
    for (const seg of dm.path)
      v =
        seg.segment.case === "key" && v !== null && typeof v === "object" && !Array.isArray(v)
          ? (v as Record<string, JsonValue>)[seg.segment.value]
          : undefined;
    const sm = dm.value?.matchPattern;
    const ok =
      sm?.case === "stringMatch" &&
      (typeof v === "string"
        ? matchString(sm.value, v)
        : Array.isArray(v) && v.some((x) => typeof x === "string" && matchString(sm.value, x)));
    if (ok === dm.invert) return false;
  }
  return true;
}

function requestHeaders(call: Filled): Map<string, string> {
  const h = new Map<string, string>();
  for (const [k, v] of Object.entries(call.headers ?? {})) h.set(k.toLowerCase(), v);
  if (call.hostHeader !== undefined) h.set(":authority", call.hostHeader);
  else if (h.has("host")) h.set(":authority", h.get("host") as string);
  h.set(":method", call.method ?? "GET");
  h.set(":path", call.path);
  h.set(":scheme", call.tls === "plaintext" ? "http" : "https");
  return h;
}

function requiresClientCert(ctx: DownstreamTlsContext | undefined): boolean {
  return ctx?.requireClientCertificate === true;
}

function certificateName(ctx: DownstreamTlsContext | undefined): string {
  const common = ctx?.commonTlsContext;
  // SDS for Envoy; a certificate provider instance for proxyless gRPC (gRFC A29).
  return (
    common?.tlsCertificateSdsSecretConfigs[0]?.name ??
    common?.tlsCertificateProviderInstance?.certificateName ??
    ""
  );
}

/**
 * Walks a call through the resources as the proxy would and reports where it lands, stopping at
 * the first step that fails (Istio `Simulation.Run`, extended with RBAC, header/query matching,
 * weighted clusters and route actions).
 */
export function walk(resources: XdsResources, input: Call): WalkResult {
  const call = fill(input);
  const out: { -readonly [K in keyof WalkResult]: WalkResult[K] } = {};
  const l = matchListener(resources.listeners, call);
  if (l === undefined) return { error: "no listener matched" };
  out.listenerMatched = l.name;

  const hasTls = listenerFilterActive(l, "envoy.filters.listener.tls_inspector", call.port);
  let alpn = hasTls ? call.alpn : "";
  const sni = hasTls ? call.sni : "";
  if (
    listenerFilterActive(l, "envoy.filters.listener.http_inspector", call.port) &&
    call.tls === "plaintext"
  ) {
    alpn = call.protocol === "http" ? "http/1.1" : call.protocol === "http2" ? "h2c" : "";
  }
  const transportProtocol = hasTls && call.tls !== "plaintext" ? "tls" : "raw_buffer";
  const fc = matchFilterChain(
    l,
    { address: call.address, port: call.port, sni, alpn, tls: call.tls },
    transportProtocol,
  );
  if ("error" in fc) return { ...out, error: fc.error };
  const chain = fc.chain;
  out.filterChainMatched = chain.name;
  out.filterChainIndex = fc.index;
  const fcInfo = chain.metadata?.filterMetadata.istio?.config;
  if (typeof fcInfo === "string") out.filterChainConfigInfo = fcInfo;

  const ts = chain.transportSocket;
  const tlsCtx =
    ts?.configType.case === "typedConfig"
      ? unpack<DownstreamTlsContext>(ts.configType.value, DownstreamTlsContextSchema)
      : undefined;
  if (ts !== undefined) {
    out.downstreamTls = {
      requireClientCertificate: requiresClientCert(tlsCtx),
      certificate: certificateName(tlsCtx),
    };
    if (call.tls === "plaintext") return { ...out, error: "invalid TLS" };
    // A chain presenting the workload certificate speaks Istio mTLS, and only that (Istio
    // simulation `requiresMTLS`); one that requires client certificates refuses a client without one.
    const istioMtls = certificateName(tlsCtx) === "default";
    if (istioMtls !== (call.tls === "mtls") || (requiresClientCert(tlsCtx) && call.tls !== "mtls"))
      return { ...out, error: "invalid mTLS" };
  }

  const rbacRequestBase: RbacRequest = {
    ...(call.tls === "mtls" && ts !== undefined && call.sourcePrincipal !== undefined
      ? { principal: call.sourcePrincipal }
      : {}),
    ...(call.sourceAddress !== undefined ? { sourceIp: call.sourceAddress } : {}),
    destinationIp: call.address,
    destinationPort: call.port,
    ...(sni !== "" ? { requestedServerName: sni } : {}),
  };

  const hcmFilter = chain.filters.find((f) => f.name === "envoy.filters.network.http_connection_manager");
  if (hcmFilter !== undefined) {
    const hcm =
      hcmFilter.configType.case === "typedConfig"
        ? unpack<HttpConnectionManager>(hcmFilter.configType.value, HttpConnectionManagerSchema)
        : undefined;
    if (hcm === undefined) return { ...out, error: "protocol error" };
    if (call.tls !== "plaintext" && ts === undefined) return { ...out, error: "protocol error" };
    if (call.protocol === "tcp") return { ...out, error: "protocol error" };
    out.httpFilters = hcm.httpFilters.map((f) => f.name);
    const { rc, rdsName } = routeConfigOf(hcm, resources.routes);
    if (rdsName !== undefined) out.routeConfigMatched = rdsName;
    if (rc === undefined) return { ...out, error: "route configuration not found" };
    const headers = requestHeaders(call);
    const vh = matchVirtualHost(rc, headers.get(":authority") ?? "");
    if (vh === undefined) return { ...out, error: "no virtual host matched" };
    out.virtualHostMatched = vh.name;
    if (vh.requireTls === VirtualHost_TlsRequirementType.ALL && call.tls === "plaintext")
      return { ...out, error: "tls required, sending 301" };
    const metadata =
      call.jwtClaims !== undefined && jwtIssuers(hcm).has(String(call.jwtClaims.iss ?? ""))
        ? { "envoy.filters.http.jwt_authn": { payload: call.jwtClaims as JsonValue } }
        : undefined;

    // HTTP filters: RBAC decides before routing.
    const decisions: RbacDecision[] = [];
    const rbacReq: RbacRequest = {
      ...rbacRequestBase,
      headers,
      path: call.path.split("?")[0] as string,
      ...(metadata !== undefined ? { metadata } : {}),
    };
    let denied = false;
    hcm.httpFilters.forEach((f, index) => {
      if (denied) return;
      if (f.name === "envoy.filters.http.ext_authz") {
        const c = f.configType.case === "typedConfig" ? extAuthzCluster(f.configType.value) : undefined;
        if (c !== undefined) out.extAuthz = c;
      }
      if (f.name !== "envoy.filters.http.rbac" || f.configType.case !== "typedConfig") return;
      const cfg = unpack<{ rules?: Parameters<typeof evaluateRbac>[0] }>(f.configType.value, HttpRbacSchema);
      if (cfg?.rules === undefined) return;
      const outcome = evaluateRbac(cfg.rules, rbacReq);
      decisions.push({ ...outcome, filter: f.name, index, policies: Object.keys(cfg.rules.policies).sort() });
      if (!outcome.allowed) denied = true;
    });
    if (decisions.length > 0) out.rbac = decisions;

    const route = vh.routes.find((r) => routeMatches(r.match, call.path, headers, metadata));
    if (route === undefined) return { ...out, error: "no route matched" };
    out.routeMatched = route.name;
    const info = route.metadata?.filterMetadata.istio?.config;
    if (typeof info === "string") out.routeConfigInfo = info;
    applyFault(out, route);
    if (denied) return { ...out, error: "rbac denied" };
    return finishRoute(resources, out, route);
  }

  const tcpFilter = chain.filters.find((f) => f.name === "envoy.filters.network.tcp_proxy");
  if (tcpFilter !== undefined && tcpFilter.configType.case === "typedConfig") {
    const decisions: RbacDecision[] = [];
    let denied = false;
    chain.filters.forEach((f, index) => {
      if (denied || f.name !== "envoy.filters.network.rbac" || f.configType.case !== "typedConfig") return;
      const cfg = unpack<{ rules?: Parameters<typeof evaluateRbac>[0] }>(
        f.configType.value,
        NetworkRbacSchema,
      );
      if (cfg?.rules === undefined) return;
      const outcome = evaluateRbac(cfg.rules, rbacRequestBase);
      decisions.push({ ...outcome, filter: f.name, index, policies: Object.keys(cfg.rules.policies).sort() });
      if (!outcome.allowed) denied = true;
    });
    if (decisions.length > 0) out.rbac = decisions;
    const tcp = unpack<TcpProxy>(tcpFilter.configType.value, TcpProxySchema);
    if (tcp?.clusterSpecifier.case === "cluster") out.clusterMatched = tcp.clusterSpecifier.value;
    else if (tcp?.clusterSpecifier.case === "weightedClusters")
      out.weightedClusters = tcp.clusterSpecifier.value.clusters.map((c) => ({
        cluster: c.name,
        weight: c.weight,
      }));
    if (denied) return { ...out, error: "rbac denied" };
    return checkClusters(resources, out);
  }
  return out;
}

/** The issuers the connection manager's `jwt_authn` filter verifies (none without the filter). */
function jwtIssuers(hcm: HttpConnectionManager): Set<string> {
  const f = hcm.httpFilters.find((x) => x.name === "envoy.filters.http.jwt_authn");
  const cfg =
    f?.configType.case === "typedConfig" ? anyUnpack(f.configType.value, JwtAuthenticationSchema) : undefined;
  return new Set(Object.values(cfg?.providers ?? {}).map((p) => p.issuer));
}

function extAuthzCluster(any: Any): string | undefined {
  const cfg = anyUnpack(any, ExtAuthzSchema);
  const svc = cfg?.services;
  if (svc?.case === "grpcService" && svc.value.targetSpecifier.case === "envoyGrpc")
    return svc.value.targetSpecifier.value.clusterName;
  if (svc?.case === "httpService" && svc.value.serverUri?.httpUpstreamType.case === "cluster")
    return svc.value.serverUri.httpUpstreamType.value;
  return undefined;
}

/** Reads a route's fault injection (`typed_per_filter_config["envoy.filters.http.fault"]`) into `out.fault`. */
export function applyFault(out: { fault?: WalkResult["fault"] }, route: Route): void {
  const any = route.typedPerFilterConfig["envoy.filters.http.fault"];
  const fault = any === undefined ? undefined : anyUnpack(any, HTTPFaultSchema);
  if (fault === undefined) return;
  const pct = (p: { numerator: number; denominator: number } | undefined) =>
    p === undefined ? 100 : (p.numerator * 100) / ([100, 10_000, 1_000_000][p.denominator] ?? 100);
  const abort = fault.abort;
  const delay = fault.delay;
  out.fault = {
    ...(abort?.errorType.case === "httpStatus" ? { abortHttpStatus: abort.errorType.value } : {}),
    ...(abort?.errorType.case === "grpcStatus" ? { abortGrpcStatus: abort.errorType.value } : {}),
    ...(delay?.faultDelaySecifier.case === "fixedDelay"
      ? {
          delay: `${Number(delay.faultDelaySecifier.value.seconds) + delay.faultDelaySecifier.value.nanos / 1e9}s`,
        }
      : {}),
    percent: pct((abort ?? delay)?.percentage),
  };
}

function finishRoute(
  resources: XdsResources,
  out: { -readonly [K in keyof WalkResult]: WalkResult[K] },
  route: Route,
): WalkResult {
  const a = route.action;
  if (a.case === "directResponse") {
    const body = a.value.body?.specifier.case === "inlineString" ? a.value.body.specifier.value : undefined;
    out.directResponse = { status: a.value.status, ...(body !== undefined ? { body } : {}) };
    return out;
  }
  if (a.case === "redirect") {
    const r = a.value;
    const host = r.hostRedirect;
    const path =
      r.pathRewriteSpecifier.case === "pathRedirect"
        ? r.pathRewriteSpecifier.value
        : r.pathRewriteSpecifier.case === "prefixRewrite"
          ? r.pathRewriteSpecifier.value
          : "";
    out.redirect = `${host}${path}`;
    return out;
  }
  if (a.case !== "route") return out;
  const cs = a.value.clusterSpecifier;
  if (cs.case === "cluster") out.clusterMatched = cs.value;
  else if (cs.case === "weightedClusters")
    out.weightedClusters = cs.value.clusters.map((c) => ({ cluster: c.name, weight: c.weight ?? 0 }));
  return checkClusters(resources, out);
}

function checkClusters(
  resources: XdsResources,
  out: { -readonly [K in keyof WalkResult]: WalkResult[K] },
): WalkResult {
  const names =
    out.clusterMatched !== undefined
      ? [out.clusterMatched]
      : (out.weightedClusters ?? []).map((w) => w.cluster);
  for (const n of names)
    if (!resources.clusters.some((c) => c.name === n)) return { ...out, error: "cluster not found" };
  return out;
}

/** An upstream endpoint of a cluster, with the TLS the proxy would use to reach it. */
export interface UpstreamEndpoint {
  readonly address: string;
  readonly port: number;
  readonly health: string;
  readonly locality?: string;
  /** `istio` when the endpoint accepts Istio mTLS (endpoint metadata `envoy.transport_socket_match.tlsMode`). */
  readonly tlsMode?: string;
  /** The upstream TLS the cluster uses for this endpoint, when any: SNI and SDS certificate names. */
  readonly tls?: {
    readonly sni: string;
    readonly certificate: string;
    readonly validation: string;
    readonly alpn: readonly string[];
  };
}

/** Where a cluster sends traffic: its type and endpoints (EDS, or the cluster's own load assignment). */
export function clusterEndpoints(
  resources: XdsResources,
  name: string,
): { type: string; endpoints: UpstreamEndpoint[] } | undefined {
  const c = resources.clusters.find((x) => x.name === name);
  if (c === undefined) return undefined;
  const type =
    c.clusterDiscoveryType.case === "type"
      ? (Cluster_DiscoveryType[c.clusterDiscoveryType.value] ?? "UNKNOWN")
      : "CUSTOM";
  const cla =
    c.clusterDiscoveryType.case === "type" && c.clusterDiscoveryType.value === Cluster_DiscoveryType.EDS
      ? resources.endpoints.find((e) => e.clusterName === (c.edsClusterConfig?.serviceName || c.name))
      : c.loadAssignment;
  const endpoints: UpstreamEndpoint[] = [];
  for (const loc of cla?.endpoints ?? []) {
    for (const ep of loc.lbEndpoints) {
      const addr = endpointAddress(ep);
      if (addr === undefined) continue;
      const meta = ep.metadata?.filterMetadata["envoy.transport_socket_match"] as
        | Record<string, JsonValue>
        | undefined;
      const tlsMode = typeof meta?.tlsMode === "string" ? meta.tlsMode : undefined;
      const tls = upstreamTls(c, meta ?? {});
      const locality =
        loc.locality === undefined
          ? undefined
          : [loc.locality.region, loc.locality.zone, loc.locality.subZone].filter((x) => x !== "").join("/");
      endpoints.push({
        ...addr,
        health:
          ["UNKNOWN", "HEALTHY", "UNHEALTHY", "DRAINING", "TIMEOUT", "DEGRADED"][ep.healthStatus] ??
          "UNKNOWN",
        ...(locality !== undefined && locality !== "" ? { locality } : {}),
        ...(tlsMode !== undefined ? { tlsMode } : {}),
        ...(tls !== undefined ? { tls } : {}),
      });
    }
  }
  return { type, endpoints };
}

function endpointAddress(ep: LbEndpoint): { address: string; port: number } | undefined {
  if (ep.hostIdentifier.case !== "endpoint") return undefined;
  const a = ep.hostIdentifier.value.address?.address;
  if (a?.case !== "socketAddress") return undefined;
  return {
    address: a.value.address,
    port: a.value.portSpecifier.case === "portValue" ? a.value.portSpecifier.value : 0,
  };
}

/** The upstream TLS of a cluster for an endpoint: `transport_socket_matches` first (by endpoint metadata), then `transport_socket`. */
function upstreamTls(c: Cluster, meta: Record<string, JsonValue>): UpstreamEndpoint["tls"] {
  let socket = c.transportSocket;
  for (const m of c.transportSocketMatches) {
    const want = (m.match ?? {}) as Record<string, JsonValue>;
    if (Object.entries(want).every(([k, v]) => meta[k] === v)) {
      socket = m.transportSocket;
      break;
    }
  }
  if (socket?.configType.case !== "typedConfig") return undefined;
  const ctx = unpack<UpstreamTlsContext>(socket.configType.value, UpstreamTlsContextSchema);
  if (ctx === undefined) return undefined;
  const common = ctx.commonTlsContext;
  // SDS names for Envoy; certificate provider instance names for proxyless gRPC (gRFC A29).
  const combined =
    common?.validationContextType.case === "combinedValidationContext"
      ? common.validationContextType.value
      : undefined;
  const validation =
    combined?.validationContextSdsSecretConfig?.name ??
    combined?.defaultValidationContext?.caCertificateProviderInstance?.certificateName ??
    "";
  return {
    sni: ctx.sni,
    certificate:
      common?.tlsCertificateSdsSecretConfigs[0]?.name ??
      common?.tlsCertificateProviderInstance?.certificateName ??
      "",
    validation,
    alpn: [...(common?.alpnProtocols ?? [])],
  };
}

/** Whether an address is an IP literal (walks need one as destination). */
export function isAddress(a: string): boolean {
  return isIP(a) !== 0;
}
