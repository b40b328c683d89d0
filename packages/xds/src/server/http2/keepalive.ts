import type http2 from "node:http2";
import type { Logger } from "../logger.js";
import { peerOf } from "./peer.js";

/**
 * The longest delay a Node timer holds (2^31 - 1 ms, about 24.8 days): a longer one fires after
 * 1 ms instead. As in grpc-js's server (`KEEPALIVE_MAX_TIME_MS`), a keepalive interval this long
 * or longer (`Infinity` included) sends no PINGs, and a PING timeout this long or longer waits
 * this long.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A connection as {@link Keepalive} schedules it: the object that stands for the connection
 * carries its next PING time and its links in the schedule (no timer, closure or function of
 * its own per connection).
 */
export interface KeepaliveEntry {
  readonly session: http2.ServerHttp2Session;
  /** When its next PING is due (the scheduler's clock, ms). */
  keepaliveDue: number;
  keepalivePrev: KeepaliveEntry | undefined;
  keepaliveNext: KeepaliveEntry | undefined;
}

/**
 * Keepalive PINGs on the connections of a transport: proxies hold streams for hours, and a peer
 * that went away silently is found when a PING is not answered within `timeoutMs`.
 *
 * Each connection is pinged every `intervalMs` from when it was added (as a timer per connection
 * would: the next PING is due `intervalMs` after the previous one was sent), and a PING not
 * answered within `timeoutMs` destroys it. One timer serves them all: connections are kept in
 * the order their PINGs are due (with one interval for all, a connection pinged goes to the end),
 * and the timer is set for the first one.
 */
export class Keepalive {
  private head: KeepaliveEntry | undefined = undefined;
  private tail: KeepaliveEntry | undefined = undefined;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private readonly tick = () => this.run();

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    /** Monotonic milliseconds. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Starts pinging a connection: its first PING is due in `intervalMs` (never, when the interval
   * is {@link MAX_TIMER_MS} or longer: the connection is only listed).
   */
  add(entry: KeepaliveEntry): void {
    entry.keepaliveDue = this.now() + this.intervalMs;
    this.append(entry);
    if (this.timer === undefined && this.intervalMs < MAX_TIMER_MS) this.arm(this.intervalMs);
  }

  /** Stops pinging a connection (it closed). */
  remove(entry: KeepaliveEntry): void {
    if (entry.keepalivePrev === undefined && this.head !== entry) return;
    this.unlink(entry);
    if (this.head === undefined && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** The connections pinged, in the order their PINGs are due. */
  entries(): KeepaliveEntry[] {
    const out: KeepaliveEntry[] = [];
    for (let e = this.head; e !== undefined; e = e.keepaliveNext) out.push(e);
    return out;
  }

  private run(): void {
    this.timer = undefined;
    const now = this.now();
    for (let e = this.head; e !== undefined && e.keepaliveDue <= now; e = this.head) {
      this.unlink(e);
      e.keepaliveDue = now + this.intervalMs;
      this.append(e);
      ping(e.session, Math.min(this.timeoutMs, MAX_TIMER_MS), this.logger);
    }
    if (this.head !== undefined) this.arm(this.head.keepaliveDue - now);
  }

  private arm(ms: number): void {
    // Never early: a timer may fire a little before the clock reads its due time.
    this.timer = setTimeout(this.tick, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private append(e: KeepaliveEntry): void {
    e.keepalivePrev = this.tail;
    e.keepaliveNext = undefined;
    if (this.tail) this.tail.keepaliveNext = e;
    else this.head = e;
    this.tail = e;
  }

  private unlink(e: KeepaliveEntry): void {
    if (e.keepalivePrev) e.keepalivePrev.keepaliveNext = e.keepaliveNext;
    else this.head = e.keepaliveNext;
    if (e.keepaliveNext) e.keepaliveNext.keepalivePrev = e.keepalivePrev;
    else this.tail = e.keepalivePrev;
    e.keepalivePrev = undefined;
    e.keepaliveNext = undefined;
  }
}

/** One PING: a connection that does not answer within `timeoutMs` is destroyed. */
function ping(session: http2.ServerHttp2Session, timeoutMs: number, logger: Logger): void {
  if (session.closed || session.destroyed) return;
  const timeout = setTimeout(() => {
    logger.warn(
      `xds: connection from ${peerOf(session)} did not answer a keepalive PING within ${timeoutMs} ms; closing it`,
    );
    session.destroy();
  }, timeoutMs);
  timeout.unref();
  try {
    session.ping((err) => {
      clearTimeout(timeout);
      if (err && !session.destroyed) session.destroy();
    });
  } catch {
    clearTimeout(timeout);
  }
}
