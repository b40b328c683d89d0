import http2 from "node:http2";
import zlib from "node:zlib";
import type { Logger } from "../logger.js";
import { PolicyError } from "../policy-error.js";
import type { ListeningServer } from "./grpc-service.js";

/**
 * Unary gRPC over `node:http2`: as much of the "gRPC over HTTP2" protocol (grpc/grpc
 * `doc/PROTOCOL-HTTP2.md`) as a unary service needs: a POST with `content-type: application/grpc`,
 * one length-prefixed request message, one response message, the status in trailers (or
 * trailers-only for errors). Why not grpc-js here: per request it allocates call objects, timers,
 * metadata maps and copies of every message, which on two cores is most of the time an ext_authz
 * or rate-limit check takes (bench/policy measures both). This server hands the handler the
 * request bytes and writes its response bytes with one 5-byte prefix.
 *
 * It could serve any unary service; it lives in `@meshlet/policy` because only the policy
 * services use it today (`@meshlet/xds` has a streaming transport of its own).
 */

/** gRPC status codes used here (grpc/grpc `doc/statuscodes.md`). */
export const GrpcCode = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

/** An error a handler throws to answer with a specific gRPC status. */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One unary method: request bytes (uncompressed, unprefixed) in, response bytes out. */
export type UnaryHandler = (request: Uint8Array) => Promise<Uint8Array> | Uint8Array;

/** Options of {@link listenUnaryGrpc}. */
export interface UnaryGrpcServerOptions {
  logger: Logger;
  /** TLS (HTTP/2 over TLS with ALPN h2); plaintext HTTP/2 when absent. */
  tls?: http2.SecureServerOptions;
  /** Largest request message accepted, bytes (default 4 MiB, grpc-js's default). */
  maxReceiveMessageBytes?: number;
  /** Streams one connection may have open at once (default 1,000; Envoy opens few and multiplexes). */
  maxConcurrentStreams?: number;
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md: "Status-Message"). */
function encodeMessage(message: string): string {
  return encodeURIComponent(message).replace(/%20/g, " ");
}

function trailersOnly(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(code),
      "grpc-message": encodeMessage(message),
    },
    { endStream: true },
  );
}

/**
 * Serves unary gRPC methods (keyed by path, `/<package>.<Service>/<Method>`) on `address`
 * (`host:port`, port 0 picks one). A malformed call gets a gRPC error status; a handler that
 * throws gets `INTERNAL` (or its {@link GrpcStatusError} code); the server keeps serving.
 */
export async function listenUnaryGrpc(
  methods: ReadonlyMap<string, UnaryHandler>,
  address: string,
  options: UnaryGrpcServerOptions,
): Promise<ListeningServer> {
  const { logger } = options;
  const maxBytes = options.maxReceiveMessageBytes ?? 4 * 1024 * 1024;
  const settings: http2.ServerOptions = {
    settings: { maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 },
  };
  const server = options.tls
    ? http2.createSecureServer({ ...settings, ...options.tls, allowHTTP1: false })
    : http2.createServer(settings);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", (err) => logger.debug(`grpc: connection error: ${err.message}`));
    session.on("close", () => sessions.delete(session));
  });
  server.on("sessionError", (err) => logger.debug(`grpc: HTTP/2 session error: ${err.message}`));
  server.on("stream", (stream, headers) => {
    try {
      serve(stream, headers);
    } catch (err) {
      logger.debug(`grpc: stream failed: ${(err as Error).message}`);
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    }
  });

  function serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", (err) => logger.debug(`grpc: stream error: ${err.message}`));
    if (headers[":method"] !== "POST") {
      stream.respond({ ":status": 405 }, { endStream: true });
      return;
    }
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    const path = headers[":path"] as string;
    const handler = methods.get(path);
    if (!handler) {
      trailersOnly(stream, GrpcCode.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const encoding = headers["grpc-encoding"];
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (chunk: Buffer) => {
      if (stream.headersSent) return; // answered already (too large): the rest is discarded
      size += chunk.length;
      if (size > maxBytes + 5) {
        chunks.length = 0;
        // The complete answer goes first; a reset right behind it could overtake it, so the
        // client's remaining bytes are read and dropped until it ends or cancels the stream.
        trailersOnly(stream, GrpcCode.RESOURCE_EXHAUSTED, `request larger than ${maxBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on("end", () => {
      if (stream.destroyed || stream.headersSent) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      let message: Uint8Array;
      try {
        message = unframe(body, encoding, maxBytes);
      } catch (e) {
        const code = e instanceof GrpcStatusError ? e.code : GrpcCode.INTERNAL;
        trailersOnly(stream, code, (e as Error).message);
        return;
      }
      let result: Promise<Uint8Array> | Uint8Array;
      try {
        result = handler(message);
      } catch (e) {
        fail(stream, path, e);
        return;
      }
      if (result instanceof Uint8Array) respond(stream, result);
      else
        result.then(
          (bytes) => respond(stream, bytes),
          (e: unknown) => fail(stream, path, e),
        );
    });
  }

  function fail(stream: http2.ServerHttp2Stream, path: string, e: unknown): void {
    if (e instanceof GrpcStatusError) {
      trailersOnly(stream, e.code, e.message);
      return;
    }
    const invalid = e instanceof PolicyError && e.code === "invalid-attributes";
    if (!invalid)
      logger.error(`grpc: ${path} failed`, { path, error: e instanceof Error ? e.message : String(e) });
    trailersOnly(
      stream,
      invalid ? GrpcCode.INVALID_ARGUMENT : GrpcCode.INTERNAL,
      e instanceof Error ? e.message : String(e),
    );
  }

  function respond(stream: http2.ServerHttp2Stream, bytes: Uint8Array): void {
    if (stream.destroyed || stream.headersSent) return;
    const frame = Buffer.allocUnsafe(5 + bytes.length);
    frame[0] = 0;
    frame.writeUInt32BE(bytes.length, 1);
    frame.set(bytes, 5);
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame);
  }

  const { port } = await bind(server, address);
  server.on("error", (err) => logger.error(`grpc: server on ${address}: ${err.message}`));
  return {
    port,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        for (const s of sessions) s.close();
      }),
  };
}

/** The one message of a unary request body: 1-byte compressed flag, 4-byte length, message. */
function unframe(body: Buffer, encoding: string | string[] | undefined, maxBytes: number): Uint8Array {
  if (body.length < 5) {
    throw new GrpcStatusError(GrpcCode.INTERNAL, "expected one length-prefixed request message");
  }
  const compressed = body[0] === 1;
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) {
    throw new GrpcStatusError(GrpcCode.INTERNAL, "a unary call carries exactly one request message");
  }
  const message = body.subarray(5);
  if (!compressed) return message;
  if (encoding !== "gzip" && encoding !== "deflate") {
    throw new GrpcStatusError(
      GrpcCode.UNIMPLEMENTED,
      `compressed message with grpc-encoding ${String(encoding ?? "identity")}: only gzip and deflate are supported`,
    );
  }
  const inflated =
    encoding === "gzip"
      ? zlib.gunzipSync(message, { maxOutputLength: maxBytes })
      : zlib.inflateSync(message, { maxOutputLength: maxBytes });
  return inflated;
}

async function bind(
  server: http2.Http2Server | http2.Http2SecureServer,
  address: string,
): Promise<{ port: number }> {
  const at = address.lastIndexOf(":");
  const port = Number(address.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PolicyError("invalid-argument", `cannot listen on ${address}: expected host:port`);
  }
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(port, host === "" ? undefined : host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const bound = server.address();
  return { port: bound !== null && typeof bound === "object" ? bound.port : port };
}
