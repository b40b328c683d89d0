import type http2 from "node:http2";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Node, NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type {
  DeltaDiscoveryRequest,
  DiscoveryRequest,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import {
  type ClientStatusRequest,
  type ClientStatusResponse,
  ClientStatusResponseSchema,
} from "@meshlet/api/envoy/service/status/v3/csds_pb";
import { type Observable, Subject } from "rxjs";
import type { ConfigWatcher } from "../cache/config-watcher.js";
import { type Clock, systemClock } from "../clock.js";
import { XdsError } from "../errors.js";
import type { XdsEvent } from "../events.js";
import { type AuthorizeHook, GatedCall, type Refusal } from "./authorize.js";
import type { CallHandler, CallRouter, ServerCall } from "./call.js";
import { clientConfigs } from "./client-status.js";
import { allNodes, csdsCall, csdsPaths } from "./csds.js";
import { DeltaStream } from "./delta-stream.js";
import { type GrpcJsMethod, mountOnGrpcJs } from "./grpc-js-transport.js";
import { GrpcStatus, isGrpcStatusCode } from "./grpc-status.js";
import { Http2Transport } from "./http2/http2-transport.js";
import { MAX_TIMER_MS } from "./http2/keepalive.js";
import { consoleLogger, type Logger } from "./logger.js";
import { NameSets } from "./name-sets.js";
import { deltaRequestDecoder, sotwRequestDecoder } from "./request-decoder.js";
import { ResetBudget } from "./reset-budget.js";
import { controlPlaneField, ResponseCache } from "./responses.js";
import { allXdsServices, type ServiceName, type XdsMethod, xdsMethods } from "./services.js";
import { SotwStream } from "./sotw-stream.js";
import { spiffeIdOf } from "./spiffe-id.js";
import type { StreamContext } from "./stream.js";
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
   * Resource names one stream may subscribe to per type (SotW: the request's list; Delta: the
   * subscription after the request). A request over it ends the stream with RESOURCE_EXHAUSTED
   * naming the node and the type, before anything is watched or emitted for it, so one client
   * cannot make the server (or a controller reading `events$`) hold millions of names.
   * Default 10,000.
   */
  maxResourceNamesPerType?: number;
  /**
   * A response still unanswered after this long (its client is slow, not reading, or never ACKs)
   * stops counting against `maxBytesInFlight`, so one such client cannot hold up the others; its
   * responses still go out in order. Default 2 s.
   */
  writeStallMs?: number;
  /**
   * Decides, on the first request of every stream (and CSDS call), whether it may proceed: it sees
   * the node, the peer address, the verified client certificate and its SPIFFE ID, and the request
   * metadata (e.g. `authorization: Bearer …`), may be async, and refuses with a gRPC status. Use it
   * to bind a node id to the caller's identity. Nothing is authorized by default.
   */
  authorize?: AuthorizeHook;
  /**
   * How long `authorize` may take: a decision still pending after this refuses the stream with
   * UNAVAILABLE (fail closed; clients retry), so a hook waiting on a service that hangs cannot
   * hold streams open for ever. Default 10 s.
   */
  authorizeTimeoutMs?: number;
  /** Time for heartbeats, CSDS and ACK timestamps; the system clock by default. */
  clock?: Clock;
}

/** Options of {@link XdsServer.register}. */
export interface RegisterOptions {
  /**
   * Services to mount: all xDS services (ADS and every per-type service) by default. Add "csds" to
   * serve `envoy.service.status.v3.ClientStatusDiscoveryService` — it shows every node's config,
   * so serve it only behind TLS and `authorize`, or on an address only operators reach.
   */
  services?: readonly ServiceName[];
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
  /**
   * TLS on either transport, plaintext by default: `{ key, cert }` (PEM), and for mTLS `ca` (the
   * CAs client certificates are verified against) with `requestCert: true` — connections without
   * a valid client certificate are then refused, and the verified certificate reaches `authorize`.
   * The http2 transport takes any other Node `SecureServerOptions` too; grpc-js only these four.
   */
  tls?: http2.SecureServerOptions;
  /** Server credentials of the grpc-js transport (instead of `tls`); insecure by default. */
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
  /**
   * Node's cap on what one HTTP/2 connection may hold (its `maxSessionMemory`, in MB): queued
   * outbound data, stream state, header tables. Over it, the connection's new streams are refused
   * (its open ones go on). Default: `maxBytesInFlight` (all a push may queue on one connection)
   * plus 2 KiB per allowed concurrent stream (Node accounts about 1 KiB per open stream) plus
   * 16 MB for header tables and control frames — 292 MB with the defaults. Both transports.
   */
  maxSessionMemoryMb?: number;
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

/** Options of {@link XdsServer.waitForAck}. */
export interface WaitForAckOptions {
  /** Rejects with XdsError code "aborted" when it fires. */
  signal?: AbortSignal;
  /** Rejects with XdsError code "timeout" after this long. None by default. */
  timeoutMs?: number;
}

type Stream = SotwStream | DeltaStream;
type XdsRequest = DiscoveryRequest | DeltaDiscoveryRequest;

/** Default of {@link XdsServerOptions.maxResourceNamesPerType}. */
export const DEFAULT_MAX_RESOURCE_NAMES_PER_TYPE = 10_000;

const TLS_KEYS = new Set(["key", "cert", "ca", "requestCert"]);

/**
 * The xDS protocol server: ADS, per-type SotW and Delta services (and CSDS when asked), serving
 * whatever its cache holds, over its own `node:http2` transport (`listen`), a grpc-js Server
 * (`register`), or any transport (`handle`). Protocol events (requests, ACKs, NACKs with the
 * client's error text, responses) are emitted on `events$`.
 */
export class XdsServer {
  /** Every protocol event of every stream. */
  readonly events$: Observable<XdsEvent>;
  private readonly events = new Subject<XdsEvent>();
  private readonly streams = new Set<Stream>();
  private readonly ctx: StreamContext;
  private readonly heartbeat?: unknown;
  private readonly clock: Clock;
  private readonly authorizeHook: AuthorizeHook | undefined;
  private readonly authorizeTimeoutMs: number;
  private readonly resets: ResetBudget;
  private nextStreamId = 1;
  /** What every xDS call of the server shares. */
  private readonly xdsCalls: XdsCalls;

  constructor(options: XdsServerOptions) {
    if (!options?.cache || typeof options.cache.watch !== "function") {
      throw new XdsError(
        "invalid-argument",
        "XdsServer needs { cache }: a SnapshotCache, LinearCache, MuxCache or ConfigWatcher",
      );
    }
    if (options.authorize !== undefined && typeof options.authorize !== "function") {
      throw new XdsError("invalid-argument", "authorize must be a function (request) => refusal | undefined");
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
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.authorizeHook = options.authorize;
    this.authorizeTimeoutMs = options.authorizeTimeoutMs ?? 10_000;
    if (!(this.authorizeTimeoutMs > 0))
      throw new XdsError("invalid-argument", "authorizeTimeoutMs must be a positive number");
    this.resets = new ResetBudget(logger);
    const maxNamesPerType = options.maxResourceNamesPerType ?? DEFAULT_MAX_RESOURCE_NAMES_PER_TYPE;
    if (!(Number.isInteger(maxNamesPerType) && maxNamesPerType > 0))
      throw new XdsError("invalid-argument", "maxResourceNamesPerType must be a positive integer");
    this.ctx = {
      watcher,
      logger,
      maxNamesPerType,
      responses: new ResponseCache({
        sotw: controlPlaneField(6, options.controlPlaneId),
        delta: controlPlaneField(7, options.controlPlaneId),
      }),
      nameSets: new NameSets(),
      writes: new WriteScheduler(maxBytesInFlight, writeStallMs),
      now: () => clock.now(),
      emit(event) {
        try {
          watcher.record?.(event);
        } catch (err) {
          // A cache's bookkeeping reads the client's Node (a nodeKey may throw on it): it must not
          // throw out of the stream that reports the event (under register(), a grpc-js event
          // listener: an uncaught exception), nor leave the stream half opened or half closed.
          logger.error(`xds: the cache could not record ${event.type} of node "${event.node?.id ?? ""}"`, {
            error: err,
          });
        }
        if (events.observed) events.next(event);
      },
    };
    this.xdsCalls = {
      ctx: this.ctx,
      streams: this.streams,
      sotwRequests: sotwRequestDecoder(),
      deltaRequests: deltaRequestDecoder(),
      owned: undefined,
      nextStreamId: () => this.nextStreamId++,
      authorize: (call, node, service, protocol) => this.authorizeCall(call, node, service, protocol),
    };
    if (options.heartbeatIntervalMs !== undefined) {
      if (!(options.heartbeatIntervalMs > 0))
        throw new XdsError("invalid-argument", "heartbeatIntervalMs must be positive");
      this.heartbeat = clock.setInterval(() => {
        for (const s of this.streams) s.heartbeat();
      }, options.heartbeatIntervalMs);
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

  /** Mounts the services (see {@link RegisterOptions.services}) on a grpc-js Server you run. */
  register(server: grpc.Server, options: RegisterOptions = {}): void {
    this.mount(server, options.services);
  }

  /**
   * The transport seam: serves one gRPC call of `path` carried by any transport (another HTTP/2
   * stack, an in-process test). Returns the handler to feed the call's request messages and end
   * to, or undefined for a path not served (answer UNIMPLEMENTED). Every xDS service and CSDS are
   * routed.
   */
  handle(path: string, call: ServerCall): CallHandler | undefined {
    return this.router([...allXdsServices, "csds"])(path)?.(call);
  }

  /**
   * What the server knows of every connected node, per resource — sent, ACKed, NACKed with the
   * client's error — as CSDS's ClientStatusResponse (see clientConfigs). `request` selects nodes
   * (node_id matchers) and may exclude resource contents.
   * @throws XdsError for matchers it does not support (node_metadatas, safe_regex).
   */
  clientStatus(request: ClientStatusRequest = allNodes()): ClientStatusResponse {
    return create(ClientStatusResponseSchema, {
      config: clientConfigs(this.streams, {
        matchers: request.nodeMatchers,
        excludeContents: request.excludeResourceContents,
      }),
    });
  }

  /**
   * Resolves once a stream of `node` (a Node or a node id) ACKs `version` of `typeUrl` — at once
   * if one already has. Rejects with XdsError code "nacked" (its message the client's error) when
   * the node NACKs that version, "timeout" after `timeoutMs`, "aborted" when `signal` fires.
   */
  waitForAck(
    node: Node | string,
    typeUrl: string,
    version: string,
    options: WaitForAckOptions = {},
  ): Promise<void> {
    const id = typeof node === "string" ? node : node.id;
    for (const s of this.streams) {
      if (s.node?.id === id && s.typeStates().get(typeUrl)?.ackedVersion === version)
        return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const { signal, timeoutMs } = options;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        sub.unsubscribe();
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        done();
        reject(
          new XdsError("aborted", `waitForAck(${id}, ${typeUrl}, ${version}) aborted`, {
            cause: signal?.reason,
          }),
        );
      };
      const sub = this.events.subscribe((e) => {
        if (e.node?.id !== id || !("typeUrl" in e) || e.typeUrl !== typeUrl) return;
        if (e.type === "ack" && e.version === version) {
          done();
          resolve();
        } else if (e.type === "nack" && e.rejectedVersion === version) {
          done();
          reject(
            new XdsError(
              "nacked",
              `node "${id}" rejected ${typeUrl} version ${version}: ${e.errorDetail.message}`,
            ),
          );
        }
      });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(
            new XdsError(
              "timeout",
              `node "${id}" did not ACK ${typeUrl} version ${version} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        timer.unref?.();
      }
    });
  }

  /**
   * Runs a server of its own with the services: meshlet's `node:http2` transport by default
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
    if (options.tls && options.credentials) {
      throw new XdsError("invalid-argument", "pass tls or credentials, not both");
    }
    const tls = options.tls ? checkTls(options.tls, transport) : undefined;
    const keepaliveTimeMs = options.keepaliveTimeMs ?? 30_000;
    const keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 20_000;
    const maxConcurrentStreams = options.maxConcurrentStreams ?? 10_000;
    const maxSessionMemoryMb =
      options.maxSessionMemoryMb ??
      Math.ceil(this.ctx.writes.maxBytes / 2 ** 20) + Math.ceil((maxConcurrentStreams * 2) / 1024) + 16;
    const address = options.address ?? "127.0.0.1:0";
    if (!(keepaliveTimeMs > 0) || !(keepaliveTimeoutMs > 0)) {
      throw new XdsError("invalid-argument", "keepaliveTimeMs and keepaliveTimeoutMs must be positive");
    }
    if (!(maxSessionMemoryMb > 0))
      throw new XdsError("invalid-argument", "maxSessionMemoryMb must be positive");
    // This server's streams: close() ends these, not those of another listen() or register().
    const owned = new Set<Stream>();
    const endStreams = () => {
      // Streams never end on their own: end them so the server can finish closing.
      for (const s of owned) s.fail(GrpcStatus.UNAVAILABLE, "control plane shutting down", "info");
    };
    if (transport === "http2") {
      const maxReceiveMessageBytes = options.maxReceiveMessageBytes ?? 16 * 1024 * 1024;
      if (
        !(maxReceiveMessageBytes > 0) ||
        !(Number.isInteger(maxConcurrentStreams) && maxConcurrentStreams > 0)
      ) {
        throw new XdsError(
          "invalid-argument",
          "maxReceiveMessageBytes must be positive and maxConcurrentStreams a positive integer",
        );
      }
      const native = new Http2Transport({
        route: this.router(options.services ?? allXdsServices, owned),
        logger: this.ctx.logger,
        // Node refuses unverified client certificates unless told otherwise (rejectUnauthorized
        // defaults to true); with rejectUnauthorized: false, authorize sees no certificate.
        ...(tls ? { tls } : {}),
        maxReceiveMessageBytes,
        maxConcurrentStreams,
        keepaliveTimeMs,
        keepaliveTimeoutMs,
        maxSessionMemoryMb,
        resets: this.resets,
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
      // A Node timer holds at most 2^31 - 1 ms (longer fires after 1 ms); grpc-js's own check
      // covers keepalive_time_ms, not the timeout.
      "grpc.keepalive_timeout_ms": Math.min(keepaliveTimeoutMs, MAX_TIMER_MS),
      "grpc.http2.max_pings_without_data": 0,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc-node.max_session_memory": maxSessionMemoryMb,
      ...options.serverOptions,
    });
    this.mount(server, options.services, owned);
    const credentials =
      options.credentials ?? (tls ? grpcJsCredentials(tls) : grpc.ServerCredentials.createInsecure());
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, credentials, (err, p) =>
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
    if (this.heartbeat !== undefined) this.clock.clearInterval(this.heartbeat);
    for (const s of this.streams) s.fail(GrpcStatus.UNAVAILABLE, "control plane shutting down", "info");
  }

  /** Mounts services on a grpc-js Server; its streams are also tracked in `owned`. */
  private mount(
    server: grpc.Server,
    services: readonly ServiceName[] = allXdsServices,
    owned?: Set<Stream>,
  ): void {
    const route = this.router(services, owned);
    const byService = new Map<string, GrpcJsMethod[]>();
    for (const name of new Set(services)) {
      const paths =
        name === "csds"
          ? [
              { path: csdsPaths.stream, kind: "bidi" as const },
              { path: csdsPaths.fetch, kind: "unary" as const },
            ]
          : xdsMethods(name).methods.map((m) => ({ path: m.path, kind: "bidi" as const }));
      byService.set(
        name,
        paths.map(({ path, kind }) => ({
          path,
          kind,
          open: route(path) as (call: ServerCall) => CallHandler,
        })),
      );
    }
    mountOnGrpcJs(server, byService, { logger: this.ctx.logger, resets: this.resets });
  }

  /** The service of each path among `services`. */
  private router(services: readonly ServiceName[], owned?: Set<Stream>): CallRouter {
    const xds = new Map<string, XdsMethod>();
    let csds = false;
    const calls = owned ? { ...this.xdsCalls, owned } : this.xdsCalls;
    for (const name of services) {
      if (name === "csds") csds = true;
      else for (const m of xdsMethods(name).methods) xds.set(m.path, m);
    }
    return (path) => {
      const method = xds.get(path);
      if (method) return (call) => this.openXds(method, call, calls);
      if (csds && (path === csdsPaths.stream || path === csdsPaths.fetch)) {
        const unary = path === csdsPaths.fetch;
        return (call) =>
          csdsCall(
            call,
            {
              logger: this.ctx.logger,
              status: (request) => this.clientStatus(request),
              authorize: (request, c) => this.authorizeCall(c, request.node, "csds", "csds"),
            },
            unary,
          );
      }
      return undefined;
    };
  }

  /**
   * Opens one xDS stream on a call. Nothing is served before the authorize hook allowed the
   * stream (requests wait); the stream, and its stream-open event, exist only once it did.
   */
  private openXds(method: XdsMethod, call: ServerCall, calls: XdsCalls): CallHandler {
    return new XdsCall(calls, method, call);
  }

  /**
   * Runs the authorize hook for a call (undefined without one: allowed at once). Fails closed: a
   * hook that throws, rejects or returns something other than nothing or a refusal refuses.
   */
  private authorizeCall(
    call: ServerCall,
    node: Node | undefined,
    service: string,
    protocol: "sotw" | "delta" | "csds",
  ): Promise<Refusal | undefined> | undefined {
    const hook = this.authorizeHook;
    if (!hook) return undefined;
    const certificate = call.peerCertificate;
    const request = {
      node: node ?? create(NodeSchema),
      peer: call.peer,
      certificate,
      spiffeId: certificate ? spiffeIdOf(certificate) : undefined,
      metadata: call.metadata,
      service,
      protocol,
    };
    const who = `node "${request.node.id}" from ${call.peer}${request.spiffeId ? ` (${request.spiffeId})` : ""}`;
    const failed = (err: unknown): Refusal => {
      this.ctx.logger.error(`xds: authorize failed for ${who}; refusing the stream`, { error: err });
      return { code: GrpcStatus.INTERNAL, message: "authorization failed" };
    };
    let decision: Promise<unknown>;
    try {
      decision = Promise.resolve(hook(request));
    } catch (err) {
      return Promise.resolve(failed(err));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<Refusal>((resolve) => {
      timer = setTimeout(() => {
        this.ctx.logger.warn(
          `xds: authorize did not decide on ${who} within ${this.authorizeTimeoutMs} ms; refusing the stream`,
        );
        resolve({ code: GrpcStatus.UNAVAILABLE, message: "authorization timed out" });
      }, this.authorizeTimeoutMs);
      timer.unref?.();
    });
    const decided = decision.then((result) => {
      if (result === undefined || result === null) return undefined;
      const r = result as Partial<Refusal>;
      if (typeof r === "object" && isGrpcStatusCode(r.code) && r.code !== GrpcStatus.OK) {
        const refusal = { code: r.code, message: typeof r.message === "string" ? r.message : "refused" };
        this.ctx.logger.info(`xds: refused ${service} stream of ${who}: ${refusal.message}`);
        return refusal;
      }
      this.ctx.logger.error(
        `xds: authorize returned ${JSON.stringify(result)} for ${who}; expected nothing (allow) or { code, message } (refuse). Refusing the stream`,
      );
      return { code: GrpcStatus.PERMISSION_DENIED, message: "permission denied" };
    }, failed);
    return Promise.race([decided, timedOut]).finally(() => clearTimeout(timer));
  }
}

/** What the xDS calls of a server share (one object per server, and per listen()). */
interface XdsCalls {
  readonly ctx: StreamContext;
  readonly streams: Set<Stream>;
  /** The streams of the listen() that serves the calls (ended on its close()). */
  readonly owned: Set<Stream> | undefined;
  readonly sotwRequests: ReturnType<typeof sotwRequestDecoder>;
  readonly deltaRequests: ReturnType<typeof deltaRequestDecoder>;
  nextStreamId(): number;
  authorize(
    call: ServerCall,
    node: Node | undefined,
    service: string,
    protocol: "sotw" | "delta",
  ): Promise<Refusal | undefined> | undefined;
}

/**
 * One xDS call: decodes its requests, holds them until the authorize hook decided (see
 * GatedCall), then opens its stream on the first one and feeds it. One object per call, its
 * steps methods rather than closures (thousands of idle streams).
 */
class XdsCall extends GatedCall<XdsRequest> implements CallHandler {
  private stream: Stream | undefined = undefined;

  constructor(
    private readonly calls: XdsCalls,
    private readonly method: XdsMethod,
    private readonly call: ServerCall,
  ) {
    super();
  }

  message(bytes: Buffer, ephemeral: boolean): void {
    if (this.gateClosed) return;
    const protocol = this.method.protocol;
    let req: XdsRequest;
    try {
      req =
        protocol === "sotw"
          ? this.calls.sotwRequests.decode(bytes, ephemeral)
          : this.calls.deltaRequests.decode(bytes, ephemeral);
    } catch (err) {
      const details = `cannot decode a ${protocol === "sotw" ? "DiscoveryRequest" : "DeltaDiscoveryRequest"}: ${err instanceof Error ? err.message : String(err)}`;
      if (this.stream) this.stream.fail(GrpcStatus.INVALID_ARGUMENT, details);
      else {
        this.closeGate();
        this.call.finish(GrpcStatus.INVALID_ARGUMENT, details);
      }
      return;
    }
    this.admit(req);
  }

  /** The client half-closed: the stream ends with OK. */
  end(): void {
    this.close();
    this.call.finish(GrpcStatus.OK, "");
  }

  close(error?: string): void {
    this.closeGate();
    const stream = this.stream;
    if (!stream) return;
    this.calls.streams.delete(stream);
    this.calls.owned?.delete(stream);
    stream.close(error);
  }

  protected decide(first: XdsRequest): Promise<Refusal | undefined> | undefined {
    return this.calls.authorize(this.call, first.node, this.method.serves, this.method.protocol);
  }

  protected refuse(refusal: Refusal): void {
    this.call.finish(refusal.code, refusal.message);
  }

  /** An authorized request. */
  protected pass(req: XdsRequest): void {
    if (this.gateClosed) return;
    if (!this.stream) this.stream = this.open(req.node);
    const stream = this.stream;
    try {
      if (stream instanceof SotwStream) stream.onRequest(req as DiscoveryRequest);
      else stream.onRequest(req as DeltaDiscoveryRequest);
    } catch (err) {
      this.calls.ctx.logger.error(`xds: stream ${stream.id} (${this.call.peer}) request failed`, {
        error: err,
      });
      stream.fail(
        GrpcStatus.INTERNAL,
        `control plane error: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private open(node: Node | undefined): Stream {
    const { protocol, serves } = this.method;
    const { ctx } = this.calls;
    const id = this.calls.nextStreamId();
    const s =
      protocol === "sotw"
        ? new SotwStream(id, "sotw", serves, ctx, this.call)
        : new DeltaStream(id, "delta", serves, ctx, this.call);
    this.calls.streams.add(s);
    this.calls.owned?.add(s);
    // stream-open carries the node, so it is emitted with the first request.
    ctx.emit({ type: "stream-open", streamId: id, protocol, node, service: serves, peer: this.call.peer });
    return s;
  }
}

/** Checks listen()'s tls for a transport; mTLS needs the CAs to verify clients against. */
function checkTls(tls: http2.SecureServerOptions, transport: "http2" | "grpc-js"): http2.SecureServerOptions {
  if (tls.requestCert && tls.ca === undefined) {
    throw new XdsError(
      "invalid-argument",
      "tls.requestCert needs tls.ca: the CA certificates client certificates are verified against",
    );
  }
  if (transport === "grpc-js") {
    const extra = Object.keys(tls).filter((k) => !TLS_KEYS.has(k));
    if (extra.length > 0) {
      throw new XdsError(
        "invalid-argument",
        `tls option(s) ${extra.join(", ")} apply to transport http2 only; grpc-js takes key, cert, ca, requestCert`,
      );
    }
    if (!isPem(tls.key) || !isPem(tls.cert) || (tls.ca !== undefined && !isPem(tls.ca))) {
      throw new XdsError(
        "invalid-argument",
        "with transport grpc-js, tls.key, tls.cert and tls.ca are PEM (a string or Buffer)",
      );
    }
  } else if (tls.pfx === undefined && (tls.key === undefined || tls.cert === undefined)) {
    throw new XdsError("invalid-argument", "tls needs key and cert (PEM), or pfx");
  }
  return tls;
}

function isPem(value: unknown): value is string | Buffer {
  return typeof value === "string" || Buffer.isBuffer(value);
}

/** grpc-js server credentials for listen()'s tls (checked by checkTls). */
function grpcJsCredentials(tls: http2.SecureServerOptions): grpc.ServerCredentials {
  const pem = (v: unknown) => Buffer.from(v as string | Buffer);
  return grpc.ServerCredentials.createSsl(
    tls.ca !== undefined ? pem(tls.ca) : null,
    [{ private_key: pem(tls.key), cert_chain: pem(tls.cert) }],
    tls.requestCert === true,
  );
}
