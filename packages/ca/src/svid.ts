import type { Duration } from "./duration.js";
import type { SpiffeId } from "./spiffe-id.js";

/** A request to sign a workload CSR. */
export interface SignRequest {
  /** PKCS#10 CSR, PEM or DER. Its URI SAN, if any, must be one of `identities`. */
  readonly csr: string | Uint8Array;
  /**
   * The caller's authenticated identities (from mTLS, a JWT, a TokenReview, …). The certificate's
   * URI SAN is taken from here, never from the CSR alone.
   */
  readonly identities: readonly (SpiffeId | string)[];
  /** Requested lifetime; default `defaultTtl`, refused above `maxTtl`. Numbers are milliseconds. */
  readonly ttl?: Duration;
}

/** A PEM certificate chain, leaf first, the root last (the shape of Istio's `cert_chain`). */
export type CertificateChain = string[];

/** A signed CSR: the chain and what it certifies. */
export interface SignedCertificate {
  /** PEM chain, leaf first, root last. */
  readonly chain: CertificateChain;
  /** The SPIFFE ID in the leaf's URI SAN. */
  readonly spiffeId: SpiffeId;
  /** The leaf's expiry (second precision in the certificate). */
  readonly notAfter: Date;
}

/** An X509-SVID with its private key, as served by the Workload API and SDS. */
export interface X509Svid {
  readonly spiffeId: SpiffeId;
  /** PEM chain, leaf first, root last. */
  readonly chain: CertificateChain;
  /** PKCS#8 PEM private key of the leaf. */
  readonly privateKey: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}
