/**
 * Machine-readable reasons a {@link MeshError} is thrown.
 *
 * - `INVALID_NODE`: an xDS node that does not identify a workload the way Istio's agent does (node id
 *   `type~ip~id~domain`, metadata). Servers answer it with gRPC status `INVALID_ARGUMENT` (3), as
 *   istiod's `initProxyMetadata` does (istio/istio `pilot/pkg/xds/ads.go`); see
 *   {@link MeshError.grpcCode}.
 * - `IDENTITY_MISMATCH`: the node claims a namespace its authenticated peer identity does not grant
 *   (istiod answers `PERMISSION_DENIED`, 7).
 * - `INVALID_ARGUMENT`: a misused API (e.g. an empty trust domain).
 */
export type MeshErrorCode = "INVALID_NODE" | "IDENTITY_MISMATCH" | "INVALID_ARGUMENT";

/** gRPC status codes a {@link MeshErrorCode} maps to (`google.rpc.Code` numbering). */
const GRPC_CODES: Readonly<Record<MeshErrorCode, number>> = {
  INVALID_NODE: 3, // INVALID_ARGUMENT
  IDENTITY_MISMATCH: 7, // PERMISSION_DENIED
  INVALID_ARGUMENT: 3,
};

/**
 * The one error class of `@meshlet/mesh`: a `code` to branch on, the raw message (what was wrong,
 * where, what to do), the gRPC status a server should answer with, and the underlying `cause`.
 */
export class MeshError extends Error {
  override readonly name = "MeshError";
  /** Why it failed, stable across releases. */
  readonly code: MeshErrorCode;
  /** The message without the code prefix. */
  readonly rawMessage: string;
  /** The gRPC status code (numeric) a server returns for this error. */
  readonly grpcCode: number;

  constructor(code: MeshErrorCode, message: string, options?: { cause?: unknown }) {
    super(`[${code}] ${message}`, options);
    this.code = code;
    this.rawMessage = message;
    this.grpcCode = GRPC_CODES[code];
  }
}
