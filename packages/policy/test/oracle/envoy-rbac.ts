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
import { UriTemplateMatchConfigSchema } from "@meshlet/api/envoy/extensions/path/match/uri_template/v3/uri_template_match_pb";
import type { MetadataMatcher } from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import type { StringMatcher } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import type { ValueMatcher } from "@meshlet/api/envoy/type/matcher/v3/value_pb";

/**
 * An evaluator of Envoy RBAC configs, written from Envoy's RBAC proto semantics
 * (envoy/config/rbac/v3/rbac.proto: a policy matches when any permission and any principal
 * matches; and/or/not sets; `authenticated.principal_name` against the peer's URI SAN;
 * `direct_remote_ip` the downstream socket, `remote_ip` the trusted client address; header
 * matchers on request headers, `:path` with its query, `url_path` without; metadata matchers
 * on dynamic metadata; `uri_template` per envoy/extensions/path/match/uri_template) and the
 * matcher protos (type/matcher/v3). It is the differential test's oracle: it shares no code with
 * `@meshlet/policy`'s engine or generator, and sees a request only as Envoy would.
 */

/** A request as Envoy's RBAC filters see it. */
export interface EnvoyRequest {
  /** The peer certificate's URI SAN (`spiffe://…`), absent for plaintext. */
  peerUriSan?: string;
  directRemoteIp?: string;
  remoteIp?: string;
  destinationIp?: string;
  destinationPort?: number;
  sni?: string;
  /** Request headers, lower-case names, with `:authority`, `:method`, `:path`; absent for TCP. */
  headers?: Record<string, string>;
  /** Dynamic metadata by filter name. */
  metadata: Record<string, Record<string, unknown>>;
}

const regexes = new Map<string, RegExp>();
function fullMatch(regex: string, value: string): boolean {
  let re = regexes.get(regex);
  if (!re) {
    re = new RegExp(`^(?:${regex})$`, "s");
    regexes.set(regex, re);
  }
  return re.test(value);
}

export function stringMatch(m: StringMatcher | undefined, value: string | undefined): boolean {
  if (!m || value === undefined) return false;
  const low = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  const p = m.matchPattern;
  switch (p.case) {
    case "exact":
      return low(value) === low(p.value);
    case "prefix":
      return low(value).startsWith(low(p.value));
    case "suffix":
      return low(value).endsWith(low(p.value));
    case "contains":
      return low(value).includes(low(p.value));
    case "safeRegex":
      return fullMatch(p.value.regex, value);
    default:
      throw new Error(`oracle: StringMatcher ${String(p.case)} not modelled`);
  }
}

function header(h: HeaderMatcher, req: EnvoyRequest): boolean {
  const v = req.headers?.[h.name.toLowerCase()];
  const s = h.headerMatchSpecifier;
  let matched: boolean;
  switch (s.case) {
    case "presentMatch":
      matched = (v !== undefined) === s.value;
      break;
    case "stringMatch":
      matched = stringMatch(s.value, v);
      break;
    case "safeRegexMatch":
      matched = v !== undefined && fullMatch(s.value.regex, v);
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
      throw new Error(`oracle: HeaderMatcher ${String(s.case)} not modelled`);
  }
  return h.invertMatch ? !matched : matched;
}

function ipBytes(ip: string): number[] | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
    const b = ip.split(".").map(Number);
    return b.every((x) => x <= 255) ? b : undefined;
  }
  if (!ip.includes(":")) return undefined;
  const halves = ip.split("::");
  if (halves.length > 2) return undefined;
  const part = (s: string | undefined) => (s ? s.split(":") : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const groups =
    halves.length === 2 ? [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail] : head;
  if (groups.length !== 8) return undefined;
  return groups.flatMap((g) => {
    const n = Number.parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

function inRange(ip: string | undefined, range: CidrRange | undefined): boolean {
  if (ip === undefined || !range) return false;
  const a = ipBytes(ip);
  const n = ipBytes(range.addressPrefix);
  if (!a || !n || a.length !== n.length) return false;
  let bits = range.prefixLen?.valueOf() ?? a.length * 8;
  for (let i = 0; i < a.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a[i] as number) & mask) !== ((n[i] as number) & mask)) return false;
  }
  return true;
}

function value(m: ValueMatcher | undefined, v: unknown): boolean {
  const p = m?.matchPattern;
  switch (p?.case) {
    case "stringMatch":
      return typeof v === "string" && stringMatch(p.value, v);
    case "presentMatch":
      return (v !== undefined) === p.value;
    case "boolMatch":
      return v === p.value;
    case "nullMatch":
      return v === null;
    case "listMatch":
      return (
        Array.isArray(v) &&
        p.value.matchPattern.case === "oneOf" &&
        v.some((x) => value(p.value.matchPattern.value, x))
      );
    case "orMatch":
      return p.value.valueMatchers.some((x) => value(x, v));
    default:
      throw new Error(`oracle: ValueMatcher ${String(p?.case)} not modelled`);
  }
}

function metadata(m: MetadataMatcher, req: EnvoyRequest): boolean {
  let cur: unknown = req.metadata[m.filter];
  for (const seg of m.path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur) || seg.segment.case !== "key") {
      cur = undefined;
      break;
    }
    cur = (cur as Record<string, unknown>)[seg.segment.value];
  }
  const matched = value(m.value, cur);
  return m.invert ? !matched : matched;
}

/** Envoy's uri_template: `*` is one segment of pchars, `**` any pchars and slashes; full match on the path. */
function uriTemplate(template: string, path: string | undefined): boolean {
  if (path === undefined) return false;
  const pchar = "[A-Za-z0-9\\-._~%!$&'()+,;:@=]";
  let re = "";
  for (let i = 0; i < template.length; ) {
    if (template.startsWith("**", i)) {
      re += `(?:${pchar}|/)*`;
      i += 2;
    } else if (template[i] === "*") {
      re += `${pchar}+`;
      i += 1;
    } else {
      re += (template[i] as string).replace(/[.+?^${}()|[\]\\]/g, "\\$&");
      i += 1;
    }
  }
  return new RegExp(`^${re}$`).test(path);
}

const pathOnly = (req: EnvoyRequest) => req.headers?.[":path"]?.replace(/[?#].*$/, "");

export function principal(p: Principal, req: EnvoyRequest): boolean {
  const id = p.identifier;
  switch (id.case) {
    case "any":
      return id.value;
    case "andIds":
      return id.value.ids.every((x) => principal(x, req));
    case "orIds":
      return id.value.ids.some((x) => principal(x, req));
    case "notId":
      return !principal(id.value, req);
    case "authenticated":
      if (req.peerUriSan === undefined) return false;
      return id.value.principalName === undefined || stringMatch(id.value.principalName, req.peerUriSan);
    case "directRemoteIp":
      return inRange(req.directRemoteIp, id.value);
    case "remoteIp":
      return inRange(req.remoteIp, id.value);
    case "header":
      return header(id.value, req);
    case "metadata":
      return metadata(id.value, req);
    case "urlPath":
      return id.value.rule.case === "path" && stringMatch(id.value.rule.value, pathOnly(req));
    default:
      throw new Error(`oracle: Principal ${String(id.case)} not modelled`);
  }
}

export function permission(p: Permission, req: EnvoyRequest): boolean {
  const r = p.rule;
  switch (r.case) {
    case "any":
      return r.value;
    case "andRules":
      return r.value.rules.every((x) => permission(x, req));
    case "orRules":
      return r.value.rules.some((x) => permission(x, req));
    case "notRule":
      return !permission(r.value, req);
    case "header":
      return header(r.value, req);
    case "urlPath":
      return r.value.rule.case === "path" && stringMatch(r.value.rule.value, pathOnly(req));
    case "destinationIp":
      return inRange(req.destinationIp, r.value);
    case "destinationPort":
      return req.destinationPort === r.value;
    case "requestedServerName":
      return stringMatch(r.value, req.sni);
    case "metadata":
      return metadata(r.value, req);
    case "uriTemplate": {
      const cfg = r.value.typedConfig && anyUnpack(r.value.typedConfig, UriTemplateMatchConfigSchema);
      if (!cfg) throw new Error("oracle: uri_template without its config");
      return uriTemplate(cfg.pathTemplate, pathOnly(req));
    }
    default:
      throw new Error(`oracle: Permission ${String(r.case)} not modelled`);
  }
}

/** The names of the RBAC policies that match, sorted (Envoy keeps policies in an ordered map). */
export function matchingPolicies(rbac: RBAC, req: EnvoyRequest): string[] {
  return Object.keys(rbac.policies)
    .sort()
    .filter((name) => {
      const pol = rbac.policies[name] as Policy;
      return pol.permissions.some((x) => permission(x, req)) && pol.principals.some((x) => principal(x, req));
    });
}

/** What an RBAC engine (rules or shadow rules) decides: allowed, and the policy that decided. */
export function engineDecision(rbac: RBAC, req: EnvoyRequest): { allowed: boolean; policy?: string } {
  const first = matchingPolicies(rbac, req)[0];
  switch (rbac.action) {
    case RBAC_Action.ALLOW:
      return { allowed: first !== undefined, ...(first !== undefined && { policy: first }) };
    case RBAC_Action.DENY:
      return { allowed: first === undefined, ...(first !== undefined && { policy: first }) };
    default:
      // LOG: never denies; the policy says whether the request is logged.
      return { allowed: true, ...(first !== undefined && { policy: first }) };
  }
}
