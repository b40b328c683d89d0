import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { MeshAdmin } from "@meshlet/api/meshlet/admin/v1/admin_pb";

/** Options of {@link createAdminClient}. */
export interface AdminClientOptions {
  /** The admin listener's base URL, e.g. `http://127.0.0.1:15015`. */
  readonly url: string;
  /** The bearer token, when the listener requires one. */
  readonly token?: string;
  /** PEM CA certificate(s) to verify an `https` listener with (default: Node's trusted roots). */
  readonly ca?: string | Buffer;
  /** `connect` (default; HTTP/1.1 and JSON or binary) or `grpc` (HTTP/2). */
  readonly protocol?: "connect" | "grpc";
  /** Per-call timeout (ms) for unary calls (default 15 s). */
  readonly timeoutMs?: number;
}

/** The typed MeshAdmin client the `meshlet` CLI uses; usable from any Node program. */
export type AdminClient = Client<typeof MeshAdmin>;

/** A MeshAdmin client over Connect (or gRPC), with the bearer token on every call. */
export function createAdminClient(options: AdminClientOptions): AdminClient {
  const url = new URL(options.url);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new TypeError(`admin URL must be http:// or https://, got ${JSON.stringify(options.url)}`);
  const interceptors: Interceptor[] = [];
  const token = options.token;
  if (token !== undefined && token !== "") {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const nodeOptions = options.ca !== undefined ? { ca: options.ca } : undefined;
  const common = {
    baseUrl: url.toString().replace(/\/$/, ""),
    interceptors,
    defaultTimeoutMs: options.timeoutMs ?? 15_000,
    ...(nodeOptions !== undefined ? { nodeOptions } : {}),
  };
  const transport =
    options.protocol === "grpc"
      ? createGrpcTransport(common)
      : createConnectTransport({ ...common, httpVersion: "1.1" });
  return createClient(MeshAdmin, transport);
}
