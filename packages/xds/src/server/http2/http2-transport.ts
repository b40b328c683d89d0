import type { X509Certificate } from "node:crypto";
import http2 from "node:http2";
import { XdsError } from "../../errors.js";
import type { CallRouter } from "../call.js";
import { GrpcStatus } from "../grpc-status.js";
import type { Logger } from "../logger.js";
import { ConnectionResets, type ResetBudget } from "../reset-budget.js";
import { GrpcCall, type GrpcCallConnection, type GrpcCallContext, trailersOnly } from "./grpc-call.js";
import { Keepalive, type KeepaliveEntry } from "./keepalive.js";
import { ScratchBuffer } from "./message-reader.js";
import { peerOf, verifiedPeerCertificate } from "./peer.js";

/**
 * gRPC over `node:http2`, just as much of it as xDS (and CSDS) need. Why not grpc-js here:
 * grpc-js copies every message into a frame of its own per stream, so a 1 MB push to 5,000 streams
 * allocates, copies and collects 5 GB. This transport writes the one framed buffer ResponseCache
 * built to every stream that gets it. `XdsServer.register()` still mounts the same services on a
 * grpc-js server you own.
 */

/** Options of {@link Http2Transport}. */
export interface Http2TransportOptions {
  /** The service of each method path. */
  readonly route: CallRouter;
  readonly logger: Logger;
  /** TLS (mTLS with `requestCert` and `ca`); plaintext when absent. */
  readonly tls?: http2.SecureServerOptions;
  /** Largest request message accepted (after decompression). */
  readonly maxReceiveMessageBytes: number;
  /** Interval of server keepalive PINGs; a PING not answered in `keepaliveTimeoutMs` drops the connection. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Streams one connection may have open at once (announced in SETTINGS). */
  readonly maxConcurrentStreams: number;
  /** Node's per-connection HTTP/2 memory cap in MB (see ListenOptions.maxSessionMemoryMb). */
  readonly maxSessionMemoryMb: number;
  /** Rotates a connection before a burst of client cancels trips nghttp2's reset limit. */
  readonly resets: ResetBudget;
}

const CONNECTION = Symbol("meshlet.connection");
type TransportSession = http2.ServerHttp2Session & { [CONNECTION]?: Connection };

/**
 * One connection of the transport: what its calls show of it (peer, certificate), its place in
 * the keepalive schedule, and the reset budget's bucket (it is one, rather than an object of its
 * own in the budget's WeakMap). Its session holds it under a symbol; the session's listeners are
 * functions shared by every connection.
 */
class Connection extends ConnectionResets implements GrpcCallConnection, KeepaliveEntry {
  keepaliveDue = 0;
  keepalivePrev: KeepaliveEntry | undefined = undefined;
  keepaliveNext: KeepaliveEntry | undefined = undefined;
  /** The verified client certificate, read on first use (null: not read yet). */
  private certificate: X509Certificate | undefined | null = null;
  /** The client's address, read once for every call of the connection. */
  readonly peer: string;

  declare readonly session: http2.ServerHttp2Session;

  constructor(
    session: http2.ServerHttp2Session,
    readonly transport: Http2Transport,
    resets: ResetBudget,
  ) {
    super(resets, session);
    this.peer = peerOf(session);
  }

  /**
   * Read when a call first asks (an authorize hook, on the call's first request): an X509Certificate
   * per connection that is asked for, none for the others.
   */
  get peerCertificate(): X509Certificate | undefined {
    if (this.certificate === null) this.certificate = verifiedPeerCertificate(this.session);
    return this.certificate;
  }
}

/** The connection of a stream that has none any more (destroyed before it was served). */
const NO_CONNECTION: GrpcCallConnection = { peer: "unknown", peerCertificate: undefined };

function onSessionClose(this: TransportSession): void {
  const c = this[CONNECTION];
  c?.transport.keepalive.remove(c);
}

/** A node:http2 server speaking gRPC for the routed methods. */
export class Http2Transport {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  /** Every open connection, in the order their keepalive PINGs are due. */
  readonly keepalive: Keepalive;
  /** What every call of the transport shares. */
  private readonly calls: GrpcCallContext;

  constructor(private readonly options: Http2TransportOptions) {
    this.keepalive = new Keepalive(options.keepaliveTimeMs, options.keepaliveTimeoutMs, options.logger);
    this.calls = {
      logger: options.logger,
      maxReceiveMessageBytes: options.maxReceiveMessageBytes,
      // Assembles multi-frame requests of every stream (one at a time: JS is single-threaded).
      scratch: new ScratchBuffer(),
    };
    const settings: http2.ServerOptions = {
      maxSessionMemory: options.maxSessionMemoryMb,
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
    // Node forwards every error of a server's session here (its own session 'error' listener):
    // logged here rather than by a listener of ours on each session.
    this.server.on("sessionError", (err: Error, session: http2.ServerHttp2Session) => {
      options.logger.debug(`xds: HTTP/2 session error: ${err.message}`);
      options.logger.debug(`xds: connection ${peerOf(session)}: ${err.message}`);
    });
    if (options.tls) {
      // A client whose certificate fails verification (or that speaks no TLS) never reaches a
      // stream; say why at debug level instead of crashing on an unhandled 'tlsClientError'.
      this.server.on("tlsClientError", (err: Error) =>
        options.logger.debug(`xds: TLS handshake failed: ${err.message}`),
      );
    }
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
    for (const c of this.keepalive.entries()) c.session.close();
    const force = setTimeout(() => {
      for (const c of this.keepalive.entries()) c.session.destroy();
    }, graceMs);
    force.unref();
    await closed;
    clearTimeout(force);
  }

  private onSession(session: http2.ServerHttp2Session): Connection {
    const c = new Connection(session, this, this.options.resets);
    (session as TransportSession)[CONNECTION] = c;
    this.keepalive.add(c);
    session.on("close", onSessionClose);
    return c;
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const session = stream.session as TransportSession | undefined;
    const connection = session ? (session[CONNECTION] ?? this.onSession(session)) : undefined;
    const call = GrpcCall.accept(stream, connection ?? NO_CONNECTION, connection?.follow(), this.calls);
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
    const open = this.options.route(path);
    if (!open) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${path}: this server serves xDS only`);
      return;
    }
    call.serve(headers, open);
  }
}
