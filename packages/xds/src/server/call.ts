import type { X509Certificate } from "node:crypto";

/**
 * One gRPC call as a transport hands it to a service (an xDS stream, a CSDS call), whatever
 * carries it: meshlet's node:http2 transport or a grpc-js Server.
 */
export interface ServerCall {
  /** The client's address, `host:port`. */
  readonly peer: string;
  /** The request's custom metadata: lower-case names; pseudo-headers and gRPC's own removed. */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * The client's certificate, only when the connection is TLS and the certificate was verified
   * against the server's trusted CAs (`requestCert` with `ca`): an unverified one is never shown.
   */
  readonly peerCertificate: X509Certificate | undefined;
  /**
   * Writes one message: its bytes behind the 5-byte gRPC length prefix, possibly shared with other
   * calls (never modify them). `done` once handed to the connection (or dropped on a closed call).
   */
  write(framed: Buffer, done: (error?: Error | null) => void): void;
  /** Ends the call with a status; the trailers follow every message already written. */
  finish(code: number, details: string): void;
}

/** What a service does with the call's events. */
export interface CallHandler {
  /**
   * One request message (uncompressed, without its prefix). `ephemeral` bytes are reused once the
   * call returns: copy whatever is kept.
   */
  message(bytes: Buffer, ephemeral: boolean): void;
  /** The client half-closed its side. */
  end(): void;
  /** The call is gone (cancelled, reset, connection lost, or finished). */
  close(error?: string): void;
}

/**
 * The service of a gRPC method path, as a function that opens it for one call; undefined when the
 * path is not served (the transport answers UNIMPLEMENTED).
 */
export type CallRouter = (path: string) => ((call: ServerCall) => CallHandler) | undefined;
