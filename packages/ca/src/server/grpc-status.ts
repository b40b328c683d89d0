import { Metadata, type StatusObject, status } from "@grpc/grpc-js";
import { CaError, type CaErrorCode } from "../ca-error.js";

const STATUS_BY_CODE: Partial<Record<CaErrorCode, status>> = {
  unauthenticated: status.UNAUTHENTICATED,
  "permission-denied": status.PERMISSION_DENIED,
  "identity-mismatch": status.PERMISSION_DENIED,
  "foreign-trust-domain": status.PERMISSION_DENIED,
  "no-identity": status.PERMISSION_DENIED,
  "external-signer": status.UNAVAILABLE,
  "ca-material": status.INTERNAL,
  "ca-expired": status.INTERNAL,
  "key-mismatch": status.INTERNAL,
};

/**
 * Maps any error to a gRPC status a client can act on: request problems are INVALID_ARGUMENT,
 * identity problems PERMISSION_DENIED/UNAUTHENTICATED, signer outages UNAVAILABLE. Unknown errors
 * become INTERNAL without leaking their message.
 */
export function toGrpcStatus(error: unknown): Partial<StatusObject> {
  if (error instanceof CaError) {
    return {
      code: STATUS_BY_CODE[error.code] ?? status.INVALID_ARGUMENT,
      details: `${error.code}: ${error.message}`,
      metadata: new Metadata(),
    };
  }
  return {
    code: status.INTERNAL,
    details: "internal error in the certificate authority",
    metadata: new Metadata(),
  };
}
