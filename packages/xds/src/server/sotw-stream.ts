import type { DiscoveryRequest } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import type { CachedResource } from "../cached-resource.js";
import type { ResourceSet } from "../snapshot.js";
import { fullStateTypes, TypeUrl } from "../type-url.js";
import { NameSets, sameNames } from "./name-sets.js";
import { GRPC_PREFIX } from "./responses.js";
import { diffSets, resourceList, subscribed, within } from "./set-diff.js";
import { type TypeStateBase, XdsStream } from "./stream.js";

/**
 * State-of-the-world subscription state of one type on one stream. What the client holds is not
 * copied per stream: it is "the resources of `sentSet` that were in scope when it was sent",
 * and `sentSet` is shared by every stream that got the same push. Name sets are shared too.
 */
interface SotwTypeState extends TypeStateBase {
  /** Explicitly requested names (a shared set from NameSets). */
  names: ReadonlySet<string>;
  /** Wildcard subscription (legacy empty list on the first request, or "*"). */
  wildcard: boolean;
  /** Names requested since the last response: sent even if unchanged (xDS protocol). */
  pending?: Set<string>;
  /** The resource set the last response was computed from. */
  sentSet?: ResourceSet;
  /** Names in scope when it was sent ("*" for a wildcard). */
  sentScope?: ReadonlySet<string> | "*";
  /** Send on the next flush even if nothing differs (after a make-before-break transition). */
  forceNext: boolean;
  /** Version the client said it has in its first request (a reconnect). */
  clientVersion: string;
  lastVersion?: string;
  /** The name list of the last request: an interned list seen again means no change. */
  lastList?: readonly string[];
}

/** The client feature that says a SotW client accepts resources wrapped in `Resource`. */
export const RESOURCE_IN_SOTW = "xds.config.resource-in-sotw";

interface Plan {
  readonly resources: CachedResource[];
  readonly version: string;
  /** A full-state response that drops resources the client had (CDS removals). */
  readonly removes: boolean;
}

/**
 * A state-of-the-world xDS stream (ADS or per-type). Implements the rules of Envoy's "xDS REST and
 * gRPC protocol" document that concern SotW; each rule is cited where it is applied.
 */
export class SotwStream extends XdsStream<SotwTypeState> {
  private resourceInSotw?: boolean;

  onRequest(req: DiscoveryRequest): void {
    const begun = this.begin(req);
    if (!begun) return;
    const { typeUrl, stale } = begun;
    let state = begun.state;
    // xDS protocol: SotW ignores a stale request entirely (the client will answer the newer response).
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
    if (stale) return;

    const first = state === undefined;
    if (!state) {
      state = {
        typeUrl,
        names: NameSets.empty,
        wildcard: false,
        forceNext: false,
        clientVersion: req.versionInfo,
      };
      this.types.set(typeUrl, state);
    }

    // One ACK or NACK per response: a later request carrying the same nonce (a subscription
    // change, or gRPC's unsubscribe-all at shutdown repeating its last NACK) answers nothing new.
    if (
      !first &&
      req.responseNonce !== "" &&
      req.responseNonce === state.lastNonce &&
      req.responseNonce !== state.answeredNonce
    ) {
      state.answeredNonce = req.responseNonce;
      this.answered(typeUrl, req.responseNonce, req.errorDetail, req.versionInfo, state.lastVersion);
    }

    const changed = this.updateSubscription(state, req.resourceNames, first);
    if (!state.subscription) {
      this.watch(state);
      return;
    }
    // xDS protocol: never loop on a NACK, and do not answer a plain ACK. The rejected resources
    // are not pushed again until the cache changes them (or the client asks for something new).
    if (changed) this.markDirty(typeUrl);
  }

  /**
   * Applies a request's resource_names. Returns whether the subscription changed.
   * xDS protocol: an empty list is a wildcard only on the stream's first request for the type
   * (legacy wildcard, which later empty lists keep); otherwise an empty list unsubscribes from
   * everything, which is how gRPC clients unsubscribe when they shut down. "*" subscribes to all.
   */
  private updateSubscription(state: SotwTypeState, names: readonly string[], first: boolean): boolean {
    // Long lists are interned by their bytes (InterningDecoder): the same array again is the
    // same subscription, without comparing a thousand names on every ACK.
    if (!first && names === state.lastList) return false;
    state.lastList = names;
    const star = names.includes("*");
    const wildcard = star || (names.length === 0 && (first || state.wildcard));
    const explicit = star ? names.filter((n) => n !== "*") : names;
    const sameSet = sameNames(state.names, explicit);
    if (sameSet && wildcard === state.wildcard) return first;
    if (!sameSet) {
      const next = this.ctx.nameSets.acquire(explicit);
      const pending = state.pending ?? new Set<string>();
      for (const n of next) if (!state.names.has(n)) pending.add(n);
      for (const n of pending) if (!next.has(n)) pending.delete(n);
      state.pending = pending.size > 0 ? pending : undefined;
      this.ctx.nameSets.release(state.names);
      state.names = next;
    }
    if (wildcard && !state.wildcard && state.sentScope !== "*") {
      // Everything not sent under the named subscription is new to the client.
      state.forceNext = true;
    }
    state.wildcard = wildcard;
    return true;
  }

  protected flush(types: string[]): void {
    const deferred: SotwTypeState[] = [];
    for (const typeUrl of types) {
      const state = this.types.get(typeUrl);
      if (!state) continue;
      const plan = this.plan(state);
      if (!plan) continue;
      if (plan.removes && typeUrl === TypeUrl.Cluster && types.length > 1) {
        // Make before break (xDS protocol, "eventual consistency"): first add the new clusters
        // while keeping the removed ones, let listeners and routes move off them, then remove.
        const keep = [...plan.resources];
        const names = new Set(keep.map((r) => r.name));
        for (const r of this.held(state)) if (!names.has(r.name)) keep.push(r);
        this.respond(state, { resources: keep, version: `${plan.version}.transition`, removes: false });
        state.forceNext = true;
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
   * The resources the client holds from our last response and is still subscribed to (a name
   * the client unsubscribed from is its own business: no removal is sent for it).
   */
  private held(state: SotwTypeState): CachedResource[] {
    const { sentSet, sentScope } = state;
    if (!sentSet || !sentScope) return [];
    const out: CachedResource[] = [];
    const subscribed = (name: string) => state.wildcard || state.names.has(name);
    if (sentScope === "*") {
      for (const r of sentSet.resources.values()) if (subscribed(r.name)) out.push(r);
      return out;
    }
    for (const name of sentScope) {
      const r = sentSet.resources.get(name);
      if (r && subscribed(name)) out.push(r);
    }
    return out;
  }

  /** What to send for one type now, or nothing. */
  private plan(state: SotwTypeState): Plan | undefined {
    const set = state.current;
    if (!set) return undefined;
    let scope: CachedResource[];
    if (state.wildcard) scope = resourceList(set) as CachedResource[];
    else {
      scope = subscribed(set, state.names);
    }
    const fullState = fullStateTypes.has(state.typeUrl);
    // ADS mode: hold EDS/RDS-like responses until every requested name exists.
    if (this.ctx.watcher.ads && !fullState && !state.wildcard && scope.length < state.names.size)
      return undefined;

    if (!state.sentSet) {
      // A reconnecting client that already runs this exact version (content-hash versions are
      // the same on every replica) is not sent it again.
      if (state.clientVersion !== "" && state.clientVersion === set.version) {
        this.markSent(state, set);
        state.lastVersion = set.version;
        return undefined;
      }
      // The first response: everything in scope (for a wildcard, even an empty state).
      if (scope.length === 0 && !state.wildcard && !fullState) return undefined;
      return { resources: scope, version: set.version, removes: false };
    }
    // The common case — same subscription as at the last response — costs one shared diff per
    // push (diffSets), not a walk over every resource per stream.
    const sameScope = state.wildcard ? state.sentScope === "*" : state.sentScope === state.names;
    if (sameScope && !state.forceNext && !state.pending) {
      if (set === state.sentSet) return undefined;
      const d = diffSets(state.sentSet, set);
      if (state.wildcard) {
        if (fullState) {
          return d.changed.length > 0 || d.removed.length > 0
            ? {
                resources: resourceList(set) as CachedResource[],
                version: set.version,
                removes: d.removed.length > 0,
              }
            : undefined;
        }
        return d.changed.length > 0
          ? { resources: d.changed as CachedResource[], version: set.version, removes: false }
          : undefined;
      }
      const changed = within(d.changed, state.names) as CachedResource[];
      const removes = d.removed.some((n) => state.names.has(n));
      if (fullState)
        return changed.length > 0 || removes
          ? { resources: scope, version: set.version, removes }
          : undefined;
      return changed.length > 0 ? { resources: changed, version: set.version, removes: false } : undefined;
    }
    const before = state.sentSet;
    const pending = state.pending;
    const differs = (r: CachedResource) =>
      pending?.has(r.name) || before.resources.get(r.name)?.version !== r.version;

    if (fullState) {
      // xDS protocol: LDS, CDS (and SRDS) responses carry the full subscribed state; a missing
      // resource means deleted. Send only when that state differs from what the client holds.
      const held = this.held(state);
      const current = new Set(scope.map((r) => r.name));
      const removes = held.some((r) => !current.has(r.name));
      const inScopeBefore = (name: string) =>
        state.sentScope === "*" || (state.sentScope?.has(name) ?? false);
      const changed = state.forceNext || removes || scope.some((r) => differs(r) || !inScopeBefore(r.name));
      return changed ? { resources: scope, version: set.version, removes } : undefined;
    }
    // Other types carry only what the client lacks: changed resources and newly requested names
    // (sent even when the version did not change). Unchanged resources are never re-sent.
    const changed = state.forceNext ? scope : scope.filter(differs);
    return changed.length > 0 ? { resources: changed, version: set.version, removes: false } : undefined;
  }

  private markSent(state: SotwTypeState, set: ResourceSet): void {
    state.sentSet = set;
    state.sentScope = state.wildcard ? "*" : state.names;
    state.pending = undefined;
    state.forceNext = false;
  }

  private respond(state: SotwTypeState, plan: Plan, heartbeat = false): void {
    // xDS protocol: no resource twice in one response.
    const unique = dedupe(plan.resources);
    const { framed, nonce } = this.ctx.responses.sotw(
      plan.version,
      state.typeUrl,
      unique,
      heartbeat,
      this.wrapsTtl(),
    );
    if (!heartbeat && state.current) this.markSent(state, state.current);
    state.lastNonce = nonce;
    state.lastVersion = plan.version;
    this.send(framed, state.typeUrl, nonce);
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
   * xDS protocol: a SotW client that can take resources wrapped in `Resource` (for TTLs)
   * advertises the `xds.config.resource-in-sotw` client feature. Others (grpc-js NACKs the
   * wrapper) get plain resources, no TTLs and no heartbeats.
   */
  private wrapsTtl(): boolean {
    this.resourceInSotw ??= this.node?.clientFeatures.includes(RESOURCE_IN_SOTW) ?? false;
    return this.resourceInSotw;
  }

  heartbeat(): void {
    if (!this.wrapsTtl()) return;
    for (const state of this.types.values()) {
      const held = this.held(state);
      if (state.lastVersion === undefined || !held.some((r) => r.ttlMs !== undefined)) continue;
      // Full-state types must carry every resource even in a heartbeat, or the client would
      // delete the ones left out; the others carry just the TTL'd resources.
      const resources = fullStateTypes.has(state.typeUrl) ? held : held.filter((r) => r.ttlMs !== undefined);
      this.respond(state, { resources, version: state.lastVersion, removes: false }, true);
    }
  }

  override close(error?: string): void {
    if (this.closed) return;
    for (const state of this.types.values()) this.ctx.nameSets.release(state.names);
    super.close(error);
  }
}

function dedupe(resources: CachedResource[]): CachedResource[] {
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
