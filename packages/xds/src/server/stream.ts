import { create } from "@bufbuild/protobuf";
import { type Node, NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { Subscription } from "rxjs";
import type { ConfigWatcher } from "../cache/config-watcher.js";
import type { XdsEvent, XdsProtocol } from "../events.js";
import { getOrCreate } from "../get-or-create.js";
import type { ResourceSet } from "../snapshot.js";
import { adsOrder } from "../type-url.js";
import type { Logger } from "./logger.js";
import type { NameSets } from "./name-sets.js";
import type { ResponseCache } from "./responses.js";
import type { StreamWriter, WriteScheduler } from "./write-scheduler.js";

/** What a stream needs from its server. */
export interface StreamContext {
  readonly watcher: ConfigWatcher;
  readonly logger: Logger;
  /** Assembles responses once per push and hands out nonces. */
  readonly responses: ResponseCache;
  /** Subscription sets shared between streams. */
  readonly nameSets: NameSets;
  /** Bounds response bytes in flight across the server's streams. */
  readonly writes: WriteScheduler;
  emit(event: XdsEvent): void;
}

/** The transport side of a stream: grpc-js's duplex call, or anything that can carry bytes. */
export interface StreamTransport {
  /**
   * Writes one response: its bytes behind the 5-byte gRPC length prefix, shared with every other
   * stream that gets the same response (never modify them). `done` once handed to the connection.
   */
  write(bytes: Buffer, done: (error?: Error | null) => void): void;
  /** Ends the stream with an error status (gRPC INVALID_ARGUMENT for protocol violations). */
  fail(code: number, details: string): void;
  readonly peer: string;
}

/** Per-type state common to both protocols. */
export interface TypeStateBase {
  readonly typeUrl: string;
  current?: ResourceSet;
  subscription?: Subscription;
  lastNonce?: string;
  /** The nonce whose ACK/NACK was reported: a later request repeating it reports nothing more. */
  answeredNonce?: string;
}

const names = new WeakMap<readonly { name: string }[], readonly string[]>();

/** The names of a (shared) resource list, computed once per list: streams share push arrays. */
function namesOf(list: readonly { name: string }[]): readonly string[] {
  return getOrCreate(names, list, () => list.map((x) => x.name));
}

const orderIndex = new Map(adsOrder.map((t, i) => [t, i]));

/** Sorts type URLs into ADS push order: CDS, EDS, LDS, RDS, then the rest. */
export function inAdsOrder(types: Iterable<string>): string[] {
  return [...types].sort(
    (a, b) => (orderIndex.get(a) ?? adsOrder.length) - (orderIndex.get(b) ?? adsOrder.length),
  );
}

/**
 * One xDS stream (ADS or a per-type service). Holds the node from the first request, hands out
 * nonces scoped to the stream, subscribes to the cache per requested type, and batches changes:
 * all types a cache change touches are flushed together, in ADS order.
 */
export abstract class XdsStream<S extends TypeStateBase> {
  node: Node | undefined;
  closed = false;
  protected readonly types = new Map<string, S>();
  private readonly dirty = new Set<string>();
  private flushScheduled = false;
  private readonly writer: StreamWriter;

  constructor(
    readonly id: number,
    readonly protocol: XdsProtocol,
    /** "ads", or the only type URL a per-type stream serves. */
    readonly service: string,
    protected readonly ctx: StreamContext,
    protected readonly transport: StreamTransport,
  ) {
    this.writer = ctx.writes.writer(transport);
  }

  /** Validates a request's type URL against the stream's service; undefined after failing the stream. */
  protected requestType(typeUrl: string): string | undefined {
    if (this.service === "ads") {
      if (typeUrl === "") {
        this.fail(3, "type_url is required on every request of an aggregated (ADS) stream");
        return undefined;
      }
      return typeUrl;
    }
    if (typeUrl !== "" && typeUrl !== this.service) {
      this.fail(3, `this stream serves ${this.service}; a request asked for ${typeUrl}`);
      return undefined;
    }
    return this.service;
  }

  /**
   * The common start of every request: keeps the node, checks the type URL (failing the stream on
   * a violation), and finds the type's state. A request is stale when its response_nonce is not
   * the latest sent for its type (xDS protocol: a newer response is in flight); the first request
   * of a type on a stream has nothing to be stale against.
   */
  protected begin(req: {
    node?: Node;
    typeUrl: string;
    responseNonce: string;
  }): { typeUrl: string; state: S | undefined; stale: boolean } | undefined {
    if (this.closed) return undefined;
    this.keepNode(req.node);
    const typeUrl = this.requestType(req.typeUrl);
    if (typeUrl === undefined) return undefined;
    // Every answer (ACK or NACK, stale or not) frees the budget its response held.
    if (req.responseNonce !== "") this.writer.answered(typeUrl, req.responseNonce);
    const state = this.types.get(typeUrl);
    const stale = state !== undefined && req.responseNonce !== "" && req.responseNonce !== state.lastNonce;
    return { typeUrl, state, stale };
  }

  /** Keeps the node of the stream's first request (xDS protocol: later requests may omit it). */
  protected keepNode(node: Node | undefined): void {
    if (this.node !== undefined) return;
    if (node === undefined) {
      // xDS protocol: the first request carries the node. Serve such a client as the empty node
      // (id "") rather than hang it, and say so.
      this.ctx.logger.warn(
        `xds: stream ${this.id} (${this.transport.peer}) sent no node on its first request; serving it as node ""`,
      );
      this.node = create(NodeSchema);
      return;
    }
    this.node = node;
  }

  /** Starts watching a type for this stream's node; each change marks the type dirty. */
  protected watch(state: S): void {
    if (state.subscription || !this.node) return;
    state.subscription = this.ctx.watcher.watch(this.node, state.typeUrl).subscribe({
      next: (set) => {
        state.current = set;
        this.markDirty(state.typeUrl);
      },
      error: (err: unknown) => {
        this.ctx.logger.error(`xds: watch of ${state.typeUrl} for node "${this.node?.id}" failed`, {
          error: err,
        });
      },
    });
  }

  /** Schedules a flush; every type changed by one cache update goes out in one ordered batch. */
  protected markDirty(typeUrl: string): void {
    this.dirty.add(typeUrl);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.closed) return;
      const batch = inAdsOrder(this.dirty);
      this.dirty.clear();
      try {
        this.flush(batch);
      } catch (err) {
        this.ctx.logger.error(`xds: stream ${this.id} failed to respond`, { error: err });
        this.fail(13, `control plane error: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }

  /** Sends whatever the dirty types need, in the given (ADS) order. */
  protected abstract flush(types: string[]): void;

  /** Re-sends TTL'd resources without bodies so clients keep them (xDS TTL heartbeats). */
  abstract heartbeat(): void;

  /** Queues a response; it counts against the write budget until the client answers `nonce`. */
  protected send(bytes: Buffer, typeUrl: string, nonce: string): void {
    if (this.closed) return;
    this.writer.send(bytes, typeUrl, nonce);
  }

  protected emit(event: XdsEvent): void {
    this.ctx.emit(event);
  }

  /** Emits the `request` event of a request. */
  protected requested(
    typeUrl: string,
    r: {
      versionInfo: string;
      responseNonce: string;
      names: readonly string[];
      unsubscribe: readonly string[];
    },
    stale: boolean,
  ): void {
    this.emit({
      type: "request",
      streamId: this.id,
      protocol: this.protocol,
      node: this.node,
      typeUrl,
      versionInfo: r.versionInfo,
      responseNonce: r.responseNonce,
      resourceNames: r.names,
      unsubscribe: r.unsubscribe,
      stale,
    });
  }

  /**
   * Emits the ACK or NACK a request carries for the latest response of its type.
   * xDS protocol: error_detail set means NACK; a NACK's version_info stays the last accepted one.
   */
  protected answered(
    typeUrl: string,
    nonce: string,
    errorDetail: { code: number; message: string } | undefined,
    version: string,
    rejectedVersion: string | undefined,
  ): void {
    const base = { streamId: this.id, protocol: this.protocol, node: this.node, typeUrl, version, nonce };
    if (errorDetail) {
      this.emit({
        type: "nack",
        ...base,
        rejectedVersion,
        errorDetail: { code: errorDetail.code, message: errorDetail.message },
      });
    } else {
      this.emit({ type: "ack", ...base });
    }
  }

  /** Emits the `response` event of a response. */
  protected responded(
    typeUrl: string,
    r: {
      version: string;
      nonce: string;
      resources: readonly { name: string }[];
      removed: readonly string[];
      heartbeat: boolean;
      bytes: number;
    },
  ): void {
    this.emit({
      type: "response",
      streamId: this.id,
      protocol: this.protocol,
      node: this.node,
      typeUrl,
      version: r.version,
      nonce: r.nonce,
      resources: namesOf(r.resources),
      removed: r.removed,
      heartbeat: r.heartbeat,
      bytes: r.bytes,
    });
  }

  /** Ends the stream with a gRPC status. */
  fail(code: number, details: string, level: "warn" | "info" = "warn"): void {
    if (this.closed) return;
    this.ctx.logger[level](`xds: closing stream ${this.id} (${this.transport.peer}): ${details}`);
    this.close(details);
    this.transport.fail(code, details);
  }

  /** Releases every watch; emits stream-close once. */
  close(error?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.close();
    for (const state of this.types.values()) state.subscription?.unsubscribe();
    this.emit({
      type: "stream-close",
      streamId: this.id,
      protocol: this.protocol,
      node: this.node,
      ...(error !== undefined ? { error } : {}),
    });
  }
}
