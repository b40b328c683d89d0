import { isIP } from "node:net";

/**
 * protoc-gen-validate's well-known string formats, as its generated validators check them. Envoy's
 * protos use `well_known_regex` (HTTP header names and values) far more than the others; the rest
 * are here for custom types and the few Envoy fields that use them.
 */

/** RFC 1034 host name: at most 253 characters, dot-separated labels of 1–63 letters, digits or '-', no label starting or ending with '-'. A trailing dot is allowed. */
export function isHostname(s: string): boolean {
  const host = s.endsWith(".") ? s.slice(0, -1) : s;
  if (host.length === 0 || host.length > 253) return false;
  return host
    .split(".")
    .every(
      (l) =>
        l.length >= 1 &&
        l.length <= 63 &&
        /^[A-Za-z0-9-]+$/.test(l) &&
        !l.startsWith("-") &&
        !l.endsWith("-"),
    );
}

/** `address`: an IP address or a host name. */
export function isAddress(s: string): boolean {
  return isIP(s) !== 0 || isHostname(s);
}

/** `email`: a local part of at most 64 characters, '@', and a host name (at most 254 in all). */
export function isEmail(s: string): boolean {
  const addr = /^[^<]*<([^>]+)>$/.exec(s)?.[1] ?? s;
  if (addr.length > 254) return false;
  const at = addr.lastIndexOf("@");
  if (at <= 0 || at > 64) return false;
  return !/\s/.test(addr.slice(0, at)) && isHostname(addr.slice(at + 1));
}

/** `uri`: an absolute URI (with a scheme). */
export function isUri(s: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(s)) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

/** `uri_ref`: a URI or a relative reference. */
export function isUriRef(s: string): boolean {
  if (/\s/.test(s)) return false;
  try {
    new URL(s, "http://reference.invalid/");
    return true;
  } catch {
    return false;
  }
}

const uuid = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
/** `uuid`: RFC 4122 textual form. */
export function isUuid(s: string): boolean {
  return uuid.test(s);
}

/**
 * `well_known_regex` (validate.proto `KnownRegex`), with `strict` (default true): HTTP header names
 * as RFC 7230 tokens (an HTTP/2 pseudo-header's leading ':' allowed), header values without
 * control characters but tab; non-strict, both only refuse NUL, CR and LF (what Envoy's codecs
 * refuse). The character class `+-.` is a range ('+' to '.'), as in protoc-gen-validate.
 */
export const knownRegex = {
  headerName: /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/,
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
  headerValue: /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/,
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
  headerString: /^[^\u0000\u000A\u000D]*$/,
} as const;
