import type { JsonValue } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Permission, Policy, Principal, RBAC } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import { RBAC_Action } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import { UriTemplateMatchConfigSchema } from "@meshlet/api/envoy/extensions/path/match/uri_template/v3/uri_template_match_pb";
import type { MetadataMatcher } from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import type { ValueMatcher } from "@meshlet/api/envoy/type/matcher/v3/value_pb";
import { type Headers, inCidr, matchHeader, matchString } from "./matchers.js";

// Envoy's RBAC engine, evaluated from the RBAC protos as Envoy's docs define it
// (envoyproxy/envoy api/envoy/config/rbac/v3/rbac.proto): a policy matches when at least one of
// its permissions and at least one of its principals match; ALLOW admits a request some policy
// matches, DENY refuses it, LOG never refuses. Written for explain; it shares no code with
// @meshlet/policy's generator or engine, so it checks what the generator produced.

/** What RBAC can see of a request or connection. */
export interface RbacRequest {
  /** Request headers, lower-case names, with `:authority`, `:method`, `:path` (absent for TCP). */
  readonly headers?: Headers;
  /** The request path without its query (`url_path`). */
  readonly path?: string;
  /** The peer's authenticated identity (URI SAN of its certificate), when mTLS authenticated it. */
  readonly principal?: string;
  /** The downstream's address (the direct peer) and the original client (`remote_ip`). */
  readonly sourceIp?: string;
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort?: number;
  readonly requestedServerName?: string;
  /** Dynamic metadata by filter (`envoy.filters.http.jwt_authn` → `{ payload: claims }`). */
  readonly metadata?: Readonly<Record<string, JsonValue>>;
}

/** The outcome of one RBAC config. */
export interface RbacOutcome {
  readonly allowed: boolean;
  /** The first policy (by name) that matched, when one did. */
  readonly matchedPolicy?: string;
  readonly action: "ALLOW" | "DENY" | "LOG";
}

/** Evaluates an RBAC rule set (`envoy.config.rbac.v3.RBAC`) for a request. */
export function evaluateRbac(rules: RBAC | undefined, req: RbacRequest): RbacOutcome {
  if (rules === undefined) return { allowed: true, action: "ALLOW" };
  const action =
    rules.action === RBAC_Action.DENY ? "DENY" : rules.action === RBAC_Action.LOG ? "LOG" : "ALLOW";
  let matched: string | undefined;
  for (const name of Object.keys(rules.policies).sort()) {
    if (policyMatches(rules.policies[name] as Policy, req)) {
      matched = name;
      break;
    }
  }
  const allowed =
    action === "ALLOW" ? matched !== undefined : action === "DENY" ? matched === undefined : true;
  return { allowed, action, ...(matched !== undefined ? { matchedPolicy: matched } : {}) };
}

function policyMatches(p: Policy, req: RbacRequest): boolean {
  return (
    p.permissions.some((x) => permissionMatches(x, req)) && p.principals.some((x) => principalMatches(x, req))
  );
}

function permissionMatches(p: Permission, req: RbacRequest): boolean {
  const r = p.rule;
  switch (r.case) {
    case "any":
      return r.value;
    case "andRules":
      return r.value.rules.every((x) => permissionMatches(x, req));
    case "orRules":
      return r.value.rules.some((x) => permissionMatches(x, req));
    case "notRule":
      return !permissionMatches(r.value, req);
    case "header":
      return req.headers !== undefined && matchHeader(r.value, req.headers);
    case "urlPath":
      return (
        req.path !== undefined && r.value.rule.case === "path" && matchString(r.value.rule.value, req.path)
      );
    case "destinationIp":
      return (
        req.destinationIp !== undefined &&
        inCidr(req.destinationIp, r.value.addressPrefix, r.value.prefixLen ?? 32)
      );
    case "destinationPort":
      return req.destinationPort === r.value;
    case "destinationPortRange":
      return (
        req.destinationPort !== undefined &&
        req.destinationPort >= r.value.start &&
        req.destinationPort < r.value.end
      );
    case "metadata":
      return metadataMatches(r.value, req);
    case "requestedServerName":
      return req.requestedServerName !== undefined && matchString(r.value, req.requestedServerName);
    case "uriTemplate": {
      const cfg =
        r.value.typedConfig === undefined
          ? undefined
          : anyUnpack(r.value.typedConfig, UriTemplateMatchConfigSchema);
      return cfg !== undefined && req.path !== undefined && uriTemplateMatches(cfg.pathTemplate, req.path);
    }
    default:
      return false;
  }
}

function principalMatches(p: Principal, req: RbacRequest): boolean {
  const id = p.identifier;
  switch (id.case) {
    case "any":
      return id.value;
    case "andIds":
      return id.value.ids.every((x) => principalMatches(x, req));
    case "orIds":
      return id.value.ids.some((x) => principalMatches(x, req));
    case "notId":
      return !principalMatches(id.value, req);
    case "authenticated":
      // Envoy: without `principal_name` any authenticated peer matches; a plaintext peer never does.
      if (req.principal === undefined) return false;
      return id.value.principalName === undefined || matchString(id.value.principalName, req.principal);
    case "sourceIp":
    case "directRemoteIp":
      return (
        req.sourceIp !== undefined && inCidr(req.sourceIp, id.value.addressPrefix, id.value.prefixLen ?? 32)
      );
    case "remoteIp": {
      const ip = req.remoteIp ?? req.sourceIp;
      return ip !== undefined && inCidr(ip, id.value.addressPrefix, id.value.prefixLen ?? 32);
    }
    case "header":
      return req.headers !== undefined && matchHeader(id.value, req.headers);
    case "urlPath":
      return (
        req.path !== undefined && id.value.rule.case === "path" && matchString(id.value.rule.value, req.path)
      );
    case "metadata":
      return metadataMatches(id.value, req);
    default:
      return false;
  }
}

function metadataMatches(m: MetadataMatcher, req: RbacRequest): boolean {
  let value: JsonValue | undefined = req.metadata?.[m.filter];
  for (const seg of m.path) {
    if (seg.segment.case !== "key" || value === null || typeof value !== "object" || Array.isArray(value)) {
      value = undefined;
      break;
    }
    value = (value as Record<string, JsonValue>)[seg.segment.value];
  }
  const result = m.value !== undefined && valueMatches(m.value, value);
  return m.invert ? !result : result;
}

function valueMatches(m: ValueMatcher, v: JsonValue | undefined): boolean {
  const p = m.matchPattern;
  switch (p.case) {
    case "presentMatch":
      return p.value === (v !== undefined);
    case "nullMatch":
      return v === null;
    case "boolMatch":
      return v === p.value;
    case "stringMatch":
      return typeof v === "string" && matchString(p.value, v);
    case "doubleMatch": {
      if (typeof v !== "number") return false;
      const d = p.value.matchPattern;
      if (d.case === "exact") return v === d.value;
      if (d.case === "range") return v >= d.value.start && v < d.value.end;
      return false;
    }
    case "listMatch":
      return (
        Array.isArray(v) &&
        p.value.matchPattern.case === "oneOf" &&
        v.some((x) => valueMatches((p.value.matchPattern as { value: ValueMatcher }).value, x))
      );
    case "orMatch":
      return p.value.valueMatchers.some((x) => valueMatches(x, v));
    default:
      return false;
  }
}

/**
 * Envoy's URI template matching (extensions/path/match/uri_template): `{*}` one path segment of
 * pchars, `{**}` the rest of the path (zero or more segments); literals match themselves.
 */
export function uriTemplateMatches(template: string, path: string): boolean {
  let re = "";
  for (const part of template.split(/(\{\*\*\}|\{\*\})/)) {
    if (part === "{**}") re += "[^?#]*";
    else if (part === "{*}") re += "[^/?#]+";
    else re += part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`).test(path);
}
