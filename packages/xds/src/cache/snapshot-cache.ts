import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { Observable } from "rxjs";
import { XdsError } from "../errors.js";
import type { XdsEvent } from "../events.js";
import { getOrCreate } from "../get-or-create.js";
import type { ResourceSet, Snapshot } from "../snapshot.js";
import type { ConfigWatcher } from "./config-watcher.js";
import { type NodeStatus, StatusTracker } from "./status.js";
import {
  type CacheWatch,
  idleWatch,
  type ListenableWatcher,
  listen,
  type WatchListener,
} from "./watch-listener.js";

/** Options of {@link SnapshotCache}. */
export interface SnapshotCacheOptions {
  /** ADS mode: see {@link ConfigWatcher.ads}. Off by default. */
  ads?: boolean;
  /**
   * Groups nodes: nodes with the same key share a snapshot. Default: the node's `id`. Use e.g.
   * `(n) => n.cluster` to serve every proxy of a service the same config.
   */
  nodeKey?: (node: Node) => string;
  /** Clock for status timestamps. */
  now?: () => Date;
}

/**
 * Holds one immutable {@link Snapshot} per node key and serves it to xDS streams. Setting a
 * snapshot notifies only the streams of that key, and of those only the types whose version
 * changed.
 */
export class SnapshotCache implements ListenableWatcher {
  readonly ads: boolean;
  /**
   * Per key: the snapshot and the watchers of each watched type. A snapshot change calls only the
   * watchers of the types whose version changed — with thousands of streams per key, a
   * one-endpoint change touches the EDS watchers and nobody else. Plain arrays, not a Subject
   * per type: with a key per proxy (per-proxy snapshots), every key holds its own.
   */
  private readonly entries = new Map<string, KeyEntry>();
  private readonly tracker: StatusTracker;
  private readonly keyOf: (node: Node) => string;

  constructor(options: SnapshotCacheOptions = {}) {
    this.ads = options.ads ?? false;
    this.keyOf = options.nodeKey ?? ((node) => node.id);
    this.tracker = new StatusTracker(this.keyOf, options.now);
  }

  /** The key a node's snapshot is stored under. */
  nodeKey(node: Node): string {
    return this.keyOf(node);
  }

  /** Sets the snapshot of a key; streams of that key get what changed. */
  setSnapshot(key: string, snapshot: Snapshot): void {
    if (typeof key !== "string")
      throw new XdsError("invalid-argument", "setSnapshot: the key must be a string");
    const entry = this.entry(key);
    const previous = entry.snapshot;
    entry.snapshot = snapshot;
    for (const { typeUrl, listeners } of entry.types) {
      const set = snapshot.resourceSet(typeUrl);
      if (previous?.resourceSet(typeUrl).version === set.version) continue;
      // A copy: a watcher may subscribe or unsubscribe others while it is told.
      for (const listener of listeners.slice()) listener.next(set);
    }
  }

  /** The snapshot of a key, if one is set. */
  getSnapshot(key: string): Snapshot | undefined {
    return this.entries.get(key)?.snapshot;
  }

  /** Removes a key's snapshot and status. Open streams keep what they have and get no more pushes. */
  clearSnapshot(key: string): void {
    const entry = this.entries.get(key);
    if (entry) {
      entry.snapshot = undefined;
      if (entry.types.length === 0) this.entries.delete(key);
    }
    this.tracker.delete(key);
  }

  /** Keys that have a snapshot. */
  keys(): string[] {
    return [...this.entries].filter(([, e]) => e.snapshot !== undefined).map(([k]) => k);
  }

  /** What the cache knows about a node (by Node or key): streams, versions sent and ACKed, NACKs. */
  status(node: Node | string): NodeStatus | undefined {
    return this.tracker.status(typeof node === "string" ? node : this.keyOf(node));
  }

  watch(node: Node, typeUrl: string): Observable<ResourceSet> {
    return new Observable<ResourceSet>((subscriber) => {
      // A Subscriber is a listener: one told after it unsubscribed (from the copy a change is
      // told from) ignores it.
      // A nodeKey that throws on the node errors the Observable (rxjs tells the subscriber).
      const watch = this.add(this.keyOf(node), typeUrl, subscriber);
      return () => watch.unwatch(subscriber);
    });
  }

  /**
   * Internal fast path (see {@link listen}): `watch(node, typeUrl).subscribe(listener)` without
   * rxjs's objects. Refused (undefined) when a subclass overrides `watch`, whose watches must go
   * through it.
   */
  [listen](node: Node, typeUrl: string, listener: WatchListener): CacheWatch | undefined {
    if (this.watch !== SnapshotCache.prototype.watch) return undefined;
    let key: string;
    try {
      key = this.keyOf(node);
    } catch (err) {
      // As watch() would: its Observable errors, and nothing is watched. The node comes from the
      // client: a nodeKey may throw on it, and that must not throw out of the stream's request.
      listener.error?.(err);
      return idleWatch;
    }
    return this.add(key, typeUrl, listener);
  }

  /** Tells a listener the key's current set of the type (if any), then adds it to the type's watchers. */
  private add(key: string, typeUrl: string, listener: WatchListener): Watchers {
    const entry = this.entry(key);
    if (entry.snapshot) listener.next(entry.snapshot.resourceSet(typeUrl));
    const own = entry.types.find((w) => w.typeUrl === typeUrl);
    if (own) {
      own.listeners.push(listener);
      return own;
    }
    // Exactly sized arrays (a pushed-to or spread one has room for 16 more; concat's has none):
    // a key per proxy has one watcher per type, and thousands of keys.
    const watchers = new Watchers(this.entries, key, entry, typeUrl, listener);
    entry.types = entry.types.concat([watchers]);
    return watchers;
  }

  record(event: XdsEvent): void {
    this.tracker.record(event);
  }

  private entry(key: string): KeyEntry {
    return getOrCreate(this.entries, key, () => ({ snapshot: undefined, types: [] }));
  }
}

interface KeyEntry {
  snapshot: Snapshot | undefined;
  /** The watched types (a handful: a scan beats a Map per key). Replaced, never changed in place. */
  types: readonly Watchers[];
}

/**
 * The watchers of one type of one key: every stream of the key watching the type shares it (it is
 * the {@link CacheWatch} of each of their watches).
 */
class Watchers implements CacheWatch {
  readonly listeners: WatchListener[];

  constructor(
    private readonly entries: Map<string, KeyEntry>,
    private readonly key: string,
    private readonly entry: KeyEntry,
    readonly typeUrl: string,
    first: WatchListener,
  ) {
    this.listeners = [first];
  }

  unwatch(listener: WatchListener): void {
    const at = this.listeners.indexOf(listener);
    if (at < 0) return;
    this.listeners.splice(at, 1);
    if (this.listeners.length > 0) return;
    // The last one left: the type is no longer watched, nor the key if it has no snapshot.
    const entry = this.entry;
    entry.types = entry.types.filter((w) => w !== this);
    if (entry.types.length === 0 && entry.snapshot === undefined) this.entries.delete(this.key);
  }
}
