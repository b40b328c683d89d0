import { isIPv4, isIPv6 } from "node:net";

/** A parsed CIDR range. */
export interface Cidr {
  /** Address bytes (4 or 16). */
  bytes: Uint8Array;
  prefixLen: number;
}

function ipv4Bytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split(".").map((x) => Number(x)));
}

function ipv6Bytes(ip: string): Uint8Array {
  let addr = ip;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4?.[1]) {
    const b = ipv4Bytes(v4[1]);
    addr = `${addr.slice(0, -v4[1].length)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = addr.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

/** Parses an IP address into bytes, or `undefined` when it is not one. */
export function parseIp(ip: string): Uint8Array | undefined {
  if (isIPv4(ip)) return ipv4Bytes(ip);
  if (isIPv6(ip)) return ipv6Bytes(ip);
  return undefined;
}

/** Parses `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32`; a bare address is a full-length range. */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf("/");
  const bytes = parseIp(slash < 0 ? value : value.slice(0, slash));
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  const prefixLen = slash < 0 ? max : Number(value.slice(slash + 1));
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > max) return undefined;
  return { bytes, prefixLen };
}

const cidrCache = new Map<string, Cidr | undefined>();

/** Whether `ip` is inside `cidr` (both as strings); false for unparsable input. */
export function ipInCidr(ip: string | undefined, cidr: string): boolean {
  if (ip === undefined) return false;
  let range = cidrCache.get(cidr);
  if (range === undefined && !cidrCache.has(cidr)) {
    range = parseCidr(cidr);
    cidrCache.set(cidr, range);
  }
  const addr = parseIp(ip);
  if (!range || !addr || addr.length !== range.bytes.length) return false;
  let bits = range.prefixLen;
  for (let i = 0; i < addr.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (range.bytes[i]! & mask)) return false;
  }
  return true;
}
