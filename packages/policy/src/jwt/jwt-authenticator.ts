import {
  createLocalJWKSet,
  decodeJwt,
  errors,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  jwtVerify,
} from "jose";
import type { Attributes, RequestAuth } from "../attributes.js";
import type { Clock } from "../clock.js";
import type { JwksCache } from "./jwks-cache.js";
import type { JwtRule } from "./request-authentication.js";

/** The result of authenticating one request's JWTs. */
export type JwtResult =
  | { status: "none" }
  | {
      status: "valid";
      auth: RequestAuth;
      /** Headers that carried the token, to strip upstream unless `forwardOriginalToken`. */
      removeHeaders: string[];
      /** Headers from `outputClaimToHeaders`. */
      addHeaders: Record<string, string>;
    }
  | { status: "invalid"; issuer?: string; reason: string };

interface FoundToken {
  token: string;
  header?: string;
}

const DEFAULT_HEADERS = [{ name: "authorization", prefix: "Bearer " }];
const DEFAULT_PARAMS = ["access_token"];

function cookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

// Base64url characters and the dot: where Envoy's extractor starts the token after a prefix.
const JWT_CHARS = /[A-Za-z0-9\-_.]/;

/**
 * Finds tokens in a rule's locations as Envoy's jwt_authn extractor does (envoyproxy/envoy
 * source/extensions/filters/http/jwt_authn/extractor.cc): Istio's defaults (`Authorization:
 * Bearer`, `access_token`) when the rule lists no location at all; a header's value prefix found
 * case-sensitively anywhere in the value, the token starting at the next base64url character.
 */
function extract(rule: JwtRule, attrs: Attributes): FoundToken[] {
  const headers = attrs.request?.headers ?? {};
  const custom =
    (rule.fromHeaders?.length ?? 0) + (rule.fromParams?.length ?? 0) + (rule.fromCookies?.length ?? 0) > 0;
  const found: FoundToken[] = [];
  for (const h of custom ? (rule.fromHeaders ?? []) : DEFAULT_HEADERS) {
    const name = h.name.toLowerCase();
    const v = headers[name];
    if (v === undefined) continue;
    const prefix = h.prefix ?? "";
    let token = v;
    if (prefix !== "") {
      const at = v.indexOf(prefix);
      if (at < 0) continue;
      const rest = v.slice(at + prefix.length);
      const start = rest.search(JWT_CHARS);
      token = start < 0 ? v : rest.slice(start);
    }
    found.push({ token, header: name });
  }
  const params = custom ? (rule.fromParams ?? []) : DEFAULT_PARAMS;
  if (params.length > 0 && attrs.request?.query) {
    const q = new URLSearchParams(attrs.request.query);
    for (const p of params) {
      const v = q.get(p);
      if (v) found.push({ token: v });
    }
  }
  if (rule.fromCookies?.length) {
    const jar = cookies(headers.cookie);
    for (const c of rule.fromCookies) {
      const v = jar.get(c);
      if (v) found.push({ token: v });
    }
  }
  return found;
}

/**
 * The headers the rules fill from a verified token (`outputClaimToHeaders`,
 * `outputPayloadToHeader`). Envoy removes them from every request before verifying
 * (extractor.cc `sanitizeHeaders`): a value the client sent under such a name must never reach
 * the workload as if it came from a token.
 */
export function headersToSanitize(rules: readonly JwtRule[]): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    for (const o of r.outputClaimToHeaders ?? []) out.add(o.header.toLowerCase());
    if (r.outputPayloadToHeader) out.add(r.outputPayloadToHeader.toLowerCase());
  }
  return [...out];
}

function claimString(payload: JWTPayload, path: string): string | undefined {
  let cur: unknown = payload;
  for (const p of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  if (cur === undefined || cur === null) return undefined;
  if (Array.isArray(cur)) return cur.join(",");
  return typeof cur === "string" ? cur : JSON.stringify(cur);
}

/**
 * Verifies a request's JWTs against the RequestAuthentication rules that apply to its workload,
 * with Istio's outcome rules: no token ⇒ no identity (`none`); any token that fails verification
 * (bad signature, expired, wrong audience, unknown issuer) ⇒ `invalid`; otherwise `valid` with
 * `request.auth.*` filled from the claims (`principal` = `<iss>/<sub>`).
 */
export class JwtAuthenticator {
  readonly #inline = new Map<string, ReturnType<typeof createLocalJWKSet>>();

  constructor(
    private readonly jwks: JwksCache,
    private readonly clock: Clock,
  ) {}

  async authenticate(rules: readonly JwtRule[], attrs: Attributes): Promise<JwtResult> {
    if (rules.length === 0) return { status: "none" };
    const tokens: { found: FoundToken; rule: JwtRule }[] = [];
    for (const rule of rules) for (const found of extract(rule, attrs)) tokens.push({ found, rule });
    if (tokens.length === 0) return { status: "none" };
    let first: JwtResult | undefined;
    const removeHeaders = new Set<string>();
    const addHeaders: Record<string, string> = {};
    const seen = new Set<string>();
    for (const { found } of tokens) {
      if (seen.has(found.token)) continue;
      seen.add(found.token);
      let iss: string | undefined;
      try {
        iss = decodeJwt(found.token).iss;
      } catch {
        return { status: "invalid", reason: "token is not a JWT" };
      }
      // The token is verified by the rule for its issuer, and only if found in that rule's
      // locations; a rule without an issuer takes tokens of every issuer (Envoy's
      // JwtIssuerChecker), after the rules that name the token's issuer.
      const inLocations = (r: JwtRule) => extract(r, attrs).some((f) => f.token === found.token);
      const rule =
        rules.find((r) => !!r.issuer && r.issuer === iss && inLocations(r)) ??
        rules.find((r) => !r.issuer && inLocations(r));
      if (!rule)
        return {
          status: "invalid",
          ...(iss !== undefined && { issuer: iss }),
          reason: `issuer ${iss ?? "<none>"} is not accepted here`,
        };
      const verified = await this.#verify(rule, found.token);
      if (typeof verified === "string")
        return { status: "invalid", ...(iss !== undefined && { issuer: iss }), reason: verified };
      if (found.header && !rule.forwardOriginalToken) removeHeaders.add(found.header);
      for (const o of rule.outputClaimToHeaders ?? []) {
        const v = claimString(verified, o.claim);
        if (v !== undefined) addHeaders[o.header.toLowerCase()] = v;
      }
      // Envoy's forward_payload_header: the token's own payload segment (base64url, unpadded).
      if (rule.outputPayloadToHeader)
        addHeaders[rule.outputPayloadToHeader.toLowerCase()] = found.token.split(".")[1] ?? "";
      if (!first) {
        const aud =
          verified.aud === undefined ? [] : Array.isArray(verified.aud) ? verified.aud : [verified.aud];
        first = {
          status: "valid",
          auth: {
            principal: `${verified.iss ?? ""}/${verified.sub ?? ""}`,
            audiences: aud,
            ...(typeof verified.azp === "string" && { presenter: verified.azp }),
            claims: { ...verified },
          },
          removeHeaders: [],
          addHeaders: {},
        };
      }
    }
    if (first?.status !== "valid") return { status: "none" };
    return { ...first, removeHeaders: [...removeHeaders], addHeaders };
  }

  /** Verifies one token; returns the payload or why it failed. */
  async #verify(rule: JwtRule, token: string): Promise<JWTPayload | string> {
    const options = {
      // No issuer in the rule: the token's issuer is not checked (Envoy's JwtProvider.issuer).
      ...(rule.issuer && { issuer: rule.issuer }),
      ...(rule.audiences?.length && { audience: rule.audiences }),
      currentDate: new Date(this.clock.now()),
      // Envoy's JwtProvider.clock_skew_seconds default (Istio does not set it): 60 s.
      clockTolerance: 60,
    };
    try {
      if (rule.jwks !== undefined) {
        let keys = this.#inline.get(rule.jwks);
        if (!keys) {
          // Istio's jwk.Parse takes a key set (`keys`) or a single key (`kty`), as does config.
          const parsed = JSON.parse(rule.jwks) as JSONWebKeySet | JWK;
          keys = createLocalJWKSet("keys" in parsed ? parsed : { keys: [parsed] });
          this.#inline.set(rule.jwks, keys);
        }
        return (await jwtVerify(token, keys, options)).payload;
      }
      const uri = rule.jwksUri as string;
      try {
        return (await jwtVerify(token, await this.jwks.get(uri), options)).payload;
      } catch (e) {
        // A key rotation: the issuer signs with a kid we have not fetched yet.
        if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
        return (await jwtVerify(token, await this.jwks.get(uri, true), options)).payload;
      }
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }
}

/** Whether a request carries a token in Istio's default locations (`Authorization: Bearer`, `access_token`). */
export function carriesToken(attrs: Attributes): boolean {
  return extract({ issuer: "" }, attrs).length > 0;
}
