import { create } from "@bufbuild/protobuf";
import { type Node, NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { Observable, type Subscriber, type Subscription } from "rxjs";
import type { ConfigWatcher, SubscribedNames } from "../cache/config-watcher.js";
import { type CacheWatch, listenTo, type WatchListener } from "../cache/watch-listener.js";
import type { CachedResource } from "../cached-resource.js";
import type { XdsEvent, XdsProtocol } from "../events.js";
import type { ResourceSet } from "../snapshot.js";
import { adsOrder } from "../type-url.js";
import type { ServerCall } from "./call.js";
import { GrpcStatus } from "./grpc-status.js";
import { Holdings, type Scope, type Touched, type Unanswered } from "./holding.js";
import type { Logger } from "./logger.js";
import { NameSets } from "./name-sets.js";
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
  /** Resource names one stream may subscribe to per type. */
  readonly maxNamesPerType: number;
  /** Milliseconds since the epoch (the server's clock). */
  now(): number;
  emit(event: XdsEvent): void;
}

/** The transport side of a stream: what a stream uses of its call. */
export type StreamTransport = Pick<ServerCall, "peer" | "write" | "finish">;

/** How a request's response_nonce relates to the responses of its type. */
export type NonceKind = "none" | "latest" | "heartbeat" | "stale";

/** What a type's state needs of its stream to take the changes of its watch. */
export interface TypeStateOwner {
  readonly closed: boolean;
  markDirty(typeUrl: string): void;
  watchFailed(typeUrl: string, err: unknown): void;
}

/**
 * Per-type state common to both protocols. A class whose every field exists from construction, in
 * one order: V8 then gives every state of a kind one hidden class with its fields in the object.
 * (An object spread plus fields added later gave each state a hidden class and a property array of
 * its own: about 0.5 KB per subscribed type and stream.)
 *
 * It is also the listener of the type's watch of the cache (`next`, and `error` for a cache's
 * Observable): no closure or observer object per watch.
 */
export class TypeStateBase implements WatchListener {
  current?: ResourceSet = undefined;
  /** The watch of the cache, once the first request of the type started it. */
  watching?: CacheWatch = undefined;
  /** Explicitly requested names (a shared set from NameSets). */
  names: ReadonlySet<string> = NameSets.empty;
  /** Wildcard subscription (legacy empty list on the first request, or "*"). */
  wildcard = false;
  /** What the client holds: the view pushes are diffed against, and the answers in flight. */
  readonly holdings = new Holdings();
  /** Nonce of the latest response that was not a heartbeat. */
  lastNonce?: string = undefined;
  /** Version of the latest response. */
  lastVersion?: string = undefined;
  /** Nonces of heartbeats sent since the latest response: answers to them are not stale. */
  heartbeatNonces?: Set<string> = undefined;
  /** The nonce whose ACK/NACK was reported: a later request repeating it reports nothing more. */
  answeredNonce?: string = undefined;
  /**
   * The version of the last ACK (CSDS, waitForAck); undefined before the first. Two fields rather
   * than an object: one per type and stream.
   */
  ackedVersion?: string = undefined;
  /** When the last ACK came (ms since the epoch; meaningful once `ackedVersion` is set). */
  ackedAt = 0;
  /** The last NACK (CSDS). */
  lastNack?: {
    readonly version: string;
    readonly rejectedVersion: string;
    readonly message: string;
    readonly code: number;
    readonly at: number;
    /** Names of the rejected response ("all": a full-state response). */
    readonly touched: Touched;
  } = undefined;
  /** Watchers of the subscription (ConfigWatcher.watch's names$), created on first use. */
  nameWatchers?: Subscriber<SubscribedNames>[] = undefined;
  /**
   * The resource versions the client rejected (NACKed responses) while the type is in the state
   * `set`: none of them is sent again until the type has a new state (see XdsStream.rejectedNow).
   */
  rejected?: { readonly set: ResourceSet; readonly versions: Map<string, string> } = undefined;

  /** A new type's state, with nothing subscribed and nothing held. */
  constructor(
    private readonly owner: TypeStateOwner,
    readonly typeUrl: string,
  ) {}

  /** A new ResourceSet of the type from the cache: marks the type dirty. */
  next(set: ResourceSet): void {
    // A closed stream ended its watches; a cache telling listeners from a copy may still call.
    if (this.owner.closed) return;
    this.current = set;
    // A new state: what the client rejected may go out again with it.
    if (this.rejected && this.rejected.set !== set) this.rejected = undefined;
    this.owner.markDirty(this.typeUrl);
  }

  /** The watch failed (a cache's Observable errored). */
  error(err: unknown): void {
    this.owner.watchFailed(this.typeUrl, err);
  }
}

/** A watch through ConfigWatcher.watch: its rxjs subscription. */
class SubscriptionWatch implements CacheWatch {
  constructor(private readonly subscription: Subscription) {}

  unwatch(): void {
    this.subscription.unsubscribe();
  }
}

const names = new WeakMap<readonly { name: string }[], WeakRef<readonly string[]>>();

/**
 * The names of a (shared) resource list, computed once per list while in use: streams share push
 * arrays. Held weakly: the names are needed while a response is unanswered and by its event, but
 * a list lives as long as its set (a per-proxy snapshot's first response list lives as long as
 * the snapshot), and its names would be kept that long for nothing. Asked for again after the
 * collector freed them, they are computed again.
 */
export function namesOf(list: readonly { name: string }[]): readonly string[] {
  let out = names.get(list)?.deref();
  if (out === undefined) {
    out = list.map((x) => x.name);
    names.set(list, new WeakRef(out));
  }
  return out;
}

const orderIndex = new Map(adsOrder.map((t, i) => [t, i]));

/**
 * Responses one stream may have waiting to be written (behind a write its client's flow control
 * holds) before the stream is ended: a proxy that reads keeps this near zero; one that is a
 * hundred pushes behind is better served by reconnecting.
 */
export const MAX_QUEUED_RESPONSES = 100;

/** Sorts type URLs into ADS push order: CDS, EDS, LDS, RDS, then the rest. */
export function inAdsOrder(types: Iterable<string>): string[] {
  return [...types].sort(
    (a, b) => (orderIndex.get(a) ?? adsOrder.length) - (orderIndex.get(b) ?? adsOrder.length),
  );
}

/**
 * One xDS stream (ADS or a per-type service). Holds the node from the first request, hands out
 * nonces scoped to the stream, subscribes to the cache per requested type, tracks what the client
 * holds through its answers, and batches changes: all types a cache change touches are flushed
 * together, in ADS order.
 */
export abstract class XdsStream<S extends TypeStateBase> {
  node: Node | undefined;
  closed = false;
  /**
   * The per-type states, in the order their types were first requested. An exactly sized array,
   * replaced when a type is added (a handful per stream): smaller than a Map's table.
   */
  protected types: readonly S[] = [];
  /** Types changed since the last flush, in the order they changed; none between flushes. */
  private dirty: string[] | undefined = undefined;
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

  /** The per-type state of the stream (CSDS reads it; nothing may change it from outside). */
  typeStates(): ReadonlyMap<string, Readonly<S>> {
    return new Map(this.types.map((state) => [state.typeUrl, state]));
  }

  /** The state of a type, if the stream has requested it. */
  protected typeState(typeUrl: string): S | undefined {
    for (const state of this.types) if (state.typeUrl === typeUrl) return state;
    return undefined;
  }

  /** Adds the state of a type requested for the first time. */
  protected addType(state: S): void {
    // concat sizes the array exactly (a spread or push leaves room for 16 more).
    this.types = this.types.concat([state]);
  }

  /** Validates a request's type URL against the stream's service; undefined after failing the stream. */
  protected requestType(typeUrl: string): string | undefined {
    if (this.service === "ads") {
      if (typeUrl === "") {
        this.fail(
          GrpcStatus.INVALID_ARGUMENT,
          "type_url is required on every request of an aggregated (ADS) stream",
        );
        return undefined;
      }
      return typeUrl;
    }
    if (typeUrl !== "" && typeUrl !== this.service) {
      this.fail(
        GrpcStatus.INVALID_ARGUMENT,
        `this stream serves ${this.service}; a request asked for ${typeUrl}`,
      );
      return undefined;
    }
    return this.service;
  }

  /**
   * The common start of every request: keeps the node, checks the type URL (failing the stream on
   * a violation), finds the type's state and says how the response_nonce relates to it.
   * xDS protocol ("Resource updates"): a nonce is stale once a newer response presented a newer
   * one. A TTL heartbeat re-sends what the client has at the same version; it is no newer state,
   * so the response before it (and the heartbeats since) can still be answered. The first
   * request of a type on a stream has nothing to be stale against.
   */
  protected begin(req: {
    node?: Node;
    typeUrl: string;
    responseNonce: string;
  }): { typeUrl: string; state: S | undefined; nonce: NonceKind } | undefined {
    if (this.closed) return undefined;
    if (!this.keepNode(req.node)) return undefined;
    const typeUrl = this.requestType(req.typeUrl);
    if (typeUrl === undefined) return undefined;
    // Every answer (ACK or NACK, stale or not) frees the budget its response held.
    if (req.responseNonce !== "") this.writer.answered(typeUrl, req.responseNonce);
    const state = this.typeState(typeUrl);
    let nonce: NonceKind = "none";
    if (state !== undefined && req.responseNonce !== "") {
      if (req.responseNonce === state.lastNonce) nonce = "latest";
      else if (state.heartbeatNonces?.has(req.responseNonce)) nonce = "heartbeat";
      else nonce = "stale";
    }
    return { typeUrl, state, nonce };
  }

  /**
   * Keeps the node of the stream's first request. xDS protocol ("Basic Protocol Overview"): only
   * the first request is guaranteed to carry the node, and "the node identifier should always be
   * identical if present more than once on the stream": a later request naming another node id is
   * refused (PERMISSION_DENIED), since the stream was authorized for the first. Returns false
   * after failing the stream.
   */
  protected keepNode(node: Node | undefined): boolean {
    if (this.node !== undefined) {
      if (node !== undefined && node.id !== this.node.id) {
        this.fail(
          GrpcStatus.PERMISSION_DENIED,
          `a request names node "${node.id}" on a stream opened by node "${this.node.id}"; the node of a stream cannot change`,
        );
        return false;
      }
      return true;
    }
    if (node === undefined) {
      // xDS protocol: the first request carries the node. Serve such a client as the empty node
      // (id "") rather than hang it, and say so.
      this.ctx.logger.warn(
        `xds: stream ${this.id} (${this.transport.peer}) sent no node on its first request; serving it as node ""`,
      );
      this.node = create(NodeSchema);
      return true;
    }
    this.node = node;
    return true;
  }

  /** The scope of a type's subscription: "*" or its shared name set. */
  protected scopeOf(state: S): Scope {
    return state.wildcard ? "*" : state.names;
  }

  /**
   * Starts watching a type for this stream's node; each change marks the type dirty. The built-in
   * caches take the type's state as their listener (their internal fast path: nothing allocated
   * per watch but the slot that holds it); any other cache is watched through
   * ConfigWatcher.watch, and told the subscription too (and each change of it, `names$`), so it
   * can build what is asked for.
   */
  protected watch(state: S): void {
    if (state.watching || !this.node) return;
    state.watching = listenTo(this.ctx.watcher, this.node, state.typeUrl, state);
    if (state.watching) return;
    const names$ = new Observable<SubscribedNames>((subscriber) => {
      subscriber.next({ wildcard: state.wildcard, names: state.names });
      state.nameWatchers ??= [];
      state.nameWatchers.push(subscriber);
      return () => {
        const list = state.nameWatchers;
        if (!list) return;
        list.splice(list.indexOf(subscriber), 1);
        if (list.length === 0) state.nameWatchers = undefined;
      };
    });
    // The state is the observer: rxjs calls its `next` and `error`.
    state.watching = new SubscriptionWatch(
      this.ctx.watcher.watch(this.node, state.typeUrl, names$).subscribe(state),
    );
  }

  /** Logs a failed watch (internal: called by a type's state). */
  watchFailed(typeUrl: string, err: unknown): void {
    this.ctx.logger.error(`xds: watch of ${typeUrl} for node "${this.node?.id}" failed`, {
      error: err,
    });
  }

  /** Tells the cache's watchers of a type that its subscription changed. */
  protected subscriptionChanged(state: S): void {
    const list = state.nameWatchers;
    if (!list) return;
    const names: SubscribedNames = { wildcard: state.wildcard, names: state.names };
    for (const subscriber of [...list]) subscriber.next(names);
  }

  /** Schedules a flush; every type changed by one cache update goes out in one ordered batch. */
  markDirty(typeUrl: string): void {
    const dirty = this.dirty;
    if (dirty === undefined) this.dirty = [typeUrl];
    else if (!dirty.includes(typeUrl)) dirty.push(typeUrl);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.closed) return;
      const batch = inAdsOrder(this.dirty ?? []);
      this.dirty = undefined;
      try {
        this.flush(batch);
      } catch (err) {
        this.ctx.logger.error(`xds: stream ${this.id} failed to respond`, { error: err });
        this.fail(
          GrpcStatus.INTERNAL,
          `control plane error: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    });
  }

  /** Sends whatever the dirty types need, in the given (ADS) order. */
  protected abstract flush(types: string[]): void;

  /** Re-sends TTL'd resources without bodies so clients keep them (xDS TTL heartbeats). */
  abstract heartbeat(): void;

  /**
   * Queues a response; it counts against the write budget until the client answers `nonce`. A
   * heartbeat's nonce is remembered so an answer to it, or to the response before it, is not
   * stale; any other response makes the earlier nonces stale.
   */
  protected send(state: S, bytes: Buffer, nonce: string, version: string, heartbeat: boolean): void {
    if (heartbeat) {
      state.heartbeatNonces ??= new Set();
      state.heartbeatNonces.add(nonce);
    } else {
      state.lastNonce = nonce;
      state.heartbeatNonces = undefined;
    }
    state.lastVersion = version;
    if (this.closed) return;
    this.writer.send(bytes, state.typeUrl, nonce);
    if (this.writer.pending > MAX_QUEUED_RESPONSES) {
      // Flow control holds its first write and every push queues behind it: a client that keeps
      // its connection alive but never reads the stream would hold every push's buffers. Its
      // reconnect gets the current state in one response per type.
      this.fail(
        GrpcStatus.RESOURCE_EXHAUSTED,
        `client is not reading its responses: more than ${MAX_QUEUED_RESPONSES} wait to be written`,
      );
    }
  }

  /**
   * Whether a nonce is still in use on a type (sent and possibly not answered, or answered last):
   * a response shared with other streams (ResponseCache) may bring back a nonce this stream had,
   * and an answer must name one response. Such a response is sent with a fresh nonce.
   */
  protected nonceInUse(state: S, nonce: string): boolean {
    return (
      nonce === state.lastNonce ||
      nonce === state.answeredNonce ||
      (state.heartbeatNonces?.has(nonce) ?? false) ||
      state.holdings.find(nonce) !== undefined
    );
  }

  /**
   * Whether `r` is a version the client rejected in the type's current state. xDS protocol ("ACK
   * and NACK semantics summary", "When to send an update"): after a NACK the server waits for a
   * new state instead of sending the rejected resource again. A request for another name is no
   * new state of the rejected ones: were they sent with it, the client would reject that response
   * too (Envoy's gRPC mux NACKs a response as a whole) and the new name would not arrive either.
   * Full-state types (LDS, CDS in SotW) cannot leave a resource out (a missing one is deleted);
   * every other response skips these and the client stays unsure of them until the next state.
   */
  protected rejectedNow(state: S, r: CachedResource): boolean {
    const rejected = state.rejected;
    return (
      rejected !== undefined && rejected.set === state.current && rejected.versions.get(r.name) === r.version
    );
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
   * Applies the ACK or NACK a request carries. xDS protocol ("ACK and NACK semantics summary"):
   * error_detail set means NACK, and a NACK keeps the previous version_info: the client still
   * holds what it held before the rejected response. Every answer lands on the holdings (even a
   * stale one: it is still a fact about the client); one answer per response is reported on
   * events$, and only for the latest response or a heartbeat since (a stale request is ignored,
   * xDS protocol "Resource updates").
   */
  protected answer(
    state: S,
    nonce: string,
    kind: NonceKind,
    errorDetail: { code: number; message: string } | undefined,
    reportedVersion: (rejected: string) => string,
  ): void {
    if (kind === "none" || nonce === state.answeredNonce) return;
    const answered =
      kind === "heartbeat" ? undefined : state.holdings.answer(nonce, errorDetail !== undefined);
    if (errorDetail) this.remember(state, answered);
    if (kind === "stale") return;
    state.answeredNonce = nonce;
    const rejectedVersion = answered?.version ?? state.lastVersion ?? "";
    const version = reportedVersion(rejectedVersion);
    const base = {
      streamId: this.id,
      protocol: this.protocol,
      node: this.node,
      typeUrl: state.typeUrl,
      version,
      nonce,
    };
    const at = this.ctx.now();
    if (errorDetail) {
      state.lastNack = {
        version,
        rejectedVersion,
        message: errorDetail.message,
        code: errorDetail.code,
        at,
        touched: answered?.touched ?? [],
      };
      this.emit({
        type: "nack",
        ...base,
        rejectedVersion,
        errorDetail: { code: errorDetail.code, message: errorDetail.message },
      });
    } else {
      state.ackedVersion = version;
      state.ackedAt = at;
      // The NACK stays on record while what it rejected is still held back.
      if (answered && state.rejected === undefined) state.lastNack = undefined;
      this.emit({ type: "ack", ...base });
    }
  }

  /** Remembers the resource versions a NACKed response carried (see rejectedNow). */
  private remember(state: S, answered: Unanswered | undefined): void {
    const set = state.current;
    if (!answered || answered.touched === "all" || !set) return;
    if (state.rejected?.set !== set) state.rejected = { set, versions: new Map() };
    const versions = state.rejected.versions;
    for (const list of answered.touched)
      for (const name of list) {
        const version = answered.after.version(name);
        if (typeof version === "string") versions.set(name, version);
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

  /**
   * Refuses a subscription over the per-type cap: ends the stream with RESOURCE_EXHAUSTED naming
   * the node and type. Returns false after failing the stream.
   */
  protected withinNameCap(typeUrl: string, count: number): boolean {
    if (count <= this.ctx.maxNamesPerType) return true;
    // The node id is the client's word: quoted and shortened, never interpreted.
    const id = this.node?.id ?? "";
    const shown = JSON.stringify(id.length > 200 ? `${id.slice(0, 200)}…` : id);
    this.fail(
      GrpcStatus.RESOURCE_EXHAUSTED,
      `node ${shown} subscribed to ${count} resource names of ${typeUrl} on one stream; the limit is ${this.ctx.maxNamesPerType} per type and stream — subscribe with a wildcard, or raise maxResourceNamesPerType`,
    );
    return false;
  }

  /** Ends the stream with a gRPC status. */
  fail(code: number, details: string, level: "warn" | "info" = "warn"): void {
    if (this.closed) return;
    this.ctx.logger[level](`xds: closing stream ${this.id} (${this.transport.peer}): ${details}`);
    this.close(details);
    this.transport.finish(code, details);
  }

  /**
   * The one close path of both stream kinds: releases every watch and shared name set, completes
   * the subscription watchers, and emits stream-close once.
   */
  close(error?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.close();
    for (const state of this.types) {
      state.watching?.unwatch(state);
      for (const subscriber of state.nameWatchers ?? []) subscriber.complete();
      this.ctx.nameSets.release(state.names);
    }
    this.emit({
      type: "stream-close",
      streamId: this.id,
      protocol: this.protocol,
      node: this.node,
      ...(error !== undefined ? { error } : {}),
    });
  }
}
