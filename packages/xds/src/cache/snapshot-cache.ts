import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { Observable, type Subscriber } from "rxjs";
import { XdsError } from "../errors.js";
import type { XdsEvent } from "../events.js";
import { getOrCreate } from "../get-or-create.js";
import type { ResourceSet, Snapshot } from "../snapshot.js";
import type { ConfigWatcher } from "./config-watcher.js";
import { type NodeStatus, StatusTracker } from "./status.js";

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
export class SnapshotCache implements ConfigWatcher {
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
    for (const { typeUrl, subscribers } of entry.types) {
      const set = snapshot.resourceSet(typeUrl);
      if (previous?.resourceSet(typeUrl).version === set.version) continue;
      // A copy: a watcher may subscribe or unsubscribe others while it is told.
      for (const subscriber of subscribers.slice()) subscriber.next(set);
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
      const key = this.keyOf(node);
      const entry = this.entry(key);
      if (entry.snapshot) subscriber.next(entry.snapshot.resourceSet(typeUrl));
      let own = entry.types.find((w) => w.typeUrl === typeUrl);
      if (own) own.subscribers.push(subscriber);
      else {
        // Exactly sized arrays (a pushed-to one has room for 16 more): a key per proxy has one
        // watcher per type, and thousands of keys.
        own = { typeUrl, subscribers: [subscriber] };
        entry.types = [...entry.types, own];
      }
      const watchers = own;
      return () => {
        const at = watchers.subscribers.indexOf(subscriber);
        if (at >= 0) watchers.subscribers.splice(at, 1);
        if (watchers.subscribers.length > 0) return;
        entry.types = entry.types.filter((w) => w !== watchers);
        if (entry.types.length === 0 && entry.snapshot === undefined) this.entries.delete(key);
      };
    });
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

interface Watchers {
  readonly typeUrl: string;
  readonly subscribers: Subscriber<ResourceSet>[];
}
