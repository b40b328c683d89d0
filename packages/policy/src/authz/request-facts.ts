import { type Attributes, normalizePrincipal } from "../attributes.js";
import { type ParsedIp, parseIp } from "./ip-match.js";

const UNSET = Symbol("unset");
type Lazy<T> = T | typeof UNSET;

/**
 * The facts compiled matchers read, derived once per check and only when a matcher asks (a
 * request whose first rule fails on the principal never parses an IP). Not cached on the
 * attributes object: callers may reuse and mutate one between checks.
 */
export class RequestFacts {
  readonly attrs: Attributes;
  /** True when the request carries no HTTP attributes: Envoy's network (TCP) RBAC applies. */
  readonly tcp: boolean;
  #principal: Lazy<string | undefined> = UNSET;
  #spiffe: Lazy<string | undefined> = UNSET;
  #srcIp: Lazy<ParsedIp | undefined> = UNSET;
  #remoteIp: Lazy<ParsedIp | undefined> = UNSET;
  #dstIp: Lazy<ParsedIp | undefined> = UNSET;
  #host: Lazy<string | undefined> = UNSET;
  #claims: Lazy<Record<string, unknown> | undefined> = UNSET;
  /** Scratch space for the CEL bindings of this request (built by the first CEL condition). */
  celBindings: unknown;

  constructor(attrs: Attributes) {
    this.attrs = attrs;
    this.tcp = attrs.request === undefined;
  }

  /** The peer principal without `spiffe://` (Istio's `source.principal`). */
  get principal(): string | undefined {
    if (this.#principal === UNSET) {
      const raw = this.attrs.source?.principal;
      this.#principal = raw === undefined || raw === "" ? undefined : normalizePrincipal(raw);
    }
    return this.#principal;
  }

  /** The peer's URI SAN as Envoy's `authenticated.principal_name` sees it (`spiffe://…`). */
  get spiffeUri(): string | undefined {
    if (this.#spiffe === UNSET) {
      const p = this.principal;
      this.#spiffe = p === undefined ? undefined : `spiffe://${p}`;
    }
    return this.#spiffe;
  }

  get sourceIp(): ParsedIp | undefined {
    if (this.#srcIp === UNSET) {
      const ip = this.attrs.source?.ip;
      this.#srcIp = ip === undefined ? undefined : parseIp(ip);
    }
    return this.#srcIp;
  }

  /** Istio's `remote.ip`: the original client, or the direct peer when none is known. */
  get remoteIp(): ParsedIp | undefined {
    if (this.#remoteIp === UNSET) {
      const ip = this.attrs.remote?.ip ?? this.attrs.source?.ip;
      this.#remoteIp = ip === undefined ? undefined : parseIp(ip);
    }
    return this.#remoteIp;
  }

  get destinationIp(): ParsedIp | undefined {
    if (this.#dstIp === UNSET) {
      const ip = this.attrs.destination?.ip;
      this.#dstIp = ip === undefined ? undefined : parseIp(ip);
    }
    return this.#dstIp;
  }

  /** `:authority` in lower case (hosts match case-insensitively). */
  get hostLower(): string | undefined {
    if (this.#host === UNSET) this.#host = this.attrs.request?.host?.toLowerCase();
    return this.#host;
  }

  /**
   * The verified JWT payload, as Envoy's `jwt_authn` filter puts it in dynamic metadata
   * (`payload`); `iss`/`sub` fall back to the two halves of `request.auth.principal` for callers
   * that fill only the principal.
   */
  get claims(): Record<string, unknown> | undefined {
    if (this.#claims === UNSET) {
      const auth = this.attrs.request?.auth;
      if (!auth) this.#claims = undefined;
      else {
        const claims = { ...auth.claims };
        if (claims.iss === undefined || claims.sub === undefined) {
          const slash = auth.principal.lastIndexOf("/");
          if (claims.iss === undefined)
            claims.iss = slash < 0 ? auth.principal : auth.principal.slice(0, slash);
          if (claims.sub === undefined) claims.sub = slash < 0 ? "" : auth.principal.slice(slash + 1);
        }
        if (claims.aud === undefined && auth.audiences.length > 0) claims.aud = auth.audiences;
        if (claims.azp === undefined && auth.presenter !== undefined) claims.azp = auth.presenter;
        this.#claims = claims;
      }
    }
    return this.#claims;
  }

  /** A request header (names are lower case in attributes). */
  header(name: string): string | undefined {
    return this.attrs.request?.headers?.[name];
  }
}
