import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { type CidrRange, CidrRangeSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { TypedExtensionConfigSchema } from "@meshlet/api/envoy/config/core/v3/extension_pb";
import {
  type Permission,
  PermissionSchema,
  type Policy,
  PolicySchema,
  type Principal,
  PrincipalSchema,
  type RBAC,
  RBAC_Action,
  RBACSchema,
} from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import {
  type HeaderMatcher,
  HeaderMatcherSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import {
  type RBAC as HttpRBAC,
  RBACSchema as HttpRBACSchema,
} from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import {
  type RBAC as NetworkRBAC,
  RBACSchema as NetworkRBACSchema,
} from "@meshlet/api/envoy/extensions/filters/network/rbac/v3/rbac_pb";
import { UriTemplateMatchConfigSchema } from "@meshlet/api/envoy/extensions/path/match/uri_template/v3/uri_template_match_pb";
import {
  type MetadataMatcher,
  MetadataMatcher_PathSegmentSchema,
  MetadataMatcherSchema,
} from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import { PathMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/path_pb";
import { RegexMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/regex_pb";
import { type StringMatcher, StringMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import {
  ListMatcherSchema,
  OrMatcherSchema,
  type ValueMatcher,
  ValueMatcherSchema,
} from "@meshlet/api/envoy/type/matcher/v3/value_pb";
import { isPathTemplate } from "@meshlet/config";
import {
  type AuthorizationAction,
  type AuthorizationPolicy,
  type Condition,
  isDryRun,
  policyId,
  type Rule,
} from "../authz/authorization-policy.js";
import { parseCidr } from "../authz/ip-match.js";
import { toEnvoyPathTemplate } from "../authz/path-template.js";
import { CONDITION_PATH, conditionOf } from "../authz/policy-condition.js";
import { appliesTo, type Workload } from "../authz/scope.js";
import { PolicyError } from "../policy-error.js";

// Written from Istio's RBAC generator (istio/istio pilot/pkg/security/authz/builder/builder.go,
// model/model.go, model/generator.go, matcher/*.go) so that the same policy yields the same Envoy
// config: the same nesting, order, matchers and names. Golden tests port Istio's builder testdata.

/** The dynamic-metadata namespace of Envoy's JWT filter, where Istio reads `request.auth.*` (`payload`). */
export const JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn";
/** @deprecated Istio reads JWT claims from {@link JWT_AUTHN_FILTER} since 1.22; kept for callers. */
export const ISTIO_AUTHN_FILTER = "istio_authn";

/** One generated RBAC filter, in the order Envoy must run it. */
export interface RbacFilter<C> {
  /** `envoy.filters.http.rbac` or `envoy.filters.network.rbac`. */
  name: string;
  /** Which AuthorizationPolicy action this filter enforces. */
  action: AuthorizationAction;
  /** For CUSTOM: the provider whose ext_authz filter follows this one. */
  provider?: string;
  config: C;
}

/** What {@link toEnvoyRbac} generates for a workload. */
export interface EnvoyRbac {
  /** HTTP filters: CUSTOM (one shadow-rules marker per provider), AUDIT (LOG), DENY, ALLOW. */
  http: RbacFilter<HttpRBAC>[];
  /** Network (TCP) filters, with HTTP-only fields handled as Istio does. */
  network: RbacFilter<NetworkRBAC>[];
}

/** Options of {@link toEnvoyRbac}. */
export interface ToEnvoyRbacOptions {
  /** Only policies that apply to this workload are translated (all when absent). */
  workload?: Workload;
  /** Default `istio-system`. */
  rootNamespace?: string;
}

const SHADOW_ALLOW = "istio_dry_run_allow_";
const SHADOW_DENY = "istio_dry_run_deny_";
const SHADOW_EXT_AUTHZ = "istio_ext_authz_";
const EXT_AUTHZ_PREFIX = "istio-ext-authz";

// ---- matchers (istio/istio pilot/pkg/security/authz/matcher) ----

function sm(matchPattern: StringMatcher["matchPattern"], ignoreCase = false): StringMatcher {
  return create(StringMatcherSchema, { matchPattern, ignoreCase });
}
const smRegex = (regex: string) => sm({ case: "safeRegex", value: create(RegexMatcherSchema, { regex }) });

/** Istio's `StringMatcherWithPrefix`: `*` → `.+`; `*x` → suffix (or a regex under a prefix); `x*` → prefix. */
export function stringMatcher(v: string, prefix = ""): StringMatcher {
  if (v === "*") return smRegex(".+");
  if (v.startsWith("*")) {
    if (prefix === "") return sm({ case: "suffix", value: v.slice(1) });
    return smRegex(`${prefix}.*${v.slice(1)}`);
  }
  if (v.endsWith("*")) return sm({ case: "prefix", value: prefix + v.slice(0, -1) });
  return sm({ case: "exact", value: prefix + v });
}

function headerMatcher(name: string, v: string, ignoreCase = false): HeaderMatcher {
  if (v === "*")
    return create(HeaderMatcherSchema, { name, headerMatchSpecifier: { case: "presentMatch", value: true } });
  const m = v.startsWith("*")
    ? sm({ case: "suffix", value: v.slice(1) }, ignoreCase)
    : v.endsWith("*")
      ? sm({ case: "prefix", value: v.slice(0, -1) }, ignoreCase)
      : sm({ case: "exact", value: v }, ignoreCase);
  return create(HeaderMatcherSchema, { name, headerMatchSpecifier: { case: "stringMatch", value: m } });
}

/** Go's `regexp.QuoteMeta`. */
const quoteMeta = (s: string) => s.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");

/** Istio's `HeaderMatcherWithRegex`: one element of a comma-separated header value. */
function inlineHeaderMatcher(name: string, v: string): HeaderMatcher {
  if (v === "*")
    return create(HeaderMatcherSchema, { name, headerMatchSpecifier: { case: "presentMatch", value: true } });
  const r = v.startsWith("*")
    ? `.*${quoteMeta(v.slice(1))}`
    : v.endsWith("*")
      ? `${quoteMeta(v.slice(0, -1))}.*`
      : quoteMeta(v);
  return create(HeaderMatcherSchema, {
    name,
    headerMatchSpecifier: {
      case: "safeRegexMatch",
      value: create(RegexMatcherSchema, { regex: `^${r}$|^${r},.*|.*,${r},.*|.*,${r}$` }),
    },
  });
}

function cidrRange(v: string): CidrRange {
  const parsed = parseCidr(v);
  if (!parsed) throw new Error(`invalid CIDR ${v}`);
  const slash = v.indexOf("/");
  return create(CidrRangeSchema, {
    addressPrefix: slash < 0 ? v : v.slice(0, slash),
    prefixLen: parsed.prefixLen,
  });
}

function metadata(filter: string, path: string[], value: ValueMatcher): MetadataMatcher {
  return create(MetadataMatcherSchema, {
    filter,
    path: path.map((key) =>
      create(MetadataMatcher_PathSegmentSchema, { segment: { case: "key", value: key } }),
    ),
    value,
  });
}
const vmString = (m: StringMatcher) =>
  create(ValueMatcherSchema, { matchPattern: { case: "stringMatch", value: m } });
const vmOr = (valueMatchers: ValueMatcher[]) =>
  create(ValueMatcherSchema, {
    matchPattern: { case: "orMatch", value: create(OrMatcherSchema, { valueMatchers }) },
  });
const vmList = (oneOf: ValueMatcher) =>
  create(ValueMatcherSchema, {
    matchPattern: {
      case: "listMatch",
      value: create(ListMatcherSchema, { matchPattern: { case: "oneOf", value: oneOf } }),
    },
  });

/** Istio's `MetadataListValueMatcherForJWTClaims(claims, StringOrMatcher(values))`. */
function jwtClaims(claims: string[], values: readonly string[]): MetadataMatcher {
  const or = () => vmOr(values.map((v) => vmString(stringMatcher(v))));
  return metadata(JWT_AUTHN_FILTER, ["payload", ...claims], vmOr([vmList(or()), or()]));
}

// ---- RBAC building blocks (model/permission.go, model/principal.go) ----

const P = {
  any: () => create(PermissionSchema, { rule: { case: "any", value: true } }),
  and: (rules: Permission[]) => create(PermissionSchema, { rule: { case: "andRules", value: { rules } } }),
  or: (rules: Permission[]) => create(PermissionSchema, { rule: { case: "orRules", value: { rules } } }),
  not: (rule: Permission) => create(PermissionSchema, { rule: { case: "notRule", value: rule } }),
};
const Id = {
  any: () => create(PrincipalSchema, { identifier: { case: "any", value: true } }),
  and: (ids: Principal[]) => create(PrincipalSchema, { identifier: { case: "andIds", value: { ids } } }),
  or: (ids: Principal[]) => create(PrincipalSchema, { identifier: { case: "orIds", value: { ids } } }),
  not: (id: Principal) => create(PrincipalSchema, { identifier: { case: "notId", value: id } }),
  authenticated: (m: StringMatcher) =>
    create(PrincipalSchema, { identifier: { case: "authenticated", value: { principalName: m } } }),
  metadata: (m: MetadataMatcher) => create(PrincipalSchema, { identifier: { case: "metadata", value: m } }),
};

/** A policy that never matches: what Istio generates for a policy without rules. */
const matchNever = () =>
  create(PolicySchema, { permissions: [P.not(P.any())], principals: [Id.not(Id.any())] });

// ---- generators (model/generator.go) ----

class HttpOnly extends Error {}

/** One key's generator: a permission or principal per value, or one for all values (`extended`). */
interface Generator {
  side: "permission" | "principal";
  /** Per value; `undefined` when the value yields nothing. @throws on a value Istio cannot generate. */
  one?(value: string, forTcp: boolean): Permission | Principal;
  /** For all values at once (Istio's extended generators). */
  all?(values: readonly string[], forTcp: boolean): Permission | Principal;
}

function httpOnly(forTcp: boolean, key: string) {
  if (forTcp) throw new HttpOnly(`"${key}" is HTTP only`);
}

const srcIp: Generator = {
  side: "principal",
  one: (v) => create(PrincipalSchema, { identifier: { case: "directRemoteIp", value: cidrRange(v) } }),
};
const remoteIp: Generator = {
  side: "principal",
  one: (v) => create(PrincipalSchema, { identifier: { case: "remoteIp", value: cidrRange(v) } }),
};
const srcNamespace: Generator = {
  side: "principal",
  one: (v) => Id.authenticated(smRegex(`.*/ns/${v.replaceAll("*", ".*")}/.*`)),
};
const srcPrincipal: Generator = {
  side: "principal",
  one: (v) => Id.authenticated(stringMatcher(v, "spiffe://")),
};
const srcServiceAccount = (policyNamespace: string): Generator => ({
  side: "principal",
  one: (v) => {
    const slash = v.indexOf("/");
    const [ns, sa] = slash < 0 ? [policyNamespace, v] : [v.slice(0, slash), v.slice(slash + 1)];
    return Id.authenticated(smRegex(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`));
  },
});
const destIp: Generator = {
  side: "permission",
  one: (v) => create(PermissionSchema, { rule: { case: "destinationIp", value: cidrRange(v) } }),
};
function portOf(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`invalid port ${v}`);
  return Number(v);
}
const destPort: Generator = {
  side: "permission",
  one: (v) => create(PermissionSchema, { rule: { case: "destinationPort", value: portOf(v) } }),
};
const connSni: Generator = {
  side: "permission",
  one: (v) => create(PermissionSchema, { rule: { case: "requestedServerName", value: stringMatcher(v) } }),
};
const host: Generator = {
  side: "permission",
  one: (v, tcp) => {
    httpOnly(tcp, "hosts");
    return create(PermissionSchema, {
      rule: { case: "header", value: headerMatcher(":authority", v, v !== "*") },
    });
  },
};
const method: Generator = {
  side: "permission",
  one: (v, tcp) => {
    httpOnly(tcp, "methods");
    return create(PermissionSchema, { rule: { case: "header", value: headerMatcher(":method", v) } });
  },
};
const path: Generator = {
  side: "permission",
  one: (v, tcp) => {
    httpOnly(tcp, "paths");
    if (isPathTemplate(v)) {
      return create(PermissionSchema, {
        rule: {
          case: "uriTemplate",
          value: create(TypedExtensionConfigSchema, {
            name: "uri-template",
            typedConfig: anyPack(
              UriTemplateMatchConfigSchema,
              create(UriTemplateMatchConfigSchema, { pathTemplate: toEnvoyPathTemplate(v) }),
            ),
          }),
        },
      });
    }
    return create(PermissionSchema, {
      rule: {
        case: "urlPath",
        value: create(PathMatcherSchema, { rule: { case: "path", value: stringMatcher(v) } }),
      },
    });
  },
};
const requestHeader = (name: string): Generator => ({
  side: "principal",
  one: (v, tcp) => {
    httpOnly(tcp, "request.headers");
    return create(PrincipalSchema, { identifier: { case: "header", value: headerMatcher(name, v) } });
  },
});
const inlineHeader = (name: string): Generator => ({
  side: "principal",
  one: (v, tcp) => {
    httpOnly(tcp, "request.experimental.inline.headers");
    return create(PrincipalSchema, { identifier: { case: "header", value: inlineHeaderMatcher(name, v) } });
  },
});
const anyNonEmpty = () => smRegex(".+");
const jwtClaim = (claim: string, m: StringMatcher) =>
  Id.metadata(metadata(JWT_AUTHN_FILTER, ["payload", claim], vmString(m)));
/** `<iss>/<sub>` split at the last `/`, each half matched against the JWT's claim (requestPrincipalGenerator). */
const requestPrincipal: Generator = {
  side: "principal",
  all: (values, tcp) => {
    httpOnly(tcp, "request.auth.principal");
    const or = values.map((value) => {
      const idx = value.lastIndexOf("/");
      const found = idx >= 0;
      const iss = found ? value.slice(0, idx) : value;
      const sub = found ? value.slice(idx + 1) : "";
      let mi: StringMatcher;
      let ms: StringMatcher;
      if (value === "*") {
        mi = anyNonEmpty();
        ms = anyNonEmpty();
      } else if (value.startsWith("*")) {
        if (found) {
          mi = iss === "*" ? anyNonEmpty() : sm({ case: "suffix", value: iss.slice(1) });
          ms = sm({ case: "exact", value: sub });
        } else {
          mi = anyNonEmpty();
          ms = sm({ case: "suffix", value: value.slice(1) });
        }
      } else if (value.endsWith("*")) {
        if (found) {
          mi = sm({ case: "exact", value: iss });
          ms = sub === "*" ? anyNonEmpty() : sm({ case: "prefix", value: sub.slice(0, -1) });
        } else {
          mi = sm({ case: "prefix", value: value.slice(0, -1) });
          ms = anyNonEmpty();
        }
      } else {
        ms = sm({ case: "exact", value: sub });
        mi = sm({ case: "exact", value: iss });
      }
      return Id.and([jwtClaim("iss", mi), jwtClaim("sub", ms)]);
    });
    return or.length === 1 ? (or[0] as Principal) : Id.or(or);
  },
};
const claimList = (claims: string[], key: string): Generator => ({
  side: "principal",
  all: (values, tcp) => {
    httpOnly(tcp, key);
    return Id.metadata(jwtClaims(claims, values));
  },
});
const envoyFilter = (key: string): Generator => ({
  side: "permission",
  all: (values) => {
    const m = /^experimental\.(.*)\[(.*)\]$/.exec(key);
    if (!m) throw new Error(`invalid key: ${key}`);
    const matchers = values.map((v) =>
      v.startsWith("[") && v.endsWith("]")
        ? vmList(vmString(stringMatcher(v.slice(1, -1))))
        : vmString(stringMatcher(v)),
    );
    return create(PermissionSchema, {
      rule: { case: "metadata", value: metadata(m[1] as string, [m[2] as string], vmOr(matchers)) },
    });
  },
});

function bracketName(key: string, base: string): string {
  const m = /^\[(.+)\]$/.exec(key.slice(base.length));
  if (!m) throw new Error(`bad key (${key}): should have format a[b]`);
  return m[1] as string;
}

/** Istio's `model.New` key dispatch; throws for keys Istio does not know (the rule is skipped). */
function conditionGenerator(key: string, policyNamespace: string): Generator {
  switch (key) {
    case "destination.ip":
      return destIp;
    case "destination.port":
      return destPort;
    case "connection.sni":
      return connSni;
    case "source.ip":
      return srcIp;
    case "remote.ip":
      return remoteIp;
    case "source.namespace":
      return srcNamespace;
    case "source.serviceAccount":
      return srcServiceAccount(policyNamespace);
    case "source.principal":
      return srcPrincipal;
    case "request.auth.principal":
      return requestPrincipal;
    case "request.auth.audiences":
      return claimList(["aud"], key);
    case "request.auth.presenter":
      return claimList(["azp"], key);
  }
  if (key.startsWith("experimental.envoy.filters.")) return envoyFilter(key);
  if (key.startsWith("request.headers")) return requestHeader(bracketName(key, "request.headers"));
  if (key.startsWith("request.experimental.inline.headers")) {
    return inlineHeader(bracketName(key, "request.experimental.inline.headers"));
  }
  if (key.startsWith("request.auth.claims")) {
    const rest = key.slice("request.auth.claims".length);
    const names = [...rest.matchAll(/\[([^\][]+)\]/g)].map((x) => x[1] as string);
    if (names.length === 0) throw new Error(`bad key (${key}): should have format a[b]`);
    return claimList(names, key);
  }
  throw new Error(`unknown attribute ${key}`);
}

// ---- the model (model/model.go) ----

interface ModelRule {
  g: Generator;
  values: readonly string[];
  notValues: readonly string[];
}

class SkipRule extends Error {}

/** Istio's `rule.permission`/`rule.principal` with `checkError`: ALLOW errors skip the rule, others drop the value. */
function generate(r: ModelRule, forTcp: boolean, action: RBAC_Action): (Permission | Principal)[] {
  const check = (e: unknown) => {
    if (action === RBAC_Action.ALLOW) throw new SkipRule((e as Error).message);
  };
  const or = r.g.side === "permission" ? (x: Permission[]) => P.or(x) : (x: Principal[]) => Id.or(x);
  const not = r.g.side === "permission" ? (x: Permission) => P.not(x) : (x: Principal) => Id.not(x);
  const out: (Permission | Principal)[] = [];
  for (const [list, negate] of [
    [r.values, false],
    [r.notValues, true],
  ] as const) {
    if (list.length === 0) continue;
    if (r.g.all) {
      try {
        const p = r.g.all(list, forTcp);
        out.push(negate ? not(p as never) : p);
      } catch (e) {
        check(e);
      }
      continue;
    }
    const items: (Permission | Principal)[] = [];
    for (const v of list) {
      try {
        items.push((r.g.one as NonNullable<Generator["one"]>)(v, forTcp));
      } catch (e) {
        check(e);
      }
    }
    if (items.length > 0) {
      const o = or(items as never[]);
      out.push(negate ? not(o as never) : o);
    }
  }
  return out;
}

/**
 * One Istio rule as one Envoy RBAC policy (`Model.Generate`): a permission per `to` (or one), a
 * principal per `from` (or one), each an AND of the fields in Istio's order, with the `when`
 * conditions of each side appended to every one of them.
 * @returns undefined when Istio skips the rule (an unknown key, or an ALLOW rule it cannot generate).
 */
function rulePolicy(
  rule: Rule,
  policyNamespace: string,
  forTcp: boolean,
  action: RBAC_Action,
): Policy | undefined {
  const basePermission: ModelRule[] = [];
  const basePrincipal: ModelRule[] = [];
  try {
    (rule.when ?? []).forEach((c: Condition) => {
      const g = conditionGenerator(c.key, policyNamespace);
      const mr = { g, values: c.values ?? [], notValues: c.notValues ?? [] };
      if (mr.values.length === 0 && mr.notValues.length === 0) return;
      (g.side === "permission" ? basePermission : basePrincipal).push(mr);
    });
  } catch (e) {
    if (e instanceof PolicyError) throw e;
    return undefined; // Istio: "skipped invalid rule"
  }
  const field = (g: Generator, values?: readonly string[], notValues?: readonly string[]) =>
    (values?.length ?? 0) + (notValues?.length ?? 0) > 0
      ? [{ g, values: values ?? [], notValues: notValues ?? [] }]
      : [];
  const principals: ModelRule[][] = (rule.from ?? []).map(({ source: s = {} }) => [
    ...field(srcPrincipal, s.principals, s.notPrincipals),
    ...field(requestPrincipal, s.requestPrincipals, s.notRequestPrincipals),
    ...field(srcServiceAccount(policyNamespace), s.serviceAccounts, s.notServiceAccounts),
    ...field(srcNamespace, s.namespaces, s.notNamespaces),
    ...field(remoteIp, s.remoteIpBlocks, s.notRemoteIpBlocks),
    ...field(srcIp, s.ipBlocks, s.notIpBlocks),
    ...basePrincipal,
  ]);
  if (principals.length === 0) principals.push(basePrincipal);
  const permissions: ModelRule[][] = (rule.to ?? []).map(({ operation: o = {} }) => [
    ...field(host, o.hosts, o.notHosts),
    ...field(method, o.methods, o.notMethods),
    ...field(path, o.paths, o.notPaths),
    ...field(destPort, o.ports, o.notPorts),
    ...basePermission,
  ]);
  if (permissions.length === 0) permissions.push(basePermission);
  try {
    return create(PolicySchema, {
      permissions: permissions.map((list) => {
        const and = list.flatMap((r) => generate(r, forTcp, action)) as Permission[];
        return P.and(and.length === 0 ? [P.any()] : and);
      }),
      principals: principals.map((list) => {
        const and = list.flatMap((r) => generate(r, forTcp, action)) as Principal[];
        return Id.and(and.length === 0 ? [Id.any()] : and);
      }),
    });
  } catch (e) {
    if (e instanceof SkipRule) return undefined;
    throw e;
  }
}

/** Istio's RBAC policy name: `ns[<ns>]-policy[<name>]-rule[<i>]` (CUSTOM: `istio-ext-authz-<provider>-` first). */
export function rbacPolicyName(policy: AuthorizationPolicy, rule: number, provider?: string): string {
  const prefix = provider === undefined ? "" : `${EXT_AUTHZ_PREFIX}-${provider}-`;
  return `${prefix}ns[${policy.metadata.namespace || "default"}]-policy[${policy.metadata.name}]-rule[${rule}]`;
}

/** Parses the policy and rule back out of an Istio RBAC policy name. */
export function parseRbacPolicyName(
  name: string,
): { policy: string; rule: number; provider?: string } | undefined {
  const m = /^(?:istio-ext-authz-(.*)-)?ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$/.exec(name);
  if (!m) return undefined;
  return { policy: `${m[2]}/${m[3]}`, rule: Number(m[4]), ...(m[1] !== undefined && { provider: m[1] }) };
}

/** Istio's `Builder.build`: the enforced and the dry-run (shadow) RBAC of one action's policies. */
function build(
  policies: readonly AuthorizationPolicy[],
  action: RBAC_Action,
  forTcp: boolean,
  provider?: string,
): { rules?: RBAC; shadow?: RBAC } {
  const rules = create(RBACSchema, { action, policies: {} });
  const shadow = create(RBACSchema, { action, policies: {} });
  let enforce = false;
  let dry = false;
  for (const p of policies) {
    const target = isDryRun(p) ? shadow : rules;
    if (target === shadow) dry = true;
    else enforce = true;
    const ns = p.metadata.namespace || "default";
    const list = p.spec.rules ?? [];
    list.forEach((rule, i) => {
      if (!rule) return;
      const generated = rulePolicy(rule, ns, forTcp, action);
      if (generated) target.policies[rbacPolicyName(p, i, provider)] = generated;
    });
    if (list.length === 0) target.policies[rbacPolicyName(p, 0, provider)] = matchNever();
  }
  return { ...(enforce && { rules }), ...(dry && { shadow }) };
}

/** Istio's `shadowRuleStatPrefix`: note that no shadow rules reads as ALLOW (the proto default). */
function shadowPrefix(shadow: RBAC | undefined): string {
  const action = shadow?.action ?? RBAC_Action.ALLOW;
  return action === RBAC_Action.ALLOW ? SHADOW_ALLOW : action === RBAC_Action.DENY ? SHADOW_DENY : "";
}

/**
 * Translates AuthorizationPolicies into the Envoy RBAC filter configs Istio generates for a
 * workload, for in-proxy enforcement, in the order Istio puts them in the HTTP filter chain:
 * - CUSTOM ⇒ per provider (sorted), an RBAC filter whose `shadow_rules` (stat prefix
 *   `istio_ext_authz_`, policy names `istio-ext-authz-<provider>-…`) mark the requests the
 *   provider's ext_authz filter must check (dry-run CUSTOM policies go in `rules`, as Istio does);
 * - AUDIT ⇒ action LOG; DENY; ALLOW (no ALLOW policies ⇒ no ALLOW filter);
 * - dry-run policies ⇒ `shadow_rules` (`istio_dry_run_deny_` / `istio_dry_run_allow_`);
 * - a policy without rules ⇒ one policy that never matches (`rule[0]`).
 * Principals are `spiffe://` matchers, `request.auth.*` reads the `jwt_authn` filter's `payload`,
 * path templates become `uri_template`. For TCP, rules with HTTP-only fields are skipped from
 * ALLOW and lose those fields in DENY/AUDIT/CUSTOM; values Istio cannot generate are handled the
 * same way; rules with keys Istio does not know are skipped.
 *
 * @throws PolicyError `unsupported` for a policy (that applies to the workload) with a CEL condition
 *   (`authz.meshlet.io/condition`): Envoy RBAC has no equivalent, and no translation of it fails
 *   closed for both ALLOW and DENY.
 */
export function toEnvoyRbac(
  policies: readonly AuthorizationPolicy[],
  options: ToEnvoyRbacOptions = {},
): EnvoyRbac {
  const root = options.rootNamespace ?? "istio-system";
  const scoped = options.workload
    ? policies.filter((p) => appliesTo(p, options.workload as Workload, root))
    : [...policies];
  for (const p of scoped) {
    // Envoy's RBAC filter has no CEL: dropping the condition would widen an ALLOW policy (fail
    // open) and generating the rules without it would not mean what the policy says. Refused, so
    // the caller decides (enforce the policy with ExtAuthzServer, or remove the condition).
    if (conditionOf(p) !== undefined) {
      throw new PolicyError(
        "unsupported",
        `AuthorizationPolicy ${policyId(p)}: ${CONDITION_PATH}: a CEL condition has no Envoy RBAC form, so this policy cannot be enforced in the proxy; enforce it with ExtAuthzServer (the engine evaluates conditions) or remove the annotation`,
      );
    }
  }
  const of = (action: AuthorizationAction) => scoped.filter((p) => (p.spec.action ?? "ALLOW") === action);
  const http: RbacFilter<HttpRBAC>[] = [];
  const network: RbacFilter<NetworkRBAC>[] = [];

  const custom = of("CUSTOM");
  const providers = [...new Set(custom.map((p) => p.spec.provider?.name ?? ""))].sort();
  for (const provider of providers) {
    const mine = custom.filter((p) => (p.spec.provider?.name ?? "") === provider);
    for (const forTcp of [false, true]) {
      const built = build(mine, RBAC_Action.DENY, forTcp, provider);
      const shadowRules = built.rules ?? create(RBACSchema, { action: RBAC_Action.DENY, policies: {} });
      const fields = {
        shadowRules,
        shadowRulesStatPrefix: SHADOW_EXT_AUTHZ,
        ...(built.shadow && Object.keys(built.shadow.policies).length > 0 && { rules: built.shadow }),
      };
      if (forTcp) {
        network.push({
          name: "envoy.filters.network.rbac",
          action: "CUSTOM",
          provider,
          config: create(NetworkRBACSchema, { ...fields, statPrefix: "tcp." }),
        });
      } else {
        http.push({
          name: "envoy.filters.http.rbac",
          action: "CUSTOM",
          provider,
          config: create(HttpRBACSchema, fields),
        });
      }
    }
  }
  const add = (action: AuthorizationAction, rbacAction: RBAC_Action) => {
    const list = of(action);
    if (list.length === 0) return;
    for (const forTcp of [false, true]) {
      const { rules, shadow } = build(list, rbacAction, forTcp);
      const fields = {
        ...(rules && { rules }),
        ...(shadow && { shadowRules: shadow }),
        shadowRulesStatPrefix: shadowPrefix(shadow),
      };
      if (forTcp)
        network.push({
          name: "envoy.filters.network.rbac",
          action,
          config: create(NetworkRBACSchema, { ...fields, statPrefix: "tcp." }),
        });
      else http.push({ name: "envoy.filters.http.rbac", action, config: create(HttpRBACSchema, fields) });
    }
  };
  add("AUDIT", RBAC_Action.LOG);
  add("DENY", RBAC_Action.DENY);
  add("ALLOW", RBAC_Action.ALLOW);
  return { http, network };
}
