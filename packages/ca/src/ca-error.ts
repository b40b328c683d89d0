/**
 * What went wrong, as a stable string callers can branch on (the message is for humans and may
 * change). Grouped by area: identities, encodings, CSRs and signing, CA material, servers.
 */
export type CaErrorCode =
  | "invalid-spiffe-id"
  | "malformed-der"
  | "malformed-pem"
  | "malformed-csr"
  | "csr-too-large"
  | "csr-signature-invalid"
  | "unsupported-key"
  | "identity-mismatch"
  | "no-identity"
  | "foreign-trust-domain"
  | "invalid-ttl"
  | "ca-material"
  | "ca-expired"
  | "key-mismatch"
  | "external-signer"
  | "invalid-svid"
  | "root-store"
  | "unauthenticated"
  | "permission-denied"
  | "invalid-argument";

/**
 * The one error class of `@meshlet/ca`. Every failure carries a {@link CaErrorCode}, a message that
 * says what was wrong, where and what to do, and the underlying `cause` when there is one. Servers
 * map codes to gRPC statuses, so a bad client gets a precise status instead of a crashed server.
 */
export class CaError extends Error {
  override readonly name = "CaError";
  /** Stable machine-readable reason. */
  readonly code: CaErrorCode;

  constructor(code: CaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** Wraps anything thrown into a `CaError`, keeping a `CaError` as is. */
  static from(error: unknown, code: CaErrorCode, message: string): CaError {
    if (error instanceof CaError) return error;
    const detail = error instanceof Error ? error.message : String(error);
    return new CaError(code, `${message}: ${detail}`, { cause: error });
  }
}
