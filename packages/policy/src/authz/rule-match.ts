import {
  type Attributes,
  attributeValues,
  namespaceOfPrincipal,
  normalizePrincipal,
  serviceAccountOfPrincipal,
} from "../attributes.js";
import type { Condition, Operation, Rule, Source } from "./authorization-policy.js";
import { compileCel } from "./cel-condition.js";
import { ipInCidr } from "./ip-match.js";
import { matchHost, matchPath, matchString } from "./string-match.js";

/**
 * Request facts the matchers need, derived once per check instead of once per policy. Not cached
 * on the attributes object: callers may reuse and mutate one between checks.
 */
export interface RequestView {
  principal: string | undefined;
  namespace: string | undefined;
  serviceAccount: string | undefined;
  requestPrincipal: string | undefined;
  ip: string | undefined;
  remoteIp: string | undefined;
  host: string | undefined;
  method: string | undefined;
  path: string | undefined;
  port: number | undefined;
}

/** Derives the {@link RequestView} of a request. */
export function requestView(attrs: Attributes): RequestView {
  const raw = attrs.source?.principal;
  const principal = raw === undefined ? undefined : normalizePrincipal(raw);
  return {
    principal,
    namespace: attrs.source?.namespace ?? namespaceOfPrincipal(principal),
    serviceAccount: serviceAccountOfPrincipal(principal),
    requestPrincipal: attrs.request?.auth?.principal,
    ip: attrs.source?.ip,
    remoteIp: attrs.remote?.ip ?? attrs.source?.ip,
    host: attrs.request?.host,
    method: attrs.request?.method,
    path: attrs.request?.path,
    port: attrs.destination?.port,
  };
}

type Kind = "string" | "exact" | "cidr" | "host" | "port" | "path";

function one(kind: Kind, pattern: string, value: string | number | undefined): boolean {
  if (value === undefined) return false;
  switch (kind) {
    case "string":
      return matchString(pattern, value as string);
    case "exact":
      return pattern === value;
    case "cidr":
      return ipInCidr(value as string, pattern);
    case "host":
      return matchHost(pattern, value as string);
    case "port":
      return Number(pattern) === value;
    case "path":
      return matchPath(pattern, value as string);
  }
}

function anyOf(kind: Kind, patterns: string[], value: string | number | undefined): boolean {
  for (const p of patterns) if (one(kind, p, value)) return true;
  return false;
}

/** `values` match when any matches; `notValues` when none matches; absent = match. */
function field(
  values: string[] | undefined,
  notValues: string[] | undefined,
  kind: Kind,
  value: string | number | undefined,
): boolean {
  if (values !== undefined && !anyOf(kind, values, value)) return false;
  if (notValues !== undefined && anyOf(kind, notValues, value)) return false;
  return true;
}

/** Whether a request matches an Istio `Source` (all set fields must match). */
export function matchSource(src: Source, attrs: Attributes, v: RequestView = requestView(attrs)): boolean {
  return (
    field(src.principals, src.notPrincipals, "string", v.principal) &&
    field(src.requestPrincipals, src.notRequestPrincipals, "string", v.requestPrincipal) &&
    field(src.namespaces, src.notNamespaces, "string", v.namespace) &&
    field(src.serviceAccounts, src.notServiceAccounts, "exact", v.serviceAccount) &&
    field(src.ipBlocks, src.notIpBlocks, "cidr", v.ip) &&
    field(src.remoteIpBlocks, src.notRemoteIpBlocks, "cidr", v.remoteIp)
  );
}

/** Whether a request matches an Istio `Operation` (all set fields must match). */
export function matchOperation(
  op: Operation,
  attrs: Attributes,
  v: RequestView = requestView(attrs),
): boolean {
  return (
    field(op.hosts, op.notHosts, "host", v.host) &&
    field(op.ports, op.notPorts, "port", v.port) &&
    field(op.methods, op.notMethods, "string", v.method) &&
    field(op.paths, op.notPaths, "path", v.path)
  );
}

/** Whether a request satisfies one `when` condition. */
export function matchCondition(cond: Condition, attrs: Attributes): boolean {
  if (cond.cel !== undefined) return compileCel(cond.cel)(attrs);
  const actual = attributeValues(attrs, cond.key);
  const kind: Kind = cond.key.endsWith(".ip") ? "cidr" : cond.key === "destination.port" ? "port" : "string";
  const matches = (patterns: string[]) =>
    actual?.some((value) => anyOf(kind, patterns, kind === "port" ? Number(value) : value)) ?? false;
  if (cond.values !== undefined && !matches(cond.values)) return false;
  if (cond.notValues !== undefined && matches(cond.notValues)) return false;
  return true;
}

/** Istio rule semantics: any `from`, any `to`, all `when`; an absent list always matches. */
export function matchRule(rule: Rule, attrs: Attributes, view: RequestView = requestView(attrs)): boolean {
  const from = rule.from;
  if (from && from.length > 0) {
    let hit = false;
    for (const f of from)
      if (matchSource(f.source, attrs, view)) {
        hit = true;
        break;
      }
    if (!hit) return false;
  }
  const to = rule.to;
  if (to && to.length > 0) {
    let hit = false;
    for (const t of to)
      if (matchOperation(t.operation, attrs, view)) {
        hit = true;
        break;
      }
    if (!hit) return false;
  }
  if (rule.when) {
    for (const c of rule.when) if (!matchCondition(c, attrs)) return false;
  }
  return true;
}
