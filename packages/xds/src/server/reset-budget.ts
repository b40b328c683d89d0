import http2 from "node:http2";
import type { Logger } from "./logger.js";

/** nghttp2's RST_STREAM budget per connection: a burst of 1,000, refilled at 33 per second. */
export const NGHTTP2_RESET_BURST = 1000;
export const NGHTTP2_RESET_RATE = 33;
/**
 * Resets nghttp2 may count that no stream of ours shows: a client's RST_STREAM for a stream the
 * server had already ended (grpc-js sends none after it has the status; other clients may).
 */
const UNSEEN_RESETS = 100;

interface Connection {
  /** Tokens left in our copy of nghttp2's bucket. */
  tokens: number;
  /** Whole seconds of the last refill, as nghttp2 counts them. */
  at: number;
  /** Streams open on the connection: each could still be reset. */
  open: number;
  rotated: boolean;
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
 * What a server can do: never let a connection hold more streams that could be reset than its
 * budget has left. This copies nghttp2's bucket per connection, counts the streams open on it,
 * and once open streams plus a margin reach the tokens left, sends a graceful GOAWAY (NO_ERROR).
 * The connection's open streams carry on; the client opens new streams on a new connection; and
 * nghttp2 stops counting resets on a connection that has submitted a GOAWAY (the limiter returns
 * early on NGHTTP2_GOAWAY_SUBMITTED), so even all of its streams reset at once are harmless. The
 * cost: a connection carries at most about 900 streams (fewer after recent resets) before its
 * client is asked to open another. Rapid Reset stays bounded: a connection that sent its GOAWAY
 * accepts no new streams.
 *
 * Why counting streams and not resets: a reset must be known while nghttp2 is still reading the
 * frames of the burst, and no event says so in time — `aborted` is emitted synchronously, but not
 * when the stream's writable side has ended, which is the case for grpc-js cancels (END_STREAM
 * then RST_STREAM); `close` comes a tick later, after the whole read. A stream counts from its
 * `stream` event (emitted while nghttp2 reads its HEADERS) to its `close`.
 */
export class ResetBudget {
  private readonly connections = new WeakMap<http2.Http2Session, Connection>();

  constructor(
    private readonly logger: Logger,
    /** Seconds, monotonic (nghttp2 refills in whole seconds of a monotonic clock). */
    private readonly nowSeconds: () => number = () => Math.floor(performance.now() / 1000),
  ) {}

  /** Counts a server stream on its connection until it closes (a reset costs the budget one). */
  track(stream: http2.ServerHttp2Stream): void {
    const session = stream.session;
    if (!session) return;
    let c = this.connections.get(session);
    if (!c) {
      c = { tokens: NGHTTP2_RESET_BURST, at: this.nowSeconds(), open: 0, rotated: false };
      this.connections.set(session, c);
    }
    if (c.rotated) return;
    const conn = c;
    conn.open++;
    this.check(session, conn);
    stream.once("close", () => {
      conn.open--;
      // A stream that ended with a reset (the client's, or one we sent: counted too, to be safe).
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) conn.tokens--;
      this.check(session, conn);
    });
  }

  private check(session: http2.Http2Session, c: Connection): void {
    if (c.rotated || session.destroyed || session.closed) return;
    const now = this.nowSeconds();
    if (now > c.at) {
      c.tokens = Math.min(NGHTTP2_RESET_BURST, c.tokens + (now - c.at) * NGHTTP2_RESET_RATE);
      c.at = now;
    }
    if (c.open + UNSEEN_RESETS < c.tokens) return;
    c.rotated = true;
    this.logger.info(
      `xds: a connection holds ${c.open} streams with ${Math.max(0, c.tokens)} stream resets left in Node's HTTP/2 reset budget; sending GOAWAY (NO_ERROR) so its client opens new streams on a new connection`,
    );
    try {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    } catch (err) {
      this.logger.debug(`xds: GOAWAY not sent: ${(err as Error).message}`);
    }
  }
}
