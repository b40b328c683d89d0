import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { ResourceSet } from "../snapshot.js";
import type { ConfigWatcher } from "./config-watcher.js";

/**
 * Internal (not exported from the package): told each ResourceSet a watch emits. An xDS stream's
 * per-type state is its own listener, so a watch costs the stream no closure, subscriber or
 * subscription object: only the slot the cache keeps it in.
 */
export interface WatchListener {
  next(set: ResourceSet): void;
  /**
   * Told when the watch fails as it starts (a SnapshotCache's `nodeKey` throwing on the node),
   * as `watch()`'s Observable would error; nothing is watched then.
   */
  error?(err: unknown): void;
}

/**
 * Internal: what a cache's {@link listen} returns, to end the watch with. The cache owns it and may
 * share it between every listener of a type (e.g. SnapshotCache's per-key, per-type watcher list),
 * so ending a watch names the listener again.
 */
export interface CacheWatch {
  /** Stops telling `listener` (a listener not watching is ignored). */
  unwatch(listener: WatchListener): void;
}

/**
 * Internal fast path of the built-in caches (SnapshotCache, LinearCache, MuxCache), keyed by this
 * symbol beside {@link ConfigWatcher.watch} so no third-party cache can implement it by accident.
 * `cache[listen](node, typeUrl, listener)` does what `watch(node, typeUrl).subscribe(listener)`
 * would (the current set at once if there is one, then each change, a watcher list copied before
 * it is told), and returns how to end it; or `undefined` when the watch must go through
 * {@link ConfigWatcher.watch} instead (a subclass that overrides `watch`, a MuxCache routing to a
 * cache without the fast path: such caches may read the subscription, `names$`). A watch through
 * it fails only where `watch()`'s Observable would, and the same way (`listener.error`). The symbol is not exported: a second copy of the package falls back to `watch`.
 */
export const listen: unique symbol = Symbol("@meshlet/xds listen");

/** A cache with the {@link listen} fast path. */
export interface ListenableWatcher extends ConfigWatcher {
  [listen](node: Node, typeUrl: string, listener: WatchListener): CacheWatch | undefined;
}

/** A watch that never emits (a type no cache serves): nothing to end. */
export const idleWatch: CacheWatch = { unwatch() {} };

/** Watches through the fast path when `cache` has it; `undefined` means use `cache.watch`. */
export function listenTo(
  cache: ConfigWatcher,
  node: Node,
  typeUrl: string,
  listener: WatchListener,
): CacheWatch | undefined {
  const fast = (cache as Partial<ListenableWatcher>)[listen];
  return typeof fast === "function" ? fast.call(cache, node, typeUrl, listener) : undefined;
}
