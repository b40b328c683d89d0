import { create } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { CidrRangeSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { TypedExtensionConfigSchema } from "@meshlet/api/envoy/config/core/v3/extension_pb";
import {
  type Permission,
  Permission_SetSchema,
  PermissionSchema,
  type Policy,
  PolicySchema,
  type Principal,
  Principal_AuthenticatedSchema,
  Principal_SetSchema,
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
  MetadataMatcher_PathSegmentSchema,
  MetadataMatcherSchema,
} from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import { PathMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/path_pb";
import { RegexMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/regex_pb";
import { type StringMatcher, StringMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import {
  ListMatcherSchema,
  type ValueMatcher,
  ValueMatcherSchema,
} from "@meshlet/api/envoy/type/matcher/v3/value_pb";
import {
  type AuthorizationAction,
  type AuthorizationPolicy,
  type Condition,
  isDryRun,
  type Operation,
  type Rule,
  type Source,
} from "../authz/authorization-policy.js";
import { parseCidr } from "../authz/ip-match.js";
import { appliesTo, type Workload } from "../authz/scope.js";
import { isPathTemplate } from "../authz/string-match.js";
import { PolicyError } from "../policy-error.js";

/** The dynamic-metadata namespace Istio's JWT filter writes `request.auth.*` into. */
export const ISTIO_AUTHN_FILTER = "istio_authn";

/** One generated RBAC filter, in the order Envoy must run it. */
export interface RbacFilter<C> {
  /** `envoy.filters.http.rbac` or `envoy.filters.network.rbac`. */
  name: string;
  /** Which AuthorizationPolicy action this filter enforces. */
  action: AuthorizationAction;
  config: C;
}

/** What {@link toEnvoyRbac} generates for a workload. */
export interface EnvoyRbac {
  /** HTTP filters: AUDIT (LOG), CUSTOM (shadow marker for ext_authz), DENY, ALLOW. */
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

const anyPrincipal = () => create(PrincipalSchema, { identifier: { case: "any", value: true } });
const anyPermission = () => create(PermissionSchema, { rule: { case: "any", value: true } });
const orIds = (ids: Principal[]) =>
  ids.length === 1
    ? (ids[0] as Principal)
    : create(PrincipalSchema, { identifier: { case: "orIds", value: create(Principal_SetSchema, { ids }) } });
const andIds = (ids: Principal[]) =>
  ids.length === 1
    ? (ids[0] as Principal)
    : create(PrincipalSchema, {
        identifier: { case: "andIds", value: create(Principal_SetSchema, { ids }) },
      });
const notId = (id: Principal) => create(PrincipalSchema, { identifier: { case: "notId", value: id } });
const orRules = (rules: Permission[]) =>
  rules.length === 1
    ? (rules[0] as Permission)
    : create(PermissionSchema, { rule: { case: "orRules", value: create(Permission_SetSchema, { rules }) } });
const andRules = (rules: Permission[]) =>
  rules.length === 1
    ? (rules[0] as Permission)
    : create(PermissionSchema, {
        rule: { case: "andRules", value: create(Permission_SetSchema, { rules }) },
      });
const notRule = (rule: Permission) => create(PermissionSchema, { rule: { case: "notRule", value: rule } });

function regex(re: string): StringMatcher {
  return create(StringMatcherSchema, {
    matchPattern: { case: "safeRegex", value: create(RegexMatcherSchema, { regex: re }) },
  });
}

/** Istio string matching as an Envoy `StringMatcher` (`*` presence becomes the regex `.+`). */
export function stringMatcher(
  pattern: string,
  options: { ignoreCase?: boolean; prefix?: string } = {},
): StringMatcher {
  const pre = options.prefix ?? "";
  const ignoreCase = options.ignoreCase ?? false;
  if (pattern === "*") return { ...regex(".+"), ignoreCase: false };
  if (pattern.startsWith("*"))
    return create(StringMatcherSchema, {
      matchPattern: { case: "suffix", value: pattern.slice(1) },
      ignoreCase,
    });
  if (pattern.endsWith("*"))
    return create(StringMatcherSchema, {
      matchPattern: { case: "prefix", value: pre + pattern.slice(0, -1) },
      ignoreCase,
    });
  return create(StringMatcherSchema, { matchPattern: { case: "exact", value: pre + pattern }, ignoreCase });
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function header(name: string, m: StringMatcher): { value: HeaderMatcher } {
  return {
    value: create(HeaderMatcherSchema, { name, headerMatchSpecifier: { case: "stringMatch", value: m } }),
  };
}

function cidr(value: string) {
  const parsed = parseCidr(value);
  if (!parsed) throw new PolicyError("invalid-policy", `"${value}" is not an IP or CIDR`);
  const slash = value.indexOf("/");
  return create(CidrRangeSchema, {
    addressPrefix: slash < 0 ? value : value.slice(0, slash),
    prefixLen: parsed.prefixLen,
  });
}

function authnMetadata(path: string[], value: ValueMatcher) {
  return create(MetadataMatcherSchema, {
    filter: ISTIO_AUTHN_FILTER,
    path: path.map((key) =>
      create(MetadataMatcher_PathSegmentSchema, { segment: { case: "key", value: key } }),
    ),
    value,
  });
}

/** A value that may be a string or a list of strings (claims, audiences): match either shape. */
function stringOrListMatch(m: StringMatcher): ValueMatcher[] {
  const str = create(ValueMatcherSchema, { matchPattern: { case: "stringMatch", value: m } });
  const list = create(ValueMatcherSchema, {
    matchPattern: {
      case: "listMatch",
      value: create(ListMatcherSchema, { matchPattern: { case: "oneOf", value: str } }),
    },
  });
  return [str, list];
}

/** Principal matchers for a principal (`authenticated.principal_name`, with `spiffe://`). */
function principalName(m: StringMatcher): Principal {
  return create(PrincipalSchema, {
    identifier: { case: "authenticated", value: create(Principal_AuthenticatedSchema, { principalName: m }) },
  });
}

function namespaceMatcher(ns: string): StringMatcher {
  // Istio: the namespace is the /ns/<ns>/ segment of the SPIFFE principal.
  if (ns === "*") return regex(".*/ns/[^/]+/.*");
  if (ns.startsWith("*")) return regex(`.*/ns/[^/]*${escapeRe(ns.slice(1))}/.*`);
  if (ns.endsWith("*")) return regex(`.*/ns/${escapeRe(ns.slice(0, -1))}[^/]*/.*`);
  return regex(`.*/ns/${escapeRe(ns)}/.*`);
}

type Field<T> = { values?: string[]; notValues?: string[]; one: (v: string) => T };

function principalField(f: Field<Principal[]>): Principal[] {
  const out: Principal[] = [];
  if (f.values) out.push(orIds(f.values.flatMap(f.one)));
  if (f.notValues) out.push(notId(orIds(f.notValues.flatMap(f.one))));
  return out;
}

function permissionField(f: Field<Permission[]>): Permission[] {
  const out: Permission[] = [];
  if (f.values) out.push(orRules(f.values.flatMap(f.one)));
  if (f.notValues) out.push(notRule(orRules(f.notValues.flatMap(f.one))));
  return out;
}

const HTTP_ONLY_SOURCE: (keyof Source)[] = ["requestPrincipals", "notRequestPrincipals"];
const HTTP_ONLY_OPERATION: (keyof Operation)[] = [
  "hosts",
  "notHosts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
];

function isHttpOnlyCondition(c: Condition): boolean {
  return c.cel !== undefined || c.key.startsWith("request.");
}

const principal = (p: string): Principal[] => [principalName(stringMatcher(p, { prefix: "spiffe://" }))];

function sourcePrincipals(src: Source): Principal[] {
  return [
    ...principalField({ values: src.principals, notValues: src.notPrincipals, one: principal }),
    ...principalField({
      values: src.requestPrincipals,
      notValues: src.notRequestPrincipals,
      one: (p) => [
        create(PrincipalSchema, {
          identifier: {
            case: "metadata",
            value: authnMetadata(
              ["request.auth.principal"],
              create(ValueMatcherSchema, { matchPattern: { case: "stringMatch", value: stringMatcher(p) } }),
            ),
          },
        }),
      ],
    }),
    ...principalField({
      values: src.namespaces,
      notValues: src.notNamespaces,
      one: (n) => [principalName(namespaceMatcher(n))],
    }),
    ...principalField({
      values: src.serviceAccounts,
      notValues: src.notServiceAccounts,
      one: (sa) => {
        const [ns, name] = sa.split("/") as [string, string];
        return [
          principalName(
            create(StringMatcherSchema, { matchPattern: { case: "suffix", value: `/ns/${ns}/sa/${name}` } }),
          ),
        ];
      },
    }),
    ...principalField({
      values: src.ipBlocks,
      notValues: src.notIpBlocks,
      one: (c) => [create(PrincipalSchema, { identifier: { case: "directRemoteIp", value: cidr(c) } })],
    }),
    ...principalField({
      values: src.remoteIpBlocks,
      notValues: src.notRemoteIpBlocks,
      one: (c) => [create(PrincipalSchema, { identifier: { case: "remoteIp", value: cidr(c) } })],
    }),
  ];
}

function hostPermissions(h: string): Permission[] {
  const exact = [
    create(PermissionSchema, {
      rule: { case: "header", ...header(":authority", stringMatcher(h, { ignoreCase: true })) },
    }),
  ];
  // An exact host without port also matches that host with any port.
  if (!h.includes("*") && !h.includes(":")) {
    exact.push(
      create(PermissionSchema, {
        rule: { case: "header", ...header(":authority", stringMatcher(`${h}:*`, { ignoreCase: true })) },
      }),
    );
  }
  return exact;
}

function pathPermission(p: string): Permission[] {
  if (isPathTemplate(p)) {
    // Istio: {*} and {**} become Envoy uri_template's * and **.
    const pathTemplate = p.replaceAll("{**}", "**").replaceAll("{*}", "*");
    return [
      create(PermissionSchema, {
        rule: {
          case: "uriTemplate",
          value: create(TypedExtensionConfigSchema, {
            name: "uri-template",
            typedConfig: anyPack(
              UriTemplateMatchConfigSchema,
              create(UriTemplateMatchConfigSchema, { pathTemplate }),
            ),
          }),
        },
      }),
    ];
  }
  return [
    create(PermissionSchema, {
      rule: {
        case: "urlPath",
        value: create(PathMatcherSchema, { rule: { case: "path", value: stringMatcher(p) } }),
      },
    }),
  ];
}

function operationPermissions(op: Operation): Permission[] {
  return [
    ...permissionField({ values: op.hosts, notValues: op.notHosts, one: hostPermissions }),
    ...permissionField({
      values: op.ports,
      notValues: op.notPorts,
      one: (p) => [create(PermissionSchema, { rule: { case: "destinationPort", value: Number(p) } })],
    }),
    ...permissionField({
      values: op.methods,
      notValues: op.notMethods,
      one: (m) => [
        create(PermissionSchema, { rule: { case: "header", ...header(":method", stringMatcher(m)) } }),
      ],
    }),
    ...permissionField({ values: op.paths, notValues: op.notPaths, one: pathPermission }),
  ];
}

/** Splits `when` conditions into principal-side and permission-side matchers, as Istio does. */
function conditionMatchers(
  c: Condition,
  where: string,
): { principals: Principal[]; permissions: Permission[] } {
  if (c.cel !== undefined) {
    throw new PolicyError(
      "unsupported",
      `${where}: CEL conditions have no Envoy RBAC translation here; enforce them with ExtAuthzServer`,
    );
  }
  const f = { values: c.values, notValues: c.notValues };
  const key = c.key;
  const bracket = /\[([^\]]+)\]/g;
  const names = [...key.matchAll(bracket)].map((m) => m[1] as string);
  const base = key.replace(/\[.*$/, "");
  const meta = (path: string[], list: boolean) => (v: string) =>
    (list
      ? stringOrListMatch(stringMatcher(v))
      : [create(ValueMatcherSchema, { matchPattern: { case: "stringMatch", value: stringMatcher(v) } })]
    ).map((vm) =>
      create(PrincipalSchema, { identifier: { case: "metadata", value: authnMetadata(path, vm) } }),
    );
  switch (base) {
    case "request.headers":
      return {
        principals: principalField({
          ...f,
          one: (v) => [
            create(PrincipalSchema, {
              identifier: { case: "header", ...header(names[0]?.toLowerCase() ?? "", stringMatcher(v)) },
            }),
          ],
        }),
        permissions: [],
      };
    case "source.ip":
      return {
        principals: principalField({
          ...f,
          one: (v) => [create(PrincipalSchema, { identifier: { case: "directRemoteIp", value: cidr(v) } })],
        }),
        permissions: [],
      };
    case "remote.ip":
      return {
        principals: principalField({
          ...f,
          one: (v) => [create(PrincipalSchema, { identifier: { case: "remoteIp", value: cidr(v) } })],
        }),
        permissions: [],
      };
    case "source.namespace":
      return {
        principals: principalField({ ...f, one: (v) => [principalName(namespaceMatcher(v))] }),
        permissions: [],
      };
    case "source.principal":
      return { principals: principalField({ ...f, one: principal }), permissions: [] };
    case "request.auth.principal":
    case "request.auth.presenter":
      return { principals: principalField({ ...f, one: meta([base], false) }), permissions: [] };
    case "request.auth.audiences":
      return { principals: principalField({ ...f, one: meta([base], true) }), permissions: [] };
    case "request.auth.claims":
      return { principals: principalField({ ...f, one: meta([base, ...names], true) }), permissions: [] };
    case "destination.ip":
      return {
        principals: [],
        permissions: permissionField({
          ...f,
          one: (v) => [create(PermissionSchema, { rule: { case: "destinationIp", value: cidr(v) } })],
        }),
      };
    case "destination.port":
      return {
        principals: [],
        permissions: permissionField({
          ...f,
          one: (v) => [create(PermissionSchema, { rule: { case: "destinationPort", value: Number(v) } })],
        }),
      };
    case "connection.sni":
      return {
        principals: [],
        permissions: permissionField({
          ...f,
          one: (v) => [
            create(PermissionSchema, { rule: { case: "requestedServerName", value: stringMatcher(v) } }),
          ],
        }),
      };
    default:
      throw new PolicyError("unsupported", `${where}: condition key "${key}" has no RBAC translation`);
  }
}

/**
 * One Istio rule as one Envoy RBAC policy: permissions = AND(any `to`, permission-side `when`s),
 * principals = AND(any `from`, principal-side `when`s). For TCP (`tcp`), HTTP-only fields are
 * removed (`stripHttp`) or the rule is dropped (returns `undefined`), as Istio does for DENY and ALLOW.
 */
function rulePolicy(rule: Rule, where: string, tcp: "http" | "strip" | "drop"): Policy | undefined {
  const hasHttp =
    (rule.from ?? []).some((f) => HTTP_ONLY_SOURCE.some((k) => f.source[k] !== undefined)) ||
    (rule.to ?? []).some((t) => HTTP_ONLY_OPERATION.some((k) => t.operation[k] !== undefined)) ||
    (rule.when ?? []).some(isHttpOnlyCondition);
  if (tcp === "drop" && hasHttp) return undefined;
  const strip = tcp === "strip";
  const sources = (rule.from ?? []).map((f) => {
    const src = { ...f.source };
    if (strip) for (const k of HTTP_ONLY_SOURCE) delete src[k];
    const ids = sourcePrincipals(src);
    return ids.length === 0 ? anyPrincipal() : andIds(ids);
  });
  const ops = (rule.to ?? []).map((t) => {
    const op = { ...t.operation };
    if (strip) for (const k of HTTP_ONLY_OPERATION) delete op[k];
    const perms = operationPermissions(op);
    return perms.length === 0 ? anyPermission() : andRules(perms);
  });
  const principals: Principal[] = sources.length > 0 ? [orIds(sources)] : [];
  const permissions: Permission[] = ops.length > 0 ? [orRules(ops)] : [];
  (rule.when ?? []).forEach((c, i) => {
    if (strip && isHttpOnlyCondition(c)) return;
    const m = conditionMatchers(c, `${where}.when[${i}]`);
    principals.push(...m.principals);
    permissions.push(...m.permissions);
  });
  return create(PolicySchema, {
    principals: [principals.length === 0 ? anyPrincipal() : andIds(principals)],
    permissions: [permissions.length === 0 ? anyPermission() : andRules(permissions)],
  });
}

/** Istio's RBAC policy name: `ns[<ns>]-policy[<name>]-rule[<i>]`. */
export function rbacPolicyName(policy: AuthorizationPolicy, rule: number): string {
  return `ns[${policy.metadata.namespace ?? "default"}]-policy[${policy.metadata.name}]-rule[${rule}]`;
}

/** Parses the policy and rule back out of an Istio RBAC policy name. */
export function parseRbacPolicyName(name: string): { policy: string; rule: number } | undefined {
  const m = /^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$/.exec(name);
  return m ? { policy: `${m[1]}/${m[2]}`, rule: Number(m[3]) } : undefined;
}

function rbacFor(policies: AuthorizationPolicy[], action: RBAC_Action, tcp: "http" | "strip" | "drop"): RBAC {
  const out: Record<string, Policy> = {};
  for (const p of policies) {
    (p.spec.rules ?? []).forEach((rule, i) => {
      const generated = rulePolicy(
        rule,
        `AuthorizationPolicy ${p.metadata.namespace ?? "default"}/${p.metadata.name}: spec.rules[${i}]`,
        tcp,
      );
      if (generated) out[rbacPolicyName(p, i)] = generated;
    });
  }
  return create(RBACSchema, { action, policies: out });
}

/**
 * Translates AuthorizationPolicies into the Envoy RBAC filter configs Istio would generate for a
 * workload, for in-proxy enforcement:
 * - AUDIT ⇒ an RBAC filter with action LOG;
 * - CUSTOM ⇒ an RBAC filter whose `shadow_rules` (stat prefix `istio_ext_authz_`) mark the
 *   requests the ext_authz filter must check;
 * - DENY ⇒ action DENY; ALLOW ⇒ action ALLOW (no ALLOW policies ⇒ no filter, allow-nothing ⇒ an
 *   ALLOW filter with no policies);
 * - dry-run policies ⇒ `shadow_rules` only (stat prefixes `istio_dry_run_deny_` / `istio_dry_run_allow_`);
 * - principals are `spiffe://` matchers; `request.auth.*` reads Istio's `istio_authn` metadata.
 * Filters are returned in evaluation order (AUDIT, CUSTOM, DENY, ALLOW).
 *
 * @throws PolicyError `unsupported` for CEL conditions (no Envoy RBAC equivalent here).
 */
export function toEnvoyRbac(
  policies: readonly AuthorizationPolicy[],
  options: ToEnvoyRbacOptions = {},
): EnvoyRbac {
  const root = options.rootNamespace ?? "istio-system";
  const scoped = options.workload
    ? policies.filter((p) => appliesTo(p, options.workload as Workload, root))
    : [...policies];
  const by = (action: AuthorizationAction, dry: boolean) =>
    scoped.filter((p) => (p.spec.action ?? "ALLOW") === action && isDryRun(p) === dry);
  const http: RbacFilter<HttpRBAC>[] = [];
  const network: RbacFilter<NetworkRBAC>[] = [];
  const add = (
    action: AuthorizationAction,
    enforced: AuthorizationPolicy[] | undefined,
    shadow: AuthorizationPolicy[] | undefined,
    rbacAction: RBAC_Action,
    shadowPrefix: string,
  ) => {
    const tcp = rbacAction === RBAC_Action.ALLOW ? "drop" : "strip";
    http.push({
      name: "envoy.filters.http.rbac",
      action,
      config: create(HttpRBACSchema, {
        ...(enforced && { rules: rbacFor(enforced, rbacAction, "http") }),
        ...(shadow && {
          shadowRules: rbacFor(shadow, rbacAction, "http"),
          shadowRulesStatPrefix: shadowPrefix,
        }),
      }),
    });
    network.push({
      name: "envoy.filters.network.rbac",
      action,
      config: create(NetworkRBACSchema, {
        statPrefix: "tcp.",
        ...(enforced && { rules: rbacFor(enforced, rbacAction, tcp) }),
        ...(shadow && { shadowRules: rbacFor(shadow, rbacAction, tcp), shadowRulesStatPrefix: shadowPrefix }),
      }),
    });
  };
  const audit = by("AUDIT", false);
  if (audit.length > 0) add("AUDIT", audit, undefined, RBAC_Action.LOG, "");
  const custom = by("CUSTOM", false);
  if (custom.length > 0) add("CUSTOM", undefined, custom, RBAC_Action.DENY, "istio_ext_authz_");
  const deny = by("DENY", false);
  const dryDeny = by("DENY", true);
  if (deny.length > 0 || dryDeny.length > 0) {
    add(
      "DENY",
      deny.length > 0 ? deny : undefined,
      dryDeny.length > 0 ? dryDeny : undefined,
      RBAC_Action.DENY,
      "istio_dry_run_deny_",
    );
  }
  const allow = by("ALLOW", false);
  const dryAllow = by("ALLOW", true);
  if (allow.length > 0 || dryAllow.length > 0) {
    add(
      "ALLOW",
      allow.length > 0 ? allow : undefined,
      dryAllow.length > 0 ? dryAllow : undefined,
      RBAC_Action.ALLOW,
      "istio_dry_run_allow_",
    );
  }
  return { http, network };
}
