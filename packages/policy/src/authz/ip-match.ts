import { isIPv4, isIPv6 } from "node:net";

/**
 * A parsed IP address: IPv4 as one unsigned 32-bit number, IPv6 as sixteen bytes. The two
 * families never match each other, as in Envoy's `CidrRange` matching.
 */
export type ParsedIp = { v4: number; v6?: undefined } | { v4?: undefined; v6: Uint8Array };

/** A parsed CIDR range. */
export interface Cidr {
  /** The network address, `prefixLen` leading bits significant. */
  ip: ParsedIp;
  prefixLen: number;
}

function v4Number(ip: string): number {
  const p = ip.split(".");
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

function v6Bytes(ip: string): Uint8Array {
  let addr = ip;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const tail4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (tail4?.[1]) {
    const n = v4Number(tail4[1]);
    addr = `${addr.slice(0, -tail4[1].length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
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

/** Parses an IP address (no zone, no brackets), or `undefined` when it is not one. */
export function parseIp(ip: string): ParsedIp | undefined {
  if (isIPv4(ip)) return { v4: v4Number(ip) };
  if (isIPv6(ip) && !ip.includes("%")) return { v6: v6Bytes(ip) };
  return undefined;
}

/**
 * Parses `1.2.3.4`, `10.0.0.0/8`, `2001:db8::/32` (a bare address is a full-length range), as
 * Go's `netip.ParsePrefix`/`ParseAddr` accept them for Istio's `ipBlocks`: the prefix length is
 * decimal and at most 32 (IPv4) or 128 (IPv6).
 */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf("/");
  const ip = parseIp(slash < 0 ? value : value.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.v4 !== undefined ? 32 : 128;
  if (slash < 0) return { ip, prefixLen: max };
  const len = value.slice(slash + 1);
  if (!/^(0|[1-9]\d{0,2})$/.test(len) || Number(len) > max) return undefined;
  return { ip, prefixLen: Number(len) };
}

/** A compiled CIDR test: whether a parsed address is inside the range. */
export type CidrMatcher = (ip: ParsedIp | undefined) => boolean;

/** Compiles a parsed range into a matcher that compares masked bits (no allocation per call). */
export function cidrMatcher(range: Cidr): CidrMatcher {
  const { ip: net, prefixLen } = range;
  if (net.v4 !== undefined) {
    const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
    const want = (net.v4 & mask) >>> 0;
    return (ip) => ip?.v4 !== undefined && (ip.v4 & mask) >>> 0 === want;
  }
  const bytes = net.v6;
  return (ip) => {
    const a = ip?.v6;
    if (a === undefined) return false;
    let bits = prefixLen;
    for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
      const m = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if (((a[i] as number) & m) !== ((bytes[i] as number) & m)) return false;
    }
    return true;
  };
}

/** Whether `ip` is inside `cidr` (both as strings); false for unparsable input. */
export function ipInCidr(ip: string | undefined, cidr: string): boolean {
  if (ip === undefined) return false;
  const range = parseCidr(cidr);
  return range !== undefined && cidrMatcher(range)(parseIp(ip));
}
