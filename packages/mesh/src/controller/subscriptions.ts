import type { XdsEvent } from "@meshlet/xds";
import { getOrCreate } from "../collections.js";

/** What one stream subscribed to of one type. */
interface StreamType {
  wildcard: boolean;
  readonly names: Set<string>;
}

/**
 * The resource names each node subscribed to, per type, across its streams, tracked from the xDS
 * server's `request` events (xDS protocol: a SotW request carries the full list; a delta request
 * adds and removes names; an empty list on a stream's first request, or `*`, is a wildcard).
 */
export class SubscriptionTracker {
  readonly #streams = new Map<number, { key: string; types: Map<string, StreamType> }>();
  /** Stream ids by node key, so per-node questions do not scan every stream. */
  readonly #byKey = new Map<string, Set<number>>();

  /** Applies a `request` event; returns whether the node's subscription of that type changed. */
  request(key: string, event: Extract<XdsEvent, { type: "request" }>): boolean {
    if (event.stale) return false;
    let stream = this.#streams.get(event.streamId);
    if (stream === undefined) {
      stream = { key, types: new Map() };
      this.#streams.set(event.streamId, stream);
      getOrCreate(this.#byKey, key, () => new Set<number>()).add(event.streamId);
    }
    const before = this.names(key, event.typeUrl);
    const existing = stream.types.get(event.typeUrl);
    const first = existing === undefined;
    const state = existing ?? { wildcard: false, names: new Set<string>() };
    stream.types.set(event.typeUrl, state);
    if (event.protocol === "sotw") {
      state.names.clear();
      for (const n of event.resourceNames) if (n !== "*") state.names.add(n);
      state.wildcard =
        event.resourceNames.includes("*") || (event.resourceNames.length === 0 && (first || state.wildcard));
    } else {
      for (const n of event.resourceNames) if (n !== "*") state.names.add(n);
      for (const n of event.unsubscribe) state.names.delete(n);
      if (event.resourceNames.includes("*")) state.wildcard = true;
      else if (event.unsubscribe.includes("*")) state.wildcard = false;
      else if (first && event.resourceNames.length === 0) state.wildcard = true;
    }
    return !sameNames(before, this.names(key, event.typeUrl));
  }

  /**
   * How many names the request's stream would hold of its type once the request is applied (SotW:
   * the distinct names listed; Delta: the stream's names plus those subscribed, less those
   * unsubscribed). Wildcards count nothing.
   */
  namesAfter(event: Extract<XdsEvent, { type: "request" }>): number {
    const held = this.#streams.get(event.streamId)?.types.get(event.typeUrl)?.names;
    if (event.protocol === "sotw") {
      if (event.resourceNames.length === 0) return 0;
      return new Set(event.resourceNames.filter((n) => n !== "*")).size;
    }
    if (event.resourceNames.length === 0) return held?.size ?? 0;
    const gone = new Set(event.unsubscribe);
    const after = new Set<string>();
    for (const n of held ?? []) if (!gone.has(n)) after.add(n);
    for (const n of event.resourceNames) if (n !== "*" && !gone.has(n)) after.add(n);
    return after.size;
  }

  /** Forgets a stream; returns the key of its node when it had one. */
  close(streamId: number): string | undefined {
    const stream = this.#streams.get(streamId);
    this.#streams.delete(streamId);
    if (stream !== undefined) {
      const ids = this.#byKey.get(stream.key);
      ids?.delete(streamId);
      if (ids?.size === 0) this.#byKey.delete(stream.key);
    }
    return stream?.key;
  }

  /** Open streams of a node. */
  streams(key: string): number {
    return this.#byKey.get(key)?.size ?? 0;
  }

  #streamsOf(key: string): Array<{ key: string; types: Map<string, StreamType> }> {
    const out = [];
    for (const id of this.#byKey.get(key) ?? []) {
      const s = this.#streams.get(id);
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  /** The names a node subscribed to of a type: undefined for a wildcard (or no subscription yet). */
  names(key: string, typeUrl: string): ReadonlySet<string> | undefined {
    let out: Set<string> | undefined;
    let any = false;
    for (const s of this.#streamsOf(key)) {
      const t = s.types.get(typeUrl);
      if (t === undefined) continue;
      any = true;
      if (t.wildcard) return undefined;
      out ??= new Set();
      for (const n of t.names) out.add(n);
    }
    return any ? (out ?? new Set()) : undefined;
  }

  /** Every type URL a node subscribed to on any stream. */
  types(key: string): string[] {
    const out = new Set<string>();
    for (const s of this.#streamsOf(key)) for (const t of s.types.keys()) out.add(t);
    return [...out];
  }
}

function sameNames(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}
