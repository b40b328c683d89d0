import type http2 from "node:http2";
import type { Logger } from "../logger.js";
import { peerOf } from "./peer.js";

/**
 * Keepalive PINGs on one connection: proxies hold streams for hours, and a peer that went away
 * silently is found when a PING is not answered within `timeoutMs`. Returns the stop function.
 */
export function keepAlive(
  session: http2.ServerHttp2Session,
  intervalMs: number,
  timeoutMs: number,
  logger: Logger,
): () => void {
  const interval = setInterval(() => {
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
  }, intervalMs);
  interval.unref();
  return () => clearInterval(interval);
}
