import type { SpiffeId } from "../spiffe-id.js";

/** The outcome of verifying a bearer token. */
export interface VerifiedToken {
  /** Identities the token proves. */
  readonly identities: readonly SpiffeId[];
  /** Claims or user info, for authorizers and logs. */
  readonly attributes?: Readonly<Record<string, unknown>>;
}

/**
 * Verifies a bearer token and says who it belongs to; throws (any error) when it is not valid.
 * Implementations: {@link JwtVerifier} (signature + claims against known keys) and
 * {@link KubernetesTokenReviewVerifier} (asks the Kubernetes API server, as istiod does).
 */
export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
}
