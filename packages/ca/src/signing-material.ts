import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { children, type DerNode, decode, readBitString } from "./asn1/der.js";
import { CaError } from "./ca-error.js";
import { type Duration, toMilliseconds } from "./duration.js";
import { type SignatureScheme, signatureSchemeFor } from "./key-type.js";
import { toPem } from "./pem.js";
import { isSigningCertificate, type ParsedCertificate, parseCertificate } from "./x509/certificate.js";
import { encodeTbsCertificate, randomSerial, signCertificate } from "./x509/certificate-builder.js";
import {
  authorityKeyIdentifierValue,
  basicConstraintsValue,
  extension,
  KeyUsage,
  keyIdentifier,
  keyUsageValue,
  subjectKeyIdentifierValue,
} from "./x509/extensions.js";
import { name } from "./x509/name.js";
import { Oid } from "./x509/oids.js";

/** A signing key with its certificate and the chain that goes after every leaf it signs. */
export interface SigningMaterial {
  readonly key: KeyObject;
  readonly scheme: SignatureScheme;
  readonly cert: ParsedCertificate;
  /** Appended after the leaf: the signing certificate, intermediates, the root last. */
  readonly chainPem: readonly string[];
  /** Pre-encoded authorityKeyIdentifier extension for the leaves. */
  readonly authorityKeyId: Buffer;
}

/**
 * Checks that `key` belongs to `certDer` and that the certificate may sign (cA=true + keyCertSign),
 * then pre-computes what every leaf needs. `where` names the material in errors.
 */
export function createSigningMaterial(
  key: KeyObject,
  certDer: Buffer,
  chainPem: readonly string[],
  where: string,
): SigningMaterial {
  const cert = parseCertificate(certDer, where);
  const scheme = signatureSchemeFor(key, `${where} key`);
  const keySpki = createPublicKey(key).export({ format: "der", type: "spki" });
  if (!keySpki.equals(cert.spkiRaw)) {
    throw new CaError(
      "key-mismatch",
      `${where}: the private key does not match the certificate's public key; check that the key and certificate files belong together`,
    );
  }
  if (!isSigningCertificate(cert)) {
    throw new CaError(
      "ca-material",
      `${where}: the certificate cannot sign certificates (needs basicConstraints cA=true and keyUsage keyCertSign)`,
    );
  }
  const keyId = cert.subjectKeyId ?? keyIdentifier(cert.publicKeyBits);
  return {
    key,
    scheme,
    cert,
    chainPem,
    authorityKeyId: extension(Oid.authorityKeyIdentifier, false, authorityKeyIdentifierValue(keyId)),
  };
}

/** Options for {@link createSelfSignedRoot}. */
export interface SelfSignedRootOptions {
  readonly key: KeyObject;
  readonly trustDomain: string;
  readonly ttl: Duration;
  readonly now: number;
  /** Subject organization; Istio uses the trust domain. */
  readonly organization?: string;
  /** notBefore lies this far before `now`, for clock skew (default 60s, the CA's `backdate`). */
  readonly backdateMs?: number;
}

/** Issues a self-signed root: cA=true, keyCertSign + cRLSign (critical), SKI/AKI, subject O=<org>. */
export async function createSelfSignedRoot(
  options: SelfSignedRootOptions,
): Promise<{ der: Buffer; pem: string }> {
  const scheme = signatureSchemeFor(options.key, "root key");
  const spki = createPublicKey(options.key).export({ format: "der", type: "spki" });
  const keyId = keyIdentifier(spkiPublicKeyBits(spki));
  const subject = name({ organization: options.organization ?? options.trustDomain });
  const tbs = encodeTbsCertificate(
    {
      serialNumber: randomSerial(),
      issuerRaw: subject,
      notBefore: new Date(options.now - (options.backdateMs ?? 60_000)),
      notAfter: new Date(options.now + toMilliseconds(options.ttl, "rootTtl")),
      subjectRaw: subject,
      spkiRaw: spki,
      extensions: [
        extension(Oid.basicConstraints, true, basicConstraintsValue(true)),
        extension(Oid.keyUsage, true, keyUsageValue([KeyUsage.keyCertSign, KeyUsage.cRLSign])),
        extension(Oid.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyId)),
        extension(Oid.authorityKeyIdentifier, false, authorityKeyIdentifierValue(keyId)),
      ],
    },
    scheme,
  );
  const der = await signCertificate(tbs, options.key, scheme);
  return { der, pem: toPem("CERTIFICATE", der) };
}

/** The subjectPublicKey BIT STRING contents of an SPKI. */
export function spkiPublicKeyBits(spki: Buffer): Buffer {
  return readBitString(
    children(decode(spki, "subjectPublicKeyInfo"), "subjectPublicKeyInfo")[1] as DerNode,
    "subjectPublicKey",
  );
}

/** Node's view of a PEM or DER certificate, with the error naming the input. */
export function toX509(cert: string | Buffer, where: string): X509Certificate {
  try {
    return new X509Certificate(cert);
  } catch (error) {
    throw CaError.from(error, "ca-material", `${where}: not a valid X.509 certificate`);
  }
}
