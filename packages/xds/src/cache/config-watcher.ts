import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { Observable } from "rxjs";
import type { XdsEvent } from "../events.js";
import type { ResourceSet } from "../snapshot.js";

/**
 * What a stream subscribes to of one type: every resource (`wildcard`: the legacy empty list of a
 * first request, or "*"), the explicitly named ones, or both.
 */
export interface SubscribedNames {
  readonly wildcard: boolean;
  /** Explicitly requested names ("*" excluded). Shared between streams: never modify it. */
  readonly names: ReadonlySet<string>;
}

/**
 * What every cache offers the server: the resources of one type for one node, as an observable
 * that emits whenever they change. The server turns these into state-of-the-world or delta
 * responses per stream (what to send is the cache's business; how to speak the protocol, the
 * server's), so every cache serves both protocols.
 */
export interface ConfigWatcher {
  /**
   * Emits the current ResourceSet of `typeUrl` for `node` (if there is one) and every later change
   * of it. Unsubscribing cancels the watch.
   *
   * `names$` is the stream's subscription to the type: it emits the current one on subscribe and
   * each change after, and completes when the stream ends. A cache that builds on demand
   * (on-demand CDS, VHDS, per-subscription EDS) reads it; caches that hold everything ignore it.
   * The set may name resources the cache does not have: emit them once they exist.
   */
  watch(node: Node, typeUrl: string, names$?: Observable<SubscribedNames>): Observable<ResourceSet>;
  /**
   * ADS mode: hold a SotW response for a non-wildcard type until every requested name exists, so a
   * proxy never gets a partial set of endpoints or routes.
   */
  readonly ads?: boolean;
  /** Receives the server's protocol events (ACKs, NACKs, responses) for `status()`. */
  record?(event: XdsEvent): void;
}
