import { createHash } from "node:crypto";
import { boolean, integer, octetString, oid, sequence, Tag, tlv } from "../asn1/der.js";
import { Oid } from "./oids.js";

/** RFC 5280 4.2.1.3 key usage bits (bit 0 is the most significant bit of the first byte). */
export const KeyUsage = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

/** Encodes an Extension: `SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }`. */
export function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return critical
    ? sequence(oid(id), boolean(true), octetString(value))
    : sequence(oid(id), octetString(value));
}

/** keyUsage value: a named BIT STRING with trailing zero bits removed (DER). */
export function keyUsageValue(bits: number[]): Buffer {
  let value = 0;
  for (const bit of bits) value |= 0x8000 >> bit;
  let bytes = [value >> 8, value & 0xff];
  if (bytes[1] === 0) bytes = [bytes[0] as number];
  const last = bytes[bytes.length - 1] as number;
  let unused = 0;
  while (unused < 8 && (last & (1 << unused)) === 0) unused++;
  return tlv(Tag.BitString, Buffer.from([unused % 8, ...bytes]));
}

/** basicConstraints value (cA=false encodes as an empty SEQUENCE, DER omits the default). */
export function basicConstraintsValue(ca: boolean, pathLen?: number): Buffer {
  if (!ca) return sequence();
  return pathLen === undefined ? sequence(boolean(true)) : sequence(boolean(true), integer(pathLen));
}

/** subjectAltName with URI names (GeneralName [6] IA5String) and DNS names ([2]). */
export function subjectAltNameValue(uris: string[], dnsNames: string[] = []): Buffer {
  return sequence(
    ...uris.map((u) => tlv(0x86, Buffer.from(u, "ascii"))),
    ...dnsNames.map((d) => tlv(0x82, Buffer.from(d, "ascii"))),
  );
}

/** extKeyUsage value. */
export function extKeyUsageValue(purposes: string[]): Buffer {
  return sequence(...purposes.map((p) => oid(p)));
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(subjectPublicKeyBits: Uint8Array): Buffer {
  return createHash("sha1").update(subjectPublicKeyBits).digest();
}

/** subjectKeyIdentifier value. */
export const subjectKeyIdentifierValue = (keyId: Uint8Array): Buffer => octetString(keyId);

/** authorityKeyIdentifier value with the keyIdentifier ([0] IMPLICIT) only. */
export const authorityKeyIdentifierValue = (keyId: Uint8Array): Buffer => sequence(tlv(0x80, keyId));

/** Pre-encoded leaf extensions that never change between SVIDs. */
export const LEAF_EXTENSIONS = {
  basicConstraints: extension(Oid.basicConstraints, true, basicConstraintsValue(false)),
  keyUsageEc: extension(Oid.keyUsage, true, keyUsageValue([KeyUsage.digitalSignature])),
  keyUsageRsa: extension(
    Oid.keyUsage,
    true,
    keyUsageValue([KeyUsage.digitalSignature, KeyUsage.keyEncipherment]),
  ),
  extKeyUsage: extension(Oid.extKeyUsage, false, extKeyUsageValue([Oid.serverAuth, Oid.clientAuth])),
} as const;
