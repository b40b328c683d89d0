import type { PeerCertificate } from "node:tls";
import type { Metadata } from "@grpc/grpc-js";
import type { SpiffeId } from "../spiffe-id.js";

/** What a server knows about an incoming call before it is authenticated. */
export interface CallContext {
  /** Request metadata (headers). */
  readonly metadata: Metadata;
  /** The peer address, for logs. */
  readonly peer: string;
  /** The client certificate, present only when TLS verified it against the server's roots. */
  readonly peerCertificate?: PeerCertificate;
}

/** An authenticated caller. */
export interface Caller {
  /** The identities the caller proved; certificates may be issued for these only. */
  readonly identities: readonly SpiffeId[];
  /** Which authenticator vouched for them (for logs and authorization). */
  readonly authenticator: string;
  /** Extra facts from the credential (JWT claims, TokenReview user), for authorizers. */
  readonly attributes?: Readonly<Record<string, unknown>>;
}

/**
 * Proves who is calling. Returns `undefined` when the call carries no credential of this kind (the
 * next authenticator is tried); throws `CaError` `unauthenticated` when it carries one that is bad.
 * Istio's CA has the same split: client certificates, then bearer tokens.
 */
export interface Authenticator {
  readonly name: string;
  authenticate(context: CallContext): Promise<Caller | undefined>;
}
