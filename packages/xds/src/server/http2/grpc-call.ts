import type http2 from "node:http2";
import zlib from "node:zlib";
import type { CallHandler, ServerCall } from "../call.js";
import { GrpcStatus } from "../grpc-status.js";
import type { Logger } from "../logger.js";
import { percentEncode, requestMetadata } from "./grpc-headers.js";
import { MessageReader, type ScratchBuffer } from "./message-reader.js";
import { peerOf, verifiedPeerCertificate } from "./peer.js";

/** What one call needs from its transport. */
export interface GrpcCallOptions {
  readonly logger: Logger;
  /** Largest request message accepted (after decompression). */
  readonly maxReceiveMessageBytes: number;
  /** Shared buffer for assembling messages that span DATA frames. */
  readonly scratch: ScratchBuffer;
}

/**
 * Serves one gRPC call on an HTTP/2 stream ("gRPC over HTTP2": request headers, length-prefixed
 * messages, status in trailers): answers the headers, hands each request message to the service,
 * and ends with `grpc-status` in trailers that follow every message written.
 */
export function serveGrpcCall(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  open: (call: ServerCall) => CallHandler,
  options: GrpcCallOptions,
): void {
  const encoding = String(headers["grpc-encoding"] ?? "identity");
  stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-accept-encoding": "identity,deflate,gzip",
    },
    { waitForTrailers: true },
  );
  let status: { code: number; details: string } | undefined;
  stream.on("wantTrailers", () => {
    const s = status ?? { code: GrpcStatus.OK, details: "" };
    try {
      stream.sendTrailers({
        "grpc-status": String(s.code),
        ...(s.details ? { "grpc-message": percentEncode(s.details) } : {}),
      });
    } catch (err) {
      options.logger.debug(`xds: could not send trailers: ${(err as Error).message}`);
    }
  });
  /** Ends the stream with a status: the trailers follow every message already written. */
  const finish = (code: number, details: string) => {
    if (status) return;
    status = { code, details };
    if (!stream.destroyed && !stream.writableEnded) stream.end();
  };
  const call: ServerCall = {
    peer: peerOf(stream.session),
    metadata: requestMetadata(headers),
    peerCertificate: verifiedPeerCertificate(stream.session),
    write: (framed, done) => {
      if (status || stream.destroyed || stream.writableEnded) {
        // Asynchronously, as a real write completes: a scheduler may start the next write from
        // this callback, and a run of closed streams must not nest those calls.
        process.nextTick(done);
        return;
      }
      stream.write(framed, done);
    },
    finish,
  };
  const handler = open(call);
  const reader = new MessageReader(options.maxReceiveMessageBytes, options.scratch);
  const onMessage = (message: Buffer, compressed: boolean, ephemeral: boolean): boolean => {
    if (status) return false;
    let bytes = message;
    if (compressed) {
      try {
        bytes = decompress(encoding, message, options.maxReceiveMessageBytes);
        ephemeral = false;
      } catch (err) {
        const text = (err as Error).message;
        handler.close(text);
        finish(encoding === "identity" ? GrpcStatus.INTERNAL : GrpcStatus.UNIMPLEMENTED, text);
        return false;
      }
    }
    handler.message(bytes, ephemeral);
    return status === undefined;
  };
  stream.on("data", (chunk: Buffer) => {
    if (status) return;
    try {
      reader.push(chunk, onMessage);
    } catch (err) {
      handler.close((err as Error).message);
      finish(GrpcStatus.RESOURCE_EXHAUSTED, (err as Error).message);
    }
  });
  stream.on("end", () => handler.end());
  stream.on("close", () => handler.close(status ? undefined : "cancelled"));
}

/** A trailers-only response: the call ends with a status before any message. */
export function trailersOnly(stream: http2.ServerHttp2Stream, code: number, details: string): void {
  stream.respond(
    {
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": String(code),
      "grpc-message": percentEncode(details),
    },
    { endStream: true },
  );
}

function decompress(encoding: string, bytes: Buffer, max: number): Buffer {
  const options = { maxOutputLength: max };
  if (encoding === "gzip") return zlib.gunzipSync(bytes, options);
  if (encoding === "deflate") return zlib.inflateSync(bytes, options);
  if (encoding === "identity") throw new Error("compressed message on a stream without grpc-encoding");
  throw new Error(`grpc-encoding ${encoding} is not supported (identity, deflate, gzip are)`);
}
