import type {
  ObjectMeta as ConfigObjectMeta,
  AuthorizationPolicy as IstioAuthorizationPolicy,
} from "@meshlet/config";

// One model per resource: the shape of an AuthorizationPolicy is `@meshlet/config`'s (Istio's
// published schema), nothing added. meshlet's CEL condition is an annotation
// (`authz.meshlet.io/condition`, see policy-condition.ts), not a field. This file only names the
// parts for the engine.

type IstioSpec = NonNullable<IstioAuthorizationPolicy["spec"]>;
type IstioRule = NonNullable<NonNullable<IstioSpec["rules"]>[number]>;

/** Istio `WorkloadSelector` (from `@meshlet/config`). */
export type WorkloadSelector = NonNullable<IstioSpec["selector"]>;
/** Istio `PolicyTargetReference` (from `@meshlet/config`). */
export type PolicyTargetReference = NonNullable<IstioSpec["targetRef"]>;
/** Istio `Source`: who sends the request (from `@meshlet/config`). */
export type Source = NonNullable<NonNullable<NonNullable<IstioRule["from"]>[number]>["source"]>;
/** Istio `Operation`: what the request does (from `@meshlet/config`). */
export type Operation = NonNullable<NonNullable<NonNullable<IstioRule["to"]>[number]>["operation"]>;
/** Istio `Condition` (`when`): an attribute key and values (from `@meshlet/config`). */
export type IstioCondition = NonNullable<NonNullable<IstioRule["when"]>[number]>;
/** The four actions of Istio authorization. */
export type AuthorizationAction = NonNullable<IstioSpec["action"]>;

/** A `when` condition: Istio's `Condition` (an attribute key with values/notValues). */
export type Condition = IstioCondition;

/** Istio `Rule` (its parts from `@meshlet/config`). */
export interface Rule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: Condition[];
}

/** Istio `AuthorizationPolicy.spec`: `@meshlet/config`'s fields. */
export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  rules?: Rule[];
  /** Defaults to `ALLOW`. */
  action?: AuthorizationAction;
  /** For `CUSTOM`: the name of the registered CheckAdapter that decides. */
  provider?: { name?: string };
}

/**
 * Object metadata as policies are written: `name` is required; `namespace` defaults to
 * `"default"` (kubectl's default), `annotations` carries `istio.io/dry-run` and meshlet's
 * `authz.meshlet.io/condition`.
 */
export type ObjectMeta = { name: string; namespace?: string } & Partial<
  Pick<ConfigObjectMeta, "labels" | "annotations">
>;

/**
 * A `security.istio.io` AuthorizationPolicy as the engine takes it: `@meshlet/config`'s
 * `AuthorizationPolicy` (what a `ConfigSnapshot` holds) or the same object as written, without
 * `apiVersion`/`kind`/namespace defaults.
 */
export interface AuthorizationPolicy {
  apiVersion?: string;
  kind?: "AuthorizationPolicy";
  metadata: ObjectMeta;
  spec: AuthorizationPolicySpec;
}

/** The annotation Istio reads to evaluate a policy without enforcing it. */
export const DRY_RUN_ANNOTATION = "istio.io/dry-run";

/**
 * Whether a policy carries `istio.io/dry-run: "true"` (Istio parses the value with Go's
 * `strconv.ParseBool`, so `1`, `t`, `T`, `TRUE`, `True` are true too).
 */
export function isDryRun(policy: { metadata: ObjectMeta }): boolean {
  const v = policy.metadata.annotations?.[DRY_RUN_ANNOTATION];
  return v === "1" || v === "t" || v === "T" || v === "true" || v === "TRUE" || v === "True";
}

/** `<namespace>/<name>` of a policy, as decisions and errors name it. */
export function policyId(policy: { metadata: { name: string; namespace?: string } }): string {
  return `${policy.metadata.namespace || "default"}/${policy.metadata.name}`;
}
