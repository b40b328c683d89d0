import type { DeltaDiscoveryRequest } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import type { CachedResource } from "../cached-resource.js";
import { TypeUrl } from "../type-url.js";
import { deltaResponse } from "./responses.js";
import { type TypeStateBase, XdsStream } from "./stream.js";

/** Incremental (delta) subscription state of one type on one stream. */
interface DeltaTypeState extends TypeStateBase {
  names: Set<string>;
  wildcard: boolean;
  /** What the client has: resource name → version (from initial_resource_versions and our sends). */
  known: Map<string, string>;
  /** TTL'd resources the client holds, for heartbeats. */
  ttl: Map<string, CachedResource>;
  lastVersion?: string;
}

interface DeltaPlan {
  upserts: CachedResource[];
  removed: string[];
}

/** Types whose removals wait until the other types of a batch went out (make before break). */
const removeLast = new Set<string>([TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]);

/**
 * An incremental xDS stream (ADS or per-type): sends only resources whose version the client does
 * not have, and names removed resources explicitly.
 */
export class DeltaStream extends XdsStream<DeltaTypeState> {
  onRequest(req: DeltaDiscoveryRequest): void {
    if (this.closed) return;
    this.keepNode(req.node);
    const typeUrl = this.requestType(req.typeUrl);
    if (typeUrl === undefined) return;
    let state = this.types.get(typeUrl);
    const stale = state !== undefined && req.responseNonce !== "" && req.responseNonce !== state.lastNonce;
    this.emit({
      type: "request",
      streamId: this.id,
      protocol: "delta",
      node: this.node,
      typeUrl,
      versionInfo: "",
      responseNonce: req.responseNonce,
      resourceNames: req.resourceNamesSubscribe,
      unsubscribe: req.resourceNamesUnsubscribe,
      stale,
    });

    const first = state === undefined;
    if (!state) {
      state = {
        typeUrl,
        names: new Set(),
        wildcard: false,
        // xDS protocol: on a new stream the client lists what it already has, so a reconnect (to
        // this or any replica: versions are content hashes) skips unchanged resources.
        known: new Map(Object.entries(req.initialResourceVersions)),
        ttl: new Map(),
      };
      this.types.set(typeUrl, state);
    }

    // Delta ACK/NACK applies only to the latest nonce, but subscription changes in the request
    // apply even when its nonce is stale (xDS protocol, incremental variant).
    let nack = false;
    if (!first && !stale && req.responseNonce !== "") {
      if (req.errorDetail) {
        nack = true;
        this.emit({
          type: "nack",
          streamId: this.id,
          protocol: "delta",
          node: this.node,
          typeUrl,
          version: "",
          rejectedVersion: state.lastVersion,
          nonce: req.responseNonce,
          errorDetail: { code: req.errorDetail.code, message: req.errorDetail.message },
        });
      } else {
        this.emit({
          type: "ack",
          streamId: this.id,
          protocol: "delta",
          node: this.node,
          typeUrl,
          version: state.lastVersion ?? "",
          nonce: req.responseNonce,
        });
      }
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
    if (nack && !changed) return;
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
    let changed = false;
    if (first && subscribe.length === 0) {
      state.wildcard = true;
      changed = true;
    }
    for (const name of subscribe) {
      if (name === "*") {
        if (!state.wildcard) changed = true;
        state.wildcard = true;
        continue;
      }
      if (state.names.has(name)) {
        state.known.delete(name);
      }
      state.names.add(name);
      changed = true;
    }
    for (const name of unsubscribe) {
      if (name === "*") {
        if (state.wildcard) changed = true;
        state.wildcard = false;
        continue;
      }
      state.names.delete(name);
      state.known.delete(name);
      state.ttl.delete(name);
      changed = true;
    }
    return changed;
  }

  protected flush(types: string[]): void {
    const deferred: Array<[DeltaTypeState, string[]]> = [];
    for (const typeUrl of types) {
      const state = this.types.get(typeUrl);
      if (!state) continue;
      const plan = this.plan(state);
      if (!plan) continue;
      if (removeLast.has(typeUrl) && plan.removed.length > 0 && types.length > 1) {
        // Make before break: clusters and endpoints are removed after listeners and routes moved.
        if (plan.upserts.length > 0) this.respond(state, plan.upserts, []);
        deferred.push([state, plan.removed]);
        continue;
      }
      this.respond(state, plan.upserts, plan.removed);
    }
    for (const [state, removed] of deferred) this.respond(state, [], removed);
  }

  private plan(state: DeltaTypeState): DeltaPlan | undefined {
    const set = state.current;
    if (!set) return undefined;
    const upserts: CachedResource[] = [];
    const removed: string[] = [];
    const inScope = (name: string) => state.wildcard || state.names.has(name);
    for (const r of set.resources.values()) {
      if (inScope(r.name) && state.known.get(r.name) !== r.version) upserts.push(r);
    }
    for (const name of state.known.keys()) {
      if (!set.resources.has(name)) {
        if (inScope(name)) removed.push(name);
        else state.known.delete(name);
      } else if (!inScope(name)) state.known.delete(name);
    }
    // Explicitly subscribed names that do not exist: a client that claims to have them (from
    // initial_resource_versions) learns they are gone.
    if (upserts.length === 0 && removed.length === 0) return undefined;
    return { upserts, removed };
  }

  private respond(
    state: DeltaTypeState,
    upserts: CachedResource[],
    removed: string[],
    heartbeat = false,
  ): void {
    const version = state.current?.version ?? "";
    const nonce = this.nextNonce();
    const bytes = deltaResponse(
      version,
      state.typeUrl,
      upserts,
      removed,
      nonce,
      heartbeat,
      this.ctx.controlPlane,
    );
    if (!heartbeat) {
      for (const r of upserts) {
        state.known.set(r.name, r.version);
        if (r.ttlMs !== undefined) state.ttl.set(r.name, r);
        else state.ttl.delete(r.name);
      }
      for (const name of removed) {
        state.known.delete(name);
        state.ttl.delete(name);
      }
    }
    state.lastNonce = nonce;
    state.lastVersion = version;
    this.send(bytes);
    this.emit({
      type: "response",
      streamId: this.id,
      protocol: "delta",
      node: this.node,
      typeUrl: state.typeUrl,
      version,
      nonce,
      resources: upserts.map((r) => r.name),
      removed,
      heartbeat,
      bytes: bytes.length,
    });
  }

  heartbeat(): void {
    for (const state of this.types.values()) {
      if (state.ttl.size > 0) this.respond(state, [...state.ttl.values()], [], true);
    }
  }
}
