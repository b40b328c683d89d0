import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { XdsEvent } from "../events.js";

/** What a cache knows about one type on one node. */
export interface TypeStatus {
  /** Version of the last response sent. */
  readonly sentVersion?: string;
  /** Version the client last ACKed. */
  readonly ackedVersion?: string;
  /** The last NACK, until a later ACK clears it. */
  readonly nack?: {
    readonly version: string;
    readonly rejectedVersion: string | undefined;
    readonly message: string;
    readonly code: number;
    readonly at: Date;
  };
  readonly responses: number;
}

/** What a cache knows about one node (or group of nodes sharing a key). */
export interface NodeStatus {
  readonly key: string;
  /** The node as last seen in a stream's first request. */
  readonly node?: Node;
  /** Open streams. */
  readonly streams: number;
  readonly lastRequestAt?: Date;
  readonly types: Readonly<Record<string, TypeStatus>>;
}

type MutableTypeStatus = { -readonly [K in keyof TypeStatus]: TypeStatus[K] };

interface Entry {
  node?: Node;
  streams: number;
  /** Epoch ms of the last request (a Date is made only when status() is read). */
  lastRequestMs?: number;
  types: Record<string, MutableTypeStatus>;
}

/**
 * Keeps NodeStatus per key from server events, for nodes with an open stream; shared by the
 * caches. Runs on every request,
 * response, ACK and NACK of every stream, so it updates entries in place and allocates only
 * when status() is read.
 */
export class StatusTracker {
  private readonly byKey = new Map<string, Entry>();

  private readonly now: () => Date;
  private readonly nowMs: () => number;

  constructor(
    private readonly keyOf: (node: Node) => string,
    now?: () => Date,
  ) {
    this.now = now ?? (() => new Date());
    this.nowMs = now ? () => now().getTime() : Date.now;
  }

  record(event: XdsEvent): void {
    if (!event.node) return;
    const key = this.keyOf(event.node);
    let entry = this.byKey.get(key);
    if (!entry) {
      entry = { streams: 0, types: {} };
      this.byKey.set(key, entry);
    }
    entry.node = event.node;
    switch (event.type) {
      case "stream-open":
        entry.streams++;
        break;
      case "stream-close":
        entry.streams = Math.max(0, entry.streams - 1);
        // A node that left (its last stream closed) is dropped: status() tracks connected nodes,
        // and a control plane that sees thousands of short-lived nodes must not keep them all.
        if (entry.streams === 0) this.byKey.delete(key);
        break;
      case "request":
        entry.lastRequestMs = this.nowMs();
        break;
      case "response": {
        const t = typeOf(entry, event.typeUrl);
        t.sentVersion = event.version;
        t.responses++;
        break;
      }
      case "ack": {
        const t = typeOf(entry, event.typeUrl);
        t.ackedVersion = event.version;
        delete t.nack;
        break;
      }
      case "nack": {
        typeOf(entry, event.typeUrl).nack = {
          version: event.version,
          rejectedVersion: event.rejectedVersion,
          message: event.errorDetail.message,
          code: event.errorDetail.code,
          at: this.now(),
        };
        break;
      }
    }
  }

  status(key: string): NodeStatus | undefined {
    const entry = this.byKey.get(key);
    if (!entry) return undefined;
    const types: Record<string, TypeStatus> = {};
    for (const [typeUrl, t] of Object.entries(entry.types)) types[typeUrl] = { ...t };
    return {
      key,
      ...(entry.node ? { node: entry.node } : {}),
      streams: entry.streams,
      ...(entry.lastRequestMs !== undefined ? { lastRequestAt: new Date(entry.lastRequestMs) } : {}),
      types,
    };
  }

  delete(key: string): void {
    this.byKey.delete(key);
  }
}

function typeOf(entry: Entry, typeUrl: string): MutableTypeStatus {
  let t = entry.types[typeUrl];
  if (!t) {
    t = { responses: 0 };
    entry.types[typeUrl] = t;
  }
  return t;
}
