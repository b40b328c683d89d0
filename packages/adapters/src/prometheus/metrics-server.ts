import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A running `/metrics` endpoint. */
export interface MetricsServer {
  port: number;
  /** Stops accepting and closes open connections. */
  close(): Promise<void>;
}

/**
 * Serves registries on `GET /metrics` in Prometheus' text format (default `127.0.0.1:0`). Several
 * registries are concatenated, so policy metrics and Istio metrics can share one endpoint.
 */
export async function serveMetrics(
  registries: Registry | Registry[],
  options: { host?: string; port?: number } = {},
): Promise<MetricsServer> {
  const regs = Array.isArray(registries) ? registries : [registries];
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404).end("not found: GET /metrics\n");
      return;
    }
    Promise.all(regs.map((r) => r.metrics())).then(
      (parts) =>
        res.writeHead(200, { "content-type": regs[0]?.contentType ?? "text/plain" }).end(parts.join("\n")),
      (e: unknown) =>
        res.writeHead(500).end(`metrics failed: ${e instanceof Error ? e.message : String(e)}\n`),
    );
  });
  server.listen(options.port ?? 0, options.host ?? "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
