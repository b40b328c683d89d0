import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { SyncStatus } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import type { XdsEvent } from "@meshlet/xds";

/** One response or answer: which version, which nonce, when (ms since the epoch). */
export interface Mark {
  readonly version: string;
  readonly nonce: string;
  readonly at: number;
}

/** What one stream did with one xDS type. */
export interface TypeState {
  readonly typeUrl: string;
  sent?: Mark;
  acked?: Mark;
  /** The last NACK, kept until a later ACK of the type. */
  nacked?: Mark & { readonly error: string; readonly code: number };
}

/** One open stream with a node, and what it did per type. */
interface StreamState {
  readonly node: Node;
  readonly since: number;
  readonly types: Map<string, TypeState>;
}

/** A node with open streams, as {@link SyncTracker.nodes} reports it. */
export interface TrackedNode {
  readonly node: Node;
  /** When its oldest open stream sent its node. */
  readonly since: number;
  readonly streams: number;
  /** Per type, the state of the stream that sent the type last. */
  readonly types: ReadonlyMap<string, Readonly<TypeState>>;
}

/**
 * Follows an xDS server's `events$` and keeps, per open stream and type, the last response sent,
 * the last ACK and the last NACK — what `istioctl proxy-status` compares (nonce sent vs nonce
 * ACKed, istio/istio istioctl/pkg/writer/pilot/status.go `xdsStatus`). Memory is bounded by the
 * open streams: a stream's state goes when it closes.
 */
export class SyncTracker {
  readonly #streams = new Map<number, StreamState>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Feeds one event. */
  record(event: XdsEvent): void {
    if (event.type === "stream-close") {
      this.#streams.delete(event.streamId);
      return;
    }
    if (event.node === undefined) return;
    let stream = this.#streams.get(event.streamId);
    if (stream === undefined) {
      stream = { node: event.node, since: this.#now(), types: new Map() };
      this.#streams.set(event.streamId, stream);
    }
    if (!("typeUrl" in event)) return;
    const at = this.#now();
    let state = stream.types.get(event.typeUrl);
    if (state === undefined && (event.type === "response" || event.type === "ack" || event.type === "nack")) {
      state = { typeUrl: event.typeUrl };
      stream.types.set(event.typeUrl, state);
    }
    if (state === undefined) return;
    switch (event.type) {
      case "response":
        state.sent = { version: event.version, nonce: event.nonce, at };
        break;
      case "ack":
        state.acked = { version: event.version, nonce: event.nonce, at };
        delete state.nacked;
        break;
      case "nack":
        state.nacked = {
          version: event.rejectedVersion ?? "",
          nonce: event.nonce,
          at,
          error: event.errorDetail.message,
          code: event.errorDetail.code,
        };
        break;
      default:
        break;
    }
  }

  /** Nodes with open streams, by node id. */
  nodes(): Map<string, TrackedNode> {
    const out = new Map<
      string,
      { node: Node; since: number; streams: number; types: Map<string, TypeState> }
    >();
    for (const s of this.#streams.values()) {
      const id = s.node.id;
      let entry = out.get(id);
      if (entry === undefined) {
        entry = { node: s.node, since: s.since, streams: 0, types: new Map() };
        out.set(id, entry);
      }
      entry.streams++;
      if (s.since < entry.since) entry.since = s.since;
      for (const [typeUrl, state] of s.types) {
        const other = entry.types.get(typeUrl);
        if (other === undefined || (state.sent?.at ?? 0) >= (other.sent?.at ?? 0))
          entry.types.set(typeUrl, state);
      }
    }
    return out;
  }
}

/**
 * The sync status of one type, as istioctl words it: NOT SENT when nothing was sent, SYNCED when
 * the last response sent was ACKed (same nonce), ERROR when it was NACKed, else STALE (never
 * acknowledged when nothing of the type was ever ACKed).
 */
export function syncStatusOf(state: Readonly<TypeState> | undefined): SyncStatus {
  const sent = state?.sent;
  if (sent === undefined) return SyncStatus.NOT_SENT;
  if (state?.nacked !== undefined && state.nacked.nonce === sent.nonce) return SyncStatus.ERROR;
  if (state?.acked !== undefined && state.acked.nonce === sent.nonce) return SyncStatus.SYNCED;
  return SyncStatus.STALE;
}

/** The worst of several statuses: ERROR, then STALE, then SYNCED; NOT_SENT only when all are. */
export function worstStatus(statuses: Iterable<SyncStatus>): SyncStatus {
  let worst = SyncStatus.NOT_SENT;
  const rank = (s: SyncStatus) =>
    s === SyncStatus.ERROR ? 3 : s === SyncStatus.STALE ? 2 : s === SyncStatus.SYNCED ? 1 : 0;
  for (const s of statuses) if (rank(s) > rank(worst)) worst = s;
  return worst;
}
