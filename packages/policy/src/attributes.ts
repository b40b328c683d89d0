import { isIP } from "node:net";
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
  /**
   * The original client (Istio's `remote.ip`): from `x-forwarded-for` only when a number of
   * trusted hops is configured, else the direct peer.
   */
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

function setSocket(out: { ip?: string; port?: number }, address: Address | undefined): void {
  if (address?.address.case !== "socketAddress") return;
  const s = address.address.value;
  if (s.address) out.ip = s.address;
  if (s.portSpecifier.case === "portValue") out.port = s.portSpecifier.value;
}

/**
 * The `context_extensions` keys the mesh sets in Envoy's ext_authz configuration
 * (`ExtAuthzPerRoute.check_settings.context_extensions` on the inbound routes of each workload) to
 * tell the authorization server which workload a request is for:
 * - `meshlet.io/namespace`: the workload's namespace;
 * - `meshlet.io/labels`: its labels, as a JSON object of strings (`{"app":"httpbin"}`).
 * They can be trusted because they come from Envoy's configuration, which the control plane
 * writes: a client of the workload cannot set them (unlike headers). Without them the workload is
 * unknown and the request is denied.
 */
export const CONTEXT_EXTENSION_NAMESPACE = "meshlet.io/namespace";
/** See {@link CONTEXT_EXTENSION_NAMESPACE}. */
export const CONTEXT_EXTENSION_LABELS = "meshlet.io/labels";

/** Options of {@link attributesFromCheckRequest}. */
export interface CheckRequestAttributesOptions {
  /**
   * How many proxies in front of Envoy are trusted to append to `x-forwarded-for`, as Envoy's
   * `xff_num_trusted_hops`. Unset (the default): forwarded-address headers are ignored and
   * `remote.ip` is the direct peer. Set to N: `remote.ip` is the (N+1)th address from the right of
   * the `x-forwarded-for` Envoy forwards (the address a trusted hop appended; Envoy with
   * `use_remote_address` has appended the direct peer before ext_authz runs), or the direct peer
   * when the header has fewer addresses. `x-envoy-external-address` is never read: Envoy leaves a
   * client's value in place on internal requests.
   */
  xffNumTrustedHops?: number;
}

/** Envoy's trusted client address from `x-forwarded-for` (envoy docs, config/http/conn_man/headers). */
function trustedClientAddress(xff: string | undefined, hops: number): string | undefined {
  if (xff === undefined) return undefined;
  const list = xff.split(",").map((s) => s.trim());
  const at = list.length - 1 - hops;
  if (at < 0) return undefined;
  const ip = list[at] as string;
  return isIP(ip) ? ip : undefined;
}

/** Parsed label extensions by their text: a workload sends the same one on every request. */
const labelCache = new Map<string, Readonly<Record<string, string>>>();

function contextLabels(raw: string): Record<string, string> {
  const cached = labelCache.get(raw);
  if (cached) return { ...cached };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (
    parsed === null ||
    typeof parsed !== "object" ||
    Array.isArray(parsed) ||
    !Object.values(parsed as object).every((v) => typeof v === "string")
  ) {
    throw new PolicyError(
      "missing-workload",
      `context extension ${CONTEXT_EXTENSION_LABELS} must be a JSON object of strings, got ${JSON.stringify(raw.slice(0, 200))}`,
    );
  }
  if (labelCache.size >= 1024) labelCache.clear();
  labelCache.set(raw, Object.freeze({ ...(parsed as Record<string, string>) }));
  return { ...(parsed as Record<string, string>) };
}

/**
 * Builds {@link Attributes} from an Envoy ext_authz `CheckRequest`, trusting only what Envoy
 * itself asserts:
 * - `source.*` from the downstream connection (address, and the principal of a verified peer
 *   certificate, without `spiffe://`); `destination.ip`/`port`/`principal` from Envoy's own side;
 * - the workload (`destination.namespace`, `destination.labels`) from the context extensions
 *   {@link CONTEXT_EXTENSION_NAMESPACE} and {@link CONTEXT_EXTENSION_LABELS} only, left unset
 *   when absent (the engine then denies);
 * - `remote.ip` per {@link CheckRequestAttributesOptions.xffNumTrustedHops};
 * - `request.path` without the query string; `request.auth` never (only JWT verification sets it).
 *
 * @throws PolicyError `invalid-attributes` when the request has no attributes at all;
 *   `missing-workload` when the labels extension is not a JSON object of strings.
 */
export function attributesFromCheckRequest(
  req: CheckRequest,
  options: CheckRequestAttributesOptions = {},
): Attributes {
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
    const source: NonNullable<Attributes["source"]> = {};
    if (src.principal) {
      source.principal = normalizePrincipal(src.principal);
      const ns = namespaceOfPrincipal(source.principal);
      if (ns !== undefined) source.namespace = ns;
    }
    setSocket(source, src.address);
    attrs.source = source;
  }
  const dst = ctx.destination;
  const ext = ctx.contextExtensions;
  const destination: NonNullable<Attributes["destination"]> = {};
  if (dst?.principal) destination.principal = normalizePrincipal(dst.principal);
  setSocket(destination, dst?.address);
  const namespace = ext[CONTEXT_EXTENSION_NAMESPACE];
  if (namespace !== undefined && namespace !== "") destination.namespace = namespace;
  const labelsRaw = ext[CONTEXT_EXTENSION_LABELS];
  if (labelsRaw !== undefined) destination.labels = contextLabels(labelsRaw);
  attrs.destination = destination;
  const http = ctx.request?.http;
  let xff: string | undefined;
  if (http) {
    const headers: Record<string, string> = {};
    for (const k in http.headers) headers[k.toLowerCase()] = http.headers[k] as string;
    const map = http.headerMap?.headers;
    if (map && map.length > 0) {
      const decoder = new TextDecoder();
      for (const h of map) {
        const v = h.value || decoder.decode(h.rawValue);
        const k = h.key.toLowerCase();
        headers[k] = headers[k] === undefined ? v : `${headers[k]},${v}`;
      }
    }
    const request: NonNullable<Attributes["request"]> = { headers };
    if (http.method) request.method = http.method;
    const host = http.host || headers[":authority"] || headers.host;
    if (host) request.host = host;
    const q = http.path.indexOf("?");
    const path = q < 0 ? http.path : http.path.slice(0, q);
    if (path) request.path = path;
    const query = http.query || (q < 0 ? "" : http.path.slice(q + 1));
    if (query) request.query = query;
    if (http.scheme) request.scheme = http.scheme;
    if (http.protocol) request.protocol = http.protocol;
    if (http.id) request.id = http.id;
    attrs.request = request;
    xff = headers["x-forwarded-for"];
  }
  const hops = options.xffNumTrustedHops;
  const remote =
    hops !== undefined && Number.isInteger(hops) && hops >= 0 ? trustedClientAddress(xff, hops) : undefined;
  const direct = attrs.source?.ip;
  if (remote !== undefined || direct !== undefined) attrs.remote = { ip: (remote ?? direct) as string };
  if (ctx.tlsSession?.sni) attrs.connection = { sni: ctx.tlsSession.sni };
  return attrs;
}

/** Reads one claim by a path of names (`request.auth.claims[a][b]`). */
export function claimAt(claims: Record<string, unknown> | undefined, path: readonly string[]): unknown {
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
