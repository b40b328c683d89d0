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

/**
 * One type of one key, every field set from the start: one hidden class for all of them, no
 * property array grown as fields arrive (a key per proxy keeps thousands).
 */
class TypeEntry {
  sentVersion: string | undefined = undefined;
  ackedVersion: string | undefined = undefined;
  nack: TypeStatus["nack"] = undefined;
  responses = 0;
}

/** One key (see {@link TypeEntry}). */
class Entry {
  node: Node | undefined = undefined;
  streams = 0;
  /** Epoch ms of the last request, NaN before the first (a Date is made only when status() is read). */
  lastRequestMs = Number.NaN;
  readonly types: Record<string, TypeEntry> = {};
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
      entry = new Entry();
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
        t.nack = undefined;
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
    for (const [typeUrl, t] of Object.entries(entry.types)) setOwn(types, typeUrl, typeStatus(t));
    return {
      key,
      ...(entry.node ? { node: entry.node } : {}),
      streams: entry.streams,
      ...(!Number.isNaN(entry.lastRequestMs) ? { lastRequestAt: new Date(entry.lastRequestMs) } : {}),
      types,
    };
  }

  delete(key: string): void {
    this.byKey.delete(key);
  }
}

function typeOf(entry: Entry, typeUrl: string): TypeEntry {
  // Own properties only: the type URL comes from the client, and may be "constructor" or "__proto__".
  let t = Object.hasOwn(entry.types, typeUrl) ? entry.types[typeUrl] : undefined;
  if (!t) {
    t = new TypeEntry();
    setOwn(entry.types, typeUrl, t);
  }
  return t;
}

/** `record[key] = value` as an own property, even for "__proto__" (which would set the prototype). */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__")
    Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}

/** What status() shows of a type: the fields that are set. */
function typeStatus(t: TypeEntry): TypeStatus {
  const out: MutableTypeStatus = { responses: t.responses };
  if (t.sentVersion !== undefined) out.sentVersion = t.sentVersion;
  if (t.ackedVersion !== undefined) out.ackedVersion = t.ackedVersion;
  if (t.nack !== undefined) out.nack = t.nack;
  return out;
}
