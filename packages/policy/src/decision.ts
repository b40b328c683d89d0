import type { AdapterFailure, CheckResult } from "./adapters/adapter.js";
import type { Attributes } from "./attributes.js";
import type { AuthorizationAction } from "./authz/authorization-policy.js";

/**
 * Why a decision came out as it did, in evaluation order:
 * - `missing-workload`: the request does not say which workload it is for (no destination
 *   namespace; for ext_authz, no trusted context extensions): denied, never guessed.
 * - `jwt-invalid`: a token was present and failed verification (Istio answers 401).
 * - `custom-denied`: a CUSTOM policy matched and its provider denied.
 * - `custom-provider-failed`: the provider errored or timed out and is `fail-closed`.
 * - `custom-provider-missing`: a CUSTOM policy names a provider that is not registered.
 * - `deny-policy`: a DENY policy matched.
 * - `policy-refused`: a policy that applies here was refused when it loaded and fails closed (a
 *   refused DENY or CUSTOM policy denies everything; a refused ALLOW policy allows nothing).
 * - `no-allow-policies`: no ALLOW policy applies to the workload, so it is allowed.
 * - `allow-policy`: an ALLOW policy matched.
 * - `no-matching-allow`: ALLOW policies apply and none matched (includes allow-nothing).
 */
export type DecisionReason =
  | "missing-workload"
  | "jwt-invalid"
  | "custom-denied"
  | "custom-provider-failed"
  | "custom-provider-missing"
  | "deny-policy"
  | "policy-refused"
  | "no-allow-policies"
  | "allow-policy"
  | "no-matching-allow";

/** Which policy and rule produced an outcome. */
export interface PolicyRef {
  /** `<namespace>/<name>`. */
  policy: string;
  action: AuthorizationAction;
  /** Index into `spec.rules` of the first rule that matched; -1 for a refused policy as a whole. */
  rule: number;
}

/**
 * What dry-run (`istio.io/dry-run: "true"`) policies would have decided: one entry for the
 * dry-run DENY policies and one for the dry-run ALLOW policies that apply (Envoy's shadow rules).
 */
export interface DryRunResult {
  action: "ALLOW" | "DENY";
  /** What the shadow engine would have done. */
  wouldAllow: boolean;
  /** The dry-run policy and rule that matched, if any. */
  matched?: PolicyRef;
}

/** One authorization decision, as `check()` returns it and `decisions$` emits it. */
export interface Decision {
  allowed: boolean;
  reason: DecisionReason;
  /** The policy and rule that made the decision (absent for `no-allow-policies`/`no-matching-allow`). */
  matched?: PolicyRef;
  /** HTTP status to answer with when denied (403, or 401 for `jwt-invalid`, or the provider's). */
  status: number;
  /** Body to answer with when denied. */
  body: string;
  /** Whether an AUDIT policy matched, and which. */
  audited: boolean;
  audit?: PolicyRef;
  dryRun: DryRunResult[];
  /** The CUSTOM provider's answer, when one was called. */
  custom?: { provider: string; result: CheckResult };
  /** Adapter errors and timeouts met while deciding. */
  adapterFailures: AdapterFailure[];
  /** JWT outcome: `none` when no RequestAuthentication applies or no token was sent. */
  jwt: { status: "none" | "valid" | "invalid"; reason?: string };
  /** Headers to set / remove on the upstream request and to add to the response. */
  requestHeaders: Record<string, string>;
  removeRequestHeaders: string[];
  responseHeaders: Record<string, string>;
  /** The attributes as evaluated (with `request.auth` filled by JWT verification). */
  attributes: Attributes;
  /** When the decision was made (clock ms) and how long it took (ms). */
  time: number;
  durationMs: number;
}
