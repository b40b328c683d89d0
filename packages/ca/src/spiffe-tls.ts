import type { X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { SpiffeId } from "./spiffe-id.js";

/**
 * The SPIFFE ID of a TLS peer or certificate: its one valid `spiffe://` URI SAN, or undefined when
 * there is none or more than one (SPIFFE X509-SVID 2: exactly one URI SAN).
 */
export function spiffeIdOf(certificate: PeerCertificate | X509Certificate): SpiffeId | undefined {
  const names: string =
    ("subjectaltname" in certificate
      ? (certificate as PeerCertificate).subjectaltname
      : (certificate as X509Certificate).subjectAltName) ?? "";
  const uris = names
    .split(", ")
    .filter((n) => n.startsWith("URI:"))
    .map((n) => n.slice(4));
  if (uris.length !== 1) return undefined;
  return SpiffeId.tryParse(uris[0] as string);
}

/**
 * A `checkServerIdentity` for `node:tls`/grpc-js clients that authenticates the server by SPIFFE ID
 * instead of DNS name. `expected` is an ID or a predicate (e.g. "any ID in my trust domain").
 */
export function checkSpiffeId(
  expected: SpiffeId | string | ((id: SpiffeId) => boolean),
): (host: string, certificate: PeerCertificate) => Error | undefined {
  return (_host, certificate) => {
    const id = spiffeIdOf(certificate);
    if (!id) return new Error("peer certificate has no single SPIFFE ID URI SAN");
    const ok = typeof expected === "function" ? expected(id) : id.equals(expected);
    return ok ? undefined : new Error(`peer is ${id}, not the expected SPIFFE ID`);
  };
}
