/** Object identifiers used by the CA (RFC 5280, RFC 5480, RFC 8017, RFC 8410, PKCS #9). */
export const Oid = {
  ecPublicKey: "1.2.840.10045.2.1",
  p256: "1.2.840.10045.3.1.7",
  p384: "1.3.132.0.34",
  rsaEncryption: "1.2.840.113549.1.1.1",
  ed25519: "1.3.101.112",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  ecdsaWithSha384: "1.2.840.10045.4.3.3",
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  sha384WithRsa: "1.2.840.113549.1.1.12",
  sha512WithRsa: "1.2.840.113549.1.1.13",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  nameConstraints: "2.5.29.30",
  certificatePolicies: "2.5.29.32",
  organizationName: "2.5.4.10",
  commonName: "2.5.4.3",
} as const;

/** Signature algorithms the CA accepts on CSRs, mapped to the digest `node:crypto` needs. */
export const SIGNATURE_DIGESTS: Readonly<Record<string, string | null>> = {
  [Oid.ecdsaWithSha256]: "sha256",
  [Oid.ecdsaWithSha384]: "sha384",
  [Oid.ecdsaWithSha512]: "sha512",
  [Oid.sha256WithRsa]: "sha256",
  [Oid.sha384WithRsa]: "sha384",
  [Oid.sha512WithRsa]: "sha512",
  [Oid.ed25519]: null,
};

/**
 * The key type each signature algorithm belongs to (RFC 5758 3.2: ECDSA; RFC 4055 5: RSA PKCS#1
 * v1.5; RFC 8410 3: Ed25519). A signature is only checked with a key of its algorithm's type, as Go's
 * crypto/x509 `CheckSignature` does for Istio and SPIRE.
 */
export const SIGNATURE_KEY_KINDS: Readonly<Record<string, "ec" | "rsa" | "ed25519">> = {
  [Oid.ecdsaWithSha256]: "ec",
  [Oid.ecdsaWithSha384]: "ec",
  [Oid.ecdsaWithSha512]: "ec",
  [Oid.sha256WithRsa]: "rsa",
  [Oid.sha384WithRsa]: "rsa",
  [Oid.sha512WithRsa]: "rsa",
  [Oid.ed25519]: "ed25519",
};
