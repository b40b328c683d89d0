import type { Registry } from "@bufbuild/protobuf";
import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { NEVER, Observable } from "rxjs";
import type { CachedResource } from "../cached-resource.js";
import type { XdsEvent } from "../events.js";
import { mergeRuns, sortedByDigest } from "../hash.js";
import {
  defaultResourcePool,
  type InternOptions,
  type ResourceInput,
  type ResourcePool,
  type ResourceSet,
} from "../resource-pool.js";
import { sortedMembersOf } from "../resource-set.js";
import { validateResource } from "../validation/validate-resource.js";
import { type NodeStatus, StatusTracker } from "./status.js";
import {
  type CacheWatch,
  idleWatch,
  type ListenableWatcher,
  listen,
  type WatchListener,
} from "./watch-listener.js";

/** Options of {@link LinearCache}. */
export interface LinearCacheOptions {
  /**
   * Schemas for a custom type (the built-in xDS types are always known); with `@meshlet/api`'s
   * `registry`, the field rules also check `google.protobuf.Any` payloads.
   */
  registry?: Registry;
  now?: () => Date;
  /** Where encoded resources are shared (default: the process-wide pool, shared with snapshots). */
  pool?: ResourcePool;
  /**
   * Check Envoy's field rules on every new resource and refuse the update with a
   * `ResourceValidationError` (default `true`; `false` for callers that validate elsewhere).
   */
  validate?: boolean;
}

/**
 * One resource type shared by every node, updated resource by resource (e.g. secrets, endpoints
 * fed from a registry). Each resource has its own content-hash version, so a change to one
 * resource reaches a delta client as exactly that resource.
 */
export class LinearCache implements ListenableWatcher {
  private value: ResourceSet;
  /** The watchers (rxjs Subscribers of `watch`, and fast-path listeners), in the order they came. */
  private readonly listeners: WatchListener[] = [];
  /** How a watch of {@link listen} ends: one per cache, shared by its watches. */
  private readonly watching: CacheWatch = { unwatch: (listener) => this.unwatch(listener) };
  private readonly tracker: StatusTracker;
  private readonly pool: ResourcePool;
  private readonly intern: InternOptions;
  /** The current set's members in canonical order (set versions), kept sorted by merging. */
  private sorted: readonly CachedResource[] = [];

  constructor(
    readonly typeUrl: string,
    options: LinearCacheOptions = {},
  ) {
    this.pool = options.pool ?? defaultResourcePool;
    this.intern = {
      ...(options.registry ? { registry: options.registry } : {}),
      ...(options.validate === false ? {} : { validate: validateResource }),
    };
    this.value = this.pool.setFromSorted(typeUrl, new Map(), []);
    this.tracker = new StatusTracker((n) => n.id, options.now);
  }

  /** The current resources and version. */
  get current(): ResourceSet {
    return this.value;
  }

  /**
   * Adds or replaces `upserts` and removes `deletes` (names; unknown ones are ignored) in one
   * atomic step: watchers are notified once, with the result of both, and only if it differs.
   * Only the resources that changed are encoded and hashed; the set's version is then a SHA-256
   * over the members' 16-byte digests (kept in order by merging, never re-sorted). Every upsert is checked
   * (type, name, field rules) before anything changes: a bad one leaves the cache as it was.
   * A name both upserted and deleted is deleted.
   *
   * The older form `update(r1, r2, …)` adds or replaces resources.
   * @throws XdsError, ResourceValidationError for the first bad upsert.
   */
  update(upserts: readonly ResourceInput[], deletes?: readonly string[]): void;
  update(...resources: ResourceInput[]): void;
  update(...args: unknown[]): void {
    const arrayForm = Array.isArray(args[0]);
    const upserts = (arrayForm ? args[0] : args) as readonly ResourceInput[];
    const deletes = (arrayForm ? (args[1] ?? []) : []) as readonly string[];
    const cached = upserts.map((r) => this.pool.resource(this.typeUrl, r, this.intern));
    this.apply(cached, deletes);
  }

  /** Removes resources by name; unknown names are ignored. */
  delete(...names: string[]): void {
    this.apply([], names);
  }

  /** Replaces the whole set. */
  set(resources: readonly ResourceInput[]): void {
    const next = this.pool.set(this.typeUrl, resources, this.intern);
    this.sorted = sortedMembersOf(next);
    if (next !== this.value) this.publish(next);
  }

  /** What the cache knows about a node (by Node or node id). */
  status(node: Node | string): NodeStatus | undefined {
    return this.tracker.status(typeof node === "string" ? node : node.id);
  }

  watch(_node: Node, typeUrl: string): Observable<ResourceSet> {
    // Another type is not this cache's: the stream waits (route types with MuxCache).
    if (typeUrl !== this.typeUrl) return NEVER;
    return new Observable<ResourceSet>((subscriber) => {
      // A Subscriber is a listener: one told after it unsubscribed (from the copy a change is
      // told from) ignores it.
      this.add(subscriber);
      return () => this.unwatch(subscriber);
    });
  }

  /**
   * Internal fast path (see {@link listen}): `watch(node, typeUrl).subscribe(listener)` without
   * rxjs's objects; Refused (undefined) when a subclass overrides
   * `watch`, whose watches must go through it.
   */
  [listen](_node: Node, typeUrl: string, listener: WatchListener): CacheWatch | undefined {
    if (this.watch !== LinearCache.prototype.watch) return undefined;
    if (typeUrl !== this.typeUrl) return idleWatch;
    this.add(listener);
    return this.watching;
  }

  /** Stops telling a watcher. */
  private unwatch(listener: WatchListener): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }

  /** Adds a watcher, then tells it the current set (as a BehaviorSubject would). */
  private add(listener: WatchListener): void {
    this.listeners.push(listener);
    listener.next(this.value);
  }

  /** Makes `set` the current one and tells every watcher, from a copy (one may add or end others). */
  private publish(set: ResourceSet): void {
    this.value = set;
    for (const listener of this.listeners.slice()) listener.next(set);
  }

  record(event: XdsEvent): void {
    this.tracker.record(event);
  }

  private apply(upserts: readonly CachedResource[], deletes: readonly string[]): void {
    const current = this.value.resources;
    const gone = new Set(deletes);
    let next: Map<string, CachedResource> | undefined;
    const out = new Set<CachedResource>();
    const added: CachedResource[] = [];
    const edit = () => {
      next ??= new Map(current);
      return next;
    };
    for (const r of upserts) {
      if (gone.has(r.name)) continue;
      const before = (next ?? current).get(r.name);
      if (before === r) continue;
      if (before) out.add(before);
      added.push(r);
      edit().set(r.name, r);
    }
    for (const name of gone) {
      const before = (next ?? current).get(name);
      if (!before) continue;
      out.add(before);
      edit().delete(name);
    }
    if (!next) return;
    // A name upserted several times in one update: only the last one stays, once.
    const kept = this.sorted.filter((r) => !out.has(r));
    const fresh = sortedByDigest(new Set(added.filter((r) => next!.get(r.name) === r)));
    const sorted: CachedResource[] = [];
    mergeRuns([kept, fresh], (r) => sorted.push(r));
    this.sorted = sorted;
    const set = this.pool.setFromSorted(this.typeUrl, next, sorted);
    if (set.version !== this.value.version) this.publish(set);
  }
}
