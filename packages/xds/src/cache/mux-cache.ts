import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { NEVER, type Observable } from "rxjs";
import type { XdsEvent } from "../events.js";
import type { ResourceSet } from "../snapshot.js";
import type { ConfigWatcher, SubscribedNames } from "./config-watcher.js";
import { type NodeStatus, setOwn, type TypeStatus } from "./status.js";
import {
  type CacheWatch,
  idleWatch,
  type ListenableWatcher,
  listen,
  listenTo,
  type WatchListener,
} from "./watch-listener.js";

/** Options of {@link MuxCache}. */
export interface MuxCacheOptions {
  /** Caches by key; with the default `classify`, keys are type URLs. */
  caches: Readonly<Record<string, ConfigWatcher>>;
  /** Maps a type URL to a key of `caches`. Default: the type URL itself. */
  classify?: (typeUrl: string) => string;
  /** Cache for types no key claims. */
  fallback?: ConfigWatcher;
}

/**
 * Routes each type to its own cache: e.g. a SnapshotCache for listeners/routes/clusters and a
 * LinearCache of secrets behind one ADS server.
 */
export class MuxCache implements ListenableWatcher {
  readonly ads: boolean;

  constructor(private readonly options: MuxCacheOptions) {
    this.ads = Object.values(options.caches).some((c) => c.ads === true);
  }

  /** The cache serving a type, if any. */
  cacheFor(typeUrl: string): ConfigWatcher | undefined {
    const key = this.options.classify ? this.options.classify(typeUrl) : typeUrl;
    // Own keys only: the type URL comes from the client, and may be "constructor" or "__proto__".
    const caches = this.options.caches;
    return (Object.hasOwn(caches, key) ? caches[key] : undefined) ?? this.options.fallback;
  }

  watch(node: Node, typeUrl: string, names$?: Observable<SubscribedNames>): Observable<ResourceSet> {
    return this.cacheFor(typeUrl)?.watch(node, typeUrl, names$) ?? NEVER;
  }

  /**
   * Internal fast path (see {@link listen}): through the fast path of the cache serving the type.
   * Refused (undefined) when that cache has none (it gets `names$` through `watch`), or when a
   * subclass overrides `watch`.
   */
  [listen](node: Node, typeUrl: string, listener: WatchListener): CacheWatch | undefined {
    if (this.watch !== MuxCache.prototype.watch) return undefined;
    const cache = this.cacheFor(typeUrl);
    return cache ? listenTo(cache, node, typeUrl, listener) : idleWatch;
  }

  record(event: XdsEvent): void {
    if ("typeUrl" in event) {
      this.cacheFor(event.typeUrl)?.record?.(event);
      return;
    }
    for (const cache of this.children()) cache.record?.(event);
  }

  /** Merged status of the child caches that have one. */
  status(node: Node | string): NodeStatus | undefined {
    let merged: NodeStatus | undefined;
    const types: Record<string, TypeStatus> = {};
    for (const cache of this.children()) {
      const s = (cache as { status?: (n: Node | string) => NodeStatus | undefined }).status?.(node);
      if (!s) continue;
      merged ??= s;
      // Not Object.assign: a client's type URL "__proto__" would set the prototype of `types`.
      for (const [typeUrl, t] of Object.entries(s.types)) setOwn(types, typeUrl, t);
    }
    return merged && { ...merged, types };
  }

  private children(): ConfigWatcher[] {
    const all = new Set(Object.values(this.options.caches));
    if (this.options.fallback) all.add(this.options.fallback);
    return [...all];
  }
}
