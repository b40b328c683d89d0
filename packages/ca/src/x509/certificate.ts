import {
  children,
  type DerNode,
  decode,
  expectTag,
  readBitString,
  readBoolean,
  readOid,
  readTime,
  Tag,
} from "../asn1/der.js";
import { CaError } from "../ca-error.js";
import { KeyUsage } from "./extensions.js";
import { Oid } from "./oids.js";

/** One X.509 extension as found in a certificate or CSR. */
export interface ParsedExtension {
  readonly critical: boolean;
  /** The DER inside extnValue. */
  readonly value: Buffer;
}

/** The parts of a certificate the CA needs, with raw DER slices to copy into issued certificates. */
export interface ParsedCertificate {
  readonly der: Buffer;
  /** DER of the TBSCertificate (what the signature covers). */
  readonly tbsRaw: Buffer;
  /** The outer signatureAlgorithm OID. */
  readonly signatureAlgorithm: string;
  /** DER of the outer signatureAlgorithm AlgorithmIdentifier. */
  readonly signatureAlgorithmRaw: Buffer;
  /** DER of the TBSCertificate's signature AlgorithmIdentifier (RFC 5280 4.1.1.2: equal to the outer one). */
  readonly tbsSignatureAlgorithmRaw: Buffer;
  /** The signature value. */
  readonly signature: Buffer;
  /** Attribute type OIDs of the subject Name, in order (e.g. `2.5.4.3` for a CN). */
  readonly subjectAttributeTypes: readonly string[];
  readonly serialNumber: Buffer;
  /** DER of the issuer Name, byte for byte. */
  readonly issuerRaw: Buffer;
  /** DER of the subject Name, byte for byte (copied as the issuer of certificates this one signs). */
  readonly subjectRaw: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER of SubjectPublicKeyInfo. */
  readonly spkiRaw: Buffer;
  /** The subjectPublicKey BIT STRING contents. */
  readonly publicKeyBits: Buffer;
  readonly extensions: ReadonlyMap<string, ParsedExtension>;
  /** basicConstraints cA. */
  readonly isCa: boolean;
  /** Key usage bit numbers that are set (see {@link KeyUsage}), or undefined without the extension. */
  readonly keyUsage: ReadonlySet<number> | undefined;
  /** URI SANs in order. */
  readonly uris: readonly string[];
  /** DNS SANs in order. */
  readonly dnsNames: readonly string[];
  /** Tags of other SAN name forms (email, IP, otherName, …). */
  readonly otherSanTags: readonly number[];
  /** subjectKeyIdentifier, when present. */
  readonly subjectKeyId: Buffer | undefined;
}

/** Parses an `Extensions` SEQUENCE into a map, rejecting duplicates (RFC 5280 4.2) and non-DER. */
export function parseExtensions(node: DerNode, what: string): Map<string, ParsedExtension> {
  const out = new Map<string, ParsedExtension>();
  for (const ext of children(expectTag(node, Tag.Sequence, what), what)) {
    const parts = children(expectTag(ext, Tag.Sequence, `${what} extension`), what);
    if (parts.length < 2 || parts.length > 3) {
      throw new CaError("malformed-der", `${what}: an Extension has ${parts.length} fields, expected 2 or 3`);
    }
    const id = readOid(parts[0] as DerNode, `${what} extnID`);
    let critical = false;
    let valueNode = parts[1];
    if (parts.length === 3) {
      critical = readBoolean(parts[1] as DerNode, `${what} ${id} critical`);
      valueNode = parts[2];
    }
    const value = expectTag(valueNode, Tag.OctetString, `${what} ${id} extnValue`).content;
    if (out.has(id)) throw new CaError("malformed-der", `${what}: extension ${id} appears twice`);
    out.set(id, { critical, value });
  }
  return out;
}

/** GeneralName tags (RFC 5280 4.2.1.6, context-specific IMPLICIT). */
export const GeneralNameTag = {
  otherName: 0xa0,
  rfc822Name: 0x81,
  dNSName: 0x82,
  directoryName: 0xa4,
  uniformResourceIdentifier: 0x86,
  iPAddress: 0x87,
} as const;

/** A subjectAltName read strictly: URI and DNS names in order, and every other name's tag. */
export interface SubjectAltNames {
  uris: string[];
  dnsNames: string[];
  /** Tags of names that are neither URI nor DNS (email, IP, otherName, directoryName, …). */
  otherTags: number[];
}

/** Reads GeneralNames; URI and DNS names must be ASCII (IA5String). */
export function parseSubjectAltName(value: Buffer, what: string): SubjectAltNames {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const otherTags: number[] = [];
  const names = children(expectTag(decode(value, what), Tag.Sequence, what), what);
  if (names.length === 0) throw new CaError("malformed-der", `${what}: empty GeneralNames`);
  for (const name of names) {
    if (name.tag === GeneralNameTag.uniformResourceIdentifier || name.tag === GeneralNameTag.dNSName) {
      if (name.content.some((b) => b > 0x7e || b < 0x20)) {
        throw new CaError("malformed-der", `${what}: a URI or DNS name is not printable ASCII (IA5String)`);
      }
      const text = name.content.toString("ascii");
      (name.tag === GeneralNameTag.dNSName ? dnsNames : uris).push(text);
    } else {
      otherTags.push(name.tag);
    }
  }
  return { uris, dnsNames, otherTags };
}

function parseKeyUsage(value: Buffer, what: string): Set<number> {
  const node = expectTag(decode(value, what), Tag.BitString, what);
  const bits = new Set<number>();
  const bytes = node.content.subarray(1);
  for (let i = 0; i < bytes.length * 8; i++) {
    if (((bytes[i >> 3] as number) & (0x80 >> (i & 7))) !== 0) bits.add(i);
  }
  return bits;
}

/** Parses a DER certificate. Throws `malformed-der` naming `what` when the structure is wrong. */
export function parseCertificate(der: Buffer, what = "certificate"): ParsedCertificate {
  const top = children(expectTag(decode(der, what), Tag.Sequence, what), what);
  if (top.length !== 3)
    throw new CaError("malformed-der", `${what}: expected 3 elements, found ${top.length}`);
  const tbsNode = expectTag(top[0], Tag.Sequence, `${what} tbsCertificate`);
  const tbs = children(tbsNode, `${what} tbsCertificate`);
  const outerAlgorithm = expectTag(top[1], Tag.Sequence, `${what} signatureAlgorithm`);
  const signatureAlgorithm = readOid(
    children(outerAlgorithm, what)[0] as DerNode,
    `${what} signatureAlgorithm`,
  );
  const signature = readBitString(top[2] as DerNode, `${what} signature`);
  let i = 0;
  if (tbs[0]?.tag === 0xa0) i++;
  const serial = expectTag(tbs[i++], Tag.Integer, `${what} serialNumber`);
  const innerAlgorithm = expectTag(tbs[i++], Tag.Sequence, `${what} tbsCertificate signature`);
  const issuer = expectTag(tbs[i++], Tag.Sequence, `${what} issuer`);
  const validity = children(expectTag(tbs[i++], Tag.Sequence, `${what} validity`), `${what} validity`);
  const subject = expectTag(tbs[i++], Tag.Sequence, `${what} subject`);
  const spki = expectTag(tbs[i++], Tag.Sequence, `${what} subjectPublicKeyInfo`);
  const spkiParts = children(spki, `${what} subjectPublicKeyInfo`);
  let extensions = new Map<string, ParsedExtension>();
  for (; i < tbs.length; i++) {
    const node = tbs[i] as DerNode;
    if (node.tag === 0xa3) {
      extensions = parseExtensions(children(node, `${what} extensions`)[0] as DerNode, `${what} extensions`);
    }
  }
  const bc = extensions.get(Oid.basicConstraints);
  const bcParts = bc
    ? children(decode(bc.value, `${what} basicConstraints`), `${what} basicConstraints`)
    : [];
  const ku = extensions.get(Oid.keyUsage);
  const san = extensions.get(Oid.subjectAltName);
  const names = san
    ? parseSubjectAltName(san.value, `${what} subjectAltName`)
    : { uris: [], dnsNames: [], otherTags: [] };
  const ski = extensions.get(Oid.subjectKeyIdentifier);
  const subjectAttributeTypes = children(subject, `${what} subject`).flatMap((rdn) =>
    children(rdn, `${what} subject RDN`).map((atv) =>
      readOid(children(atv, `${what} subject attribute`)[0] as DerNode, `${what} subject attribute`),
    ),
  );
  return {
    der,
    tbsRaw: tbsNode.raw,
    signatureAlgorithm,
    signatureAlgorithmRaw: outerAlgorithm.raw,
    tbsSignatureAlgorithmRaw: innerAlgorithm.raw,
    signature,
    subjectAttributeTypes,
    serialNumber: serial.content,
    issuerRaw: issuer.raw,
    subjectRaw: subject.raw,
    notBefore: readTime(validity[0] as DerNode, `${what} notBefore`),
    notAfter: readTime(validity[1] as DerNode, `${what} notAfter`),
    spkiRaw: spki.raw,
    publicKeyBits: readBitString(spkiParts[1] as DerNode, `${what} subjectPublicKey`),
    extensions,
    isCa: bcParts[0]?.tag === Tag.Boolean && readBoolean(bcParts[0], `${what} basicConstraints cA`),
    keyUsage: ku ? parseKeyUsage(ku.value, `${what} keyUsage`) : undefined,
    uris: names.uris,
    dnsNames: names.dnsNames,
    otherSanTags: names.otherTags,
    subjectKeyId: ski
      ? expectTag(decode(ski.value, `${what} SKI`), Tag.OctetString, `${what} SKI`).content
      : undefined,
  };
}

/** Whether a parsed certificate may sign certificates (cA=true and keyCertSign when key usage is present). */
export function isSigningCertificate(cert: ParsedCertificate): boolean {
  return cert.isCa && (cert.keyUsage === undefined || cert.keyUsage.has(KeyUsage.keyCertSign));
}
