import type {
  HeaderMatcher,
  QueryParameterMatcher,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import type { StringMatcher } from "@meshlet/api/envoy/type/matcher/v3/string_pb";

// Envoy's matchers, evaluated as Envoy's docs define them (envoyproxy/envoy api/envoy/type/matcher/v3/
// string.proto, regex.proto; config/route/v3/route_components.proto `HeaderMatcher`,
// `QueryParameterMatcher`). Written for explain's walker; shares nothing with the generators.

const regexCache = new Map<string, RegExp | null>();

/**
 * A RE2 pattern as a JavaScript RegExp matching the whole input (Envoy: "the regex is matched
 * against the full string, not as a partial match"). RE2 and JS agree on the syntax Istio writes
 * (anchors, classes, quantifiers); a pattern JS cannot compile never matches.
 */
export function fullMatchRegex(pattern: string): RegExp | undefined {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(`^(?:${pattern})$`, "u");
    } catch {
      try {
        re = new RegExp(`^(?:${pattern})$`);
      } catch {
        re = null;
      }
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re ?? undefined;
}

/** `envoy.type.matcher.v3.StringMatcher` on a value (`ignore_case` for exact/prefix/suffix/contains). */
export function matchString(m: StringMatcher, value: string): boolean {
  const p = m.matchPattern;
  const fold = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  switch (p.case) {
    case "exact":
      return fold(value) === fold(p.value);
    case "prefix":
      return fold(value).startsWith(fold(p.value));
    case "suffix":
      return fold(value).endsWith(fold(p.value));
    case "contains":
      return fold(value).includes(fold(p.value));
    case "safeRegex":
      return fullMatchRegex(p.value.regex)?.test(value) ?? false;
    default:
      return false;
  }
}

/** A request's headers, names lower-case; pseudo-headers (`:path`, `:method`, `:authority`) included. */
export type Headers = ReadonlyMap<string, string>;

/**
 * `HeaderMatcher` (route_components.proto): the header's value against `string_match` (or the
 * legacy exact/regex/prefix/suffix/contains fields), `present_match`, `range_match`;
 * `treat_missing_header_as_empty` reads a missing header as `""`; `invert_match` negates the result.
 */
export function matchHeader(m: HeaderMatcher, headers: Headers): boolean {
  const raw = headers.get(m.name.toLowerCase());
  const value = raw ?? (m.treatMissingHeaderAsEmpty ? "" : undefined);
  const s = m.headerMatchSpecifier;
  let result: boolean;
  if (value === undefined) {
    // envoyproxy/envoy source/common/http/header_utility.cc matchHeaders: a missing header matches
    // only a presence check — `present_match: false`, or `present_match: true` inverted.
    return s.case === "presentMatch" && (m.invertMatch ? s.value : !s.value);
  }
  switch (s.case) {
    case "stringMatch":
      result = matchString(s.value, value);
      break;
    case "exactMatch":
      result = value === s.value;
      break;
    case "prefixMatch":
      result = value.startsWith(s.value);
      break;
    case "suffixMatch":
      result = value.endsWith(s.value);
      break;
    case "containsMatch":
      result = value.includes(s.value);
      break;
    case "safeRegexMatch":
      result = fullMatchRegex(s.value.regex)?.test(value) ?? false;
      break;
    case "presentMatch":
      result = s.value;
      break;
    case "rangeMatch": {
      const n = /^-?\d+$/.test(value) ? BigInt(value) : undefined;
      result = n !== undefined && n >= s.value.start && n < s.value.end;
      break;
    }
    default:
      result = true;
  }
  return m.invertMatch ? !result : result;
}

/** `QueryParameterMatcher`: a parameter present (`present_match`) or whose value matches. */
export function matchQueryParameter(m: QueryParameterMatcher, query: URLSearchParams): boolean {
  const value = query.get(m.name);
  const s = m.queryParameterMatchSpecifier;
  if (s.case === "presentMatch") return value !== null;
  if (value === null) return false;
  if (s.case === "stringMatch") return matchString(s.value, value);
  return true;
}

/** Whether `address` is inside `prefix/len` (IPv4 or IPv6). */
export function inCidr(address: string, prefix: string, len: number): boolean {
  const a = ipBits(address);
  const p = ipBits(prefix);
  if (a === undefined || p === undefined || a.length !== p.length) return false;
  for (let i = 0; i < len && i < a.length; i++) if (a[i] !== p[i]) return false;
  return true;
}

function ipBits(ip: string): number[] | undefined {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
    const parts = ip.split(".").map(Number);
    if (parts.some((x) => x > 255)) return undefined;
    return parts.flatMap((x) => [...x.toString(2).padStart(8, "0")].map(Number));
  }
  if (!ip.includes(":")) return undefined;
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array<string>(Math.max(fill, 0)).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  return groups.flatMap((g) => [...Number.parseInt(g, 16).toString(2).padStart(16, "0")].map(Number));
}
