import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { CidrRange } from "@meshlet/api/envoy/config/core/v3/address_pb";
import {
  type Permission,
  type Policy,
  type Principal,
  type RBAC,
  RBAC_Action,
} from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import type { HeaderMatcher } from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import type { RBAC as HttpRBAC } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import { UriTemplateMatchConfigSchema } from "@meshlet/api/envoy/extensions/path/match/uri_template/v3/uri_template_match_pb";
import type { MetadataMatcher } from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import type { StringMatcher } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import type { ValueMatcher } from "@meshlet/api/envoy/type/matcher/v3/value_pb";
import { type Attributes, normalizePrincipal } from "../attributes.js";
import type { AuthorizationAction } from "../authz/authorization-policy.js";
import { ipInCidr } from "../authz/ip-match.js";
import { compilePathTemplate } from "../authz/string-match.js";
import { PolicyError } from "../policy-error.js";
import { ISTIO_AUTHN_FILTER, type RbacFilter } from "./to-envoy-rbac.js";

/** What Envoy's HTTP RBAC filters decide for one request. */
export interface RbacEvaluation {
  allowed: boolean;
  /** The filter action and RBAC policy name that denied, if one did. */
  deniedBy?: { action: AuthorizationAction; policy?: string };
  /** The first LOG (AUDIT) policy that matched. */
  logged?: string;
  /** Shadow-rule outcomes per stat prefix (dry-run and the CUSTOM marker). */
  shadow: { prefix: string; action: "ALLOW" | "DENY"; allowed: boolean; policy?: string }[];
}

const regexCache = new Map<string, RegExp>();

/** Envoy `StringMatcher` semantics (RE2 regexes are full matches; plain JS regex suffices here). */
export function evalStringMatcher(m: StringMatcher | undefined, value: string | undefined): boolean {
  if (!m || value === undefined) return false;
  const ic = m.ignoreCase;
  const v = ic ? value.toLowerCase() : value;
  const p = m.matchPattern;
  switch (p.case) {
    case "exact":
      return v === (ic ? p.value.toLowerCase() : p.value);
    case "prefix":
      return v.startsWith(ic ? p.value.toLowerCase() : p.value);
    case "suffix":
      return v.endsWith(ic ? p.value.toLowerCase() : p.value);
    case "contains":
      return v.includes(ic ? p.value.toLowerCase() : p.value);
    case "safeRegex": {
      let re = regexCache.get(p.value.regex);
      if (!re) {
        re = new RegExp(`^(?:${p.value.regex})$`);
        regexCache.set(p.value.regex, re);
      }
      return re.test(value);
    }
    default:
      throw new PolicyError(
        "unsupported",
        `StringMatcher ${String(p.case)} is not supported by this evaluator`,
      );
  }
}

function headerValue(attrs: Attributes, name: string): string | undefined {
  const r = attrs.request;
  if (name === ":authority" || name === "host") return r?.host;
  if (name === ":method") return r?.method;
  if (name === ":path") return r?.path === undefined ? undefined : r.query ? `${r.path}?${r.query}` : r.path;
  return r?.headers?.[name.toLowerCase()];
}

function evalHeader(h: HeaderMatcher, attrs: Attributes): boolean {
  const v = headerValue(attrs, h.name);
  const s = h.headerMatchSpecifier;
  let matched: boolean;
  switch (s.case) {
    case "stringMatch":
      matched = evalStringMatcher(s.value, v);
      break;
    case "presentMatch":
      matched = (v !== undefined) === s.value;
      break;
    case "exactMatch":
      matched = v === s.value;
      break;
    case "prefixMatch":
      matched = v?.startsWith(s.value) ?? false;
      break;
    case "suffixMatch":
      matched = v?.endsWith(s.value) ?? false;
      break;
    default:
      throw new PolicyError(
        "unsupported",
        `HeaderMatcher ${String(s.case)} is not supported by this evaluator`,
      );
  }
  return h.invertMatch ? !matched : matched;
}

function cidrString(c: CidrRange): string {
  return c.prefixLen === undefined ? c.addressPrefix : `${c.addressPrefix}/${c.prefixLen}`;
}

function metadataValue(attrs: Attributes, path: string[]): unknown {
  const auth = attrs.request?.auth;
  if (!auth) return undefined;
  const [head, ...rest] = path;
  let cur: unknown;
  if (head === "request.auth.principal") cur = auth.principal;
  else if (head === "request.auth.presenter") cur = auth.presenter;
  else if (head === "request.auth.audiences") cur = auth.audiences;
  else if (head === "request.auth.claims") cur = auth.claims;
  else return undefined;
  for (const k of rest) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function evalValue(m: ValueMatcher | undefined, v: unknown): boolean {
  const p = m?.matchPattern;
  if (!p) return false;
  switch (p.case) {
    case "stringMatch":
      return typeof v === "string" && evalStringMatcher(p.value, v);
    case "presentMatch":
      return (v !== undefined) === p.value;
    case "listMatch":
      return (
        Array.isArray(v) &&
        p.value.matchPattern.case === "oneOf" &&
        v.some((x) => evalValue(p.value.matchPattern.value, x))
      );
    case "orMatch":
      return p.value.valueMatchers.some((x) => evalValue(x, v));
    default:
      throw new PolicyError(
        "unsupported",
        `ValueMatcher ${String(p.case)} is not supported by this evaluator`,
      );
  }
}

function evalMetadata(m: MetadataMatcher, attrs: Attributes): boolean {
  if (m.filter !== ISTIO_AUTHN_FILTER) return m.invert;
  const path = m.path.map((s) => (s.segment.case === "key" ? s.segment.value : ""));
  const matched = evalValue(m.value, metadataValue(attrs, path));
  return m.invert ? !matched : matched;
}

function evalPrincipal(p: Principal, attrs: Attributes): boolean {
  const id = p.identifier;
  switch (id.case) {
    case "any":
      return true;
    case "andIds":
      return id.value.ids.every((x) => evalPrincipal(x, attrs));
    case "orIds":
      return id.value.ids.some((x) => evalPrincipal(x, attrs));
    case "notId":
      return !evalPrincipal(id.value, attrs);
    case "authenticated": {
      // Envoy: the peer certificate's URI SAN; Istio peers carry spiffe:// IDs.
      const principal = attrs.source?.principal;
      if (principal === undefined) return false;
      if (!id.value.principalName) return true;
      return evalStringMatcher(id.value.principalName, `spiffe://${normalizePrincipal(principal)}`);
    }
    case "directRemoteIp":
    case "sourceIp":
      return ipInCidr(attrs.source?.ip, cidrString(id.value));
    case "remoteIp":
      return ipInCidr(attrs.remote?.ip ?? attrs.source?.ip, cidrString(id.value));
    case "header":
      return evalHeader(id.value, attrs);
    case "metadata":
      return evalMetadata(id.value, attrs);
    default:
      throw new PolicyError("unsupported", `Principal ${String(id.case)} is not supported by this evaluator`);
  }
}

function evalPermission(p: Permission, attrs: Attributes): boolean {
  const r = p.rule;
  switch (r.case) {
    case "any":
      return true;
    case "andRules":
      return r.value.rules.every((x) => evalPermission(x, attrs));
    case "orRules":
      return r.value.rules.some((x) => evalPermission(x, attrs));
    case "notRule":
      return !evalPermission(r.value, attrs);
    case "header":
      return evalHeader(r.value, attrs);
    case "urlPath":
      return r.value.rule.case === "path" && evalStringMatcher(r.value.rule.value, attrs.request?.path);
    case "uriTemplate": {
      const any = r.value.typedConfig;
      const cfg = any ? anyUnpack(any, UriTemplateMatchConfigSchema) : undefined;
      if (!cfg) throw new PolicyError("unsupported", "uri_template without UriTemplateMatchConfig");
      const template = cfg.pathTemplate.replaceAll("**", "{**}").replace(/(^|\/)\*(?=\/|$)/g, "$1{*}");
      const path = attrs.request?.path;
      return path !== undefined && compilePathTemplate(template).test(path);
    }
    case "destinationIp":
      return ipInCidr(attrs.destination?.ip, cidrString(r.value));
    case "destinationPort":
      return attrs.destination?.port === r.value;
    case "requestedServerName":
      return evalStringMatcher(r.value, attrs.connection?.sni);
    default:
      throw new PolicyError("unsupported", `Permission ${String(r.case)} is not supported by this evaluator`);
  }
}

function evalPolicy(p: Policy, attrs: Attributes): boolean {
  return (
    p.permissions.some((x) => evalPermission(x, attrs)) && p.principals.some((x) => evalPrincipal(x, attrs))
  );
}

/** The first matching policy name of an RBAC config (names sorted, for a stable answer). */
function firstMatching(rbac: RBAC, attrs: Attributes): string | undefined {
  for (const name of Object.keys(rbac.policies).sort()) {
    if (evalPolicy(rbac.policies[name] as Policy, attrs)) return name;
  }
  return undefined;
}

/**
 * Evaluates generated HTTP RBAC filters for one request the way Envoy runs them in order:
 * an ALLOW filter denies unless a policy matches, a DENY filter denies when one matches, a LOG
 * filter only records, shadow rules are evaluated and reported without enforcement, and the first
 * denial ends the chain (later filters, and their shadow rules, do not run). The
 * CUSTOM marker filter's shadow result tells whether ext_authz would be called; pass `extAuthz`
 * to decide those requests.
 */
export function evaluateRbac(
  filters: readonly RbacFilter<HttpRBAC>[],
  attrs: Attributes,
  extAuthz?: (attrs: Attributes) => boolean,
): RbacEvaluation {
  const out: RbacEvaluation = { allowed: true, shadow: [] };
  for (const f of filters) {
    // Within one filter Envoy runs the shadow engine, then the enforcing one; a denial stops the chain.
    const shadow = f.config.shadowRules;
    if (shadow) {
      const m = firstMatching(shadow, attrs);
      const allow = shadow.action === RBAC_Action.ALLOW;
      out.shadow.push({
        prefix: f.config.shadowRulesStatPrefix,
        action: allow ? "ALLOW" : "DENY",
        allowed: allow ? m !== undefined : m === undefined,
        ...(m !== undefined && { policy: m }),
      });
      if (f.action === "CUSTOM" && m !== undefined && extAuthz && !extAuthz(attrs)) {
        return { ...out, allowed: false, deniedBy: { action: "CUSTOM", policy: m } };
      }
    }
    const rules = f.config.rules;
    if (!rules) continue;
    const m = firstMatching(rules, attrs);
    if (rules.action === RBAC_Action.LOG) {
      if (m !== undefined && out.logged === undefined) out.logged = m;
    } else if (rules.action === RBAC_Action.DENY && m !== undefined) {
      return { ...out, allowed: false, deniedBy: { action: f.action, policy: m } };
    } else if (rules.action === RBAC_Action.ALLOW && m === undefined) {
      return { ...out, allowed: false, deniedBy: { action: f.action } };
    }
  }
  return out;
}
