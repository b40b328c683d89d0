import { CaError } from "../ca-error.js";
import { SpiffeId } from "../spiffe-id.js";
import { type ParsedCertificate, parseCertificate } from "../x509/certificate.js";
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
    // Read from the DER the TLS layer verified, not from Node's display string of the SANs.
    let parsed: ParsedCertificate;
    try {
      parsed = parseCertificate(cert.raw, "client certificate");
    } catch (error) {
      throw CaError.from(error, "unauthenticated", `client certificate from ${context.peer} cannot be read`);
    }
    // X509-SVID 5.2: only a leaf authenticates; a signing certificate never does.
    if (parsed.isCa) {
      throw new CaError(
        "unauthenticated",
        `client certificate from ${context.peer} is a CA certificate; only a leaf X509-SVID authenticates`,
      );
    }
    // X509-SVID 2: exactly one URI SAN, and it is the SPIFFE ID.
    const id = parsed.uris.length === 1 ? SpiffeId.tryParse(parsed.uris[0] as string) : undefined;
    if (!id || id.path === "") {
      throw new CaError(
        "unauthenticated",
        `client certificate from ${context.peer} has URI SANs [${parsed.uris.join(", ")}]; an X509-SVID has exactly one URI SAN, a SPIFFE ID with a path`,
      );
    }
    if (this.trustDomains && !this.trustDomains.has(id.trustDomain)) {
      throw new CaError(
        "unauthenticated",
        `client certificate identity ${id} is outside the accepted trust domains`,
      );
    }
    return { identities: [id], authenticator: this.name };
  }
}
