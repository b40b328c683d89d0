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
  /** The file the policy was read from, when the caller gave its origin (`PolicyOrigins`). */
  file?: string;
  /** The line of the policy's document in `file` (1-based). */
  line?: number;
  /** The field path that is wrong, when one is (`spec.rules[0].from[0].source.ipBlocks[0]`). */
  path?: string;
  /** What is wrong and what to do, naming the policy (after `file:line: ` when known). */
  message: string;
  effect: RefusalEffect;
  /** The typed error (`invalid-policy`, `invalid-cel`, `unsupported`), with its cause. */
  error: PolicyError;
}

/**
 * Where the policies given to the engine were read from, so a refused one is reported at its
 * file:line. A `@meshlet/config` `ConfigSnapshot` is one:
 * `engine.setAuthorizationPolicies(snapshot.list("AuthorizationPolicy"), { origins: snapshot })`.
 */
export interface PolicyOrigins {
  originOf(resource: object): { file?: string; position?: { line: number } } | undefined;
}

/** Options of the engine's `set…` methods. */
export interface SetPoliciesOptions {
  origins?: PolicyOrigins;
}

/** The diagnostic placed at the policy's file:line when its origin is known. */
export function locateDiagnostic(
  diagnostic: PolicyDiagnostic,
  resource: unknown,
  origins: PolicyOrigins | undefined,
): PolicyDiagnostic {
  if (!origins || typeof resource !== "object" || resource === null) return diagnostic;
  const origin = origins.originOf(resource);
  if (origin?.file === undefined) return diagnostic;
  const line = origin.position?.line;
  return {
    ...diagnostic,
    file: origin.file,
    ...(line !== undefined && { line }),
    message: `${origin.file}${line !== undefined ? `:${line}` : ""}: ${diagnostic.message}`,
  };
}
