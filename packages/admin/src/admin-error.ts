/**
 * Why an {@link AdminError} was thrown:
 * - `insecure-bind`: the admin listener was asked to bind a non-loopback address without TLS and a
 *   bearer token (it refuses to start rather than expose the mesh's config to the network).
 * - `invalid-argument`: a misused API (a bad address, an empty token, a missing option).
 * - `listen-failed`: the address could not be bound.
 */
export type AdminErrorCode = "insecure-bind" | "invalid-argument" | "listen-failed";

/**
 * The one error class of `@meshlet/admin`: a stable `code`, the message (what, where, what to do)
 * and the underlying `cause`. Errors of calls reach clients as Connect errors (`ConnectError`) with
 * a Connect code instead.
 */
export class AdminError extends Error {
  override readonly name = "AdminError";
  readonly code: AdminErrorCode;

  constructor(code: AdminErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
