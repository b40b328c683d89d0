import { CaError } from "../ca-error.js";
import { SpiffeId } from "../spiffe-id.js";
import type { Authenticator, CallContext, Caller } from "./authenticator.js";

/**
 * Authenticates a caller by its verified client certificate: the identity is the certificate's
 * SPIFFE URI SAN. TLS has already checked the chain against the server's roots (grpc-js exposes the
 * certificate only for authorized connections); this reads the identity and checks the trust
 * domain, like Istio's client-certificate authenticator used for certificate renewal.
 */
export class MtlsAuthenticator implements Authenticator {
  readonly name = "mtls";
  private readonly trustDomains: ReadonlySet<string> | undefined;

  /** `trustDomains` limits accepted identities; default: any SPIFFE ID the TLS roots vouch for. */
  constructor(options: { trustDomains?: readonly string[] } = {}) {
    this.trustDomains = options.trustDomains ? new Set(options.trustDomains) : undefined;
  }

  async authenticate(context: CallContext): Promise<Caller | undefined> {
    const cert = context.peerCertificate;
    if (!cert) return undefined;
    const uris = (cert.subjectaltname ?? "")
      .split(", ")
      .filter((name) => name.startsWith("URI:"))
      .map((name) => name.slice(4));
    const ids = uris.map((uri) => SpiffeId.tryParse(uri)).filter((id): id is SpiffeId => id !== undefined);
    if (ids.length !== 1) {
      throw new CaError(
        "unauthenticated",
        `client certificate from ${context.peer} has ${ids.length} SPIFFE IDs; an X509-SVID has exactly one`,
      );
    }
    const id = ids[0] as SpiffeId;
    if (this.trustDomains && !this.trustDomains.has(id.trustDomain)) {
      throw new CaError(
        "unauthenticated",
        `client certificate identity ${id} is outside the accepted trust domains`,
      );
    }
    return { identities: [id], authenticator: this.name };
  }
}
