import { create } from "@bufbuild/protobuf";
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
import type { AuthorizationPolicy } from "@meshlet/config";
import { parseRbacPolicyName, toEnvoyRbac } from "@meshlet/policy";
import type { WorkloadAuthorizationPolicies } from "../push/security-policies.js";
import { legacyHeaderMatcher } from "../translate/route.js";
import type { WarningSink } from "../translate/warnings.js";

// Server-side RBAC for proxyless gRPC (istio/istio pilot/pkg/networking/grpcgen/lds.go
// `buildInboundFilterChain`, `buildRBAC`): a DENY filter named `envoy.filters.http.rbac.DENY`, then
// an ALLOW filter `envoy.filters.http.rbac`, each with `rules` only (gRPC supports ALLOW and DENY,
// gRFC A41; CUSTOM, AUDIT and dry-run policies have no effect there). Policies are keyed
// `<ns>-<policyName>-<ruleIndex>`. The rules themselves come from @meshlet/policy's
// `toEnvoyRbac` (Istio's authz builder with `authenticated.principal_name` principals, what Istio's
// `Generate(forTCP=false, useAuthenticated=true)` gives gRPC), re-keyed to gRPC's names.

/** Filter names Istio's grpcgen uses. */
export const GrpcRbacFilterNames = {
  deny: "envoy.filters.http.rbac.DENY",
  allow: "envoy.filters.http.rbac",
} as const;

/** The RBAC rules of a proxyless server: DENY first, then ALLOW (either may be absent). */
export interface GrpcRbac {
  readonly deny?: RBAC;
  readonly allow?: RBAC;
}

/** gRPC's RBAC policy key (grpcgen `buildRBAC`): `<ns>-<policyName>-<ruleIndex>`. */
export function grpcRbacPolicyName(namespace: string, name: string, rule: number): string {
  return `${namespace}-${name}-${rule}`;
}

const DRY_RUN_ANNOTATION = "istio.io/dry-run";

function isDryRun(p: AuthorizationPolicy): boolean {
  return p.metadata.annotations?.[DRY_RUN_ANNOTATION] === "true";
}

/**
 * The policy with its header matchers in the deprecated form every gRPC client reads (C-core
 * before gRFC A63 NACKs `string_match` in header matchers, in RBAC as in routes).
 */
function withLegacyHeaders(policy: Policy): Policy {
  const permission = (p: Permission): Permission => {
    const r = p.rule;
    switch (r.case) {
      case "andRules":
      case "orRules":
        return create(PermissionSchema, {
          rule: { case: r.case, value: { ...r.value, rules: r.value.rules.map(permission) } },
        });
      case "notRule":
        return create(PermissionSchema, { rule: { case: "notRule", value: permission(r.value) } });
      case "header":
        return create(PermissionSchema, { rule: { case: "header", value: legacyHeaderMatcher(r.value) } });
      default:
        return p;
    }
  };
  const principal = (p: Principal): Principal => {
    const id = p.identifier;
    switch (id.case) {
      case "andIds":
      case "orIds":
        return create(PrincipalSchema, {
          identifier: { case: id.case, value: { ...id.value, ids: id.value.ids.map(principal) } },
        });
      case "notId":
        return create(PrincipalSchema, { identifier: { case: "notId", value: principal(id.value) } });
      case "header":
        return create(PrincipalSchema, {
          identifier: { case: "header", value: legacyHeaderMatcher(id.value) },
        });
      default:
        return p;
    }
  };
  return create(PolicySchema, {
    ...policy,
    permissions: policy.permissions.map(permission),
    principals: policy.principals.map(principal),
  });
}

/** A policy that matches every request (for a DENY policy meshlet cannot translate: fail closed). */
function matchAll(): Policy {
  return create(PolicySchema, {
    permissions: [create(PermissionSchema, { rule: { case: "any", value: true } })],
    principals: [create(PrincipalSchema, { identifier: { case: "any", value: true } })],
  });
}

/**
 * The RBAC rules of one action for a proxyless server. Each policy is translated on its own so
 * that one policy meshlet cannot translate (a CEL condition) fails closed alone: a DENY policy
 * becomes "deny everything", an ALLOW policy allows nothing. An ALLOW filter is present whenever an
 * ALLOW policy applies, even with no rules left (then it allows nothing), as Istio's semantics
 * require; Istio's grpcgen would drop such a filter and allow everything.
 */
function rulesFor(
  policies: readonly AuthorizationPolicy[],
  action: "ALLOW" | "DENY",
  warn: WarningSink,
): RBAC | undefined {
  const enforced = policies.filter((p) => !isDryRun(p));
  if (enforced.length === 0) return undefined;
  const out: Record<string, Policy> = {};
  for (const p of enforced) {
    const ns = p.metadata.namespace;
    try {
      // @meshlet/policy declares its own AuthorizationPolicy shape; config's validated resource is
      // structurally that shape.
      const rbac = toEnvoyRbac([p as unknown as Parameters<typeof toEnvoyRbac>[0][number]]);
      const filter = rbac.http.find((f) => f.action === action);
      for (const [key, policy] of Object.entries(filter?.config.rules?.policies ?? {})) {
        const parsed = parseRbacPolicyName(key);
        const rule = parsed?.rule ?? 0;
        out[grpcRbacPolicyName(ns, p.metadata.name, rule)] = withLegacyHeaders(policy);
      }
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      warn({
        code: "INVALID_CONFIG",
        message: `AuthorizationPolicy ${ns}/${p.metadata.name} cannot be enforced by proxyless gRPC (${reason}); ${
          action === "DENY" ? "it denies every request" : "it allows nothing"
        }`,
        config: { kind: "AuthorizationPolicy", namespace: ns, name: p.metadata.name },
      });
      if (action === "DENY") out[grpcRbacPolicyName(ns, p.metadata.name, 0)] = matchAll();
    }
  }
  return create(RBACSchema, {
    action: action === "DENY" ? RBAC_Action.DENY : RBAC_Action.ALLOW,
    policies: out,
  });
}

/**
 * The server RBAC of a proxyless workload from the AuthorizationPolicies that apply to it. CUSTOM
 * and AUDIT policies, and dry-run ones, are reported as not enforced.
 */
export function grpcRbac(policies: WorkloadAuthorizationPolicies, warn: WarningSink): GrpcRbac {
  for (const p of [...policies.custom, ...policies.audit]) {
    warn({
      code: "UNSUPPORTED_BY_CLIENT",
      message: `AuthorizationPolicy action ${p.spec.action} is not supported by proxyless gRPC (gRFC A41: ALLOW and DENY only); not enforced`,
      config: { kind: "AuthorizationPolicy", namespace: p.metadata.namespace, name: p.metadata.name },
    });
  }
  const deny = rulesFor(policies.deny, "DENY", warn);
  const allow = rulesFor(policies.allow, "ALLOW", warn);
  return { ...(deny !== undefined ? { deny } : {}), ...(allow !== undefined ? { allow } : {}) };
}
