import { createPublicKey, generateKeyPairSync, type KeyObject, sign, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import { integer, oid, sequence, set, tlv } from "../asn1/der.js";
import { CaError } from "../ca-error.js";
import { CertificateAuthority } from "../certificate-authority.js";
import { toPem } from "../pem.js";
import { extension, subjectAltNameValue } from "./extensions.js";
import { Oid } from "./oids.js";

const ID = "spiffe://example.org/ns/default/sa/web";

/**
 * Builds a CSR around hand-made SubjectPublicKeyInfo bytes and signs it with the real key, so the
 * self-signature is valid and only the parser stands between the bytes and the certificate.
 */
function csrWithSpki(privateKey: KeyObject, spki: Buffer): Buffer {
  const attributes = Buffer.concat([
    Buffer.from([0xa0]),
    set(
      sequence(
        oid(Oid.extensionRequest),
        set(sequence(extension(Oid.subjectAltName, false, subjectAltNameValue([ID])))),
      ),
    ).subarray(1),
  ]);
  const info = sequence(integer(0), sequence(), spki, attributes);
  const signature = sign("sha256", info, privateKey);
  return sequence(info, sequence(oid(Oid.ecdsaWithSha256)), tlv(0x03, Buffer.from([0]), signature));
}

/** The EC key's SPKI split into its two children (AlgorithmIdentifier, BIT STRING). */
function spkiParts(publicKey: KeyObject): { algorithm: Buffer; bits: Buffer } {
  const spki = publicKey.export({ format: "der", type: "spki" });
  // P-256 SPKI: 30 59 | 30 13 <algorithm> | 03 42 <bits>
  return { algorithm: spki.subarray(2, 23), bits: spki.subarray(23) };
}

describe("CSR parsing is strict DER and the leaf's key is re-encoded from the parsed key", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const canonical = publicKey.export({ format: "der", type: "spki" });
  const { algorithm, bits } = spkiParts(publicKey);

  const mutants: [string, Buffer][] = [
    ["an SPKI with a trailing junk element", sequence(algorithm, bits, Buffer.from([0x05, 0x00]))],
    [
      "an OID padded with 0x80",
      // 1.2.840.10045.2.1 with its 840 arc written 0x80 0x86 0x48 instead of 0x86 0x48.
      sequence(
        sequence(tlv(0x06, Buffer.from([0x2a, 0x80, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])), oid(Oid.p256)),
        bits,
      ),
    ],
    [
      "a non-minimal long-form length",
      Buffer.concat([Buffer.from([0x30, 0x81, algorithm.length + bits.length]), algorithm, bits]),
    ],
  ];

  it.each(mutants)("refuses %s with malformed-csr", async (_name, spki) => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const error = await ca
      .sign({ csr: toPem("CERTIFICATE REQUEST", csrWithSpki(privateKey, spki)), identities: [ID] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).code).toBe("malformed-csr");
    ca.close();
  });

  it("puts node:crypto's encoding of the key in the leaf, not the CSR's bytes", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const chain = await ca.sign({
      csr: toPem("CERTIFICATE REQUEST", csrWithSpki(privateKey, canonical)),
      identities: [ID],
    });
    const leaf = new X509Certificate(chain[0] as string);
    expect(leaf.publicKey.export({ format: "der", type: "spki" })).toEqual(
      createPublicKey(privateKey).export({ format: "der", type: "spki" }),
    );
    ca.close();
  });
});
