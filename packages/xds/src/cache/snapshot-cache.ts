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
  private readonly entries = new KeyTable();
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
    // The arrays as they are now: a type watched from here on is not told (it got the new set
    // when it was added). While it is told, a type of it that gets a second listener, or is no
    // longer watched, has its slot changed in these arrays too, even after the key's arrays were
    // replaced (see KeyEntry.patch): the watchers told are those of each type when it is reached.
    const frame: Telling = { entry, typeUrls: entry.typeUrls, watchers: entry.watchers as Watchers[] };
    const telling = this.entries.telling;
    telling.push(frame);
    try {
      const { typeUrls, watchers } = frame;
      for (let t = 0; t < typeUrls.length; t++) {
        const typeUrl = typeUrls[t]!;
        const set = snapshot.resourceSet(typeUrl);
        if (previous?.resourceSet(typeUrl).version === set.version) continue;
        const w = watchers[t]!;
        // A copy: a watcher may subscribe or unsubscribe others while it is told.
        if (Array.isArray(w)) for (const listener of w.slice()) listener.next(set);
        else w.next(set);
      }
    } finally {
      telling.pop();
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
      if (entry.typeUrls.length === 0) this.entries.delete(key);
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
      const entry = this.add(this.keyOf(node), typeUrl, subscriber);
      return () => entry.unwatch(subscriber);
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
  private add(key: string, typeUrl: string, listener: WatchListener): KeyEntry {
    const entry = this.entry(key);
    if (entry.snapshot) listener.next(entry.snapshot.resourceSet(typeUrl));
    entry.add(typeUrl, listener);
    return entry;
  }

  record(event: XdsEvent): void {
    this.tracker.record(event);
  }

  private entry(key: string): KeyEntry {
    return getOrCreate(this.entries, key, () => new KeyEntry(this.entries, key));
  }
}

/** The key entries of a cache, and the changes being told (innermost last). */
class KeyTable extends Map<string, KeyEntry> {
  readonly telling: Telling[] = [];
}

/** A change being told: the key's arrays as they were when it started. */
interface Telling {
  readonly entry: KeyEntry;
  readonly typeUrls: readonly string[];
  readonly watchers: Watchers[];
}

const noTypes: readonly string[] = Object.freeze([]);
const noWatchers: readonly Watchers[] = Object.freeze([]);
const noListeners: readonly WatchListener[] = Object.freeze([]);

/** The watchers of one type: its one listener, or an array of them (two or more, or emptied). */
type Watchers = WatchListener | WatchListener[];

/**
 * One key's snapshot and watchers, and the {@link CacheWatch} of every watch of the key (a
 * listener watches one type: it is found by a scan over the key's few types). With a key per
 * proxy (per-proxy snapshots), thousands of keys have one listener per type each: the entry holds
 * them in two exactly sized arrays, a type's listener itself until a second one comes, and no
 * object per type.
 */
class KeyEntry implements CacheWatch {
  snapshot: Snapshot | undefined = undefined;
  /** The watched types (a handful: a scan beats a Map). Replaced, never changed in place. */
  typeUrls: readonly string[] = noTypes;
  /**
   * Per watched type (same index as `typeUrls`), its watchers. Replaced with `typeUrls`; a slot is
   * changed in place only to give a type its second listener (a change being told then tells it
   * too, as it would a listener added to an array) or to empty a type no longer watched.
   */
  watchers: readonly Watchers[] = noWatchers;

  constructor(
    private readonly entries: KeyTable,
    private readonly key: string,
  ) {}

  add(typeUrl: string, listener: WatchListener): void {
    const t = this.typeUrls.indexOf(typeUrl);
    if (t < 0) {
      // concat sizes the arrays exactly (a pushed-to or spread one has room for 16 more).
      this.typeUrls = this.typeUrls.concat([typeUrl]);
      this.watchers = this.watchers.concat([listener]);
      return;
    }
    const w = this.watchers[t]!;
    if (Array.isArray(w)) w.push(listener);
    else {
      const both = [w, listener];
      this.patch(typeUrl, w, both);
      (this.watchers as Watchers[])[t] = both;
    }
  }

  unwatch(listener: WatchListener): void {
    const watchers = this.watchers;
    for (let t = 0; t < watchers.length; t++) {
      const w = watchers[t]!;
      if (w === listener) {
        this.drop(t);
        return;
      }
      if (!Array.isArray(w)) continue;
      const at = w.indexOf(listener);
      if (at < 0) continue;
      w.splice(at, 1);
      if (w.length === 0) this.drop(t);
      return;
    }
  }

  /**
   * A type's watchers change from `was` to `now` (its second listener, or none): in the arrays of
   * every change of this key being told too, where they are still `was` (a change told from arrays
   * the key has since replaced, by a type added or dropped, tells the type's watchers as they are
   * when it reaches them, as one told from a list of per-type objects would).
   */
  private patch(typeUrl: string, was: Watchers, now: Watchers): void {
    for (const frame of this.entries.telling) {
      if (frame.entry !== this || frame.watchers === this.watchers) continue;
      const i = frame.typeUrls.indexOf(typeUrl);
      if (i >= 0 && frame.watchers[i] === was) frame.watchers[i] = now;
    }
  }

  /** The type at `t` is no longer watched; nor is the key, if it has no snapshot. */
  private drop(t: number): void {
    // A change being told from the current arrays, or older ones, tells nobody in this slot any more.
    this.patch(this.typeUrls[t]!, this.watchers[t]!, noListeners as WatchListener[]);
    (this.watchers as Watchers[])[t] = noListeners as WatchListener[];
    this.typeUrls = without(this.typeUrls, t);
    this.watchers = without(this.watchers, t);
    if (this.typeUrls.length === 0 && this.snapshot === undefined && this.entries.get(this.key) === this)
      this.entries.delete(this.key);
  }
}

/** A copy of `list` without its element at `t`, exactly sized. */
function without<T>(list: readonly T[], t: number): readonly T[] {
  const out: T[] = new Array(list.length - 1);
  for (let i = 0, j = 0; i < list.length; i++) if (i !== t) out[j++] = list[i]!;
  return out;
}
