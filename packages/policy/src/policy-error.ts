/**
 * Machine-readable reasons a {@link PolicyError} is thrown.
 *
 * - `invalid-policy`: an AuthorizationPolicy / RequestAuthentication failed validation.
 * - `invalid-attributes`: a request could not be turned into attributes.
 * - `missing-workload`: an ext_authz request lacks the context extensions naming its workload.
 * - `invalid-argument`: an option given to a constructor or function is unusable (a listen address).
 * - `invalid-rate-limit-config`: a rate-limit configuration (YAML or object) is malformed.
 * - `invalid-adapter-config`: an adapter's config does not satisfy its schema.
 * - `adapter-not-found`: a policy or call names an adapter that was never registered.
 * - `adapter-timeout`: an adapter did not answer within its timeout.
 * - `adapter-failed`: an adapter threw or rejected.
 * - `jwks-fetch-failed`: a JWKS URI could not be fetched or parsed.
 * - `invalid-cel`: a CEL expression does not parse or does not evaluate to a boolean.
 * - `unsupported`: the input is valid Istio but has no translation here (a CEL condition for Envoy
 *   RBAC, a waypoint-only `targetRefs` kind, a JWT rule without keys).
 */
export type PolicyErrorCode =
  | "invalid-policy"
  | "invalid-attributes"
  | "missing-workload"
  | "invalid-argument"
  | "invalid-rate-limit-config"
  | "invalid-adapter-config"
  | "adapter-not-found"
  | "adapter-timeout"
  | "adapter-failed"
  | "jwks-fetch-failed"
  | "invalid-cel"
  | "unsupported";

/**
 * The one error class of `@meshlet/policy`. `code` says what kind of failure it is, the message
 * says what was wrong, where (policy name, field path, line) and what to do; `cause` keeps the
 * underlying error when there is one.
 */
export class PolicyError extends Error {
  /** What kind of failure this is; stable across versions, safe to switch on. */
  readonly code: PolicyErrorCode;
  /** The message without the code prefix. */
  readonly rawMessage: string;

  constructor(code: PolicyErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[${code}] ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "PolicyError";
    this.code = code;
    this.rawMessage = message;
  }
}
