import type { KindRegistry } from "@meshlet/config";
import { configProblems } from "../config-validation.js";
import type { PolicyDiagnostic, RefusalEffect } from "../policy-diagnostic.js";
import { PolicyError } from "../policy-error.js";
import type { Pred } from "./attribute-matchers.js";
import {
  type AuthorizationAction,
  type AuthorizationPolicy,
  isDryRun,
  type Rule,
} from "./authorization-policy.js";
import { compileCel } from "./cel/cel-condition.js";
import { type CompiledRule, compileRule } from "./compile-rule.js";
import { CONDITION_PATH, conditionOf, conditionPred } from "./policy-condition.js";
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

/**
 * A rule ANDed with the policy's condition. The condition reads HTTP attributes, so on a TCP
 * connection it counts as an HTTP-only field does in Istio's generator: an ALLOW rule with it
 * never matches, a DENY, AUDIT or CUSTOM rule applies without it (fail closed both ways).
 */
function withCondition(rule: CompiledRule, condition: Pred, action: AuthorizationAction): CompiledRule {
  const http = rule.http;
  return {
    http: (f) => http(f) && condition(f),
    tcp: () => (action === "ALLOW" ? undefined : rule.tcp()),
    keys: rule.keys,
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

  const problems = configProblems(registry, "AuthorizationPolicy", policy);
  if (problems.length > 0) {
    const text = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join("; ");
    return refuse(new PolicyError("invalid-policy", `AuthorizationPolicy ${id}: ${text}`), problems[0]?.path);
  }
  if (scopeError || !scope || !spec || name === undefined) {
    const e = scopeError ?? new PolicyError("invalid-policy", "no metadata.name or spec");
    return refuse(new PolicyError(e.code, `AuthorizationPolicy ${id}: ${e.rawMessage}`, { cause: e }));
  }
  let condition: Pred | undefined;
  const expression = conditionOf(policy);
  if (expression !== undefined) {
    try {
      condition = conditionPred(compileCel(expression), action);
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      return refuse(
        new PolicyError("invalid-cel", `AuthorizationPolicy ${id}: ${CONDITION_PATH}: ${e.rawMessage}`, {
          cause: e,
        }),
        CONDITION_PATH,
      );
    }
  }
  const rules: CompiledRule[] = [];
  const list: Rule[] = spec.rules ?? [];
  for (let i = 0; i < list.length; i++) {
    const rule = list[i] as Rule;
    try {
      const compiled = compileRule(rule, {
        where: `AuthorizationPolicy ${id}: spec.rules[${i}]`,
        policyNamespace: namespace,
        action,
      });
      rules.push(condition ? withCondition(compiled, condition, action) : compiled);
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
