import type { X509Certificate } from "node:crypto";
import http2 from "node:http2";
import zlib from "node:zlib";
import type { CallHandler, ServerCall } from "../call.js";
import { GrpcStatus } from "../grpc-status.js";
import type { Logger } from "../logger.js";
import { type ConnectionResets, ResetState, type ResetTracked } from "../reset-budget.js";
import { percentEncode, requestMetadata } from "./grpc-headers.js";
import { MessageReader, type ReaderLimits, type ScratchBuffer } from "./message-reader.js";

/** What the calls of one transport share (one object per transport). */
export interface GrpcCallContext extends ReaderLimits {
  readonly logger: Logger;
  /** Largest request message accepted (also after decompression). */
  readonly maxReceiveMessageBytes: number;
  /** Shared buffer for assembling messages that span DATA frames. */
  readonly scratch: ScratchBuffer;
}

/** What a call shows of its connection (one object per connection, shared by its calls). */
export interface GrpcCallConnection {
  /** The client's address, `host:port`, read when the connection was accepted. */
  readonly peer: string;
  /** The verified client certificate (see ServerCall.peerCertificate). */
  readonly peerCertificate: X509Certificate | undefined;
}

const CALL = Symbol("meshlet.grpcCall");
type CallStream = http2.ServerHttp2Stream & { [CALL]: GrpcCall };

/** Status code of a call not finished yet. */
const UNFINISHED = -1;

/** The metadata of every request that has none of its own (most: a proxy sends none). */
const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({});

// The stream's listeners, one function each for every call (`this` is the stream), assigned in
// GrpcCall's static block so that they may call its private methods.
let onStreamError: (this: CallStream, err: Error) => void;
let onStreamAborted: (this: CallStream) => void;
let onStreamEnd: (this: CallStream) => void;
let onStreamClose: (this: CallStream) => void;
let onStreamData: (this: CallStream, chunk: Buffer) => void;
let onWantTrailers: (this: CallStream) => void;
/** MessageReader's callback (`this` is the call). */
let deliver: (this: GrpcCall, message: Buffer, compressed: boolean, ephemeral: boolean) => boolean;

/**
 * One gRPC call on an HTTP/2 stream ("gRPC over HTTP2": request headers, length-prefixed
 * messages, status in trailers): the {@link ServerCall} handed to the service, the reader of its
 * request messages, and the reset budget's record of its stream, in one object. The stream's
 * listeners are functions shared by every call (`this` is the stream, which holds its call under
 * a symbol), so an idle call costs this object and no closures.
 *
 * {@link GrpcCall.accept} follows every stream of the transport (errors, the reset budget's
 * bucket of its connection);
 * {@link GrpcCall.serve} answers the headers of a routed one, hands each request message to the
 * service, and ends with `grpc-status` in trailers that follow every message written.
 */
export class GrpcCall extends MessageReader implements ServerCall, ResetTracked {
  /** The service's side; set by serve(). */
  private handler: CallHandler | undefined = undefined;
  /** The status the call ended with (UNFINISHED until then) and its message. */
  private code = UNFINISHED;
  private details = "";
  private encoding = "identity";
  /** The request's custom metadata (see ServerCall.metadata); set by serve(). */
  metadata: Readonly<Record<string, string>> = NO_METADATA;
  /** The connection's reset bucket, when the budget follows this stream. */
  private resets: ConnectionResets | undefined = undefined;
  resetState: ResetState = ResetState.Open;

  /** The transport's shared context (the reader's limits too). */
  declare protected readonly limits: GrpcCallContext;

  private constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly connection: GrpcCallConnection,
    context: GrpcCallContext,
  ) {
    super(context);
  }

  /**
   * Follows a new stream until it closes: logs its errors (a stream without an `error` listener
   * would crash the server) and reports it to the reset budget. The call is not served yet.
   */
  static accept(
    stream: http2.ServerHttp2Stream,
    connection: GrpcCallConnection,
    resets: ConnectionResets | undefined,
    context: GrpcCallContext,
  ): GrpcCall {
    const call = new GrpcCall(stream, connection, context);
    (stream as CallStream)[CALL] = call;
    stream.on("error", onStreamError);
    call.resets = resets;
    if (resets) stream.on("aborted", onStreamAborted);
    stream.on("end", onStreamEnd);
    stream.on("close", onStreamClose);
    return call;
  }

  /** Serves the call: answers the headers, opens the service and reads its request messages. */
  serve(headers: http2.IncomingHttpHeaders, open: (call: ServerCall) => CallHandler): void {
    this.encoding = String(headers["grpc-encoding"] ?? "identity");
    this.stream.respond(
      {
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-accept-encoding": "identity,deflate,gzip",
      },
      { waitForTrailers: true },
    );
    this.metadata = requestMetadata(headers, NO_METADATA);
    this.handler = open(this);
    this.stream.on("data", onStreamData);
  }

  get peer(): string {
    return this.connection.peer;
  }

  get peerCertificate(): X509Certificate | undefined {
    return this.connection.peerCertificate;
  }

  write(framed: Buffer, done: (error?: Error | null) => void): void {
    const stream = this.stream;
    if (this.code !== UNFINISHED || stream.destroyed || stream.writableEnded) {
      // Asynchronously, as a real write completes: a scheduler may start the next write from
      // this callback, and a run of closed streams must not nest those calls.
      process.nextTick(done);
      return;
    }
    stream.write(framed, done);
  }

  /** Ends the stream with a status: the trailers follow every message already written. */
  finish(code: number, details: string): void {
    if (this.code !== UNFINISHED) return;
    this.code = code;
    this.details = details;
    const stream = this.stream;
    if (!stream.destroyed && !stream.writableEnded) {
      // Trailers are asked for once our side has ended, which only this does: the listener is
      // added here rather than kept on every idle stream.
      stream.on("wantTrailers", onWantTrailers);
      stream.end();
    }
  }

  private sendTrailers(): void {
    const code = this.code === UNFINISHED ? GrpcStatus.OK : this.code;
    try {
      this.stream.sendTrailers(
        this.details
          ? { "grpc-status": String(code), "grpc-message": percentEncode(this.details) }
          : { "grpc-status": String(code) },
      );
    } catch (err) {
      this.limits.logger.debug(`xds: could not send trailers: ${(err as Error).message}`);
    }
  }

  private onData(chunk: Buffer): void {
    if (this.code !== UNFINISHED) return;
    try {
      this.push(chunk, deliver);
    } catch (err) {
      this.handler?.close((err as Error).message);
      this.finish(GrpcStatus.RESOURCE_EXHAUSTED, (err as Error).message);
    }
  }

  /** One request message; false stops reading (the call ended). */
  private onMessage(message: Buffer, compressed: boolean, ephemeral: boolean): boolean {
    if (this.code !== UNFINISHED) return false;
    const handler = this.handler as CallHandler;
    let bytes = message;
    if (compressed) {
      try {
        bytes = decompress(this.encoding, message, this.limits.maxReceiveMessageBytes);
        ephemeral = false;
      } catch (err) {
        const text = (err as Error).message;
        handler.close(text);
        this.finish(this.encoding === "identity" ? GrpcStatus.INTERNAL : GrpcStatus.UNIMPLEMENTED, text);
        return false;
      }
    }
    handler.message(bytes, ephemeral);
    return this.code === UNFINISHED;
  }

  private onAborted(): void {
    this.resets?.settled(this, true);
  }

  private onEnd(): void {
    this.resets?.halfClosed(this);
    this.handler?.end();
  }

  private onClose(): void {
    // A stream that ended with a reset (the client's, or one we sent: counted too, to be safe).
    this.resets?.settled(this, this.stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR);
    this.handler?.close(this.code !== UNFINISHED ? undefined : "cancelled");
  }

  private onError(err: Error): void {
    this.limits.logger.debug(`xds: stream error: ${err.message}`);
  }

  static {
    onStreamError = function (this: CallStream, err: Error) {
      this[CALL].onError(err);
    };
    onStreamAborted = function (this: CallStream) {
      this[CALL].onAborted();
    };
    onStreamEnd = function (this: CallStream) {
      this[CALL].onEnd();
    };
    onStreamClose = function (this: CallStream) {
      this[CALL].onClose();
    };
    onStreamData = function (this: CallStream, chunk: Buffer) {
      this[CALL].onData(chunk);
    };
    onWantTrailers = function (this: CallStream) {
      this[CALL].sendTrailers();
    };
    deliver = function (this: GrpcCall, message: Buffer, compressed: boolean, ephemeral: boolean) {
      return this.onMessage(message, compressed, ephemeral);
    };
  }
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
