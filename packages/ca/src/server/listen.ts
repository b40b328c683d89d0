import { type Server, ServerCredentials } from "@grpc/grpc-js";

/** A running gRPC server started by a meshlet `listen()`. */
export interface ListeningServer {
  /** The bound port (useful with port 0); 0 for Unix sockets. */
  readonly port: number;
  /** Graceful shutdown: stops accepting, lets in-flight calls finish, then forces after `graceMs`. */
  close(graceMs?: number): Promise<void>;
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
