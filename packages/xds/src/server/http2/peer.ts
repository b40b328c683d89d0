import type { X509Certificate } from "node:crypto";
import type http2 from "node:http2";
import { TLSSocket } from "node:tls";

/** The client's address of a connection, `host:port` (`[v6]:port`). */
export function peerOf(session: http2.Http2Session | undefined): string {
  const socket = session?.socket;
  if (!socket?.remoteAddress) return "unknown";
  return socket.remoteFamily === "IPv6"
    ? `[${socket.remoteAddress}]:${socket.remotePort}`
    : `${socket.remoteAddress}:${socket.remotePort}`;
}

/**
 * The client certificate of a TLS connection, only when TLS verified it against the server's
 * trusted CAs (`socket.authorized`); undefined for plaintext, no certificate, or one that failed
 * verification (possible with `rejectUnauthorized: false`).
 */
export function verifiedPeerCertificate(
  session: http2.Http2Session | undefined,
): X509Certificate | undefined {
  const socket = session?.socket as unknown;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  return socket.getPeerX509Certificate();
}
