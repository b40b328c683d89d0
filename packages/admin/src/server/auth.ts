import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (h.startsWith("::ffff:")) return isLoopbackHost(h.slice(7));
  return false;
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * Whether an `Authorization` header carries `token` as a bearer token (RFC 6750: `Bearer` scheme,
 * case-insensitive, one space, then the token). The comparison takes the same time whatever the
 * header holds: both sides are hashed to equal-length digests and compared with
 * `crypto.timingSafeEqual`, so response timing reveals neither the token nor its length.
 */
export function bearerMatches(header: string | null | undefined, token: string): boolean {
  const m = /^Bearer ([\x21-\x7e]+)$/i.exec(header ?? "");
  const given = m?.[1] ?? "";
  // Always compare, even without a token, so a missing header costs the same as a wrong one.
  const equal = timingSafeEqual(digest(given), digest(token));
  return m !== null && equal;
}

/**
 * A Connect interceptor that refuses every call without `Authorization: Bearer <token>` with
 * `unauthenticated` (the call is never run).
 */
export function bearerTokenInterceptor(token: string): Interceptor {
  return (next) => async (req) => {
    if (!bearerMatches(req.header.get("authorization"), token)) {
      throw new ConnectError(
        "this admin API needs a bearer token: send Authorization: Bearer <token> (meshlet reads MESHLET_ADMIN_TOKEN)",
        Code.Unauthenticated,
      );
    }
    return next(req);
  };
}

/**
 * Whether a request's `Host` header names this machine (a loopback address or `localhost`, any
 * port). A loopback-only listener without a token checks it so that a web page cannot reach the
 * API by pointing a DNS name of its own at 127.0.0.1 (DNS rebinding): the browser would send that
 * name as the Host.
 */
export function isLoopbackHostHeader(host: string | undefined): boolean {
  if (host === undefined || host === "") return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d{1,5})?$/.exec(host);
  return m !== null && isLoopbackHost(m[1] as string);
}
