import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type DeltaDiscoveryRequest,
  DeltaDiscoveryRequestSchema,
  type DiscoveryRequest,
  DiscoveryRequestSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { type Observable, Subject } from "rxjs";
import type { ConfigWatcher } from "../cache/config-watcher.js";
import { XdsError } from "../errors.js";
import type { XdsEvent } from "../events.js";
import { DeltaStream } from "./delta-stream.js";
import { consoleLogger, type Logger } from "./logger.js";
import { NameSets } from "./name-sets.js";
import { controlPlaneField, ResponseCache } from "./responses.js";
import { allXdsServices, type XdsServiceName, xdsMethods } from "./services.js";
import { SotwStream } from "./sotw-stream.js";
import type { StreamContext, StreamTransport } from "./stream.js";

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
}

/** Options of {@link XdsServer.register}. */
export interface RegisterOptions {
  /** Services to mount; all of them (ADS and every per-type service) by default. */
  services?: readonly XdsServiceName[];
}

/** Options of {@link XdsServer.listen}. */
export interface ListenOptions extends RegisterOptions {
  /** host:port; port 0 picks a free one. Default 127.0.0.1:0. */
  address?: string;
  /** Server credentials; insecure by default (loopback, or mTLS terminated elsewhere). */
  credentials?: grpc.ServerCredentials;
  /** Channel options for the grpc-js Server. */
  serverOptions?: grpc.ServerOptions;
}

/** A running server from {@link XdsServer.listen}. */
export interface ListeningServer {
  readonly port: number;
  readonly address: string;
  readonly server: grpc.Server;
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
    const logger = options.logger ?? consoleLogger;
    this.ctx = {
      watcher,
      logger,
      responses: new ResponseCache({
        sotw: controlPlaneField(6, options.controlPlaneId),
        delta: controlPlaneField(7, options.controlPlaneId),
      }),
      nameSets: new NameSets(),
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

  /** Mounts the xDS services on a grpc-js Server you run. */
  register(server: grpc.Server, options: RegisterOptions = {}): void {
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
              ? (b: Buffer) => fromBinary(DiscoveryRequestSchema, b)
              : (b: Buffer) => fromBinary(DeltaDiscoveryRequestSchema, b),
          responseSerialize: passBytes,
          responseDeserialize: identity,
        };
        handlers[key] = (call: grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, Buffer>) =>
          this.serve(call, method.protocol, method.serves);
      }
      server.addService(definition, handlers);
    }
  }

  /** Runs a grpc-js Server of its own with the xDS services. */
  async listen(options: ListenOptions = {}): Promise<ListeningServer> {
    const server = new grpc.Server({
      // Proxies hold streams for hours; keepalive finds dead peers.
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 20_000,
      "grpc.http2.max_pings_without_data": 0,
      "grpc.keepalive_permit_without_calls": 1,
      ...options.serverOptions,
    });
    this.register(server, options);
    const address = options.address ?? "127.0.0.1:0";
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
      address: `${host}:${port}`,
      server,
      close: (graceMs = 1000) =>
        new Promise<void>((resolve) => {
          const force = setTimeout(() => server.forceShutdown(), graceMs);
          force.unref();
          server.tryShutdown(() => {
            clearTimeout(force);
            resolve();
          });
          // Streams never end on their own: end them so tryShutdown can finish.
          for (const s of this.streams) s.fail(14, "control plane shutting down", "info");
        }),
    };
  }

  /** Ends every open stream (clients reconnect) and stops heartbeats. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const s of this.streams) s.fail(14, "control plane shutting down", "info");
  }

  private serve(
    call: grpc.ServerDuplexStream<DiscoveryRequest | DeltaDiscoveryRequest, Buffer>,
    protocol: "sotw" | "delta",
    serves: string,
  ): void {
    const transport: StreamTransport = {
      peer: call.getPeer(),
      write: (bytes) => call.write(bytes),
      fail: (code, details) => {
        call.emit("error", { code, details, metadata: new grpc.Metadata() });
      },
    };
    const id = this.nextStreamId++;
    const stream =
      protocol === "sotw"
        ? new SotwStream(id, "sotw", serves, this.ctx, transport)
        : new DeltaStream(id, "delta", serves, this.ctx, transport);
    this.streams.add(stream);
    let opened = false;
    const done = (error?: string) => {
      this.streams.delete(stream);
      stream.close(error);
    };
    call.on("data", (req: DiscoveryRequest | DeltaDiscoveryRequest) => {
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
        this.ctx.logger.error(`xds: stream ${id} (${transport.peer}) request failed`, err);
        stream.fail(13, `control plane error: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    call.on("end", () => {
      done();
      call.end();
    });
    call.on("cancelled", () => done("cancelled"));
    call.on("error", (err: Error) => done(err.message));
    call.on("close", () => done());
  }
}
