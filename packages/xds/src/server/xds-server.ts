import type http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import type {
  DeltaDiscoveryRequest,
  DiscoveryRequest,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { type Observable, Subject } from "rxjs";
import type { ConfigWatcher } from "../cache/config-watcher.js";
import { XdsError } from "../errors.js";
import type { XdsEvent } from "../events.js";
import { DeltaStream } from "./delta-stream.js";
import { Http2Transport, type StreamHandle } from "./http2-transport.js";
import { consoleLogger, type Logger } from "./logger.js";
import { NameSets } from "./name-sets.js";
import { deltaRequestDecoder, sotwRequestDecoder } from "./request-decoder.js";
import { controlPlaneField, GRPC_PREFIX, ResponseCache } from "./responses.js";
import { allXdsServices, type XdsMethod, type XdsServiceName, xdsMethods } from "./services.js";
import { SotwStream } from "./sotw-stream.js";
import type { StreamContext, StreamTransport } from "./stream.js";
import { WriteScheduler } from "./write-scheduler.js";

/** Options of {@link XdsServer}. */
export interface XdsServerOptions {
  /** Where resources come from: a SnapshotCache, LinearCache, MuxCache or your own ConfigWatcher. */
  cache: ConfigWatcher;
  logger?: Logger;
  /**
   * Interval of TTL heartbeats: TTL'd resources are re-sent without bodies so clients keep them.
   * Off by default.
   */
  heartbeatIntervalMs?: number;
  /** Sent as `control_plane.identifier` in every response (helps debugging multi-replica setups). */
  controlPlaneId?: string;
  /**
   * Response bytes in flight across all streams before further writes wait their turn (each
   * stream's responses keep their order). A response counts from the moment its write starts
   * until the client answers it (ACK or NACK of its nonce, or of a later response of the same
   * type), so the budget also bounds what sits in kernel socket buffers and in clients' queues
   * during a large push. Size it to at least the push bandwidth you want times the time your
   * proxies take to answer (network round trip plus applying the update): 256 MiB, the default,
   * allows 1.3 GB/s when proxies answer within 200 ms. One write always proceeds.
   */
  maxBytesInFlight?: number;
  /**
   * A response still unanswered after this long (its client is slow, not reading, or never ACKs)
   * stops counting against `maxBytesInFlight`, so one such client cannot hold up the others; its
   * responses still go out in order. Default 2 s.
   */
  writeStallMs?: number;
}

/** Options of {@link XdsServer.register}. */
export interface RegisterOptions {
  /** Services to mount; all of them (ADS and every per-type service) by default. */
  services?: readonly XdsServiceName[];
}

/** Options of {@link XdsServer.listen}. */
export interface ListenOptions extends RegisterOptions {
  /** host:port (port 0 picks a free one) or unix:/path. Default 127.0.0.1:0. */
  address?: string;
  /**
   * "http2" (the default): meshlet's own gRPC-over-`node:http2` transport, which writes each
   * shared response buffer to every stream without copying it. "grpc-js": a `@grpc/grpc-js`
   * Server (chosen automatically when `credentials` or `serverOptions` are given).
   */
  transport?: "http2" | "grpc-js";
  /** TLS (and mTLS: `requestCert`, `ca`) for the http2 transport; plaintext by default. */
  tls?: http2.SecureServerOptions;
  /** Server credentials of the grpc-js transport; insecure by default. */
  credentials?: grpc.ServerCredentials;
  /** Channel options of the grpc-js transport's Server. */
  serverOptions?: grpc.ServerOptions;
  /** Largest request accepted by the http2 transport. Default 16 MiB. */
  maxReceiveMessageBytes?: number;
  /** Keepalive PING interval (default 30 s) and how long an answer may take (default 20 s). */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Streams one connection may open at once (http2 transport; announced in SETTINGS). Default 10,000. */
  maxConcurrentStreams?: number;
}

/** A running server from {@link XdsServer.listen}. */
export interface ListeningServer {
  readonly port: number;
  readonly address: string;
  readonly transport: "http2" | "grpc-js";
  /** The grpc-js Server (transport "grpc-js" only). */
  readonly server?: grpc.Server;
  /** Stops accepting, ends open streams and waits up to `graceMs` (default 1s) before forcing. */
  close(graceMs?: number): Promise<void>;
}

const identity = (b: Buffer) => b;
const passBytes = (b: Buffer | Uint8Array) =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * The xDS protocol server: ADS, per-type SotW and Delta services over `@grpc/grpc-js`, serving
 * whatever its cache holds. Protocol events (requests, ACKs, NACKs with the client's error text,
 * responses) are emitted on `events$`.
 */
export class XdsServer {
  /** Every protocol event of every stream. */
  readonly events$: Observable<XdsEvent>;
  private readonly events = new Subject<XdsEvent>();
  private readonly streams = new Set<SotwStream | DeltaStream>();
  private readonly ctx: StreamContext;
  private readonly heartbeat?: NodeJS.Timeout;
  private nextStreamId = 1;
  private readonly sotwRequests = sotwRequestDecoder();
  private readonly deltaRequests = deltaRequestDecoder();

  constructor(options: XdsServerOptions) {
    if (!options?.cache || typeof options.cache.watch !== "function") {
      throw new XdsError(
        "invalid-argument",
        "XdsServer needs { cache }: a SnapshotCache, LinearCache, MuxCache or ConfigWatcher",
      );
    }
    this.events$ = this.events.asObservable();
    const watcher = options.cache;
    const events = this.events;
    const maxBytesInFlight = options.maxBytesInFlight ?? 256 * 1024 * 1024;
    const writeStallMs = options.writeStallMs ?? 2000;
    if (!(maxBytesInFlight > 0) || !(writeStallMs > 0)) {
      throw new XdsError("invalid-argument", "maxBytesInFlight and writeStallMs must be positive numbers");
    }
    const logger = options.logger ?? consoleLogger;
    this.ctx = {
      watcher,
      logger,
      responses: new ResponseCache({
        sotw: controlPlaneField(6, options.controlPlaneId),
        delta: controlPlaneField(7, options.controlPlaneId),
      }),
      nameSets: new NameSets(),
      writes: new WriteScheduler(maxBytesInFlight, writeStallMs),
      emit(event) {
        watcher.record?.(event);
        if (events.observed) events.next(event);
      },
    };
    if (options.heartbeatIntervalMs !== undefined) {
      if (!(options.heartbeatIntervalMs > 0))
        throw new XdsError("invalid-argument", "heartbeatIntervalMs must be positive");
      this.heartbeat = setInterval(() => {
        for (const s of this.streams) s.heartbeat();
      }, options.heartbeatIntervalMs);
      this.heartbeat.unref();
    }
  }

  /** Number of open streams. */
  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * The write budget (see {@link XdsServerOptions.maxBytesInFlight}): bytes written or being
   * written that clients have not answered yet, streams waiting for their turn, and responses so
   * far that stopped counting after `writeStallMs` (a client not reading or not answering).
   */
  get writes(): { bytesInFlight: number; waitingStreams: number; stalledWrites: number } {
    const w = this.ctx.writes;
    return {
      bytesInFlight: w.bytesInFlight,
      waitingStreams: w.waitingStreams,
      stalledWrites: w.stalledWrites,
    };
  }

  /** Mounts the xDS services on a grpc-js Server you run. */
  register(server: grpc.Server, options: RegisterOptions = {}): void {
    this.mount(server, options);
  }

  /** Mounts the services; streams are also tracked in `owned` (a listen()'s own streams). */
  private mount(server: grpc.Server, options: RegisterOptions, owned?: Set<SotwStream | DeltaStream>): void {
    for (const name of options.services ?? allXdsServices) {
      const { methods } = xdsMethods(name);
      // biome-ignore lint/suspicious/noExplicitAny: grpc-js method definitions are untyped here; requests are decoded by protobuf-es.
      const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
      const handlers: grpc.UntypedServiceImplementation = {};
      for (const method of methods) {
        const key = method.path.slice(method.path.lastIndexOf("/") + 1);
        definition[key] = {
          path: method.path,
          requestStream: true,
          responseStream: true,
          requestSerialize: identity,
          requestDeserialize:
            method.protocol === "sotw"
              ? (b: Buffer) => this.sotwRequests.decode(b)
              : (b: Buffer) => this.deltaRequests.decode(b),
          responseSerialize: passBytes,
          responseDeserialize: identity,
        };
        handlers[key] = (call: grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, Buffer>) =>
          this.serve(call, method, owned);
      }
      server.addService(definition, handlers);
    }
  }

  /**
   * Runs a server of its own with the xDS services: meshlet's `node:http2` transport by default
   * (see {@link ListenOptions.transport}), or a grpc-js Server.
   */
  async listen(options: ListenOptions = {}): Promise<ListeningServer> {
    const grpcJs = options.credentials !== undefined || options.serverOptions !== undefined;
    const transport = options.transport ?? (grpcJs ? "grpc-js" : "http2");
    if (transport === "http2" && grpcJs) {
      throw new XdsError(
        "invalid-argument",
        "credentials and serverOptions configure the grpc-js transport; use tls with transport http2",
      );
    }
    if (transport === "grpc-js" && options.tls) {
      throw new XdsError(
        "invalid-argument",
        "tls configures the http2 transport; use credentials with grpc-js",
      );
    }
    const keepaliveTimeMs = options.keepaliveTimeMs ?? 30_000;
    const keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 20_000;
    const address = options.address ?? "127.0.0.1:0";
    // This server's streams: close() ends these, not those of another listen() or register().
    const owned = new Set<SotwStream | DeltaStream>();
    const endStreams = () => {
      // Streams never end on their own: end them so the server can finish closing.
      for (const s of owned) s.fail(14, "control plane shutting down", "info");
    };
    if (!(keepaliveTimeMs > 0) || !(keepaliveTimeoutMs > 0)) {
      throw new XdsError("invalid-argument", "keepaliveTimeMs and keepaliveTimeoutMs must be positive");
    }
    if (transport === "http2") {
      const maxReceiveMessageBytes = options.maxReceiveMessageBytes ?? 16 * 1024 * 1024;
      const maxConcurrentStreams = options.maxConcurrentStreams ?? 10_000;
      if (
        !(maxReceiveMessageBytes > 0) ||
        !(Number.isInteger(maxConcurrentStreams) && maxConcurrentStreams > 0)
      ) {
        throw new XdsError(
          "invalid-argument",
          "maxReceiveMessageBytes must be positive and maxConcurrentStreams a positive integer",
        );
      }
      const methods = new Map<string, XdsMethod>();
      for (const name of options.services ?? allXdsServices)
        for (const m of xdsMethods(name).methods) methods.set(m.path, m);
      const native = new Http2Transport({
        methods,
        open: (method, t) => this.open(method, t, owned),
        logger: this.ctx.logger,
        ...(options.tls ? { tls: options.tls } : {}),
        maxReceiveMessageBytes,
        maxConcurrentStreams,
        keepaliveTimeMs,
        keepaliveTimeoutMs,
      });
      const bound = await native.listen(address);
      return {
        ...bound,
        transport,
        close: async (graceMs = 1000) => {
          const closing = native.close(graceMs);
          endStreams();
          await closing;
        },
      };
    }
    const server = new grpc.Server({
      // Proxies hold streams for hours; keepalive finds dead peers.
      "grpc.keepalive_time_ms": keepaliveTimeMs,
      "grpc.keepalive_timeout_ms": keepaliveTimeoutMs,
      "grpc.http2.max_pings_without_data": 0,
      "grpc.keepalive_permit_without_calls": 1,
      ...options.serverOptions,
    });
    this.mount(server, options, owned);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, options.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) =>
        err
          ? reject(
              new XdsError("invalid-argument", `cannot listen on ${address}: ${err.message}`, { cause: err }),
            )
          : resolve(p),
      );
    });
    const host = address.slice(0, address.lastIndexOf(":"));
    return {
      port,
      address: address.startsWith("unix:") ? address : `${host}:${port}`,
      transport,
      server,
      close: (graceMs = 1000) =>
        new Promise<void>((resolve) => {
          const force = setTimeout(() => server.forceShutdown(), graceMs);
          force.unref();
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
          endStreams();
        }),
    };
  }

  /** Ends every open stream (clients reconnect) and stops heartbeats. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const s of this.streams) s.fail(14, "control plane shutting down", "info");
  }

  /** Opens one xDS stream on any transport; the transport feeds it requests and its end. */
  private open(
    method: XdsMethod,
    transport: StreamTransport,
    owned?: Set<SotwStream | DeltaStream>,
  ): StreamHandle & { request(req: unknown): void } {
    const id = this.nextStreamId++;
    const { protocol, serves } = method;
    const stream =
      protocol === "sotw"
        ? new SotwStream(id, "sotw", serves, this.ctx, transport)
        : new DeltaStream(id, "delta", serves, this.ctx, transport);
    this.streams.add(stream);
    owned?.add(stream);
    let opened = false;
    const request = (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
      try {
        if (!opened) {
          // stream-open carries the node, so it is emitted with the first request.
          opened = true;
          this.ctx.emit({
            type: "stream-open",
            streamId: id,
            protocol,
            node: req.node,
            service: serves,
            peer: transport.peer,
          });
        }
        if (stream instanceof SotwStream) stream.onRequest(req as DiscoveryRequest);
        else stream.onRequest(req as DeltaDiscoveryRequest);
      } catch (err) {
        this.ctx.logger.error(`xds: stream ${id} (${transport.peer}) request failed`, { error: err });
        stream.fail(13, `control plane error: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    const close = (error?: string) => {
      this.streams.delete(stream);
      owned?.delete(stream);
      stream.close(error);
    };
    return {
      request: (req) => request(req as DiscoveryRequest | DeltaDiscoveryRequest),
      message: (bytes, ephemeral) => {
        let req: DiscoveryRequest | DeltaDiscoveryRequest;
        try {
          req =
            protocol === "sotw"
              ? this.sotwRequests.decode(bytes, ephemeral)
              : this.deltaRequests.decode(bytes, ephemeral);
        } catch (err) {
          stream.fail(
            3,
            `cannot decode a ${protocol === "sotw" ? "DiscoveryRequest" : "DeltaDiscoveryRequest"}: ${err instanceof Error ? err.message : String(err)}`,
          );
          return;
        }
        request(req);
      },
      end: () => close(),
      close,
    };
  }

  /** Serves one grpc-js call (the register() path). */
  private serve(
    call: grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, Buffer>,
    method: XdsMethod,
    owned?: Set<SotwStream | DeltaStream>,
  ): void {
    const handle = this.open(
      method,
      {
        peer: call.getPeer(),
        // grpc-js frames (and copies) each message itself: give it the message without our prefix.
        write: (framed, done) => call.write(framed.subarray(GRPC_PREFIX), done),
        fail: (code, details) => {
          call.emit("error", { code, details, metadata: new grpc.Metadata() });
        },
      },
      owned,
    );
    call.on("data", (req: DiscoveryRequest | DeltaDiscoveryRequest) => handle.request(req));
    call.on("end", () => {
      handle.end();
      call.end();
    });
    call.on("cancelled", () => handle.close("cancelled"));
    call.on("error", (err: Error) => handle.close(err.message));
    call.on("close", () => handle.close());
  }
}
