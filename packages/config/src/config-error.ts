/**
 * Machine-readable reasons a {@link ConfigError} is thrown.
 *
 * Validation problems in user config are never thrown: they are reported as {@link Diagnostic}s so
 * one bad resource cannot take down the rest. `ConfigError` is for programming and environment
 * errors: a kind registered twice, a source that cannot start, a misused API.
 */
export type ConfigErrorCode =
  | "KIND_CONFLICT"
  | "UNKNOWN_KIND"
  | "INVALID_ARGUMENT"
  | "ASYNC_SCHEMA"
  | "SOURCE_FAILED";

/**
 * The one error class of `@meshlet/config`: a `code` to branch on, the raw message, and the
 * underlying `cause` when another library failed.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** Why it failed, stable across releases. */
  readonly code: ConfigErrorCode;
  /** The message without the code prefix. */
  readonly rawMessage: string;

  constructor(code: ConfigErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[${code}] ${message}`, options);
    this.code = code;
    this.rawMessage = message;
  }
}
