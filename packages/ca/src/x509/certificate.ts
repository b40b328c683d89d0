import {
  children,
  type DerNode,
  decode,
  expectTag,
  readBitString,
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
  /** subjectKeyIdentifier, when present. */
  readonly subjectKeyId: Buffer | undefined;
}

/** Parses an `Extensions` SEQUENCE into a map, rejecting duplicates (RFC 5280 4.2). */
export function parseExtensions(node: DerNode, what: string): Map<string, ParsedExtension> {
  const out = new Map<string, ParsedExtension>();
  for (const ext of children(expectTag(node, Tag.Sequence, what), what)) {
    const parts = children(ext, what);
    const id = readOid(parts[0] as DerNode, `${what} extnID`);
    let critical = false;
    let valueNode = parts[1];
    if (valueNode?.tag === Tag.Boolean) {
      critical = valueNode.content[0] !== 0;
      valueNode = parts[2];
    }
    const value = expectTag(valueNode, Tag.OctetString, `${what} ${id} extnValue`).content;
    if (out.has(id)) throw new CaError("malformed-der", `${what}: extension ${id} appears twice`);
    out.set(id, { critical, value });
  }
  return out;
}

/** Reads GeneralNames into URI and DNS lists (other name forms are ignored). */
export function parseSubjectAltName(value: Buffer, what: string): { uris: string[]; dnsNames: string[] } {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const name of children(decode(value, what), what)) {
    if (name.tag === 0x86) uris.push(name.content.toString("ascii"));
    else if (name.tag === 0x82) dnsNames.push(name.content.toString("ascii"));
  }
  return { uris, dnsNames };
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
  const tbs = children(expectTag(top[0], Tag.Sequence, `${what} tbsCertificate`), `${what} tbsCertificate`);
  let i = 0;
  if (tbs[0]?.tag === 0xa0) i++;
  const serial = expectTag(tbs[i++], Tag.Integer, `${what} serialNumber`);
  i++; // signature AlgorithmIdentifier
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
  const names = san ? parseSubjectAltName(san.value, `${what} subjectAltName`) : { uris: [], dnsNames: [] };
  const ski = extensions.get(Oid.subjectKeyIdentifier);
  return {
    der,
    serialNumber: serial.content,
    issuerRaw: issuer.raw,
    subjectRaw: subject.raw,
    notBefore: readTime(validity[0] as DerNode, `${what} notBefore`),
    notAfter: readTime(validity[1] as DerNode, `${what} notAfter`),
    spkiRaw: spki.raw,
    publicKeyBits: readBitString(spkiParts[1] as DerNode, `${what} subjectPublicKey`),
    extensions,
    isCa: bcParts[0]?.tag === Tag.Boolean && bcParts[0].content[0] !== 0,
    keyUsage: ku ? parseKeyUsage(ku.value, `${what} keyUsage`) : undefined,
    uris: names.uris,
    dnsNames: names.dnsNames,
    subjectKeyId: ski
      ? expectTag(decode(ski.value, `${what} SKI`), Tag.OctetString, `${what} SKI`).content
      : undefined,
  };
}

/** Whether a parsed certificate may sign certificates (cA=true and keyCertSign when key usage is present). */
export function isSigningCertificate(cert: ParsedCertificate): boolean {
  return cert.isCa && (cert.keyUsage === undefined || cert.keyUsage.has(KeyUsage.keyCertSign));
}
