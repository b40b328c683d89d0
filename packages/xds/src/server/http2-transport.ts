import http2 from "node:http2";
import zlib from "node:zlib";
import { XdsError } from "../errors.js";
import type { Logger } from "./logger.js";
import { GRPC_PREFIX } from "./responses.js";
import type { XdsMethod } from "./services.js";
import type { StreamTransport } from "./stream.js";

/**
 * gRPC's bidirectional streaming over `node:http2`, just as much of it as xDS needs (the
 * "gRPC over HTTP2" protocol document: request headers, length-prefixed messages, status in
 * trailers). Why not grpc-js here: grpc-js copies every message into a frame of its own per
 * stream, so a 1 MB push to 5,000 streams allocates, copies and collects 5 GB. This transport
 * writes the one framed buffer ResponseCache built to every stream that gets it.
 * `XdsServer.register()` still mounts the same services on a grpc-js server you own.
 */

/** gRPC status codes used here. */
const Status = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** What XdsServer does with one stream. */
export interface StreamHandle {
  /**
   * One request message (uncompressed, without its prefix). `ephemeral` bytes are reused once
   * the call returns: copy whatever is kept.
   */
  message(bytes: Buffer, ephemeral: boolean): void;
  /** The client half-closed: the stream ends with OK. */
  end(): void;
  /** The stream is gone (cancelled, reset, connection lost, or ended). */
  close(error?: string): void;
}

export interface Http2TransportOptions {
  readonly methods: ReadonlyMap<string, XdsMethod>;
  readonly open: (method: XdsMethod, transport: StreamTransport) => StreamHandle;
  readonly logger: Logger;
  readonly tls?: http2.SecureServerOptions;
  /** Largest request message accepted (after decompression). */
  readonly maxReceiveMessageBytes: number;
  /** Interval of server keepalive PINGs; a PING not answered in `keepaliveTimeoutMs` drops the connection. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Streams one connection may have open at once. */
  readonly maxConcurrentStreams: number;
}

/** A node:http2 server speaking gRPC for the given xDS methods. */
export class Http2Transport {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Assembles multi-frame requests of every stream (one at a time: JS is single-threaded). */
  private readonly scratch = new ScratchBuffer();

  constructor(private readonly options: Http2TransportOptions) {
    const settings: http2.ServerOptions = {
      // Outbound bytes are bounded by XdsServer's WriteScheduler; Node's own per-session cap
      // (10 MB by default) would otherwise refuse new streams of a busy connection.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      // Announced, unlike grpc-js (whose clients then assume 100): one proxy needs one stream,
      // an aggregating client a few thousand; the cap bounds what one connection can cost.
      settings: { maxConcurrentStreams: options.maxConcurrentStreams },
    };
    this.server = options.tls
      ? http2.createSecureServer({ ...settings, ...options.tls, allowHTTP1: false })
      : http2.createServer(settings);
    this.server.on("session", (session) => this.onSession(session));
    this.server.on("stream", (stream, headers) => {
      try {
        this.onStream(stream, headers);
      } catch (err) {
        // e.g. the client reset the stream before we answered: never let one stream take the
        // server down.
        options.logger.debug(`xds: stream from ${peerOf(stream.session)} failed: ${(err as Error).message}`);
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      }
    });
    this.server.on("sessionError", (err) =>
      options.logger.debug(`xds: HTTP/2 session error: ${err.message}`),
    );
  }

  /** Listens on `host:port` (port 0 picks one) or `unix:/path`. */
  async listen(address: string): Promise<{ port: number; address: string }> {
    const server = this.server;
    let listen: () => void;
    if (address.startsWith("unix:")) {
      const path = address.slice("unix:".length).replace(/^\/\/(?=\/)/, "");
      listen = () => server.listen(path);
    } else {
      const at = address.lastIndexOf(":");
      const port = Number(address.slice(at + 1));
      if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
        throw new XdsError(
          "invalid-argument",
          `cannot listen on ${address}: expected host:port or unix:/path`,
        );
      }
      const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
      listen = () => server.listen(port, host === "" ? undefined : host);
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        server.off("listening", onListening);
        reject(
          new XdsError("invalid-argument", `cannot listen on ${address}: ${err.message}`, { cause: err }),
        );
      };
      const onListening = () => {
        server.off("error", onError);
        resolve();
      };
      server.once("error", onError);
      server.once("listening", onListening);
      listen();
    });
    // From now on a server error (e.g. accept() failing with EMFILE) is logged, not thrown.
    server.on("error", (err) => this.options.logger.error(`xds: server on ${address}: ${err.message}`));
    const bound = server.address();
    if (bound === null || typeof bound === "string") return { port: 0, address };
    const host = address.slice(0, address.lastIndexOf(":"));
    return { port: bound.port, address: `${host}:${bound.port}` };
  }

  /**
   * Stops accepting connections and sends GOAWAY on every connection (streams already ended by
   * the caller finish); connections still open after `graceMs` are destroyed.
   */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    const force = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, graceMs);
    force.unref();
    await closed;
    clearTimeout(force);
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    const { keepaliveTimeMs, keepaliveTimeoutMs } = this.options;
    // Proxies hold streams for hours: keepalive PINGs find peers that went away silently.
    const keepalive = setInterval(() => {
      if (session.closed || session.destroyed) return;
      const timeout = setTimeout(() => {
        this.options.logger.warn(
          `xds: connection from ${peerOf(session)} did not answer a keepalive PING within ${keepaliveTimeoutMs} ms; closing it`,
        );
        session.destroy();
      }, keepaliveTimeoutMs);
      timeout.unref();
      try {
        session.ping((err) => {
          clearTimeout(timeout);
          if (err && !session.destroyed) session.destroy();
        });
      } catch {
        clearTimeout(timeout);
      }
    }, keepaliveTimeMs);
    keepalive.unref();
    session.on("error", (err) =>
      this.options.logger.debug(`xds: connection ${peerOf(session)}: ${err.message}`),
    );
    session.on("close", () => {
      clearInterval(keepalive);
      this.sessions.delete(session);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", (err) => this.options.logger.debug(`xds: stream error: ${err.message}`));
    if (headers[":method"] !== "POST") {
      stream.respond({ ":status": 405 }, { endStream: true });
      return;
    }
    const contentType = String(headers["content-type"] ?? "");
    if (!contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    const path = String(headers[":path"] ?? "");
    const method = this.options.methods.get(path);
    if (!method) {
      trailersOnly(stream, Status.UNIMPLEMENTED, `unknown method ${path}: this server serves xDS only`);
      return;
    }
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
      const s = status ?? { code: Status.OK, details: "" };
      try {
        stream.sendTrailers({
          "grpc-status": String(s.code),
          ...(s.details ? { "grpc-message": percentEncode(s.details) } : {}),
        });
      } catch (err) {
        this.options.logger.debug(`xds: could not send trailers: ${(err as Error).message}`);
      }
    });
    /** Ends the stream with a status: the trailers follow every response already written. */
    const finish = (code: number, details: string) => {
      if (status) return;
      status = { code, details };
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    };
    const transport: StreamTransport = {
      peer: peerOf(stream.session),
      write: (framed, done) => {
        if (status || stream.destroyed || stream.writableEnded) {
          // Asynchronously, as a real write completes: the scheduler may start the next write
          // from this callback, and a run of closed streams must not nest those calls.
          process.nextTick(done);
          return;
        }
        stream.write(framed, done);
      },
      fail: finish,
    };
    const handle = this.options.open(method, transport);
    const reader = new MessageReader(this.options.maxReceiveMessageBytes, this.scratch);
    const onMessage = (message: Buffer, compressed: boolean, ephemeral: boolean): boolean => {
      if (status) return false;
      let bytes = message;
      if (compressed) {
        try {
          bytes = decompress(encoding, message, this.options.maxReceiveMessageBytes);
          ephemeral = false;
        } catch (err) {
          const text = (err as Error).message;
          handle.close(text);
          finish(encoding === "identity" ? Status.INTERNAL : Status.UNIMPLEMENTED, text);
          return false;
        }
      }
      handle.message(bytes, ephemeral);
      return status === undefined;
    };
    stream.on("data", (chunk: Buffer) => {
      if (status) return;
      try {
        reader.push(chunk, onMessage);
      } catch (err) {
        handle.close((err as Error).message);
        finish(Status.RESOURCE_EXHAUSTED, (err as Error).message);
      }
    });
    stream.on("end", () => {
      handle.end();
      finish(Status.OK, "");
    });
    stream.on("close", () => handle.close(status ? undefined : "cancelled"));
  }
}

function trailersOnly(stream: http2.ServerHttp2Stream, code: number, details: string): void {
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

/**
 * grpc-message encoding (gRPC over HTTP2): printable ASCII other than "%" stays as it is; every
 * other byte of the UTF-8 text becomes %XX.
 */
export function percentEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

function peerOf(session: http2.Http2Session | undefined): string {
  const socket = session?.socket;
  if (!socket?.remoteAddress) return "unknown";
  return socket.remoteFamily === "IPv6"
    ? `[${socket.remoteAddress}]:${socket.remotePort}`
    : `${socket.remoteAddress}:${socket.remotePort}`;
}

function decompress(encoding: string, bytes: Buffer, max: number): Buffer {
  const options = { maxOutputLength: max };
  if (encoding === "gzip") return zlib.gunzipSync(bytes, options);
  if (encoding === "deflate") return zlib.inflateSync(bytes, options);
  if (encoding === "identity") throw new Error("compressed message on a stream without grpc-encoding");
  throw new Error(`grpc-encoding ${encoding} is not supported (identity, deflate, gzip are)`);
}

/**
 * Splits a byte stream into gRPC length-prefixed messages, handing each to `onMessage` as soon as
 * it is complete. A message that arrived in one chunk is a view of that chunk. One that spans
 * chunks is assembled in `scratch`, a buffer shared by every stream of a transport and reused for
 * the next message: such a message is flagged `ephemeral`, valid only during the call (decoders
 * copy what they keep). A SotW ACK listing 1,000 names is ≈ 48 KB, several DATA frames: without
 * the scratch buffer 5,000 of them would allocate 240 MB per push.
 */
export class MessageReader {
  private readonly prefix = Buffer.alloc(GRPC_PREFIX);
  private prefixGot = 0;
  private length = -1;
  private compressed = false;
  private parts: Buffer[] = [];
  private got = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly scratch: ScratchBuffer = new ScratchBuffer(),
  ) {}

  /**
   * Consumes a chunk; `onMessage` returns false to stop reading (the stream was ended).
   * Throws when a message is larger than `maxBytes`.
   */
  push(chunk: Buffer, onMessage: (bytes: Buffer, compressed: boolean, ephemeral: boolean) => boolean): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.length < 0) {
        const take = Math.min(GRPC_PREFIX - this.prefixGot, chunk.length - i);
        chunk.copy(this.prefix, this.prefixGot, i, i + take);
        this.prefixGot += take;
        i += take;
        if (this.prefixGot < GRPC_PREFIX) break;
        this.prefixGot = 0;
        this.compressed = this.prefix[0] === 1;
        this.length = this.prefix.readUInt32BE(1);
        if (this.length > this.maxBytes) {
          throw new Error(`received a message of ${this.length} bytes; the limit is ${this.maxBytes}`);
        }
        this.parts = [];
        this.got = 0;
      }
      const take = Math.min(this.length - this.got, chunk.length - i);
      if (take > 0) this.parts.push(chunk.subarray(i, i + take));
      this.got += take;
      i += take;
      if (this.got === this.length) {
        const parts = this.parts;
        const length = this.length;
        this.parts = [];
        this.length = -1;
        const keepGoing =
          parts.length <= 1
            ? onMessage(parts[0] ?? Buffer.alloc(0), this.compressed, false)
            : onMessage(this.scratch.assemble(parts, length), this.compressed, true);
        if (!keepGoing) return;
      }
    }
  }
}

/** A reusable buffer for assembling messages (see MessageReader); big one-offs are not kept. */
export class ScratchBuffer {
  private buffer = Buffer.allocUnsafe(0);

  constructor(private readonly keepBytes = 1024 * 1024) {}

  assemble(parts: readonly Buffer[], length: number): Buffer {
    let target = this.buffer;
    if (target.length < length) {
      target = Buffer.allocUnsafe(Math.max(length, 64 * 1024));
      if (target.length <= this.keepBytes) this.buffer = target;
    }
    let at = 0;
    for (const p of parts) {
      p.copy(target, at);
      at += p.length;
    }
    return target.subarray(0, length);
  }
}
