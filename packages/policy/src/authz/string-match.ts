import { isPathTemplate, pathTemplateProblem } from "@meshlet/config";
import { compilePathTemplate } from "./path-template.js";

/**
 * Istio string matching as its RBAC generator writes it (`StringMatcher`): `*` matches any
 * non-empty value, `*suffix`, `prefix*`, or exact. `ignoreCase` is for hosts.
 */
export function matchString(pattern: string, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (p === "*") return v.length > 0;
  if (p.startsWith("*")) return v.endsWith(p.slice(1));
  if (p.endsWith("*")) return v.startsWith(p.slice(0, -1));
  return v === p;
}

/**
 * Path matching: Istio path templates (`{*}`, `{**}`) as Envoy's `uri_template` matches them,
 * else {@link matchString}. An invalid template matches nothing.
 */
export function matchPath(pattern: string, path: string | undefined): boolean {
  if (path === undefined) return false;
  if (isPathTemplate(pattern)) {
    return pathTemplateProblem(pattern) === undefined && compilePathTemplate(pattern).test(path);
  }
  return matchString(pattern, path);
}

/**
 * Host matching as Istio generates it (`HostMatcher`): case-insensitive exact, prefix or suffix
 * on `:authority`, `*` for presence. A port in the request's host is part of the value
 * (`example.com` does not match `example.com:8080`; write `example.com:*` for that).
 */
export function matchHost(pattern: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  if (pattern === "*") return true;
  return matchString(pattern, host, true);
}
