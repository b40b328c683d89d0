import { CaError } from "../ca-error.js";

// A deliberately small DER (ITU-T X.690) encoder and reader: only what X.509 certificates, PKCS#10
// CSRs and SubjectPublicKeyInfo need. Certificate assembly is the hot path of a CA (the signature
// itself is native OpenSSL), so leaves are built by concatenating pre-encoded byte strings.

/** Universal and context tags used by X.509. */
export const Tag = {
  Boolean: 0x01,
  Integer: 0x02,
  BitString: 0x03,
  OctetString: 0x04,
  Null: 0x05,
  Oid: 0x06,
  Utf8String: 0x0c,
  PrintableString: 0x13,
  Ia5String: 0x16,
  UtcTime: 0x17,
  GeneralizedTime: 0x18,
  Sequence: 0x30,
  Set: 0x31,
} as const;

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one tag-length-value. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = content.length === 1 ? (content[0] as Uint8Array) : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

/** SEQUENCE of already-encoded elements. */
export const sequence = (...items: Uint8Array[]): Buffer => tlv(Tag.Sequence, ...items);
/** SET of already-encoded elements (callers pass them in DER order). */
export const set = (...items: Uint8Array[]): Buffer => tlv(Tag.Set, ...items);
/** `[n] EXPLICIT` wrapper. */
export const explicit = (n: number, ...items: Uint8Array[]): Buffer => tlv(0xa0 | n, ...items);
/** BOOLEAN. */
export const boolean = (value: boolean): Buffer => tlv(Tag.Boolean, Buffer.from([value ? 0xff : 0]));
/** OCTET STRING. */
export const octetString = (value: Uint8Array): Buffer => tlv(Tag.OctetString, value);
/** BIT STRING with no unused bits. */
export const bitString = (value: Uint8Array): Buffer => tlv(Tag.BitString, Buffer.from([0]), value);
/** UTF8String. */
export const utf8String = (value: string): Buffer => tlv(Tag.Utf8String, Buffer.from(value, "utf8"));
/** NULL. */
export const derNull = (): Buffer => Buffer.from([Tag.Null, 0]);

/** INTEGER from unsigned big-endian magnitude bytes or a non-negative number/bigint. */
export function integer(value: Uint8Array | number | bigint): Buffer {
  let bytes: Buffer;
  if (typeof value === "number" || typeof value === "bigint") {
    let hex = BigInt(value).toString(16);
    if (hex.length % 2) hex = `0${hex}`;
    bytes = Buffer.from(hex, "hex");
  } else {
    bytes = Buffer.from(value);
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0 && ((bytes[start + 1] as number) & 0x80) === 0)
    start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (((bytes[0] as number) & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(Tag.Integer, bytes);
}

/** OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((arc) => BigInt(arc));
  const first = arcs[0] as bigint;
  const second = arcs[1] as bigint;
  const out: number[] = [];
  for (const arc of [first * 40n + second, ...arcs.slice(2)]) {
    const groups: number[] = [];
    let n = arc;
    do {
      groups.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < groups.length - 1; i++) groups[i] = (groups[i] as number) | 0x80;
    out.push(...groups);
  }
  return tlv(Tag.Oid, Buffer.from(out));
}

const pad2 = (n: number): string => String(n).padStart(2, "0");

/**
 * X.509 Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 section 4.1.2.5).
 * Seconds precision, always Zulu.
 */
export function time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds()) +
    "Z";
  if (y >= 1950 && y < 2050) return tlv(Tag.UtcTime, Buffer.from(pad2(y % 100) + rest, "ascii"));
  return tlv(Tag.GeneralizedTime, Buffer.from(String(y).padStart(4, "0") + rest, "ascii"));
}

/** One decoded element; `content` and `raw` are views into the input (no copies). */
export interface DerNode {
  readonly tag: number;
  /** The whole encoding, header included. */
  readonly raw: Buffer;
  /** The value bytes. */
  readonly content: Buffer;
}

/** Reads one element at `offset`; throws `malformed-der` naming `what` on any inconsistency. */
export function readNode(input: Buffer, offset: number, what: string): DerNode & { end: number } {
  const fail = (why: string): never => {
    throw new CaError("malformed-der", `${what}: ${why} at byte ${offset}`);
  };
  if (offset + 2 > input.length) fail("truncated header");
  const tag = input[offset] as number;
  if ((tag & 0x1f) === 0x1f) fail("multi-byte tags are not used by X.509");
  let length = input[offset + 1] as number;
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) fail("indefinite length is not DER");
    if (count > 4) fail("length too large");
    if (offset + 2 + count > input.length) fail("truncated length");
    // X.690 10.1: DER lengths use the fewest octets (no leading zero, short form below 128).
    if (input[offset + 2] === 0) fail("non-minimal length (leading zero octet) is not DER");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (input[offset + 2 + i] as number);
    if (length < 0x80) fail(`non-minimal length (long form for ${length}) is not DER`);
    header += count;
  }
  const end = offset + header + length;
  if (end > input.length) fail(`length ${length} runs past the end of the input`);
  return {
    tag,
    raw: input.subarray(offset, end),
    content: input.subarray(offset + header, end),
    end,
  };
}

/** Decodes a buffer that must hold exactly one element. */
export function decode(input: Buffer, what: string): DerNode {
  const node = readNode(input, 0, what);
  if (node.end !== input.length) {
    throw new CaError(
      "malformed-der",
      `${what}: ${input.length - node.end} trailing bytes after the DER value`,
    );
  }
  return node;
}

/** The children of a constructed element, in order. */
export function children(node: DerNode, what: string): DerNode[] {
  if ((node.tag & 0x20) === 0) throw new CaError("malformed-der", `${what}: expected a constructed value`);
  const out: DerNode[] = [];
  let offset = 0;
  while (offset < node.content.length) {
    const child = readNode(node.content, offset, what);
    out.push(child);
    offset = child.end;
  }
  return out;
}

/** Checks the tag of a node. */
export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node) throw new CaError("malformed-der", `${what}: missing`);
  if (node.tag !== tag) {
    throw new CaError(
      "malformed-der",
      `${what}: expected tag 0x${tag.toString(16)}, found 0x${node.tag.toString(16)}`,
    );
  }
  return node;
}

/** Decodes an OBJECT IDENTIFIER to dotted form; refuses non-canonical encodings (X.690 8.19.2). */
export function readOid(node: DerNode, what: string): string {
  expectTag(node, Tag.Oid, what);
  const arcs: bigint[] = [];
  let value = 0n;
  let arcStart = true;
  for (const byte of node.content) {
    // X.690 8.19.2: each arc uses the fewest octets, so no arc starts with 0x80.
    if (arcStart && byte === 0x80) {
      throw new CaError("malformed-der", `${what}: OID arc padded with 0x80 is not DER`);
    }
    value = (value << 7n) | BigInt(byte & 0x7f);
    arcStart = (byte & 0x80) === 0;
    if (arcStart) {
      arcs.push(value);
      value = 0n;
    }
  }
  if (!arcStart) throw new CaError("malformed-der", `${what}: OID ends inside an arc`);
  const first = arcs.shift();
  if (first === undefined) throw new CaError("malformed-der", `${what}: empty OID`);
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs].join(".");
}

/** Decodes UTCTime or GeneralizedTime. */
export function readTime(node: DerNode, what: string): Date {
  const text = node.content.toString("ascii");
  const match =
    node.tag === Tag.UtcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : node.tag === Tag.GeneralizedTime
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (!match) throw new CaError("malformed-der", `${what}: not a DER time (${JSON.stringify(text)})`);
  const [, yy, mo, d, h, mi, s] = match.map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const year = node.tag === Tag.UtcTime ? (yy < 50 ? 2000 : 1900) + yy : yy;
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, s));
  // Date.UTC rolls month 13 or February 30 over; a real calendar time reads back unchanged.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== mo - 1 ||
    date.getUTCDate() !== d ||
    date.getUTCHours() !== h ||
    date.getUTCMinutes() !== mi ||
    date.getUTCSeconds() !== s
  ) {
    throw new CaError("malformed-der", `${what}: ${JSON.stringify(text)} is not a calendar time`);
  }
  return date;
}

/** The value of a DER BOOLEAN (one octet, 0x00 or 0xFF: X.690 11.1). */
export function readBoolean(node: DerNode, what: string): boolean {
  expectTag(node, Tag.Boolean, what);
  const v = node.content[0];
  if (node.content.length !== 1 || (v !== 0 && v !== 0xff)) {
    throw new CaError("malformed-der", `${what}: BOOLEAN must be one octet 0x00 or 0xFF in DER`);
  }
  return v === 0xff;
}

/**
 * The content of a non-negative DER INTEGER, refusing non-minimal encodings (X.690 8.3.2) and
 * negative values.
 */
export function readUnsignedInteger(node: DerNode | undefined, what: string): Buffer {
  const { content } = expectTag(node, Tag.Integer, what);
  if (content.length === 0) throw new CaError("malformed-der", `${what}: empty INTEGER`);
  const b0 = content[0] as number;
  if (content.length > 1 && b0 === 0 && ((content[1] as number) & 0x80) === 0) {
    throw new CaError("malformed-der", `${what}: INTEGER is not minimally encoded`);
  }
  if (b0 & 0x80) throw new CaError("malformed-der", `${what}: INTEGER must not be negative`);
  return content;
}

/** The bytes of a BIT STRING, requiring zero unused bits. */
export function readBitString(node: DerNode, what: string): Buffer {
  expectTag(node, Tag.BitString, what);
  if (node.content.length === 0 || node.content[0] !== 0) {
    throw new CaError("malformed-der", `${what}: BIT STRING with unused bits`);
  }
  return node.content.subarray(1);
}
