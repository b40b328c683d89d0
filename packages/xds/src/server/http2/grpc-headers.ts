import type http2 from "node:http2";

/**
 * grpc-message encoding (gRPC over HTTP2): printable ASCII other than "%" stays as it is; every
 * other byte of the UTF-8 text becomes %XX.
 */
export function percentEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Headers that belong to HTTP/2 or to gRPC's framing, not to the caller's metadata. */
const reserved = new Set([
  "content-type",
  "te",
  "user-agent",
  "grpc-encoding",
  "grpc-accept-encoding",
  "grpc-timeout",
  "accept-encoding",
]);

/**
 * The custom metadata of a request (gRPC over HTTP2: "Custom-Metadata"): every header but the
 * pseudo-headers and the reserved ones, names lower-case as HTTP/2 sends them, repeated values
 * joined with ", " (the same reading grpc-js' Metadata gives them). A request without any gets
 * `none` when given (a shared empty object: most proxies send none, and thousands of idle
 * streams need not hold an empty object each).
 */
export function requestMetadata(
  headers: http2.IncomingHttpHeaders,
  none?: Readonly<Record<string, string>>,
): Readonly<Record<string, string>> {
  let out: Record<string, string> | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (name.startsWith(":") || reserved.has(name) || value === undefined) continue;
    out ??= {};
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out ?? none ?? {};
}
