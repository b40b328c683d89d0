import type { DiscoveryRequest } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import type { CachedResource } from "../cached-resource.js";
import type { ResourceSet } from "../snapshot.js";
import { fullStateTypes, TypeUrl } from "../type-url.js";
import { UNCERTAIN } from "./holding.js";
import { sameNames } from "./name-sets.js";
import { GRPC_PREFIX } from "./responses.js";
import { diffSets, resourceList, subscribed, within } from "./set-diff.js";
import { namesOf, TypeStateBase, type TypeStateOwner, XdsStream } from "./stream.js";

/** State-of-the-world subscription state of one type on one stream. */
class SotwTypeState extends TypeStateBase {
  /**
   * The name list of the last request when it was interned (frozen, shared by every stream that
   * sent the same bytes: see InterningDecoder): the same list again means no change. A list
   * decoded for this request alone is not kept (it would hold a copy of every name per stream);
   * the next request's list is never that array anyway.
   */
  lastList?: readonly string[] = undefined;
  /** Every request of the type so far had an empty list: the legacy wildcard. */
  legacy?: boolean = undefined;

  constructor(
    owner: TypeStateOwner,
    typeUrl: string,
    /** Version the client said it has in its first request (a reconnect). */
    public clientVersion: string,
  ) {
    super(owner, typeUrl);
  }
}

/** The client feature that says a SotW client accepts resources wrapped in `Resource`. */
export const RESOURCE_IN_SOTW = "xds.config.resource-in-sotw";

interface Plan {
  readonly resources: readonly CachedResource[];
  readonly version: string;
  /** A full-state response that drops resources the client had (CDS removals). */
  readonly removes: boolean;
  /** Resources of an older state kept in a make-before-break transition response. */
  readonly kept?: readonly CachedResource[];
  /** Names left out because the client rejected them (see rejectedNow): still unsure after it. */
  readonly unsure?: readonly string[];
}

/**
 * A state-of-the-world xDS stream (ADS or per-type). Implements the rules of Envoy's "xDS REST and
 * gRPC protocol" document (envoyproxy/envoy api/xds_protocol.rst) that concern SotW; each rule is
 * cited where it is applied.
 */
export class SotwStream extends XdsStream<SotwTypeState> {
  private resourceInSotw?: boolean;

  onRequest(req: DiscoveryRequest): void {
    const begun = this.begin(req);
    if (!begun) return;
    const { typeUrl, nonce } = begun;
    // Only a list longer than the cap pays for counting its distinct names.
    if (
      req.resourceNames.length > this.ctx.maxNamesPerType &&
      !this.withinNameCap(typeUrl, new Set(req.resourceNames).size)
    )
      return;
    let state = begun.state;
    const stale = nonce === "stale";
    this.requested(
      typeUrl,
      {
        versionInfo: req.versionInfo,
        responseNonce: req.responseNonce,
        names: req.resourceNames,
        unsubscribe: [],
      },
      stale,
    );
    // xDS protocol ("Resource updates"): SotW ignores a request with a stale nonce (the client will
    // answer the newer response); what it says about an older response still lands on the holdings.
    if (stale) {
      if (state) {
        this.answer(state, req.responseNonce, nonce, req.errorDetail, clientVersionOf(req));
        this.dropped(state, req.resourceNames);
      }
      return;
    }

    const first = state === undefined;
    if (!state) {
      state = new SotwTypeState(this, typeUrl, req.versionInfo);
      this.addType(state);
    }
    // One ACK or NACK per response: a later request carrying the same nonce (a subscription
    // change, or gRPC's unsubscribe-all at shutdown repeating its last NACK) answers nothing new.
    this.answer(state, req.responseNonce, nonce, req.errorDetail, clientVersionOf(req));

    const changed = this.updateSubscription(state, req.resourceNames, first);
    if (!state.watching) {
      this.watch(state);
      return;
    }
    // xDS protocol ("When to send an update"): never loop on a NACK, and do not answer a plain
    // ACK. The rejected resources are not pushed again until the cache changes them (or the
    // client asks for something new).
    if (changed) {
      this.subscriptionChanged(state);
      this.markDirty(typeUrl);
    }
  }

  /**
   * What an ignored (stale) request still says: the client no longer holds the names it stopped
   * requesting. Its new subscription takes effect with its next request that is not stale, which
   * repeats the list (SotW requests always carry the whole subscription).
   */
  private dropped(state: SotwTypeState, names: readonly string[]): void {
    if (names === state.lastList || state.names.size === 0) return;
    const still = new Set(names);
    const gone: string[] = [];
    for (const n of state.names) if (!still.has(n)) gone.push(n);
    state.holdings.forget(gone);
  }

  /**
   * Applies a request's resource_names. Returns whether the subscription changed.
   * xDS protocol ("How the client specifies what resources to return"): an empty list is a
   * wildcard only on the stream's first request for the type (legacy wildcard, which later empty
   * lists keep); otherwise an empty list unsubscribes from everything, which is how gRPC clients
   * unsubscribe when they shut down. "*" subscribes to all. Newly requested names are sent even
   * if the client had them ("the server must resend any newly requested resources"), and names
   * no longer requested are no longer held.
   */
  private updateSubscription(state: SotwTypeState, names: readonly string[], first: boolean): boolean {
    // Long lists are interned by their bytes (InterningDecoder): the same array again is the
    // same subscription, without comparing a thousand names on every ACK.
    if (!first && names === state.lastList) return false;
    state.lastList = Object.isFrozen(names) ? names : undefined;
    const star = names.includes("*");
    // The legacy wildcard lasts while every list is empty; once a request named anything ("*"
    // included), an empty list unsubscribes (go-control-plane stream/v3 Subscription does the same).
    state.legacy = names.length === 0 && (first || state.legacy === true);
    const wildcard = star || state.legacy;
    const explicit = star ? names.filter((n) => n !== "*") : names;
    const sameSet = sameNames(state.names, explicit);
    if (sameSet && wildcard === state.wildcard) return first;
    if (!sameSet) {
      const next = this.ctx.nameSets.acquire(explicit);
      if (!first) {
        // Newly requested names are re-sent; names no longer requested are dropped by the client
        // ("the client will silently ignore any supplied resources that were not explicitly
        // requested"), even from a response already on its way.
        const changed: string[] = [];
        for (const n of next) if (!state.names.has(n)) changed.push(n);
        for (const n of state.names) if (!next.has(n)) changed.push(n);
        state.holdings.forget(changed);
      }
      this.ctx.nameSets.release(state.names);
      state.names = next;
    }
    state.wildcard = wildcard;
    return true;
  }

  protected flush(types: string[]): void {
    const deferred: SotwTypeState[] = [];
    for (const typeUrl of types) {
      const state = this.typeState(typeUrl);
      if (!state) continue;
      const plan = this.plan(state);
      if (!plan) continue;
      if (plan.removes && typeUrl === TypeUrl.Cluster && types.length > 1) {
        // Make before break (xDS protocol, "Eventual consistency considerations"): first add the
        // new clusters while keeping the removed ones, let listeners and routes move off them,
        // then remove.
        const names = new Set(plan.resources.map((r) => r.name));
        const kept = this.heldResources(state).filter((r) => !names.has(r.name));
        this.respond(state, {
          resources: [...plan.resources, ...kept],
          version: `${plan.version}.transition`,
          removes: false,
          kept,
        });
        deferred.push(state);
        continue;
      }
      this.respond(state, plan);
    }
    for (const state of deferred) {
      const plan = this.plan(state);
      if (plan) this.respond(state, plan);
    }
  }

  /**
   * The resources the client holds at a version we have the bytes of and is still subscribed to
   * (a name the client unsubscribed from is its own business: no removal is sent for it).
   */
  private heldResources(state: SotwTypeState): CachedResource[] {
    const held = state.holdings.held;
    const out: CachedResource[] = [];
    for (const name of held.names()) {
      if (!state.wildcard && !state.names.has(name)) continue;
      const r = held.base?.resources.get(name);
      if (r && held.version(name) === r.version) out.push(r);
    }
    return out;
  }

  /** What to send for one type now, or nothing. */
  private plan(state: SotwTypeState): Plan | undefined {
    const set = state.current;
    if (!set) return undefined;
    const scope = state.wildcard ? resourceList(set) : subscribed(set, state.names);
    const scopeKey = this.scopeOf(state);
    const fullState = fullStateTypes.has(state.typeUrl);
    // ADS mode: hold EDS/RDS-like responses until every requested name exists.
    if (this.ctx.watcher.ads && !fullState && !state.wildcard && scope.length < state.names.size)
      return undefined;
    const held = state.holdings.held;

    if (!held.known) {
      // A reconnect (xDS protocol, "ACK/NACK and resource type instance version": the first
      // request names the most recent version the client saw). A type version names the whole
      // state only for a wildcard subscription of a full-state type, where every response at that
      // version carried all of it; content-hash versions are the same on every replica, so such a
      // client is not sent it again. For any named subscription the version cannot prove which
      // names the client got (it may have asked for more just before its stream broke), so every
      // requested name is sent.
      if (state.clientVersion !== "" && state.clientVersion === set.version && state.wildcard && fullState) {
        state.holdings.proven(set, scopeKey);
        state.lastVersion = set.version;
        // The client runs this version (it says so): as good as an ACK of it (waitForAck, CSDS).
        state.ackedVersion = set.version;
        state.ackedAt = this.ctx.now();
        return undefined;
      }
      // The first response: everything in scope (for a wildcard, even an empty state).
      if (scope.length === 0 && !state.wildcard && !fullState) return undefined;
      return { resources: scope, version: set.version, removes: false };
    }
    // The common case — the client holds exactly what the last push sent, for the same
    // subscription — costs one shared diff per push (diffSets), not a walk over every resource
    // per stream.
    if (held.isExactly(scopeKey)) {
      const base = held.base as ResourceSet;
      if (set === base) return undefined;
      const d = diffSets(base, set);
      if (state.wildcard) {
        if (fullState) {
          return d.changed.length > 0 || d.removed.length > 0
            ? { resources: scope, version: set.version, removes: d.removed.length > 0 }
            : undefined;
        }
        return d.changed.length > 0
          ? { resources: d.changed, version: set.version, removes: false }
          : undefined;
      }
      const changed = within(d.changed, state.names);
      const removes = d.removed.some((n) => state.names.has(n));
      if (fullState)
        return changed.length > 0 || removes
          ? { resources: scope, version: set.version, removes }
          : undefined;
      return changed.length > 0 ? { resources: changed, version: set.version, removes: false } : undefined;
    }
    // Per stream: a subscription change, names the client lost, or answers that left it unsure
    // (a NACK: the client holds its previous set, and perhaps part of the rejected one).
    const differs = (r: CachedResource) => held.version(r.name) !== r.version;
    if (fullState) {
      // xDS protocol ("Grouping Resources into Responses"): LDS, CDS (and SRDS) responses carry
      // the full subscribed state; a missing resource means deleted. Send only when that state
      // differs from what the client holds.
      let removes = false;
      for (const name of held.names()) {
        if ((state.wildcard || state.names.has(name)) && !set.resources.has(name)) removes = true;
      }
      if (removes || scope.some(differs)) return { resources: scope, version: set.version, removes };
      held.settle(set, scopeKey);
      return undefined;
    }
    // Other types carry only what the client lacks: changed resources and newly requested names
    // (sent even when the version did not change). Unchanged resources are never re-sent, nor
    // the ones the client rejected until the type has a new state (no NACK loop).
    const unsure: string[] = [];
    const changed = scope.filter((r) => {
      if (!differs(r)) return false;
      if (!this.rejectedNow(state, r)) return true;
      unsure.push(r.name);
      return false;
    });
    if (changed.length > 0) return { resources: changed, version: set.version, removes: false, unsure };
    if (unsure.length === 0) held.settle(set, scopeKey);
    return undefined;
  }

  private respond(state: SotwTypeState, plan: Plan, heartbeat = false): void {
    // xDS protocol ("Duplicate Resource Names"): no resource twice in one response.
    const unique = dedupe(plan.resources);
    let response = this.ctx.responses.sotw(plan.version, state.typeUrl, unique, heartbeat, this.wrapsTtl());
    if (this.nonceInUse(state, response.nonce))
      response = this.ctx.responses.sotw(
        plan.version,
        state.typeUrl,
        unique,
        heartbeat,
        this.wrapsTtl(),
        true,
      );
    const { framed, nonce } = response;
    const set = state.current;
    if (!heartbeat && set) {
      // Every response carries all that differed in scope: if the client takes it, it holds the
      // current state within its subscription (plus, in a transition, the clusters kept).
      const scopeKey = this.scopeOf(state);
      const touched = fullStateTypes.has(state.typeUrl) ? "all" : [namesOf(unique)];
      state.holdings.sent(nonce, plan.version, touched, (h) => {
        h.settle(set, scopeKey);
        for (const r of plan.kept ?? []) h.set(r.name, r.version);
        for (const name of plan.unsure ?? []) h.set(name, UNCERTAIN);
      });
    }
    this.send(state, framed, nonce, plan.version, heartbeat);
    this.responded(state.typeUrl, {
      version: plan.version,
      nonce,
      resources: unique,
      removed: [],
      heartbeat,
      bytes: framed.length - GRPC_PREFIX,
    });
  }

  /**
   * xDS protocol ("TTL"): a SotW client that can take resources wrapped in `Resource` (for TTLs)
   * advertises the `xds.config.resource-in-sotw` client feature. Others (grpc-js NACKs the
   * wrapper) get plain resources, no TTLs and no heartbeats.
   */
  private wrapsTtl(): boolean {
    this.resourceInSotw ??= this.node?.clientFeatures.includes(RESOURCE_IN_SOTW) ?? false;
    return this.resourceInSotw;
  }

  heartbeat(): void {
    if (!this.wrapsTtl()) return;
    for (const state of this.types) {
      const held = state.holdings.held;
      // Only a state the client is known to hold is refreshed: a heartbeat of a full-state type
      // must carry all it holds, and it names the version of the last response, which the client
      // takes as its own once it accepts the heartbeat. So none goes out while a response is
      // unanswered (the client may reject it) or after a NACK (until the next push settles it).
      if (
        state.lastVersion === undefined ||
        state.holdings.pending > 0 ||
        !held.isExactly(this.scopeOf(state))
      )
        continue;
      const base = held.base as ResourceSet;
      const holds = state.wildcard ? resourceList(base) : subscribed(base, state.names);
      if (!holds.some((r) => r.ttlMs !== undefined)) continue;
      // Full-state types must carry every resource even in a heartbeat, or the client would
      // delete the ones left out; the others carry just the TTL'd resources.
      const resources = fullStateTypes.has(state.typeUrl)
        ? holds
        : holds.filter((r) => r.ttlMs !== undefined);
      this.respond(state, { resources, version: state.lastVersion, removes: false }, true);
    }
  }
}

/**
 * The version a SotW request reports (its version_info: on an ACK the version it took, on a NACK
 * the one it kept). When it is the version of the response it answers, that response's own string
 * is reported (and kept as the type's acked version): equal, and shared with every stream the
 * response went to instead of a copy decoded per request.
 */
function clientVersionOf(req: DiscoveryRequest): (sent: string) => string {
  const reported = req.versionInfo;
  return (sent) => (reported === sent ? sent : reported);
}

function dedupe(resources: readonly CachedResource[]): readonly CachedResource[] {
  // Shared arrays (a set's list, a diff) never repeat a name: keep their identity, which the
  // response cache keys on.
  const seen = new Set<string>();
  for (const r of resources) {
    if (seen.has(r.name))
      return resources.filter((x, i) => resources.findIndex((y) => y.name === x.name) === i);
    seen.add(r.name);
  }
  return resources;
}
