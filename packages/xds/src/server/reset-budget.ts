import http2 from "node:http2";
import type { Logger } from "./logger.js";

/** nghttp2's RST_STREAM budget per connection: a burst of 1,000, refilled at 33 per second. */
export const NGHTTP2_RESET_BURST = 1000;
export const NGHTTP2_RESET_RATE = 33;

interface Bucket {
  tokens: number;
  /** Whole seconds of the last refill, as nghttp2 counts them. */
  at: number;
  rotated: boolean;
}

/**
 * Keeps a burst of client cancels from costing the other streams of their connection.
 *
 * Node's HTTP/2 server runs nghttp2's Rapid Reset (CVE-2023-44487) mitigation: every connection
 * has a budget of RST_STREAM frames received, 1,000 at once, refilled at 33 a second
 * (nghttp2 `lib/nghttp2_session.c`, `session_update_stream_reset_ratelim`). The frame beyond it
 * makes the server queue a GOAWAY with INTERNAL_ERROR (2). A Node client (`lib/internal/http2/
 * core.js`, `onGoawayData`) destroys its whole session on a GOAWAY with an error code, although
 * its last-stream-id lets the open streams finish, so grpc-js fails every call still open on it
 * with "13 INTERNAL: Received RST_STREAM with code 2". One client process that cancels 1,001 xDS
 * streams of one target within a second (grpc-js puts them all on one connection), or a proxy
 * multiplexing many clients, thus costs every healthy stream on that connection. Node 20 cannot
 * raise the budget (`streamResetBurst`/`streamResetRate` arrived later, nodejs/node#54875), and
 * neither transport of ours can stop a client's RST_STREAM frames.
 *
 * What it can do: this counts each connection's client resets with the same bucket and, once
 * half of it is spent, sends a graceful GOAWAY (NO_ERROR) on that connection. Its open streams go
 * on; the client opens new streams on a new connection; and nghttp2 stops counting resets on a
 * connection that has submitted a GOAWAY (the limiter returns early on NGHTTP2_GOAWAY_SUBMITTED),
 * so the rest of the burst is harmless. The other half is the margin for resets nghttp2 counts and
 * we never see (of streams the server had already ended). Rapid Reset stays bounded: a connection
 * that sent its GOAWAY accepts no new streams, so each connection allows at most half the budget
 * of quick resets, and the resets of streams it already had.
 *
 * It must hear of each reset while nghttp2 is still reading the frames that carry them: a
 * stream's `aborted` event is emitted synchronously from nghttp2's stream-close callback, and the
 * GOAWAY submitted there takes effect before the next frame of the same read is processed.
 */
export class ResetBudget {
  private readonly buckets = new WeakMap<http2.Http2Session, Bucket>();

  constructor(
    private readonly logger: Logger,
    /** Seconds, monotonic (nghttp2 uses whole seconds of a monotonic clock). */
    private readonly nowSeconds: () => number = () => Math.floor(performance.now() / 1000),
  ) {}

  /** Counts a client reset of `stream` against its connection (listens for `aborted`). */
  watch(stream: http2.ServerHttp2Stream): void {
    stream.once("aborted", () => this.reset(stream.session));
  }

  /** One reset by the client on `session`; rotates the connection when half the budget is spent. */
  reset(session: http2.Http2Session | undefined): void {
    if (!session || session.destroyed || session.closed) return;
    const now = this.nowSeconds();
    let bucket = this.buckets.get(session);
    if (!bucket) {
      bucket = { tokens: NGHTTP2_RESET_BURST, at: now, rotated: false };
      this.buckets.set(session, bucket);
    }
    if (bucket.rotated) return;
    if (now > bucket.at) {
      bucket.tokens = Math.min(NGHTTP2_RESET_BURST, bucket.tokens + (now - bucket.at) * NGHTTP2_RESET_RATE);
      bucket.at = now;
    }
    bucket.tokens--;
    if (bucket.tokens > NGHTTP2_RESET_BURST / 2) return;
    bucket.rotated = true;
    this.logger.info(
      `xds: ${NGHTTP2_RESET_BURST / 2} stream resets on one connection in a burst; sending GOAWAY (NO_ERROR) so its client moves new streams to a new connection before Node's HTTP/2 reset limit fails the rest`,
    );
    try {
      session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    } catch (err) {
      this.logger.debug(`xds: GOAWAY not sent: ${(err as Error).message}`);
    }
  }
}
