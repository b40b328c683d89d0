/**
 * gRPC status codes (grpc/grpc doc/statuscodes.md), the one table every part of the server uses:
 * transports, streams, the authorize hook and CSDS. A number, as on the wire (`grpc-status`).
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC status code. */
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];

/** Whether a number is a gRPC status code (0–16). */
export function isGrpcStatusCode(code: unknown): code is GrpcStatusCode {
  return typeof code === "number" && Number.isInteger(code) && code >= 0 && code <= 16;
}
