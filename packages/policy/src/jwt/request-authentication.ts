import type { ObjectMeta, WorkloadSelector } from "../authz/authorization-policy.js";
import { PolicyError } from "../policy-error.js";

/** Where a token is read from: a header, with an optional prefix such as `Bearer `. */
export interface JwtHeader {
  name: string;
  prefix?: string;
}

/** Istio `JWTRule`: one accepted issuer and how to verify and find its tokens. */
export interface JwtRule {
  issuer: string;
  /** When set, the token's `aud` must contain one of these. */
  audiences?: string[];
  /** URL of the issuer's JWKS; fetched, cached and refreshed. */
  jwksUri?: string;
  /** Inline JWKS as a JSON string (Istio's `jwks`). */
  jwks?: string;
  /** Default (when no location is set): `Authorization: Bearer …` and the `access_token` param. */
  fromHeaders?: JwtHeader[];
  fromParams?: string[];
  fromCookies?: string[];
  /** Forward the token upstream (default: Envoy strips it; ext_authz asks to remove the header). */
  forwardOriginalToken?: boolean;
  /** Copy claims into upstream request headers. */
  outputClaimToHeaders?: { header: string; claim: string }[];
}

/** Istio `security.istio.io/v1` RequestAuthentication as a plain object. */
export interface RequestAuthentication {
  apiVersion?: string;
  kind?: "RequestAuthentication";
  metadata: ObjectMeta;
  spec: { selector?: WorkloadSelector; jwtRules?: JwtRule[] };
}

/**
 * Validates a RequestAuthentication.
 * @throws PolicyError `invalid-policy` naming the resource and the field.
 */
export function validateRequestAuthentication(ra: RequestAuthentication): RequestAuthentication {
  const name = `${ra?.metadata?.namespace ?? "default"}/${ra?.metadata?.name ?? "<unnamed>"}`;
  const fail = (path: string, what: string): never => {
    throw new PolicyError("invalid-policy", `RequestAuthentication ${name}: ${path}: ${what}`);
  };
  if (!ra?.metadata?.name) fail("metadata.name", "is required");
  if (!ra.spec || typeof ra.spec !== "object") fail("spec", "is required");
  const issuers = new Set<string>();
  (ra.spec.jwtRules ?? []).forEach((rule, i) => {
    const p = `spec.jwtRules[${i}]`;
    if (!rule?.issuer || typeof rule.issuer !== "string") fail(`${p}.issuer`, "is required");
    if (issuers.has(rule.issuer)) fail(`${p}.issuer`, `"${rule.issuer}" appears twice; merge the rules`);
    issuers.add(rule.issuer);
    if (rule.jwks === undefined && rule.jwksUri === undefined) {
      fail(p, "needs jwks (inline JSON) or jwksUri (OIDC discovery is not supported here)");
    }
    if (rule.jwks !== undefined) {
      try {
        const parsed = JSON.parse(rule.jwks) as { keys?: unknown };
        if (!Array.isArray(parsed.keys)) throw new Error("no keys array");
      } catch (e) {
        fail(`${p}.jwks`, `is not a JWKS JSON document (${(e as Error).message})`);
      }
    }
    if (rule.jwksUri !== undefined) {
      try {
        const u = new URL(rule.jwksUri);
        if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
      } catch {
        fail(`${p}.jwksUri`, `"${rule.jwksUri}" is not an http(s) URL`);
      }
    }
    (rule.fromHeaders ?? []).forEach((h, j) => {
      if (!h?.name) fail(`${p}.fromHeaders[${j}].name`, "is required");
    });
  });
  return ra;
}
