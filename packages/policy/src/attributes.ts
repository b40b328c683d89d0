import type { Address } from "@meshlet/api/envoy/config/core/v3/address_pb";
import type { CheckRequest } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { PolicyError } from "./policy-error.js";

/**
 * The authenticated identity of a request, filled from a verified JWT by RequestAuthentication
 * (Istio's `request.auth.*` attributes).
 */
export interface RequestAuth {
  /** `<iss>/<sub>` of the verified token (Istio's `request.auth.principal`). */
  principal: string;
  /** The token's `aud` claim as a list. */
  audiences: string[];
  /** The token's `azp` claim, when present. */
  presenter?: string;
  /** Every claim of the verified token. */
  claims: Record<string, unknown>;
}

/**
 * A typed attribute bag in Istio's vocabulary: `source.principal`, `source.namespace`,
 * `source.ip`, `remote.ip`, `destination.port`, `request.headers[...]`, `request.auth.claims[...]`,
 * `connection.sni`, …. Every field is optional; a policy that needs a missing attribute does not
 * match it. Build one by hand, or from an Envoy ext_authz request with
 * {@link attributesFromCheckRequest}.
 */
export interface Attributes {
  source?: {
    /** Peer identity without `spiffe://`, e.g. `cluster.local/ns/default/sa/productpage`. */
    principal?: string;
    /** Peer namespace; derived from the principal's `/ns/<ns>/` segment when absent. */
    namespace?: string;
    /** The direct peer's IP address. */
    ip?: string;
    port?: number;
    labels?: Record<string, string>;
  };
  /** The original client (Istio's `remote.ip`, e.g. from `x-envoy-external-address`). */
  remote?: { ip?: string };
  destination?: {
    principal?: string;
    /** Namespace of the workload being called: selects which policies apply. */
    namespace?: string;
    /** Labels of the workload being called: matched by policy `selector.matchLabels`. */
    labels?: Record<string, string>;
    ip?: string;
    port?: number;
  };
  request?: {
    method?: string;
    /** The `:authority`/`Host` header. */
    host?: string;
    /** The URL path without query string (Istio's `request.url_path`). */
    path?: string;
    query?: string;
    scheme?: string;
    protocol?: string;
    id?: string;
    /** Header names in lower case. */
    headers?: Record<string, string>;
    /** Set by the engine after JWT verification; never trusted from callers' headers. */
    auth?: RequestAuth;
  };
  connection?: { sni?: string };
}

const NS_IN_PRINCIPAL = /(?:^|\/)ns\/([^/]+)(?:\/|$)/;

/** Drops a `spiffe://` scheme: Istio policies name principals without it. */
export function normalizePrincipal(principal: string): string {
  return principal.startsWith("spiffe://") ? principal.slice("spiffe://".length) : principal;
}

/** The namespace segment of an Istio principal (`td/ns/<ns>/sa/<sa>`), if any. */
export function namespaceOfPrincipal(principal: string | undefined): string | undefined {
  if (principal === undefined) return undefined;
  return NS_IN_PRINCIPAL.exec(principal)?.[1];
}

/** `<ns>/<sa>` of an Istio principal (`td/ns/<ns>/sa/<sa>`), if it has that shape. */
export function serviceAccountOfPrincipal(principal: string | undefined): string | undefined {
  if (principal === undefined) return undefined;
  const m = /(?:^|\/)ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

function socket(address: Address | undefined): { ip?: string; port?: number } {
  if (address?.address.case !== "socketAddress") return {};
  const s = address.address.value;
  const out: { ip?: string; port?: number } = {};
  if (s.address) out.ip = s.address;
  if (s.portSpecifier.case === "portValue") out.port = s.portSpecifier.value;
  return out;
}

/**
 * Builds {@link Attributes} from an Envoy ext_authz `CheckRequest`.
 *
 * - `source.*`/`destination.*` come from the peers' addresses and principals (the `spiffe://`
 *   scheme is dropped, as Istio does); `destination.labels` from the destination peer's labels;
 *   a missing `destination.namespace` is derived from the destination principal or the
 *   `namespace` context extension.
 * - `remote.ip` is `x-envoy-external-address` when Envoy set it, else the direct peer.
 * - `request.path` is the path without the query string.
 *
 * @throws PolicyError `invalid-attributes` when the request has no attributes at all.
 */
export function attributesFromCheckRequest(req: CheckRequest): Attributes {
  const ctx = req.attributes;
  if (ctx === undefined) {
    throw new PolicyError(
      "invalid-attributes",
      "CheckRequest.attributes is missing: Envoy always sends it; check the caller",
    );
  }
  const attrs: Attributes = {};
  const src = ctx.source;
  if (src) {
    const principal = src.principal ? normalizePrincipal(src.principal) : undefined;
    const { ip, port } = socket(src.address);
    attrs.source = {
      ...(principal !== undefined && { principal }),
      ...(ip !== undefined && { ip }),
      ...(port !== undefined && { port }),
      ...(Object.keys(src.labels).length > 0 && { labels: { ...src.labels } }),
    };
    const ns = namespaceOfPrincipal(principal);
    if (ns !== undefined) attrs.source.namespace = ns;
  }
  const dst = ctx.destination;
  if (dst) {
    const principal = dst.principal ? normalizePrincipal(dst.principal) : undefined;
    const { ip, port } = socket(dst.address);
    const ns = ctx.contextExtensions.namespace ?? namespaceOfPrincipal(principal);
    attrs.destination = {
      ...(principal !== undefined && { principal }),
      ...(ip !== undefined && { ip }),
      ...(port !== undefined && { port }),
      ...(ns !== undefined && { namespace: ns }),
      labels: { ...dst.labels },
    };
  }
  const http = ctx.request?.http;
  if (http) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(http.headers)) headers[k.toLowerCase()] = v;
    for (const h of http.headerMap?.headers ?? []) {
      const v = h.value || new TextDecoder().decode(h.rawValue);
      const k = h.key.toLowerCase();
      headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
    }
    const q = http.path.indexOf("?");
    const path = q < 0 ? http.path : http.path.slice(0, q);
    const query = http.query || (q < 0 ? "" : http.path.slice(q + 1));
    attrs.request = {
      headers,
      ...(http.method && { method: http.method }),
      ...((http.host || headers[":authority"] || headers.host) && {
        host: http.host || headers[":authority"] || headers.host,
      }),
      ...(path && { path }),
      ...(query && { query }),
      ...(http.scheme && { scheme: http.scheme }),
      ...(http.protocol && { protocol: http.protocol }),
      ...(http.id && { id: http.id }),
    };
    const external = headers["x-envoy-external-address"];
    const remote = external ?? attrs.source?.ip;
    if (remote !== undefined) attrs.remote = { ip: remote };
  } else if (attrs.source?.ip !== undefined) {
    attrs.remote = { ip: attrs.source.ip };
  }
  if (ctx.tlsSession?.sni) attrs.connection = { sni: ctx.tlsSession.sni };
  return attrs;
}

/** Reads one claim by a path of names (`request.auth.claims[a][b]`). */
function claimAt(claims: Record<string, unknown> | undefined, path: readonly string[]): unknown {
  let cur: unknown = claims;
  for (const p of path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/**
 * Reads an attribute by its Istio name, as `when` conditions name them: `source.ip`,
 * `request.headers[x-token]`, `request.auth.claims[groups]`, `request.auth.claims[a][b]`, ….
 * Returns every value the attribute has (claims may be lists), or `undefined` when absent.
 */
export function attributeValues(attrs: Attributes, key: string): string[] | undefined {
  const bracket = key.indexOf("[");
  const base = bracket < 0 ? key : key.slice(0, bracket);
  const path =
    bracket < 0 ? [] : [...key.slice(bracket).matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] as string);
  const one = (v: string | number | undefined): string[] | undefined =>
    v === undefined ? undefined : [String(v)];
  switch (base) {
    case "source.principal": {
      const p = attrs.source?.principal;
      return one(p === undefined ? undefined : normalizePrincipal(p));
    }
    case "source.namespace":
      return one(attrs.source?.namespace ?? namespaceOfPrincipal(attrs.source?.principal));
    case "source.ip":
      return one(attrs.source?.ip);
    case "remote.ip":
      return one(attrs.remote?.ip ?? attrs.source?.ip);
    case "destination.ip":
      return one(attrs.destination?.ip);
    case "destination.port":
      return one(attrs.destination?.port);
    case "connection.sni":
      return one(attrs.connection?.sni);
    case "request.headers": {
      const name = path[0]?.toLowerCase();
      return name === undefined ? undefined : one(attrs.request?.headers?.[name]);
    }
    case "request.auth.principal":
      return one(attrs.request?.auth?.principal);
    case "request.auth.audiences":
      return attrs.request?.auth?.audiences;
    case "request.auth.presenter":
      return one(attrs.request?.auth?.presenter);
    case "request.auth.claims": {
      const v = claimAt(attrs.request?.auth?.claims, path);
      if (v === undefined || v === null) return undefined;
      if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? x : JSON.stringify(x)));
      return [typeof v === "string" ? v : JSON.stringify(v)];
    }
    default:
      return undefined;
  }
}
