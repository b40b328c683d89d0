import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { RBAC } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import { RBACSchema as HttpRbacSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import {
  type HttpConnectionManager,
  HttpConnectionManagerSchema,
} from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import {
  type DownstreamTlsContext,
  DownstreamTlsContextSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/tls_pb";
import { evaluateRbac, type RbacRequest } from "./rbac.js";
import {
  applyFault,
  type CallTls,
  matchFilterChain,
  matchVirtualHost,
  type RbacDecision,
  routeConfigOf,
  routeMatches,
  type WalkResult,
  type XdsResources,
} from "./walker.js";

// How a proxyless gRPC client and server use the xDS resources they are sent (no Envoy in the
// path): gRFC A27 (client: LDS by the dialled name → RDS → virtual host for the target → first
// matching route → CDS → EDS), A28 (route matching on `/<service>/<method>` and headers), A29 (TLS
// from certificate provider instances), A36 (server: LDS `xds.istio.io/grpc/lds/inbound/<ip>:<port>`
// → filter chain → HTTP filters) and A41 (RBAC filters, evaluated in order, on the server).

const HCM_TYPE_URL = `type.googleapis.com/${HttpConnectionManagerSchema.typeName}`;
const HTTP_RBAC_TYPE_URL = `type.googleapis.com/${HttpRbacSchema.typeName}`;

/** An RPC as a proxyless gRPC client or server sees it. */
export interface ProxylessCall {
  /** The method path, `/<package.Service>/<Method>`. */
  readonly path: string;
  /** Request metadata (lower-cased names; gRFC A28 never matches `-bin` headers). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Server side: what the client speaks; `mtls` presents its workload certificate. */
  readonly tls?: CallTls;
  /** Server side: the client's SPIFFE ID, verified by the mTLS handshake. */
  readonly sourcePrincipal?: string;
  readonly sourceAddress?: string;
  /** Server side: the address and port the client connected to. */
  readonly address?: string;
  readonly port?: number;
}

/** The headers gRPC route and RBAC matching see for an RPC to `authority`. */
function grpcHeaders(call: ProxylessCall, authority: string): Map<string, string> {
  const h = new Map<string, string>();
  for (const [k, v] of Object.entries(call.headers ?? {})) {
    const name = k.toLowerCase();
    // gRFC A28: binary headers never match; `content-type` is always gRPC's.
    if (name.endsWith("-bin")) continue;
    h.set(name, v);
  }
  h.set("content-type", "application/grpc");
  h.set(":authority", authority);
  h.set(":method", "POST");
  h.set(":path", call.path);
  h.set(":scheme", "http");
  return h;
}

function hcmOf(any: Parameters<typeof anyUnpack>[0] | undefined): HttpConnectionManager | undefined {
  if (any === undefined || any.typeUrl !== HCM_TYPE_URL) return undefined;
  return anyUnpack(any, HttpConnectionManagerSchema);
}

/**
 * Walks an RPC a proxyless client makes on a channel to `xds:///<target>`: the listener named
 * exactly as dialled (gRFC A27: the LDS resource name is the target), its RDS route configuration,
 * the virtual host matching the target, the first route matching the method path and headers, and
 * the cluster(s) it names. A missing resource stops the walk where gRPC would fail the RPC with
 * UNAVAILABLE.
 */
export function walkProxylessClient(
  resources: XdsResources,
  target: string,
  call: ProxylessCall,
): WalkResult {
  const out: { -readonly [K in keyof WalkResult]: WalkResult[K] } = {};
  const listener = resources.listeners.find((l) => l.name === target);
  if (listener === undefined) return { error: "no listener matched" };
  out.listenerMatched = listener.name;
  const hcm = hcmOf(listener.apiListener?.apiListener);
  if (hcm === undefined) return { ...out, error: "protocol error" };
  out.httpFilters = hcm.httpFilters.map((f) => f.name);
  const { rc, rdsName } = routeConfigOf(hcm, resources.routes);
  if (rdsName !== undefined) out.routeConfigMatched = rdsName;
  if (rc === undefined) return { ...out, error: "route configuration not found" };
  // gRFC A27: the virtual host is chosen by the channel's target (the data-plane authority).
  const headers = grpcHeaders(call, target);
  const vh = matchVirtualHost(rc, target);
  if (vh === undefined) return { ...out, error: "no virtual host matched" };
  out.virtualHostMatched = vh.name;
  const route = vh.routes.find((r) => routeMatches(r.match, call.path, headers));
  if (route === undefined) return { ...out, error: "no route matched" };
  out.routeMatched = route.name;
  const info = route.metadata?.filterMetadata.istio?.config;
  if (typeof info === "string") out.routeConfigInfo = info;
  applyFault(out, route);
  if (route.action.case !== "route") return { ...out, error: "no route matched" };
  const cs = route.action.value.clusterSpecifier;
  if (cs.case === "cluster") out.clusterMatched = cs.value;
  else if (cs.case === "weightedClusters")
    out.weightedClusters = cs.value.clusters.map((c) => ({ cluster: c.name, weight: c.weight ?? 0 }));
  const names =
    out.clusterMatched !== undefined
      ? [out.clusterMatched]
      : (out.weightedClusters ?? []).map((w) => w.cluster);
  for (const n of names)
    if (!resources.clusters.some((c) => c.name === n)) return { ...out, error: "cluster not found" };
  return out;
}

/**
 * Walks an RPC arriving at a proxyless gRPC server through its server listener (gRFC A36): the
 * listener `listenerName`, the filter chain for the connection, the TLS it requires (a chain with a
 * DownstreamTlsContext accepts only TLS, with a client certificate when required; one without
 * accepts only plaintext), then the RBAC HTTP filters in order (gRFC A41). RBAC filters are found by
 * their config type, since gRPC names them freely (`envoy.filters.http.rbac.DENY`).
 */
export function walkProxylessServer(
  resources: XdsResources,
  listenerName: string,
  call: ProxylessCall,
): WalkResult {
  const out: { -readonly [K in keyof WalkResult]: WalkResult[K] } = {};
  const listener = resources.listeners.find((l) => l.name === listenerName);
  if (listener === undefined) return { error: "no listener matched" };
  out.listenerMatched = listener.name;
  const tls = call.tls ?? "plaintext";
  const fc = matchFilterChain(
    listener,
    { address: call.address ?? "", port: call.port ?? 0, sni: "", alpn: "", tls },
    "raw_buffer",
  );
  if ("error" in fc) return { ...out, error: fc.error };
  const chain = fc.chain;
  out.filterChainMatched = chain.name;
  out.filterChainIndex = fc.index;
  const ts = chain.transportSocket;
  const tlsCtx: DownstreamTlsContext | undefined =
    ts?.configType.case === "typedConfig"
      ? anyUnpack(ts.configType.value, DownstreamTlsContextSchema)
      : undefined;
  if (ts !== undefined) {
    const certificate =
      tlsCtx?.commonTlsContext?.tlsCertificateProviderInstance?.certificateName ??
      tlsCtx?.commonTlsContext?.tlsCertificateSdsSecretConfigs[0]?.name ??
      "";
    const requireClientCertificate = tlsCtx?.requireClientCertificate === true;
    out.downstreamTls = { requireClientCertificate, certificate };
    if (tls === "plaintext") return { ...out, error: "invalid TLS" };
    if (requireClientCertificate && tls !== "mtls") return { ...out, error: "invalid mTLS" };
  } else if (tls !== "plaintext") {
    return { ...out, error: "invalid TLS" };
  }
  const hcm = chain.filters
    .map((f) => (f.configType.case === "typedConfig" ? hcmOf(f.configType.value) : undefined))
    .find((h) => h !== undefined);
  if (hcm === undefined) return { ...out, error: "protocol error" };
  out.httpFilters = hcm.httpFilters.map((f) => f.name);
  const authority = `${call.address ?? ""}:${call.port ?? 0}`;
  const req: RbacRequest = {
    headers: grpcHeaders(call, authority),
    path: call.path,
    // The principal is what the server's mTLS handshake verified; without mTLS there is none.
    ...(tls === "mtls" && ts !== undefined && call.sourcePrincipal !== undefined
      ? { principal: call.sourcePrincipal }
      : {}),
    ...(call.sourceAddress !== undefined
      ? { sourceIp: call.sourceAddress, remoteIp: call.sourceAddress }
      : {}),
    ...(call.address !== undefined ? { destinationIp: call.address } : {}),
    ...(call.port !== undefined ? { destinationPort: call.port } : {}),
  };
  const decisions: RbacDecision[] = [];
  for (const [index, f] of hcm.httpFilters.entries()) {
    if (f.configType.case !== "typedConfig" || f.configType.value.typeUrl !== HTTP_RBAC_TYPE_URL) continue;
    const rules: RBAC | undefined = anyUnpack(f.configType.value, HttpRbacSchema)?.rules;
    if (rules === undefined) continue;
    const outcome = evaluateRbac(rules, req);
    decisions.push({ ...outcome, filter: f.name, index, policies: Object.keys(rules.policies).sort() });
    if (!outcome.allowed) break;
  }
  if (decisions.length > 0) out.rbac = decisions;
  if (decisions.some((d) => !d.allowed)) return { ...out, error: "rbac denied" };
  return out;
}
