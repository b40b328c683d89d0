import type { PolicyError } from "./policy-error.js";

/**
 * What a refused policy does until it is fixed, chosen to fail closed where the policy's scope is
 * known:
 * - `allow-nothing`: a refused ALLOW policy still counts as an ALLOW policy of its workloads, one
 *   that matches nothing (as Istio's generator keeps the ALLOW filter when it skips a bad rule);
 * - `deny-all`: a refused DENY or CUSTOM policy denies every request to its workloads;
 * - `reject-tokens`: a refused RequestAuthentication rejects (401) every request to its workloads
 *   that carries a JWT, since it cannot be verified;
 * - `not-applied`: AUDIT and dry-run policies, and policies whose workloads cannot be determined
 *   (an unsupported `targetRef`, no name), change no decision.
 */
export type RefusalEffect = "allow-nothing" | "deny-all" | "reject-tokens" | "not-applied";

/**
 * One policy the engine refused, and why. `set…` methods return these instead of throwing: one
 * bad policy never stops the others from applying.
 */
export interface PolicyDiagnostic {
  kind: "AuthorizationPolicy" | "RequestAuthentication";
  /** `<namespace>/<name>` (`<unnamed>` when the policy has no name). */
  policy: string;
  /** The field path that is wrong, when one is (`spec.rules[0].from[0].source.ipBlocks[0]`). */
  path?: string;
  /** What is wrong and what to do, naming the policy. */
  message: string;
  effect: RefusalEffect;
  /** The typed error (`invalid-policy`, `invalid-cel`, `unsupported`), with its cause. */
  error: PolicyError;
}
