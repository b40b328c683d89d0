import { type KeyObject, randomBytes, sign as signCb } from "node:crypto";
import { promisify } from "node:util";
import { bitString, explicit, integer, sequence, time } from "../asn1/der.js";
import type { SignatureScheme } from "../key-type.js";

const sign = promisify(signCb);
const VERSION_3 = explicit(0, integer(2));

/** Everything that goes into a TBSCertificate, as pre-encoded DER where it is copied verbatim. */
export interface CertificateTemplate {
  readonly serialNumber: Buffer;
  readonly issuerRaw: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectRaw: Buffer;
  readonly spkiRaw: Buffer;
  /** Encoded Extension values (see `extension()` in extensions.ts). */
  readonly extensions: readonly Buffer[];
}

/** A fresh positive 128-bit serial number (CA/B Forum asks for at least 64 bits of entropy). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
  return serial;
}

/** Encodes the TBSCertificate (RFC 5280 4.1) for `scheme`. */
export function encodeTbsCertificate(template: CertificateTemplate, scheme: SignatureScheme): Buffer {
  return sequence(
    VERSION_3,
    integer(template.serialNumber),
    scheme.algorithmIdentifier,
    template.issuerRaw,
    sequence(time(template.notBefore), time(template.notAfter)),
    template.subjectRaw,
    template.spkiRaw,
    explicit(3, sequence(...template.extensions)),
  );
}

/**
 * Signs a TBSCertificate with the issuer key through `node:crypto` (OpenSSL on the libuv pool, so
 * concurrent signings use every core) and returns the certificate DER.
 */
export async function signCertificate(tbs: Buffer, key: KeyObject, scheme: SignatureScheme): Promise<Buffer> {
  const signature = await sign(scheme.digest, tbs, key);
  return sequence(tbs, scheme.algorithmIdentifier, bitString(signature));
}
