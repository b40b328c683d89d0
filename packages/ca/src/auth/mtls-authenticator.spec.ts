import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { Metadata } from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { CaError } from "../ca-error.js";
import { MtlsAuthenticator } from "./mtls-authenticator.js";

const WEB = "spiffe://example.org/ns/default/sa/web";

/**
 * What grpc-js hands the authenticator for a verified client: Node's peer certificate. Certificates
 * are made with @peculiar/x509 (not the CA's code); TLS verification itself is grpc-js's job.
 */
async function peer(options: { uris: string[]; ca?: boolean }): Promise<PeerCertificate> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, false, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: "",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys: keys as webcrypto.CryptoKeyPair,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(options.ca ?? false, undefined, true),
      new x509.SubjectAlternativeNameExtension(
        options.uris.map((value) => ({ type: "url" as const, value })),
        true,
      ),
    ],
  });
  const node = new X509Certificate(Buffer.from(cert.rawData));
  return { raw: node.raw, subjectaltname: node.subjectAltName, ca: node.ca } as unknown as PeerCertificate;
}

describe("MtlsAuthenticator reads the identity of a verified client certificate as X509-SVID 5.2 says", () => {
  const auth = new MtlsAuthenticator();
  const context = (peerCertificate: PeerCertificate) => ({
    metadata: new Metadata(),
    peer: "ipv4:127.0.0.1:5000",
    peerCertificate,
  });
  let leaf: PeerCertificate;
  beforeAll(async () => {
    leaf = await peer({ uris: [WEB] });
  });

  it("takes the one SPIFFE ID of a leaf", async () => {
    const caller = await auth.authenticate(context(leaf));
    expect(caller?.identities.map(String)).toEqual([WEB]);
  });

  it("refuses a certificate with a second URI SAN, even one that is not a SPIFFE ID (X509-SVID 2)", async () => {
    const error = await auth
      .authenticate(context(await peer({ uris: [WEB, "https://web.example.org/"] })))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).message).toMatch(/URI SAN/);
  });

  it("refuses a CA certificate presented as a client certificate (X509-SVID 5.2: cA must be false)", async () => {
    const error = await auth
      .authenticate(context(await peer({ uris: [WEB], ca: true })))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).message).toMatch(/CA certificate/);
  });
});
