import type { DeltaDiscoveryRequest } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import type { CachedResource } from "../cached-resource.js";
import type { ResourceSet } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { UNCERTAIN } from "./holding.js";
import { GRPC_PREFIX } from "./responses.js";
import { diffSets, resourceList, subscribed, within } from "./set-diff.js";
import { namesOf, TypeStateBase, XdsStream } from "./stream.js";

/** Incremental (delta) subscription state of one type on one stream. */
class DeltaTypeState extends TypeStateBase {
  /** Whether any response of the type went out on this stream. */
  responded = false;
}

/** Types whose removals wait until the other types of a batch went out (make before break). */
const removeLast = new Set<string>([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);

const noNames: readonly string[] = [];

/**
 * An incremental xDS stream (ADS or per-type): sends only resources whose version the client does
 * not have, and names removed resources explicitly (xDS protocol, "Incremental xDS").
 */
export class DeltaStream extends XdsStream<DeltaTypeState> {
  onRequest(req: DeltaDiscoveryRequest): void {
    const begun = this.begin(req);
    if (!begun) return;
    const { typeUrl, nonce } = begun;
    let state = begun.state;
    if (
      !this.withinNameCap(
        typeUrl,
        subscribedAfter(state?.names, req.resourceNamesSubscribe, req.resourceNamesUnsubscribe),
      )
    )
      return;
    this.requested(
      typeUrl,
      {
        versionInfo: "",
        responseNonce: req.responseNonce,
        names: req.resourceNamesSubscribe,
        unsubscribe: req.resourceNamesUnsubscribe,
      },
      nonce === "stale",
    );

    const first = state === undefined;
    if (!state) {
      state = new DeltaTypeState(this, typeUrl);
      this.addType(state);
      // xDS protocol ("Incremental xDS"): on a new stream the client lists what it already has,
      // so a reconnect (to this or any replica: versions are content hashes) skips unchanged
      // resources.
      for (const [name, version] of Object.entries(req.initialResourceVersions))
        state.holdings.claim(name, version);
    }

    // An ACK or NACK is reported for the latest nonce (or a heartbeat since); subscription
    // changes in the request apply even when its nonce is stale (xDS protocol, incremental
    // variant: requests are not ignored for their nonce).
    this.answer(state, req.responseNonce, nonce, req.errorDetail, (version) =>
      req.errorDetail ? "" : version,
    );

    const changed = this.updateSubscription(
      state,
      req.resourceNamesSubscribe,
      req.resourceNamesUnsubscribe,
      first,
    );
    if (!state.watching) {
      this.watch(state);
      return;
    }
    // A NACK or ACK alone sends nothing: rejected resources are not pushed again until they change.
    if (changed) {
      this.subscriptionChanged(state);
      this.markDirty(typeUrl);
    }
  }

  /**
   * xDS protocol ("Subscribing to Resources", "Unsubscribing from Resources"): an empty subscribe
   * list on the first request is a legacy wildcard; "*" subscribes to all and unsubscribing "*"
   * ends that. Subscribing again to a name the stream already has re-sends it ("the client may
   * have forgotten those resources").
   */
  private updateSubscription(
    state: DeltaTypeState,
    subscribe: readonly string[],
    unsubscribe: readonly string[],
    first: boolean,
  ): boolean {
    if (!first && subscribe.length === 0 && unsubscribe.length === 0) return false;
    let wildcard = state.wildcard || (first && subscribe.length === 0);
    const names = new Set(state.names);
    const lost: string[] = [];
    for (const name of subscribe) {
      if (name === "*") {
        wildcard = true;
        continue;
      }
      // A name subscribed again, or anew, is one the client does not have (on the first request
      // nothing is known but initial_resource_versions, so nothing needs saying).
      if (!first) lost.push(name);
      names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === "*") {
        wildcard = false;
        continue;
      }
      names.delete(name);
      lost.push(name);
    }
    state.holdings.forget(lost);
    // A first request's list (interned by its bytes when long, see InterningDecoder) is the
    // subscription itself: the shared set is then found by the list's identity.
    const plain = first && unsubscribe.length === 0 && !subscribe.includes("*");
    const next = this.ctx.nameSets.acquire(plain ? subscribe : names);
    this.ctx.nameSets.release(state.names);
    state.names = next;
    state.wildcard = wildcard;
    return true;
  }

  protected flush(types: string[]): void {
    const deferred: Array<[DeltaTypeState, string[], readonly string[]]> = [];
    for (const typeUrl of types) {
      const state = this.typeState(typeUrl);
      const set = state?.current;
      if (!state || !set) continue;
      const held = state.holdings.held;
      const scopeKey = this.scopeOf(state);
      const inScope = (name: string) => state.wildcard || state.names.has(name);
      let upserts: readonly CachedResource[];
      let removed: readonly string[];
      // Resources the client rejected in this state: left out (no NACK loop, see rejectedNow).
      const unsure: string[] = [];
      if (held.isExactly(scopeKey)) {
        // Same subscription as at the last push: one shared diff serves every such stream.
        const base = held.base as ResourceSet;
        const d = set === base ? undefined : diffSets(base, set);
        upserts = !d ? [] : state.wildcard ? d.changed : within(d.changed, state.names);
        removed = !d ? noNames : state.wildcard ? d.removed : within(d.removed, state.names);
      } else if (!held.known) {
        // A first response with nothing known: what every such stream gets, shared.
        upserts = state.wildcard ? resourceList(set) : subscribed(set, state.names);
        removed = noNames;
      } else {
        const list: CachedResource[] = [];
        for (const r of set.resources.values()) {
          if (!inScope(r.name) || held.version(r.name) === r.version) continue;
          if (this.rejectedNow(state, r)) unsure.push(r.name);
          else list.push(r);
        }
        const gone: string[] = [];
        for (const name of held.names()) if (inScope(name) && !set.resources.has(name)) gone.push(name);
        upserts = list;
        removed = gone;
      }
      if (upserts.length === 0 && removed.length === 0) {
        // xDS protocol ("Knowing When a Requested Resource Does Not Exist"): a wildcard client
        // learns the whole state from a response, an empty one included; Envoy waits
        // initial_fetch_timeout (15 s by default) for the first one before it finishes starting.
        if (state.wildcard && !state.responded) {
          this.respond(state, upserts, removed);
          continue;
        }
        // The client already has exactly this: fold the per-stream overrides into the shared base.
        if (unsure.length === 0) held.settle(set, scopeKey);
        continue;
      }
      if (removeLast.has(typeUrl) && removed.length > 0 && types.length > 1) {
        // Make before break: clusters and endpoints are removed after listeners and routes moved.
        if (upserts.length > 0) this.respond(state, upserts, noNames, false, false);
        deferred.push([state, [...removed], unsure]);
        continue;
      }
      this.respond(state, upserts, removed, false, true, unsure);
    }
    for (const [state, removed, unsure] of deferred) this.respond(state, [], removed, false, true, unsure);
  }

  private respond(
    state: DeltaTypeState,
    upserts: readonly CachedResource[],
    removed: readonly string[],
    heartbeat = false,
    complete = true,
    /** Names left out as rejected (see rejectedNow): the client stays unsure of them. */
    unsure: readonly string[] = noNames,
  ): void {
    const set = state.current;
    const version = set?.version ?? "";
    let response = this.ctx.responses.delta(version, state.typeUrl, upserts, removed, heartbeat);
    if (this.nonceInUse(state, response.nonce))
      response = this.ctx.responses.delta(version, state.typeUrl, upserts, removed, heartbeat, true);
    const { framed, nonce } = response;
    if (!heartbeat) {
      state.responded = true;
      const scopeKey = this.scopeOf(state);
      state.holdings.sent(nonce, version, [namesOf(upserts), removed], (h) => {
        // After a full update the client holds `set` within its scope: per-stream overrides go.
        if (complete && set) {
          h.settle(set, scopeKey);
          for (const name of unsure) h.set(name, UNCERTAIN);
        } else {
          for (const r of upserts) h.set(r.name, r.version);
          for (const name of removed) h.set(name, null);
        }
      });
    }
    this.send(state, framed, nonce, version, heartbeat);
    this.responded(state.typeUrl, {
      version,
      nonce,
      resources: upserts,
      removed,
      heartbeat,
      bytes: framed.length - GRPC_PREFIX,
    });
  }

  heartbeat(): void {
    for (const state of this.types) {
      const set = state.current;
      // A heartbeat refreshes what the client is known to hold: none while a response it may
      // still reject is unanswered.
      if (!set || state.holdings.pending > 0) continue;
      const held = state.holdings.held;
      const ttl: CachedResource[] = [];
      for (const name of held.names()) {
        const r = set.resources.get(name);
        if (r?.ttlMs !== undefined && held.version(name) === r.version) ttl.push(r);
      }
      if (ttl.length > 0) this.respond(state, ttl, noNames, true);
    }
  }
}

/** How many names a delta subscription holds after a request (before it is applied). */
function subscribedAfter(
  current: ReadonlySet<string> | undefined,
  subscribe: readonly string[],
  unsubscribe: readonly string[],
): number {
  // Only subscribing can grow a subscription (an ACK subscribes to nothing).
  if (subscribe.length === 0) return 0;
  const gone = new Set(unsubscribe);
  let n = 0;
  for (const name of current ?? []) if (!gone.has(name)) n++;
  const added = new Set<string>();
  for (const name of subscribe) if (!gone.has(name) && !current?.has(name) && name !== "*") added.add(name);
  return n + added.size;
}
