import type { Registry } from "@bufbuild/protobuf";
import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { BehaviorSubject, NEVER, type Observable } from "rxjs";
import type { CachedResource } from "../cached-resource.js";
import type { XdsEvent } from "../events.js";
import { cacheResource, type ResourceInput, type ResourceSet, resourceSet } from "../snapshot.js";
import type { ConfigWatcher } from "./config-watcher.js";
import { type NodeStatus, StatusTracker } from "./status.js";

/** Options of {@link LinearCache}. */
export interface LinearCacheOptions {
  /** Schemas for a custom type (the built-in xDS types are always known). */
  registry?: Registry;
  now?: () => Date;
}

/**
 * One resource type shared by every node, updated resource by resource (e.g. secrets, endpoints
 * fed from a registry). Each resource has its own content-hash version, so a change to one
 * resource reaches a delta client as exactly that resource.
 */
export class LinearCache implements ConfigWatcher {
  private readonly subject: BehaviorSubject<ResourceSet>;
  private readonly tracker: StatusTracker;

  constructor(
    readonly typeUrl: string,
    private readonly options: LinearCacheOptions = {},
  ) {
    this.subject = new BehaviorSubject(resourceSet(typeUrl, []));
    this.tracker = new StatusTracker((n) => n.id, options.now);
  }

  /** The current resources and version. */
  get current(): ResourceSet {
    return this.subject.value;
  }

  /** Adds or replaces resources by name. */
  update(...resources: ResourceInput[]): void {
    const next = new Map(this.subject.value.resources);
    for (const r of resources) {
      const cached = cacheResource(this.typeUrl, r, this.options.registry);
      next.set(cached.name, cached);
    }
    this.publish(next);
  }

  /** Removes resources by name; unknown names are ignored. */
  delete(...names: string[]): void {
    const next = new Map(this.subject.value.resources);
    let changed = false;
    for (const n of names) changed = next.delete(n) || changed;
    if (changed) this.publish(next);
  }

  /** Replaces the whole set. */
  set(resources: readonly ResourceInput[]): void {
    const cached = resources.map((r) => cacheResource(this.typeUrl, r, this.options.registry));
    this.subject.next(resourceSet(this.typeUrl, cached));
  }

  /** What the cache knows about a node (by Node or node id). */
  status(node: Node | string): NodeStatus | undefined {
    return this.tracker.status(typeof node === "string" ? node : node.id);
  }

  watch(_node: Node, typeUrl: string): Observable<ResourceSet> {
    // Another type is not this cache's: the stream waits (route types with MuxCache).
    return typeUrl === this.typeUrl ? this.subject.asObservable() : NEVER;
  }

  record(event: XdsEvent): void {
    this.tracker.record(event);
  }

  private publish(resources: Map<string, CachedResource>): void {
    const next = resourceSet(this.typeUrl, resources.values());
    if (next.version !== this.subject.value.version) this.subject.next(next);
  }
}
