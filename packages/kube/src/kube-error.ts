/** What went wrong, as a stable code callers can switch on. */
export type KubeErrorCode =
  /** A `--set` key or value, or a renderer option, is not valid. */
  | "INVALID_VALUE"
  /** A rendered manifest does not validate against Kubernetes' schema. */
  | "INVALID_MANIFEST"
  /** A pod cannot be injected (bad annotation, unknown template, unparsable proxy config). */
  | "INJECTION_FAILED"
  /** A certificate or key given to the webhook server cannot be used. */
  | "INVALID_CERTIFICATE"
  /** The Kubernetes API refused or failed a request. */
  | "KUBE_API";

/** The one error class of `@meshlet/kube`: a stable `code`, a message that says what to do, a `cause`. */
export class KubeError extends Error {
  override readonly name = "KubeError";
  readonly code: KubeErrorCode;

  constructor(code: KubeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
