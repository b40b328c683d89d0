import type { KindRegistry, Resource, RuleIssue } from "@meshlet/config";
import { PolicyError } from "../policy-error.js";
import type { Pred } from "./attribute-matchers.js";
import type { AuthorizationAction } from "./authorization-policy.js";
import { type CompiledCel, compileCel } from "./cel/cel-condition.js";
import { celBindings } from "./cel/cel-environment.js";

/**
 * The annotation that carries meshlet's CEL condition on an AuthorizationPolicy. The policy's
 * rules match only when the expression is also true (it is ANDed with every rule). It is an
 * annotation, not a field, because an AuthorizationPolicy stays exactly Istio's schema: a
 * Kubernetes API server with Istio's structural CRD schema prunes unknown fields, so a condition
 * written as a field would silently vanish (and a DENY policy would widen to its rules alone, or
 * an ALLOW one lose its restriction). Annotations are kept as written.
 */
export const CONDITION_ANNOTATION = "authz.meshlet.io/condition";

/** The field path of the condition, as diagnostics print it. */
export const CONDITION_PATH = `metadata.annotations["${CONDITION_ANNOTATION}"]`;

/** The condition of a policy (its annotation), or undefined when it has none. */
export function conditionOf(policy: {
  metadata?: { annotations?: Readonly<Record<string, string>> };
}): string | undefined {
  const annotations = policy?.metadata?.annotations;
  return annotations && typeof annotations === "object" ? annotations[CONDITION_ANNOTATION] : undefined;
}

/**
 * The condition as a predicate for a policy of `action`. A run-time error (a header that is
 * absent, a claim of another type) counts as matched in DENY, AUDIT and CUSTOM policies and as not
 * matched in ALLOW policies: fail closed either way.
 */
export function conditionPred(cel: CompiledCel, action: AuthorizationAction): Pred {
  const onError = action !== "ALLOW";
  return (f) => {
    f.celBindings ??= celBindings(f.attrs);
    const r = cel.evaluate(f.attrs, f.celBindings);
    return typeof r === "boolean" ? r : onError;
  };
}

/**
 * The `@meshlet/config` rule of the condition annotation: a condition that does not parse,
 * type-check against `CEL_ENVIRONMENT` or yield a bool is an error at the annotation
 * (file:line:column when the policy came from a file). The engine compiles the condition with the
 * same `compileCel`, so the two never disagree.
 */
export function conditionRule(resource: Resource): RuleIssue[] {
  const expression = conditionOf(resource);
  if (expression === undefined) return [];
  try {
    compileCel(expression);
    return [];
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    return [
      {
        severity: "error",
        message: e.rawMessage,
        path: ["metadata", "annotations", CONDITION_ANNOTATION],
      },
    ];
  }
}

/**
 * Adds `@meshlet/policy`'s rules to a `@meshlet/config` registry, so whatever validates through
 * it (`meshlet validate`, a `ConfigStore` feeding the engine) refuses what the engine would
 * refuse: today the AuthorizationPolicy condition annotation ({@link CONDITION_ANNOTATION}).
 * @returns the same registry.
 */
export function registerPolicyRules(registry: KindRegistry): KindRegistry {
  return registry.addRules("AuthorizationPolicy", conditionRule);
}
