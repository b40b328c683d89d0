import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { BehaviorSubject, defer, distinctUntilChanged, filter, map, type Observable } from "rxjs";
import { XdsError } from "../errors.js";
import type { XdsEvent } from "../events.js";
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
  private readonly subjects = new Map<string, BehaviorSubject<Snapshot | undefined>>();
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
    this.subject(key).next(snapshot);
  }

  /** The snapshot of a key, if one is set. */
  getSnapshot(key: string): Snapshot | undefined {
    return this.subjects.get(key)?.value;
  }

  /** Removes a key's snapshot and status. Open streams keep what they have and get no more pushes. */
  clearSnapshot(key: string): void {
    const subject = this.subjects.get(key);
    if (subject) {
      subject.next(undefined);
      if (!subject.observed) this.subjects.delete(key);
    }
    this.tracker.delete(key);
  }

  /** Keys that have a snapshot. */
  keys(): string[] {
    return [...this.subjects].filter(([, s]) => s.value !== undefined).map(([k]) => k);
  }

  /** What the cache knows about a node (by Node or key): streams, versions sent and ACKed, NACKs. */
  status(node: Node | string): NodeStatus | undefined {
    return this.tracker.status(typeof node === "string" ? node : this.keyOf(node));
  }

  watch(node: Node, typeUrl: string): Observable<ResourceSet> {
    return defer(() => this.subject(this.keyOf(node))).pipe(
      filter((s): s is Snapshot => s !== undefined),
      map((s) => s.resourceSet(typeUrl)),
      distinctUntilChanged((a, b) => a.version === b.version),
    );
  }

  record(event: XdsEvent): void {
    this.tracker.record(event);
  }

  private subject(key: string): BehaviorSubject<Snapshot | undefined> {
    let subject = this.subjects.get(key);
    if (!subject) {
      subject = new BehaviorSubject<Snapshot | undefined>(undefined);
      this.subjects.set(key, subject);
    }
    return subject;
  }
}
