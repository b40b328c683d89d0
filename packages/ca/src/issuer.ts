import type { SpiffeId } from "./spiffe-id.js";

/** What the CA asks an {@link Issuer} to certify, after authentication and authorisation. */
export interface IssueRequest {
  /** The one SPIFFE ID the leaf carries (decided by the CA from the caller's identity). */
  readonly spiffeId: SpiffeId;
  /** The workload key as SubjectPublicKeyInfo DER, re-encoded by `node:crypto`. */
  readonly spki: Buffer;
  /** The key's family (RSA leaves also get keyEncipherment). */
  readonly keyKind: "ec" | "rsa" | "ed25519";
  /** Lifetime in milliseconds. */
  readonly ttlMs: number;
  /** DNS SANs the CA decided to add (server-side issuance only; never from a CSR). */
  readonly dnsNames: readonly string[];
  /** The verified CSR as PEM, for issuers that forward it to another CA. */
  readonly csrPem?: string;
}

/**
 * Signs leaves for the CA. Two implementations: {@link LocalIssuer} (a key in this process: a
 * self-signed root, Istio's plugged-in intermediate, or an intermediate an upstream authority
 * signed) and {@link ExternalLeafIssuer} (an external CA that signs each leaf). Whatever an issuer
 * returns is checked by the SVID profile (`validateSvid`) before anyone sees it.
 */
export interface Issuer {
  /** For logs and errors. */
  readonly name: string;
  /** Whether a CSR must be forwarded (`csrPem` required). */
  readonly needsCsr: boolean;
  /** Signs and returns the chain, PEM, leaf first. */
  issue(request: IssueRequest): Promise<readonly string[]>;
}
