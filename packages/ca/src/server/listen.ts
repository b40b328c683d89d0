import { chmod } from "node:fs/promises";
import { type Server, ServerCredentials } from "@grpc/grpc-js";
import { CaError } from "../ca-error.js";

/** A running gRPC server started by a meshlet `listen()`. */
export interface ListeningServer {
  /** The bound port (useful with port 0); 0 for Unix sockets. */
  readonly port: number;
  /** Graceful shutdown: stops accepting, lets in-flight calls finish, then forces after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/** How a server that hands out keys or certificates may listen. */
export interface SecureListenOptions {
  /** `host:port` or `unix:/path`. */
  readonly address: string;
  /** TLS server credentials; required on TCP unless `insecure` is set. */
  readonly credentials?: ServerCredentials;
  /**
   * Serve plaintext on TCP. Anyone who can reach the port can then read what the server hands out
   * (private keys for SDS and the Workload API), so this must be asked for explicitly.
   */
  readonly insecure?: boolean;
  /** Unix socket file mode (default 0600: only the server's user may connect). */
  readonly mode?: number;
}

/** The Unix socket path of a grpc-js address, or undefined for TCP. */
export function unixSocketPath(address: string): string | undefined {
  if (address.startsWith("unix://")) return address.slice("unix://".length);
  if (address.startsWith("unix:")) return address.slice("unix:".length);
  return undefined;
}

/**
 * Refuses plaintext TCP unless `insecure: true` was said, before anything binds. `what` names the
 * server in the error.
 */
export function checkTransport(options: SecureListenOptions, what: string): void {
  if (unixSocketPath(options.address) !== undefined) return;
  if (!options.credentials && !options.insecure) {
    throw new CaError(
      "invalid-argument",
      `${what} on ${options.address}: TCP without TLS would expose what it serves to anyone who can connect; pass TLS credentials, listen on unix:/path, or set insecure: true`,
    );
  }
}

/**
 * Restricts a freshly bound Unix socket to `mode` (default 0600). The socket exists with the
 * process umask between bind and this chmod; put it in a directory only the server's user can
 * enter (0700) to close that window.
 */
export async function restrictSocket(address: string, mode = 0o600): Promise<void> {
  const path = unixSocketPath(address);
  if (path === undefined) return;
  try {
    await chmod(path, mode);
  } catch (error) {
    throw CaError.from(error, "invalid-argument", `${path}: cannot set the socket's mode`);
  }
}

/** Binds `server` to `address` (`host:port` or `unix:/path`) and starts it. */
export function bindServer(
  server: Server,
  address: string,
  credentials?: ServerCredentials,
): Promise<ListeningServer> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials ?? ServerCredentials.createInsecure(), (error, port) => {
      if (error) {
        reject(error);
        return;
      }
      resolve({
        port,
        close: (graceMs = 5_000) =>
          new Promise<void>((done) => {
            const force = setTimeout(() => {
              server.forceShutdown();
              done();
            }, graceMs);
            force.unref();
            server.tryShutdown(() => {
              clearTimeout(force);
              done();
            });
          }),
      });
    });
  });
}

/** {@link checkTransport}, bind, then {@link restrictSocket}: how every meshlet CA server listens. */
export async function listenSecurely(
  server: Server,
  options: SecureListenOptions,
  what: string,
): Promise<ListeningServer> {
  checkTransport(options, what);
  const listening = await bindServer(server, options.address, options.credentials);
  try {
    await restrictSocket(options.address, options.mode);
  } catch (error) {
    await listening.close(0);
    throw error;
  }
  return listening;
}
