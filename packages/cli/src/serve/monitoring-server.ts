import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

// The control plane's monitoring port, as istiod's 15014: `GET /metrics` for Prometheus, and the
// HTTP handlers extensions mount next to it (an admin API, debug pages). @meshlet/adapters'
// serveMetrics serves /metrics alone; this one also asks each handler in turn.

/** A handler on the monitoring port: returns true when it answered the request. */
export type MonitoringHandler = (request: IncomingMessage, response: ServerResponse) => boolean;

/** A listening monitoring server. */
export interface MonitoringServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `/metrics` from `registry` and the extensions' handlers on `host:port` (0 picks a port). */
export async function serveMonitoring(options: {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  readonly handlers?: readonly MonitoringHandler[];
}): Promise<MonitoringServer> {
  const server = createServer((req, res) => {
    const path = req.url?.split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": options.registry.contentType }).end(text),
        (e: unknown) =>
          res.writeHead(500).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
      );
      return;
    }
    for (const handle of options.handlers ?? []) {
      try {
        if (handle(req, res)) return;
      } catch (error) {
        // One failing handler never takes the port down.
        if (!res.headersSent) res.writeHead(500);
        res.end(`handler failed: ${error instanceof Error ? error.message : String(error)}\n`);
        return;
      }
    }
    res.writeHead(404).end("not found: GET /metrics\n");
  });
  server.listen(options.port, options.host);
  await Promise.race([
    once(server, "listening"),
    once(server, "error").then(([error]) => {
      throw error;
    }),
  ]);
  return {
    host: options.host,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
