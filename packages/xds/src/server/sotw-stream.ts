import type { DiscoveryRequest } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import type { CachedResource } from "../cached-resource.js";
import { fullStateTypes, TypeUrl } from "../type-url.js";
import { sotwResponse } from "./responses.js";
import { type TypeStateBase, XdsStream } from "./stream.js";

/** State-of-the-world subscription state of one type on one stream. */
interface SotwTypeState extends TypeStateBase {
  /** Explicitly requested names. */
  names: Set<string>;
  /** Wildcard subscription (legacy empty list on the first request, or "*"). */
  wildcard: boolean;
  /** Resources as last sent on this stream, by name. */
  sent: Map<string, CachedResource>;
  /** Whether any response for the type went out (or the client proved it is up to date). */
  sentOnce: boolean;
  /** Version the client said it has in its first request (a reconnect). */
  clientVersion: string;
  lastVersion?: string;
}

interface Plan {
  readonly resources: CachedResource[];
  readonly version: string;
  /** Full-state names dropped by this response (CDS removals, sent last: make before break). */
  readonly removes: boolean;
}

/**
 * A state-of-the-world xDS stream (ADS or per-type). Implements the rules of Envoy's "xDS REST and
 * gRPC protocol" document that concern SotW; each rule is cited where it is applied.
 */
export class SotwStream extends XdsStream<SotwTypeState> {
  onRequest(req: DiscoveryRequest): void {
    if (this.closed) return;
    this.keepNode(req.node);
    const typeUrl = this.requestType(req.typeUrl);
    if (typeUrl === undefined) return;
    let state = this.types.get(typeUrl);
    // xDS protocol: a request whose response_nonce is not the latest sent for its type is stale
    // (a newer response is in flight and the client will answer it); SotW ignores it entirely.
    // The first request of a type on this stream has nothing to be stale against.
    const stale = state !== undefined && req.responseNonce !== "" && req.responseNonce !== state.lastNonce;
    this.emit({
      type: "request",
      streamId: this.id,
      protocol: "sotw",
      node: this.node,
      typeUrl,
      versionInfo: req.versionInfo,
      responseNonce: req.responseNonce,
      resourceNames: req.resourceNames,
      unsubscribe: [],
      stale,
    });
    if (stale) return;

    const first = state === undefined;
    if (!state) {
      state = {
        typeUrl,
        names: new Set(),
        wildcard: false,
        sent: new Map(),
        sentOnce: false,
        clientVersion: req.versionInfo,
      };
      this.types.set(typeUrl, state);
    }

    let nack = false;
    if (!first && req.responseNonce !== "" && req.responseNonce === state.lastNonce) {
      // xDS protocol: error_detail set means NACK; version_info then stays the last accepted one.
      if (req.errorDetail) {
        nack = true;
        this.emit({
          type: "nack",
          streamId: this.id,
          protocol: "sotw",
          node: this.node,
          typeUrl,
          version: req.versionInfo,
          rejectedVersion: state.lastVersion,
          nonce: req.responseNonce,
          errorDetail: { code: req.errorDetail.code, message: req.errorDetail.message },
        });
      } else {
        this.emit({
          type: "ack",
          streamId: this.id,
          protocol: "sotw",
          node: this.node,
          typeUrl,
          version: req.versionInfo,
          nonce: req.responseNonce,
        });
      }
    }

    const changed = this.updateSubscription(state, req.resourceNames, first);
    if (!state.subscription) {
      this.watch(state);
      return;
    }
    // xDS protocol: never loop on a NACK. The rejected resources are not pushed again until the
    // cache changes them (or the client asks for something new).
    if (nack && !changed) return;
    this.markDirty(typeUrl);
  }

  /**
   * Applies a request's resource_names. Returns whether the subscription changed.
   * xDS protocol: an empty list is a wildcard only on the stream's first request for the type
   * (legacy wildcard, which later empty lists keep); otherwise an empty list unsubscribes from
   * everything, which is how gRPC clients unsubscribe when they shut down. "*" subscribes to all.
   */
  private updateSubscription(state: SotwTypeState, names: readonly string[], first: boolean): boolean {
    const explicit = names.filter((n) => n !== "*");
    let wildcard: boolean;
    if (names.includes("*")) wildcard = true;
    else if (names.length === 0) wildcard = first || state.wildcard;
    else wildcard = false;
    const nextNames = new Set(explicit);
    let changed = wildcard !== state.wildcard || nextNames.size !== state.names.size;
    if (!changed) for (const n of nextNames) if (!state.names.has(n)) changed = true;
    state.wildcard = wildcard;
    state.names = nextNames;
    if (!wildcard) {
      // Names no longer requested are forgotten, so asking again sends them again.
      for (const name of state.sent.keys()) if (!nextNames.has(name)) state.sent.delete(name);
    }
    return changed;
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
        for (const [name, r] of state.sent) if (!names.has(name)) keep.push(r);
        this.respond(state, { resources: keep, version: `${plan.version}.transition`, removes: false });
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

  /** What to send for one type now, or nothing. */
  private plan(state: SotwTypeState): Plan | undefined {
    const set = state.current;
    if (!set) return undefined;
    const scope: CachedResource[] = [];
    if (state.wildcard) scope.push(...set.resources.values());
    else {
      for (const name of state.names) {
        const r = set.resources.get(name);
        if (r) scope.push(r);
      }
    }
    const fullState = fullStateTypes.has(state.typeUrl);
    // ADS mode: hold EDS/RDS-like responses until every requested name exists.
    if (this.ctx.watcher.ads && !fullState && !state.wildcard && scope.length < state.names.size)
      return undefined;

    // A reconnecting client that already runs this exact version (content-hash versions are the
    // same on every replica) is not sent it again.
    if (!state.sentOnce && state.clientVersion !== "" && state.clientVersion === set.version) {
      for (const r of scope) state.sent.set(r.name, r);
      state.sentOnce = true;
      state.lastVersion = set.version;
      return undefined;
    }

    if (fullState) {
      // xDS protocol: LDS, CDS (and SRDS) responses carry the full subscribed state; a missing
      // resource means deleted. Send only when that state differs from what was sent.
      let differs = !state.sentOnce || scope.length !== state.sent.size;
      if (!differs) for (const r of scope) if (state.sent.get(r.name)?.version !== r.version) differs = true;
      if (!differs) return undefined;
      const names = new Set(scope.map((r) => r.name));
      const removes = [...state.sent.keys()].some((n) => !names.has(n));
      return { resources: scope, version: set.version, removes };
    }
    // Other types carry only what the client lacks: changed resources and newly requested names
    // (sent even when the version did not change). Unchanged resources are never re-sent.
    const changed = scope.filter((r) => state.sent.get(r.name)?.version !== r.version);
    for (const name of state.sent.keys()) if (!set.resources.has(name)) state.sent.delete(name);
    if (changed.length === 0) {
      // A first wildcard response tells the client the (possibly empty) state exists.
      if (!state.sentOnce && state.wildcard) return { resources: [], version: set.version, removes: false };
      return undefined;
    }
    return { resources: changed, version: set.version, removes: false };
  }

  private respond(state: SotwTypeState, plan: Plan, heartbeat = false): void {
    const nonce = this.nextNonce();
    // xDS protocol: no resource twice in one response.
    const unique = dedupe(plan.resources);
    const bytes = sotwResponse(plan.version, state.typeUrl, unique, nonce, heartbeat, this.ctx.controlPlane);
    if (!heartbeat) {
      if (fullStateTypes.has(state.typeUrl)) state.sent = new Map(unique.map((r) => [r.name, r]));
      else for (const r of unique) state.sent.set(r.name, r);
      state.sentOnce = true;
    }
    state.lastNonce = nonce;
    state.lastVersion = plan.version;
    this.send(bytes);
    this.emit({
      type: "response",
      streamId: this.id,
      protocol: "sotw",
      node: this.node,
      typeUrl: state.typeUrl,
      version: plan.version,
      nonce,
      resources: unique.map((r) => r.name),
      removed: [],
      heartbeat,
      bytes: bytes.length,
    });
  }

  heartbeat(): void {
    for (const state of this.types.values()) {
      const sent = [...state.sent.values()];
      if (state.lastVersion === undefined || !sent.some((r) => r.ttlMs !== undefined)) continue;
      // Full-state types must carry every resource even in a heartbeat, or the client would
      // delete the ones left out; the others carry just the TTL'd resources.
      const resources = fullStateTypes.has(state.typeUrl) ? sent : sent.filter((r) => r.ttlMs !== undefined);
      this.respond(state, { resources, version: state.lastVersion, removes: false }, true);
    }
  }
}

function dedupe(resources: CachedResource[]): CachedResource[] {
  const seen = new Set<string>();
  return resources.filter((r) => {
    if (seen.has(r.name)) return false;
    seen.add(r.name);
    return true;
  });
}
