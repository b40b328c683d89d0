import type { SpiffeId } from "./spiffe-id.js";

/** What the CA asks an external CA to sign. */
export interface ExternalSignRequest {
  /** The CSR, PEM; for leaves its signature is already verified. */
  readonly csrPem: string;
  /**
   * For `leaf` signers, the one SPIFFE ID the certificate must carry as its URI SAN (decided by the
   * CA from the caller's authenticated identity, not by the CSR). For `intermediate` signers, the
   * trust domain's own ID.
   */
  readonly spiffeId: SpiffeId;
  /** Requested lifetime in milliseconds. */
  readonly ttlMs: number;
}

/**
 * A certificate authority outside this process for `CertificateAuthority.fromSigner`. `@meshlet/ca`
 * declares it; adapters implement it. Two kinds exist, because external CAs differ in what they can
 * put in a certificate:
 *
 * - `leaf`: signs every workload CSR with the SPIFFE ID as URI SAN (Vault PKI `sign/<role>` with
 *   `uri_sans`). The CA checks every certificate that comes back (URI SAN, key, cA=false).
 * - `intermediate`: signs a CSR for meshlet's own intermediate CA, renewed at half its lifetime;
 *   meshlet signs the SVIDs locally (an upstream authority, like SPIRE's). Needed for CAs that
 *   cannot issue URI SANs, such as cfssl's HTTP API.
 */
export interface ExternalSigner {
  /** A short name for logs and errors, e.g. `"cfssl"`, `"vault"`. */
  readonly name: string;
  /** What the signer signs: workload leaves or meshlet's intermediate. */
  readonly kind: "leaf" | "intermediate";
  /** Signs the CSR; resolves with the chain, PEM, leaf first (intermediates after it, root optional). */
  sign(request: ExternalSignRequest): Promise<readonly string[]>;
  /** The root certificates (PEM) that anchor the chains this signer returns. */
  roots(): Promise<readonly string[]>;
}
