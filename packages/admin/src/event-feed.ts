import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Event, EventKind, EventSchema } from "@meshlet/api/meshlet/admin/v1/admin_pb";

/** What a publisher gives: one case of the event oneof (sequence and time are the feed's). */
export type EventInit = NonNullable<MessageInitShape<typeof EventSchema>["event"]>;

/** Options of {@link EventFeed}. */
export interface EventFeedOptions {
  /** Events kept for subscribers that ask for a replay (default 200). */
  readonly replaySize?: number;
  /**
   * Events queued per subscriber that has not read them yet (default 1000). When a subscriber
   * falls further behind, its oldest queued events are dropped and it is told how many (a
   * `dropped` event before the next one it reads): a slow or vanished reader costs the server at
   * most this many events, never more.
   */
  readonly bufferSize?: number;
  /** Clock (ms since the epoch). */
  readonly now?: () => number;
}

/** One subscriber's queue, as {@link EventFeed.subscribers} reports it. */
export interface SubscriberStats {
  /** Events queued, not yet read. */
  readonly buffered: number;
  /** Events dropped so far because it read too slowly. */
  readonly dropped: number;
  /** Events it read so far. */
  readonly delivered: number;
}

const CASE_KIND: Readonly<Record<string, EventKind>> = {
  push: EventKind.PUSH,
  nack: EventKind.NACK,
  diagnostic: EventKind.DIAGNOSTIC,
  certificate: EventKind.CERTIFICATE,
  policyDenial: EventKind.POLICY_DENIAL,
  proxy: EventKind.PROXY,
};

/** A fixed-capacity queue that drops its oldest entry when full. */
class Ring<T> {
  readonly #items: Array<T | undefined>;
  #head = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    this.#items = new Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds at the tail; returns true when the oldest entry was dropped to make room. */
  push(item: T): boolean {
    const dropped = this.#size === this.capacity;
    this.#items[(this.#head + this.#size) % this.capacity] = item;
    if (dropped) this.#head = (this.#head + 1) % this.capacity;
    else this.#size++;
    return dropped;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    return item;
  }

  /** The newest `n` entries, oldest first. */
  last(n: number): T[] {
    const out: T[] = [];
    const count = Math.min(n, this.#size);
    for (let i = this.#size - count; i < this.#size; i++)
      out.push(this.#items[(this.#head + i) % this.capacity] as T);
    return out;
  }
}

interface Subscriber {
  readonly queue: Ring<Event>;
  readonly kinds: ReadonlySet<EventKind> | undefined;
  /** Dropped since the last `dropped` notice it read. */
  pending: number;
  dropped: number;
  delivered: number;
  wake: (() => void) | undefined;
  closed: boolean;
}

/**
 * The admin API's event feed: numbers and timestamps events, keeps the last few for replay, and
 * fans them out to subscribers (WatchEvents streams), each with a bounded queue. Publishing never
 * waits for a subscriber: a subscriber whose transport stopped taking data (a browser tab in the
 * background, a client that never reads) keeps at most `bufferSize` events; older ones are dropped
 * and counted, and the count is delivered as a `dropped` event when it reads again.
 */
export class EventFeed {
  readonly #replay: Ring<Event>;
  readonly #bufferSize: number;
  readonly #now: () => number;
  readonly #subscribers = new Set<Subscriber>();
  #sequence = 0n;
  #closed = false;

  constructor(options: EventFeedOptions = {}) {
    this.#replay = new Ring(Math.max(1, options.replaySize ?? 200));
    this.#bufferSize = Math.max(1, options.bufferSize ?? 1000);
    this.#now = options.now ?? Date.now;
  }

  /** Publishes one event to every subscriber that wants its kind. */
  publish(init: EventInit): Event {
    this.#sequence++;
    const event = create(EventSchema, {
      sequence: this.#sequence,
      time: timestampFromMs(this.#now()),
      event: init,
    });
    this.#replay.push(event);
    const kind = CASE_KIND[init.case ?? ""];
    for (const s of this.#subscribers) {
      if (s.kinds !== undefined && (kind === undefined || !s.kinds.has(kind))) continue;
      if (s.queue.push(event)) {
        s.pending++;
        s.dropped++;
      }
      const wake = s.wake;
      s.wake = undefined;
      wake?.();
    }
    return event;
  }

  /** Queue sizes and drop counts of the current subscribers. */
  subscribers(): SubscriberStats[] {
    return [...this.#subscribers].map((s) => ({
      buffered: s.queue.size,
      dropped: s.dropped,
      delivered: s.delivered,
    }));
  }

  /**
   * The events from now on (after up to `replay` recent ones) as an async iterable that ends when
   * `signal` aborts or the feed closes. Reading it slowly is safe (see the class comment).
   */
  async *subscribe(
    options: { kinds?: readonly EventKind[]; replay?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Event> {
    const kinds = options.kinds?.some((k) => k !== EventKind.UNSPECIFIED)
      ? new Set(options.kinds)
      : undefined;
    const sub: Subscriber = {
      queue: new Ring(this.#bufferSize),
      kinds,
      pending: 0,
      dropped: 0,
      delivered: 0,
      wake: undefined,
      closed: this.#closed,
    };
    const replay = Math.min(Math.max(0, options.replay ?? 0), this.#replay.capacity);
    for (const e of this.#replay.last(replay)) {
      const kind = CASE_KIND[e.event.case ?? ""];
      if (kinds === undefined || (kind !== undefined && kinds.has(kind))) sub.queue.push(e);
    }
    const signal = options.signal;
    const onAbort = () => {
      sub.closed = true;
      const wake = sub.wake;
      sub.wake = undefined;
      wake?.();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) sub.closed = true;
    this.#subscribers.add(sub);
    try {
      while (!sub.closed) {
        if (sub.pending > 0) {
          const count = BigInt(sub.pending);
          sub.pending = 0;
          yield create(EventSchema, {
            sequence: this.#sequence,
            time: timestampFromMs(this.#now()),
            event: { case: "dropped", value: { count } },
          });
          continue;
        }
        const next = sub.queue.shift();
        if (next !== undefined) {
          sub.delivered++;
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          sub.wake = resolve;
        });
      }
    } finally {
      this.#subscribers.delete(sub);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Ends every subscription. */
  close(): void {
    this.#closed = true;
    for (const s of this.#subscribers) {
      s.closed = true;
      const wake = s.wake;
      s.wake = undefined;
      wake?.();
    }
  }
}
