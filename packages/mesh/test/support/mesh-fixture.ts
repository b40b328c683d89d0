import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { type GrpcBootstrapOptions, grpcBootstrap } from "@meshlet/mesh";
import { type LineProcess, startLineProcess } from "./line-process.js";

// Real proxyless clients and servers for the end-to-end suites, and in-process plain backends.

const clientsDir = fileURLToPath(new URL("../clients/", import.meta.url));

/** Debian's interpreter, which sees python3-grpcio (gRPC C-core), unlike a pyenv python3 on PATH. */
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** The outcome of one RPC. */
export type RpcResult =
  | { ok: true; backend: string; ms: number }
  | { ok: false; code: number; details: string; ms: number };

/** Options of one batch of RPCs. */
export interface CallOptions {
  readonly count?: number;
  readonly method?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** `xds`: XdsChannelCredentials with an insecure fallback (mTLS when the cluster asks for it). */
  readonly credentials?: "insecure" | "xds";
}

/** A proxyless client process. */
export interface MeshClient {
  readonly kind: "grpc-js" | "c-core";
  readonly nodeId: string;
  call(target: string, options?: CallOptions): Promise<RpcResult[]>;
  close(): Promise<void>;
  stderr(): string;
}

/** Which client library. */
export type ClientKind = MeshClient["kind"];

/**
 * Starts a proxyless client of `kind` with an Istio-shaped bootstrap, built from options or read by
 * the client from a file (`GRPC_XDS_BOOTSTRAP`, e.g. one `meshlet serve` wrote).
 */
export async function startClient(
  kind: ClientKind,
  bootstrap: GrpcBootstrapOptions | { readonly file: string; readonly nodeId: string },
  env: Record<string, string> = {},
): Promise<MeshClient> {
  const config = "file" in bootstrap ? undefined : grpcBootstrap(bootstrap);
  const processEnv =
    "file" in bootstrap
      ? { GRPC_XDS_BOOTSTRAP: bootstrap.file, ...env }
      : { GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(config), ...env };
  const proc: LineProcess =
    kind === "grpc-js"
      ? await startLineProcess({
          name: "grpc-js",
          command: process.execPath,
          args: [`${clientsDir}grpc-js-client.mjs`],
          env: processEnv,
        })
      : await startLineProcess({
          name: "c-core",
          command: DEBIAN_PYTHON,
          // The one C-core client script, shared with @meshlet/xds's real-client tests.
          args: ["-u", fileURLToPath(new URL("../../../xds/test/clients/c-core-client.py", import.meta.url))],
          env: { ...processEnv, PYTHONUNBUFFERED: "1" },
        });
  return {
    kind,
    nodeId: "file" in bootstrap ? bootstrap.nodeId : (config?.node.id ?? ""),
    async call(target, options = {}) {
      const count = options.count ?? 1;
      const timeoutMs = options.timeoutMs ?? 5000;
      const reply = await proc.send(
        { op: "call", target, ...options, count, timeoutMs },
        count * (timeoutMs + 2000) + 10_000,
      );
      return reply.results as RpcResult[];
    },
    async close() {
      await proc.send({ op: "close" }, 10_000).catch(() => undefined);
      await proc.close();
    },
    stderr: () => proc.stderr(),
  };
}

/** Starts a grpc-js-xds XdsServer process serving Echo on `address` once its listener arrives. */
export async function startXdsServer(
  id: string,
  address: string,
  bootstrap: GrpcBootstrapOptions,
  env: Record<string, string> = {},
): Promise<LineProcess> {
  return startLineProcess({
    name: `xds-server ${id}`,
    command: process.execPath,
    args: [`${clientsDir}grpc-js-server.mjs`],
    env: {
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(grpcBootstrap(bootstrap)),
      SERVER_ID: id,
      SERVER_ADDRESS: address,
      ...env,
    },
  });
}

/** Counts results per backend; failures count under `code <n>`. */
export function tally(results: readonly RpcResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of results) {
    const key = r.ok ? r.backend : `code ${r.code}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** A plain (non-xDS) gRPC backend (127.0.0.1:0 unless told), answering with its id. */
export interface Backend {
  readonly id: string;
  readonly port: number;
  close(): Promise<void>;
}

const identity = (b: Buffer) => b;
const unary = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});

/**
 * Starts a backend serving `/meshlet.test.Echo/Echo` and `/meshlet.test.Echo/Other` (both answer its
 * id) and `/meshlet.test.Echo/Slow` (answers after 4 s).
 */
export async function startBackend(id: string, address = "127.0.0.1:0"): Promise<Backend> {
  const server = new grpc.Server();
  const answer = (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(id));
  server.addService(
    {
      Echo: unary("/meshlet.test.Echo/Echo"),
      Other: unary("/meshlet.test.Echo/Other"),
      Slow: unary("/meshlet.test.Echo/Slow"),
    },
    {
      Echo: answer,
      Other: answer,
      Slow: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
        setTimeout(() => cb(null, Buffer.from(id)), 4000).unref();
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return {
    id,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** Retries `attempt` until it stops throwing (default 30 s, every 250 ms); rethrows the last error. */
export async function eventually<T>(attempt: () => Promise<T> | T, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() + 250 >= deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** A free TCP port on 127.0.0.1 (for servers whose port must be known before they start). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
