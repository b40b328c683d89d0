import http2 from "node:http2";
import type { Logger } from "./logger.js";

/** nghttp2's RST_STREAM budget per connection: a burst of 1,000, refilled at 33 per second. */
export const NGHTTP2_RESET_BURST = 1000;
export const NGHTTP2_RESET_RATE = 33;
/**
 * Resets nghttp2 may count that we cannot foresee: a client's RST_STREAM for a stream the server
 * had already ended (grpc-js sends none after it has the status; other clients may), or one that
 * comes with no END_STREAM before it on a stream whose side we had ended.
 */
const UNSEEN_RESETS = 100;

/** Where a followed stream stands: open, half-closed by the client (a reset may follow), done. */
export const ResetState = { Open: 0, HalfClosed: 1, Done: 2 } as const;
export type ResetState = (typeof ResetState)[keyof typeof ResetState];

/**
 * A stream the budget follows: its state lives in the object that stands for the stream (the
 * http2 transport's call, or a small tracker for a grpc-js stream), not in closures of its own.
 */
export interface ResetTracked {
  resetState: ResetState;
}

/** Our copy of nghttp2's reset bucket of one connection. */
export class ConnectionResets {
  /** Tokens left in our copy of nghttp2's bucket. */
  tokens = NGHTTP2_RESET_BURST;
  /** Whole seconds of the last refill, as nghttp2 counts them (-1 until its first stream). */
  at = -1;
  /** Streams the client half-closed and that are not closed yet: a reset may follow each. */
  atRisk = 0;
  rotated = false;

  constructor(
    readonly budget: ResetBudget,
    readonly session: http2.Http2Session,
  ) {}

  /**
   * The bucket for a new stream of the connection, whose events the caller reports (as
   * ResetBudget.track does): `aborted` → `settled(s, true)`, `end` → `halfClosed(s)`, `close` →
   * `settled(s, rstCode !== NO_ERROR)`. Undefined once the connection was rotated: its streams
   * are not followed.
   */
  follow(): ConnectionResets | undefined {
    if (this.at < 0) this.at = this.budget.nowSeconds();
    return this.rotated ? undefined : this;
  }

  /** The client half-closed the stream (`end`): a reset may follow. */
  halfClosed(stream: ResetTracked): void {
    if (stream.resetState !== ResetState.Open) return;
    stream.resetState = ResetState.HalfClosed;
    this.atRisk++;
    this.budget.check(this);
  }

  /** The stream is gone (`aborted`, or `close` with `reset` when it ended with a reset). */
  settled(stream: ResetTracked, reset: boolean): void {
    if (stream.resetState === ResetState.Done) return;
    if (stream.resetState === ResetState.HalfClosed) this.atRisk--;
    stream.resetState = ResetState.Done;
    if (reset) this.tokens--;
    this.budget.check(this);
  }
}

/** A grpc-js stream the budget follows (see ResetBudget.track). */
class StreamTracker implements ResetTracked {
  resetState: ResetState = ResetState.Open;
  constructor(readonly connection: ConnectionResets) {}
}

const TRACKER = Symbol("meshlet.resetTracker");
type TrackedStream = http2.ServerHttp2Stream & { [TRACKER]: StreamTracker };

// Listeners shared by every tracked stream (`this` is the stream): one function each, not
// closures per stream. `on`, not `once`: the state makes each step run once, and each `once`
// costs a wrapper object and a bound function per stream (thousands of idle streams).
function onTrackedAborted(this: TrackedStream): void {
  const t = this[TRACKER];
  t.connection.settled(t, true);
}
function onTrackedEnd(this: TrackedStream): void {
  const t = this[TRACKER];
  t.connection.halfClosed(t);
}
function onTrackedClose(this: TrackedStream): void {
  const t = this[TRACKER];
  // A stream that ended with a reset (the client's, or one we sent: counted too, to be safe).
  t.connection.settled(t, this.rstCode !== http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * Keeps a burst of client cancels from costing the other streams of their connection.
 *
 * Node's HTTP/2 server runs nghttp2's Rapid Reset (CVE-2023-44487) mitigation: every connection
 * has a budget of RST_STREAM frames received, 1,000 at once, refilled at 33 a second (nghttp2
 * `lib/nghttp2_session.c`, `session_update_stream_reset_ratelim`). The frame beyond it makes the
 * server queue a GOAWAY with INTERNAL_ERROR (2). A Node client (`lib/internal/http2/core.js`,
 * `onGoawayData`) destroys its whole session on a GOAWAY with an error code, although its
 * last-stream-id lets the open streams finish, so grpc-js fails every call still open on it with
 * "13 INTERNAL: Received RST_STREAM with code 2 … Session closed with error code 2". A client that
 * cancels 1,001 streams of one target within a second (grpc-js puts them all on one connection),
 * or a proxy multiplexing many clients, thus costs every healthy stream on the connection.
 * Node 20 cannot raise the budget (`streamResetBurst`/`streamResetRate` came later,
 * nodejs/node#54875), and no server can stop a client's RST_STREAM frames.
 *
 * What a server can do: send a graceful GOAWAY (NO_ERROR) before the budget runs out. The
 * connection's open streams carry on; the client opens new streams on a new connection; and
 * nghttp2 stops counting resets on a connection that has submitted a GOAWAY (the limiter returns
 * early on NGHTTP2_GOAWAY_SUBMITTED), so the rest of the burst is harmless. This keeps a copy of
 * nghttp2's bucket per connection and sends that GOAWAY once the resets counted, plus the resets
 * that may follow at once, plus a margin, reach the budget.
 *
 * Resets must be foreseen while nghttp2 is still reading the frames of a burst, before they are
 * all counted. Two events allow it. A reset of a stream whose writable side is open emits
 * `aborted` synchronously from nghttp2's stream-close callback: counted at once, and a GOAWAY
 * submitted there takes effect before the next frame of the same read. A grpc-js cancel (Node's
 * Http2Stream.close) sends END_STREAM before RST_STREAM, and the server answers the END_STREAM by
 * ending its side, so `aborted` does not fire for it; but the END_STREAM arrives in an earlier read
 * than the RST_STREAM (measured: all 800 of 800 cancels, in a loop or one by one), and its `end`
 * event marks the stream at risk until it closes. A connection is rotated only when resets happen
 * or are about to: any number of streams may stay open on it.
 */
export class ResetBudget {
  private readonly connections = new WeakMap<http2.Http2Session, ConnectionResets>();
  private warned = false;

  constructor(
    private readonly logger: Logger,
    /** Seconds, monotonic (nghttp2 refills in whole seconds of a monotonic clock). */
    readonly nowSeconds: () => number = () => Math.floor(performance.now() / 1000),
  ) {}

  /** Follows a server stream on its connection until it closes (a reset costs the budget one). */
  track(stream: http2.ServerHttp2Stream): void {
    const connection = this.follow(stream);
    if (!connection) return;
    (stream as TrackedStream)[TRACKER] = new StreamTracker(connection);
    stream.on("aborted", onTrackedAborted);
    stream.on("end", onTrackedEnd);
    stream.on("close", onTrackedClose);
  }

  /** The bucket of a stream's connection (see ConnectionResets.follow); undefined without one. */
  follow(stream: http2.ServerHttp2Stream): ConnectionResets | undefined {
    const session = stream.session;
    if (!session) return undefined;
    let c = this.connections.get(session);
    if (!c) {
      c = new ConnectionResets(this, session);
      this.connections.set(session, c);
    }
    return c.follow();
  }

  /**
   * A stream the budget cannot follow (a grpc-js version whose call internals differ): the server
   * serves it all the same, but a burst of cancels on its connection can trip Node's reset limit.
   * Said once.
   */
  untracked(what: string): void {
    if (this.warned) return;
    this.warned = true;
    this.logger.warn(
      `xds: cannot find the HTTP/2 stream of a ${what}: connections are not rotated before Node's HTTP/2 reset limit (a burst of over ${NGHTTP2_RESET_BURST} client cancels on one connection fails its other streams). Use listen()'s default transport, or a grpc-js version this release supports (1.10 to 1.14)`,
    );
  }

  /** Refills the bucket and rotates the connection when resets are about to spend it. */
  check(c: ConnectionResets): void {
    const session = c.session;
    if (c.rotated || session.destroyed || session.closed) return;
    const now = this.nowSeconds();
    if (now > c.at) {
      c.tokens = Math.min(NGHTTP2_RESET_BURST, c.tokens + (now - c.at) * NGHTTP2_RESET_RATE);
      c.at = now;
    }
    if (c.atRisk + UNSEEN_RESETS < c.tokens) return;
    c.rotated = true;
    this.logger.info(
      `xds: ${NGHTTP2_RESET_BURST - Math.max(0, c.tokens)} stream resets on a connection and ${c.atRisk} more likely; sending GOAWAY (NO_ERROR) so its client opens new streams on a new connection before Node's HTTP/2 reset limit fails the rest`,
    );
    try {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    } catch (err) {
      this.logger.debug(`xds: GOAWAY not sent: ${(err as Error).message}`);
    }
  }
}
