/**
 * Kubernetes-style object metadata, as Istio resources carry it. `annotations` carries
 * `istio.io/dry-run: "true"` for dry-run policies.
 */
export interface ObjectMeta {
  name: string;
  /** Defaults to `"default"`. */
  namespace?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

/** Istio `WorkloadSelector`: the policy applies to workloads carrying all these labels. */
export interface WorkloadSelector {
  matchLabels?: Record<string, string>;
}

/**
 * Istio `Source`: who sends the request. Fields are ANDed; values within a field are ORed; a
 * `not*` field matches when none of its values match.
 */
export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  /** `<namespace>/<service account>` (Istio 1.22+), exact match. */
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

/** Istio `Operation`: what the request does. Same AND/OR/not rules as {@link Source}. */
export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  /** Exact, `prefix*`, `*suffix`, `*`, or templates with `{*}` (one segment) and `{**}` (the rest). */
  paths?: string[];
  notPaths?: string[];
}

/**
 * Istio `Condition` (`when`): `key` names an attribute (`request.headers[x]`, `source.ip`,
 * `request.auth.claims[groups]`, …). Or, as a meshlet extension, `cel` holds a CEL expression
 * over the attributes that must evaluate to `true`.
 */
export type Condition =
  | { key: string; values?: string[]; notValues?: string[]; cel?: undefined }
  | { cel: string; key?: undefined; values?: undefined; notValues?: undefined };

/** Istio `Rule`: matches when any `from`, any `to` and all `when` match (absent = match). */
export interface Rule {
  from?: { source: Source }[];
  to?: { operation: Operation }[];
  when?: Condition[];
}

/** The four actions of Istio authorization. */
export type AuthorizationAction = "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";

/** Istio `AuthorizationPolicy.spec`. */
export interface AuthorizationPolicySpec {
  selector?: WorkloadSelector;
  rules?: Rule[];
  /** Defaults to `ALLOW`. */
  action?: AuthorizationAction;
  /** For `CUSTOM`: the name of the registered {@link CheckAdapter} that decides. */
  provider?: { name: string };
}

/**
 * An Istio `security.istio.io/v1` AuthorizationPolicy as a plain object (what `kubectl get -o json`
 * or a YAML parser gives). `kind`/`apiVersion` are accepted and ignored.
 */
export interface AuthorizationPolicy {
  apiVersion?: string;
  kind?: "AuthorizationPolicy";
  metadata: ObjectMeta;
  spec: AuthorizationPolicySpec;
}

/** The annotation Istio reads to evaluate a policy without enforcing it. */
export const DRY_RUN_ANNOTATION = "istio.io/dry-run";

/** Whether a policy carries `istio.io/dry-run: "true"`. */
export function isDryRun(policy: AuthorizationPolicy): boolean {
  return policy.metadata.annotations?.[DRY_RUN_ANNOTATION]?.toLowerCase() === "true";
}

/** `<namespace>/<name>` of a policy, as decisions and errors name it. */
export function policyId(policy: { metadata: ObjectMeta }): string {
  return `${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`;
}
