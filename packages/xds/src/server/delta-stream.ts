import type { DeltaDiscoveryRequest } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import type { CachedResource } from "../cached-resource.js";
import type { ResourceSet } from "../snapshot.js";
import { TypeUrl } from "../type-url.js";
import { NameSets } from "./name-sets.js";
import { GRPC_PREFIX } from "./responses.js";
import { diffSets, resourceList, subscribed, within } from "./set-diff.js";
import { type TypeStateBase, XdsStream } from "./stream.js";

/**
 * Incremental (delta) subscription state of one type on one stream. What the client has is
 * "`base` restricted to `baseScope`" (shared with every stream that got the same push) plus a few
 * per-stream `overrides`: versions from initial_resource_versions, and names the client no longer
 * has (null).
 */
interface DeltaTypeState extends TypeStateBase {
  names: ReadonlySet<string>;
  wildcard: boolean;
  base?: ResourceSet;
  baseScope?: ReadonlySet<string> | "*";
  overrides: Map<string, string | null>;
  lastVersion?: string;
}

/** Types whose removals wait until the other types of a batch went out (make before break). */
const removeLast = new Set<string>([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);

/**
 * An incremental xDS stream (ADS or per-type): sends only resources whose version the client does
 * not have, and names removed resources explicitly.
 */
export class DeltaStream extends XdsStream<DeltaTypeState> {
  onRequest(req: DeltaDiscoveryRequest): void {
    const begun = this.begin(req);
    if (!begun) return;
    const { typeUrl, stale } = begun;
    let state = begun.state;
    this.requested(
      typeUrl,
      {
        versionInfo: "",
        responseNonce: req.responseNonce,
        names: req.resourceNamesSubscribe,
        unsubscribe: req.resourceNamesUnsubscribe,
      },
      stale,
    );

    const first = state === undefined;
    if (!state) {
      // xDS protocol: on a new stream the client lists what it already has, so a reconnect (to
      // this or any replica: versions are content hashes) skips unchanged resources.
      state = {
        typeUrl,
        names: NameSets.empty,
        wildcard: false,
        overrides: new Map(Object.entries(req.initialResourceVersions)),
      };
      this.types.set(typeUrl, state);
    }

    // Delta ACK/NACK applies only to the latest nonce, but subscription changes in the request
    // apply even when its nonce is stale (xDS protocol, incremental variant).
    if (!first && !stale && req.responseNonce !== "" && req.responseNonce !== state.answeredNonce) {
      state.answeredNonce = req.responseNonce;
      this.answered(
        typeUrl,
        req.responseNonce,
        req.errorDetail,
        req.errorDetail ? "" : (state.lastVersion ?? ""),
        state.lastVersion,
      );
    }

    const changed = this.updateSubscription(
      state,
      req.resourceNamesSubscribe,
      req.resourceNamesUnsubscribe,
      first,
    );
    if (!state.subscription) {
      this.watch(state);
      return;
    }
    // A NACK or ACK alone sends nothing: rejected resources are not pushed again until they change.
    if (changed) this.markDirty(typeUrl);
  }

  /**
   * xDS protocol: an empty subscribe list on the first request is a legacy wildcard; "*"
   * subscribes to all and unsubscribing "*" ends that. Subscribing again to a name the stream
   * already has re-sends it (the client lost it).
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
    for (const name of subscribe) {
      if (name === "*") {
        wildcard = true;
        continue;
      }
      // A name subscribed again, or anew, is one the client does not have (on the first request
      // nothing is known but initial_resource_versions, so nothing needs saying).
      if (!first) state.overrides.set(name, null);
      names.add(name);
    }
    for (const name of unsubscribe) {
      if (name === "*") {
        wildcard = false;
        continue;
      }
      names.delete(name);
      state.overrides.set(name, null);
    }
    // A first request's list (interned by its bytes when long, see InterningDecoder) is the
    // subscription itself: the shared set is then found by the list's identity.
    const plain = first && unsubscribe.length === 0 && !subscribe.includes("*");
    const next = this.ctx.nameSets.acquire(plain ? subscribe : names);
    this.ctx.nameSets.release(state.names);
    state.names = next;
    state.wildcard = wildcard;
    return true;
  }

  /** The version of a resource the client has, if any. */
  private known(state: DeltaTypeState, name: string): string | undefined {
    const o = state.overrides.get(name);
    if (o !== undefined) return o ?? undefined;
    if (!state.base || !state.baseScope) return undefined;
    if (state.baseScope !== "*" && !state.baseScope.has(name)) return undefined;
    return state.base.resources.get(name)?.version;
  }

  /** Names the client has a version of. */
  private knownNames(state: DeltaTypeState): Set<string> {
    const out = new Set<string>();
    if (state.base && state.baseScope) {
      if (state.baseScope === "*") for (const name of state.base.resources.keys()) out.add(name);
      else for (const name of state.baseScope) if (state.base.resources.has(name)) out.add(name);
    }
    for (const [name, v] of state.overrides) {
      if (v === null) out.delete(name);
      else out.add(name);
    }
    return out;
  }

  protected flush(types: string[]): void {
    const deferred: Array<[DeltaTypeState, string[]]> = [];
    for (const typeUrl of types) {
      const state = this.types.get(typeUrl);
      const set = state?.current;
      if (!state || !set) continue;
      const inScope = (name: string) => state.wildcard || state.names.has(name);
      let upserts: CachedResource[];
      let removed: string[];
      const sameScope = state.wildcard ? state.baseScope === "*" : state.baseScope === state.names;
      if (state.base && sameScope && state.overrides.size === 0) {
        // Same subscription as at the last push: one shared diff serves every such stream.
        if (set === state.base) continue;
        const d = diffSets(state.base, set);
        upserts = (state.wildcard ? d.changed : within(d.changed, state.names)) as CachedResource[];
        removed = (state.wildcard ? d.removed : within(d.removed, state.names)) as string[];
      } else if (!state.base && state.overrides.size === 0) {
        // A first response with nothing known: what every such stream gets, shared.
        upserts = state.wildcard ? (resourceList(set) as CachedResource[]) : subscribed(set, state.names);
        removed = [];
      } else {
        upserts = [];
        for (const r of set.resources.values()) {
          if (inScope(r.name) && this.known(state, r.name) !== r.version) upserts.push(r);
        }
        removed = [];
        for (const name of this.knownNames(state))
          if (inScope(name) && !set.resources.has(name)) removed.push(name);
      }
      if (upserts.length === 0 && removed.length === 0) {
        // The client already has exactly this: fold the per-stream overrides into the shared base.
        this.settle(state, set);
        continue;
      }
      if (removeLast.has(typeUrl) && removed.length > 0 && types.length > 1) {
        // Make before break: clusters and endpoints are removed after listeners and routes moved.
        if (upserts.length > 0) this.respond(state, upserts, [], false, false);
        deferred.push([state, removed]);
        continue;
      }
      this.respond(state, upserts, removed);
    }
    for (const [state, removed] of deferred) this.respond(state, [], removed);
  }

  /** After a full update the client holds `set` within its scope; per-stream overrides go away. */
  private settle(state: DeltaTypeState, set: ResourceSet): void {
    state.base = set;
    state.baseScope = state.wildcard ? "*" : state.names;
    state.overrides.clear();
  }

  private respond(
    state: DeltaTypeState,
    upserts: CachedResource[],
    removed: string[],
    heartbeat = false,
    complete = true,
  ): void {
    const version = state.current?.version ?? "";
    const { framed, nonce } = this.ctx.responses.delta(version, state.typeUrl, upserts, removed, heartbeat);
    if (!heartbeat) {
      if (complete && state.current) this.settle(state, state.current);
      else for (const r of upserts) state.overrides.set(r.name, r.version);
    }
    state.lastNonce = nonce;
    state.lastVersion = version;
    this.send(framed, state.typeUrl, nonce);
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
    for (const state of this.types.values()) {
      const set = state.current;
      if (!set) continue;
      const ttl: CachedResource[] = [];
      for (const name of this.knownNames(state)) {
        const r = set.resources.get(name);
        if (r?.ttlMs !== undefined && this.known(state, name) === r.version) ttl.push(r);
      }
      if (ttl.length > 0) this.respond(state, ttl, [], true);
    }
  }

  override close(error?: string): void {
    if (this.closed) return;
    for (const state of this.types.values()) this.ctx.nameSets.release(state.names);
    super.close(error);
  }
}
