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

/** Keeps NodeStatus per key from server events; shared by the caches. */
export class StatusTracker {
  private readonly byKey = new Map<
    string,
    { node?: Node; streams: number; lastRequestAt?: Date; types: Record<string, TypeStatus> }
  >();

  constructor(
    private readonly keyOf: (node: Node) => string,
    private readonly now: () => Date = () => new Date(),
  ) {}

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
        break;
      case "request":
        entry.lastRequestAt = this.now();
        break;
      case "response": {
        const t = entry.types[event.typeUrl] ?? { responses: 0 };
        entry.types[event.typeUrl] = { ...t, sentVersion: event.version, responses: t.responses + 1 };
        break;
      }
      case "ack": {
        const { nack: _cleared, ...t } = entry.types[event.typeUrl] ?? { responses: 0 };
        entry.types[event.typeUrl] = { ...t, ackedVersion: event.version };
        break;
      }
      case "nack": {
        const t = entry.types[event.typeUrl] ?? { responses: 0 };
        entry.types[event.typeUrl] = {
          ...t,
          nack: {
            version: event.version,
            rejectedVersion: event.rejectedVersion,
            message: event.errorDetail.message,
            code: event.errorDetail.code,
            at: this.now(),
          },
        };
        break;
      }
    }
  }

  status(key: string): NodeStatus | undefined {
    const entry = this.byKey.get(key);
    if (!entry) return undefined;
    return { key, ...entry, types: { ...entry.types } };
  }

  delete(key: string): void {
    this.byKey.delete(key);
  }
}
