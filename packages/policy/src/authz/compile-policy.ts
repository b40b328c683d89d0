import type { KindRegistry } from "@meshlet/config";
import { configProblems } from "../config-validation.js";
import type { PolicyDiagnostic, RefusalEffect } from "../policy-diagnostic.js";
import { PolicyError } from "../policy-error.js";
import {
  type AuthorizationAction,
  type AuthorizationPolicy,
  isDryRun,
  type Rule,
} from "./authorization-policy.js";
import { type CompiledRule, compileRule } from "./compile-rule.js";
import { identify, type PolicyScope } from "./scope.js";

/** An AuthorizationPolicy ready to evaluate: its scope resolved, every rule compiled. */
export interface CompiledPolicy {
  /** `<namespace>/<name>`. */
  readonly id: string;
  /** Position in the list it was loaded from: evaluation order among policies of one action. */
  readonly order: number;
  readonly action: AuthorizationAction;
  readonly dryRun: boolean;
  /** The CUSTOM provider (a registered CheckAdapter's name). */
  readonly provider?: string;
  readonly scope: PolicyScope;
  readonly rules: readonly CompiledRule[];
  /** Set when the policy was refused but its scope is known: it then has its fail-closed effect. */
  readonly refused?: PolicyDiagnostic;
}

const ACTIONS = new Set(["ALLOW", "DENY", "AUDIT", "CUSTOM"]);

function effectOf(action: string, dryRun: boolean): RefusalEffect {
  if (dryRun) return "not-applied";
  if (action === "ALLOW") return "allow-nothing";
  if (action === "AUDIT") return "not-applied";
  // DENY, CUSTOM, and an action that is not one of the four: deny.
  return "deny-all";
}

/** The policy as `@meshlet/config` validates it: meshlet's CEL conditions are checked separately. */
function withoutCel(p: AuthorizationPolicy): AuthorizationPolicy {
  const rules = p.spec?.rules;
  if (!Array.isArray(rules)) return p;
  return {
    ...p,
    spec: {
      ...p.spec,
      rules: rules.map((r) =>
        r && Array.isArray(r.when) ? { ...r, when: r.when.filter((c) => c?.cel === undefined) } : r,
      ),
    },
  };
}

/**
 * Validates (with `@meshlet/config`) and compiles one AuthorizationPolicy. Never throws: a policy
 * that cannot be used comes back as a diagnostic, with `compiled` still set (and `refused`) when its
 * workloads are known, so its fail-closed effect applies there.
 */
export function compileAuthorizationPolicy(
  policy: AuthorizationPolicy,
  order: number,
  registry: KindRegistry,
): { compiled?: CompiledPolicy; diagnostic?: PolicyDiagnostic } {
  const { name, namespace, id, spec, scope, scopeError } = identify(policy);
  const meta = policy && typeof policy === "object" ? policy.metadata : undefined;
  const rawAction = spec?.action ?? "ALLOW";
  const action = (ACTIONS.has(rawAction) ? rawAction : "DENY") as AuthorizationAction;
  const dryRun = meta ? isDryRun({ metadata: meta }) : false;
  const refuse = (error: PolicyError, path?: string) => {
    const effect = scope ? effectOf(rawAction, dryRun) : "not-applied";
    const diagnostic: PolicyDiagnostic = {
      kind: "AuthorizationPolicy",
      policy: id,
      ...(path !== undefined && { path }),
      message: error.rawMessage,
      effect,
      error,
    };
    if (!scope || effect === "not-applied") return { diagnostic };
    const compiled: CompiledPolicy = {
      id,
      order,
      action,
      dryRun,
      ...(action === "CUSTOM" &&
        typeof spec?.provider?.name === "string" && { provider: spec.provider.name }),
      scope,
      rules: [],
      refused: diagnostic,
    };
    return { compiled, diagnostic };
  };

  const problems = configProblems(registry, "AuthorizationPolicy", withoutCel(policy));
  if (problems.length > 0) {
    const text = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join("; ");
    return refuse(new PolicyError("invalid-policy", `AuthorizationPolicy ${id}: ${text}`), problems[0]?.path);
  }
  if (scopeError || !scope || !spec || name === undefined) {
    const e = scopeError ?? new PolicyError("invalid-policy", "no metadata.name or spec");
    return refuse(new PolicyError(e.code, `AuthorizationPolicy ${id}: ${e.rawMessage}`, { cause: e }));
  }
  const rules: CompiledRule[] = [];
  const list: Rule[] = spec.rules ?? [];
  for (let i = 0; i < list.length; i++) {
    const rule = list[i] as Rule;
    for (const [j, c] of (rule.when ?? []).entries()) {
      if (c.cel !== undefined && c.key !== undefined) {
        return refuse(
          new PolicyError(
            "invalid-policy",
            `AuthorizationPolicy ${id}: spec.rules[${i}].when[${j}]: a condition has either key (with values/notValues) or cel, not both`,
          ),
          `spec.rules[${i}].when[${j}]`,
        );
      }
    }
    try {
      rules.push(
        compileRule(rule, {
          where: `AuthorizationPolicy ${id}: spec.rules[${i}]`,
          policyNamespace: namespace,
          action,
        }),
      );
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      const path = /: (spec\.rules\[[^:]*?): /.exec(e.rawMessage)?.[1];
      return refuse(e, path);
    }
  }
  return {
    compiled: {
      id,
      order,
      action,
      dryRun,
      ...(action === "CUSTOM" && spec.provider && { provider: spec.provider.name }),
      scope,
      rules,
    },
  };
}
