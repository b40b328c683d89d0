import type { XdsEvent } from "@meshlet/xds";
import type { Observable, Subscription } from "rxjs";

type Waiter = { predicate: (event: XdsEvent) => boolean; resolve: (event: XdsEvent) => void };

/**
 * Records every event of an `XdsServer.events$` from the moment it is created, so a test can both
 * count what happened and wait for what has not happened yet without racing the server: a wait
 * first looks at what was already recorded (from a position), then at what comes next.
 */
export class EventRecorder {
  readonly events: XdsEvent[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly subscription: Subscription;

  constructor(events$: Observable<XdsEvent>) {
    this.subscription = events$.subscribe((event) => {
      this.events.push(event);
      for (const waiter of this.waiters) {
        if (waiter.predicate(event)) {
          this.waiters.delete(waiter);
          waiter.resolve(event);
        }
      }
    });
  }

  /** A position in the recording, to wait for or count events that come after it. */
  mark(): number {
    return this.events.length;
  }

  /** Events recorded since `from` that match `predicate`. */
  since(from: number, predicate: (event: XdsEvent) => boolean = () => true): XdsEvent[] {
    return this.events.slice(from).filter(predicate);
  }

  /** The first event at or after position `from` that matches; waits for it if needed. */
  waitFor<E extends XdsEvent = XdsEvent>(
    predicate: (event: XdsEvent) => boolean,
    options: { from?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<E> {
    const seen = this.events.slice(options.from ?? 0).find(predicate);
    if (seen) return Promise.resolve(seen as E);
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise<E>((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event as E);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const recent = this.events
          .slice(-12)
          .map((e) => describeEvent(e))
          .join("\n  ");
        reject(
          new Error(
            `no ${options.what ?? "matching event"} within ${timeoutMs} ms; last events:\n  ${recent}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Stops recording. */
  stop(): void {
    this.subscription.unsubscribe();
    this.waiters.clear();
  }
}

/** One line per event for failure messages. */
export function describeEvent(event: XdsEvent): string {
  const node = event.node?.id ?? "?";
  switch (event.type) {
    case "request":
      return `#${event.streamId} ${node} request ${short(event.typeUrl)} names=[${event.resourceNames}] nonce=${event.responseNonce}`;
    case "response":
      return `#${event.streamId} ${node} response ${short(event.typeUrl)} v=${event.version} [${event.resources}] nonce=${event.nonce}`;
    case "ack":
      return `#${event.streamId} ${node} ack ${short(event.typeUrl)} v=${event.version}`;
    case "nack":
      return `#${event.streamId} ${node} nack ${short(event.typeUrl)} ${event.errorDetail.message}`;
    default:
      return `#${event.streamId} ${node} ${event.type}`;
  }
}

function short(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}
