// Value formats Istio's webhook validation checks (istio/istio pkg/config/validation/agent/validation.go,
// pkg/config/security/security.go, pkg/config/labels), written from their documented behaviour.
import { isIP } from "node:net";
import { RE2 } from "re2-wasm";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const WILDCARD_DNS1123_LABEL = /^(\*|\*[-a-z0-9]*[a-z0-9]|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/;

/** A DNS-1123 label: lower-case alphanumerics and `-`, at most 63 characters. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

function dnsPreconditions(name: string): string | undefined {
  if (name.length > 255) return `domain name "${name}" too long (max 255)`;
  if (name.length === 0) return "empty domain name not allowed";
  return undefined;
}

function dnsLabels(domain: string): string | undefined {
  const parts = domain.split(".");
  const tld = parts[parts.length - 1] as string;
  if (/^[+-]?\d+$/.test(tld))
    return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (const [i, label] of parts.entries()) {
    if (i === parts.length - 1 && label === "") return undefined; // `istio.io.`
    if (!isDns1123Label(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

/** Istio's ValidateFQDN: an error text, or undefined when valid. */
export function fqdnProblem(fqdn: string): string | undefined {
  return dnsPreconditions(fqdn) ?? dnsLabels(fqdn);
}

/** Istio's ValidateWildcardDomain: a host that may start with a `*` label. */
export function wildcardDomainProblem(domain: string): string | undefined {
  const pre = dnsPreconditions(domain);
  if (pre !== undefined) return pre;
  const dot = domain.indexOf(".");
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (first.length > 63 || !WILDCARD_DNS1123_LABEL.test(first)) {
    return `domain name "${domain}" invalid (label "${first}" invalid)`;
  }
  return dot < 0 ? undefined : dnsLabels(domain.slice(dot + 1));
}

/** Istio's ValidatePartialWildCard: `*` only alone or as a leading `*.` label. */
export function partialWildcardProblem(host: string): string | undefined {
  return host.includes("*") && host !== "*" && !host.startsWith("*.")
    ? `partial wildcard "${host}" not allowed`
    : undefined;
}

/** True for an IPv4 or IPv6 address (no zone, no brackets), as Go's netip.ParseAddr accepts. */
export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** Go's netip.ParsePrefix: an address, `/`, a decimal prefix length within the family's bits. */
export function cidrProblem(value: string): string | undefined {
  const slash = value.indexOf("/");
  if (slash < 0) return `${value} is not a valid CIDR block`;
  const addr = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = isIP(addr);
  if (family === 0) return `bad CIDR range (${value}): ${addr} is not an IP address`;
  if (!/^(0|[1-9]\d{0,2})$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) {
    return `bad CIDR range (${value}): bad bits after slash: "${bits}"`;
  }
  return undefined;
}

/** Istio's security.ValidateIPs: each value an IP address or a CIDR range. */
export function ipOrCidrProblem(value: string): string | undefined {
  if (value.includes("/")) return cidrProblem(value);
  return isIpAddress(value) ? undefined : `bad IP address (${value})`;
}

/** Istio's ValidateIPSubnet (ServiceEntry addresses, destinationSubnets). */
export function ipSubnetProblem(value: string): string | undefined {
  if (value.split("/").length === 2)
    return cidrProblem(value) === undefined ? undefined : `${value} is not a valid CIDR block`;
  return isIpAddress(value) ? undefined : `${value} is not a valid IP`;
}

/** Istio's ValidatePort: 1..65535. */
export function portProblem(port: number): string | undefined {
  return Number.isInteger(port) && port >= 1 && port <= 65535
    ? undefined
    : `port number ${port} must be in the range 1..65535`;
}

const DURATION_UNIT_NS: Record<string, number> = {
  h: 3.6e12,
  m: 6e10,
  s: 1e9,
  ms: 1e6,
  us: 1e3,
  µs: 1e3,
  ns: 1,
};

/** A protobuf duration as YAML writes it (`1.5s`, `100ms`, `1h30m`), in nanoseconds; undefined if malformed. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNIT_NS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : undefined;
}

/** Istio's ValidateDuration: at least 1ms, at millisecond precision. */
export function durationProblem(text: string): string | undefined {
  const ns = parseDuration(text);
  if (ns === undefined) return `invalid duration "${text}" (e.g. 5s, 100ms, 1h)`;
  if (ns < 1e6) return "duration must be greater than 1ms";
  if (Math.round(ns) % 1e6 !== 0) return "only durations to ms precision are supported";
  return undefined;
}

/**
 * Istio's regex check: at most 1024 characters and valid RE2 syntax (Envoy matches with Google RE2;
 * this compiles with Google's RE2 built to WebAssembly, `re2-wasm`).
 */
export function regexProblem(pattern: string): string | undefined {
  if (pattern === "") return "regex string match should not be empty";
  if (pattern.length > 1024) return "regex is too large, max length allowed is 1024";
  try {
    new RE2(pattern, "u");
    return undefined;
  } catch (error) {
    const text =
      error instanceof Error
        ? error.message.replace(/^Invalid regular expression: \/.*\/u: /, "")
        : String(error);
    return `${text}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)`;
  }
}

/** Istio's ValidateHTTPHeaderName. */
export function headerNameProblem(name: string): string | undefined {
  if (name === "") return "header name cannot be empty";
  return /^[-_A-Za-z0-9]+$/.test(name) ? undefined : `header name ${name} is not a valid header name`;
}

/** Label keys and values as Kubernetes (and Istio's labels.Instance.Validate) accept them. */
export function labelProblem(key: string, value: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? "" : key.slice(0, slash);
  if (prefix !== "" && fqdnProblem(prefix) !== undefined) return `invalid tag key: ${key}`;
  if (!/^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(name) || name.length > 63)
    return `invalid tag key: ${key}`;
  if (value !== "" && (!/^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(value) || value.length > 63)) {
    return `invalid tag value: ${value}`;
  }
  return undefined;
}

/**
 * Istio's ValidateUnixAddress (the part after `unix://`): an abstract socket (`@name`) or an
 * absolute path to a file.
 */
export function unixAddressProblem(socket: string): string | undefined {
  if (socket === "") return "unix address must not be empty";
  if (socket.startsWith("@")) return undefined;
  return !socket.startsWith("/") || socket.endsWith("/")
    ? `${socket} is not an absolute path to a file`
    : undefined;
}
