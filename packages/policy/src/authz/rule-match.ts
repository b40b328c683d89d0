import type { Attributes } from "../attributes.js";
import type { AuthorizationAction, Condition, Operation, Rule, Source } from "./authorization-policy.js";
import { compileRule } from "./compile-rule.js";
import { RequestFacts } from "./request-facts.js";

/** Options of the one-off matchers: the policy's namespace and action, as the engine has them. */
export interface MatchOptions {
  /** Namespace `serviceAccounts` without one default to (default `"default"`). */
  policyNamespace?: string;
  /** The policy's action: for TCP connections it decides whether HTTP-only fields skip the rule (ALLOW) or are dropped. Default ALLOW. */
  action?: AuthorizationAction;
}

/**
 * Whether a request matches one Istio rule (any `from`, any `to`, all `when`), with the engine's
 * semantics. Compiles the rule on every call: the engine compiles once per policy load.
 * @throws PolicyError when the rule does not compile (bad CIDR, unknown key).
 */
export function matchRule(rule: Rule, attrs: Attributes, options: MatchOptions = {}): boolean {
  const compiled = compileRule(rule, {
    where: "rule",
    policyNamespace: options.policyNamespace ?? "default",
    action: options.action ?? "ALLOW",
  });
  const facts = new RequestFacts(attrs);
  const pred = facts.tcp ? compiled.tcp() : compiled.http;
  return pred?.(facts) ?? false;
}

/** Whether a request matches an Istio `Source` (all set fields). */
export function matchSource(source: Source, attrs: Attributes, options: MatchOptions = {}): boolean {
  return matchRule({ from: [{ source }] }, attrs, options);
}

/** Whether a request matches an Istio `Operation` (all set fields). */
export function matchOperation(operation: Operation, attrs: Attributes, options: MatchOptions = {}): boolean {
  return matchRule({ to: [{ operation }] }, attrs, options);
}

/** Whether a request satisfies one `when` condition. */
export function matchCondition(condition: Condition, attrs: Attributes, options: MatchOptions = {}): boolean {
  return matchRule({ when: [condition] }, attrs, options);
}
