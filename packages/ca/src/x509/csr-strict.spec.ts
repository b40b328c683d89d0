import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  X509Certificate,
} from "node:crypto";
import { describe, expect, it } from "vitest";
import { integer, oid, sequence, set, tlv } from "../asn1/der.js";
import { CaError } from "../ca-error.js";
import { CertificateAuthority } from "../certificate-authority.js";
import { toPem } from "../pem.js";
import { extension, subjectAltNameValue } from "./extensions.js";
import { Oid } from "./oids.js";

const ID = "spiffe://example.org/ns/default/sa/web";

/** A CSR around `spki`, signed by `signer`, claiming `algorithm` (AlgorithmIdentifier DER), as PEM. */
function csrWith(spki: Buffer, algorithm: Buffer, signer: (info: Buffer) => Buffer): string {
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
  return toPem("CERTIFICATE REQUEST", sequence(info, algorithm, tlv(0x03, Buffer.from([0]), signer(info))));
}

/**
 * Builds a CSR around hand-made SubjectPublicKeyInfo bytes and signs it with the real key, so the
 * self-signature is valid and only the parser stands between the bytes and the certificate.
 */
function csrWithSpki(privateKey: KeyObject, spki: Buffer): string {
  return csrWith(spki, sequence(oid(Oid.ecdsaWithSha256)), (info) => sign("sha256", info, privateKey));
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
    const error = await ca.sign({ csr: csrWithSpki(privateKey, spki), identities: [ID] }).then(
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
      csr: csrWithSpki(privateKey, canonical),
      identities: [ID],
    });
    const leaf = new X509Certificate(chain[0] as string);
    expect(leaf.publicKey.export({ format: "der", type: "spki" })).toEqual(
      createPublicKey(privateKey).export({ format: "der", type: "spki" }),
    );
    ca.close();
  });
});

async function refusal(csr: string): Promise<CaError> {
  const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
  try {
    const error = await ca.sign({ csr, identities: [ID] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CaError);
    return error as CaError;
  } finally {
    ca.close();
  }
}

describe("the CSR's signature algorithm and key are bound to each other", () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecSpki = ec.publicKey.export({ format: "der", type: "spki" });
  const ecdsaSha256 = (info: Buffer) => sign("sha256", info, ec.privateKey);

  // Go's crypto/x509 (Istio, SPIRE) refuses these in CheckSignature: "signature algorithm specifies
  // an RSA public key, but have public key of type *ecdsa.PublicKey". RFC 5758 3.2 / RFC 4055 5 /
  // RFC 8410 3 name one key type per signature algorithm.
  it.each([
    [
      "sha256WithRSAEncryption over an ECDSA signature",
      sequence(oid(Oid.sha256WithRsa), tlv(0x05, Buffer.alloc(0))),
    ],
    ["Ed25519 over an ECDSA signature", sequence(oid(Oid.ed25519))],
  ])("refuses %s with malformed-csr", async (_name, algorithm) => {
    const error = await refusal(csrWith(ecSpki, algorithm, ecdsaSha256));
    expect(error.code).toBe("malformed-csr");
    expect(error.message).toMatch(/does not match/);
  });

  it("still accepts ecdsa-with-SHA384 from a P-256 key (RFC 5758 allows any SHA-2 with any curve)", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: "example.org" });
    const csr = csrWith(ecSpki, sequence(oid(Oid.ecdsaWithSha384)), (info) =>
      sign("sha384", info, ec.privateKey),
    );
    await expect(ca.sign({ csr, identities: [ID] })).resolves.toHaveLength(2);
    ca.close();
  });
});

describe("RSA public exponents", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const n = Buffer.from(rsa.publicKey.export({ format: "jwk" }).n as string, "base64url");
  const rsaSpki = (e: number) =>
    sequence(
      sequence(oid(Oid.rsaEncryption), tlv(0x05, Buffer.alloc(0))),
      tlv(0x03, Buffer.from([0]), sequence(integer(n), integer(e))),
    );
  const sha256WithRsa = sequence(oid(Oid.sha256WithRsa), tlv(0x05, Buffer.alloc(0)));

  /**
   * With e = 1 the "signature" s satisfies s^e mod n = EM for s = EM: RFC 8017 9.2's
   * EMSA-PKCS1-v1_5 encoding of SHA-256 (DigestInfo prefix from RFC 8017 9.2 note 1) verifies
   * without any private key. A CA that accepts it issues a certificate anyone can use.
   */
  const forgedWithoutKey = (info: Buffer) => {
    const digestInfo = Buffer.concat([
      Buffer.from("3031300d060960864801650304020105000420", "hex"),
      createHash("sha256").update(info).digest(),
    ]);
    const padding = Buffer.alloc(n.length - 3 - digestInfo.length, 0xff);
    return Buffer.concat([Buffer.from([0x00, 0x01]), padding, Buffer.from([0x00]), digestInfo]);
  };

  it("refuses e = 1, whose proof of possession needs no private key (Go's crypto/rsa: exponent too small)", async () => {
    const error = await refusal(csrWith(rsaSpki(1), sha256WithRsa, forgedWithoutKey));
    expect(error.code).toBe("unsupported-key");
    expect(error.message).toMatch(/exponent/);
  });

  it("refuses a real key with exponent 2^31 + 1, above Go's crypto/rsa limit (2^31 - 1)", async () => {
    const big = generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 2 ** 31 + 1 });
    const spki = big.publicKey.export({ format: "der", type: "spki" });
    const error = await refusal(csrWith(spki, sha256WithRsa, (info) => sign("sha256", info, big.privateKey)));
    expect(error.code).toBe("unsupported-key");
    expect(error.message).toMatch(/exponent/);
  });
});
