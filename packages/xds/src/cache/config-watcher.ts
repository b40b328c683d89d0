import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { Observable } from "rxjs";
import type { XdsEvent } from "../events.js";
import type { ResourceSet } from "../snapshot.js";

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
   */
  watch(node: Node, typeUrl: string): Observable<ResourceSet>;
  /**
   * ADS mode: hold a SotW response for a non-wildcard type until every requested name exists, so a
   * proxy never gets a partial set of endpoints or routes.
   */
  readonly ads?: boolean;
  /** Receives the server's protocol events (ACKs, NACKs, responses) for `status()`. */
  record?(event: XdsEvent): void;
}
