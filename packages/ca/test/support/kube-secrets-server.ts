import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local HTTP server speaking the part of the Kubernetes REST API a Secret-backed root store uses,
 * because no API server can run here. Shapes follow the Kubernetes API reference (core/v1 Secret)
 * and "API Concepts": `GET /api/v1/namespaces/<ns>/secrets/<name>` (404 Status NotFound),
 * `POST /api/v1/namespaces/<ns>/secrets` (201, or 409 Status AlreadyExists), `PUT
 * /api/v1/namespaces/<ns>/secrets/<name>` (200, or 409 Status Conflict when
 * metadata.resourceVersion is stale). Requests need `Authorization: Bearer <token>`.
 */
export class KubeSecretsServer {
  readonly secrets = new Map<string, Record<string, unknown>>();
  /** Every request; for writes, the `metadata.resourceVersion` the body carried. */
  readonly requests: { method: string; path: string; resourceVersion?: string }[] = [];
  private server: Server | undefined;
  private rv = 1000;

  constructor(private readonly token: string) {}

  get url(): string {
    if (!this.server) throw new Error("KubeSecretsServer: start() first");
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => this.status(res, 500, "InternalError", String(error)));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    return this;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** Stores a Secret as someone else (istiod, an operator) would have. */
  put(namespace: string, secret: Record<string, unknown>): void {
    const metadata = secret.metadata as Record<string, unknown>;
    this.secrets.set(`${namespace}/${String(metadata.name)}`, {
      ...secret,
      metadata: { ...metadata, namespace, resourceVersion: String(++this.rv) },
    });
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message,
        reason,
        code,
      }),
    );
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    let text = "";
    for await (const chunk of req) text += chunk;
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
    const sentVersion = (body?.metadata as Record<string, unknown> | undefined)?.resourceVersion;
    this.requests.push({
      method: req.method ?? "",
      path,
      ...(typeof sentVersion === "string" ? { resourceVersion: sentVersion } : {}),
    });
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return this.status(res, 401, "Unauthorized", "Unauthorized");
    }
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/.exec(path);
    if (!match) return this.status(res, 404, "NotFound", "the server could not find the requested resource");
    const namespace = decodeURIComponent(match[1] as string);
    const name = match[2] ? decodeURIComponent(match[2]) : undefined;
    const reply = (code: number, object: unknown) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(JSON.stringify(object));
    };
    if (req.method === "GET" && name) {
      const secret = this.secrets.get(`${namespace}/${name}`);
      return secret ? reply(200, secret) : this.status(res, 404, "NotFound", `secrets "${name}" not found`);
    }
    if (req.method === "POST" && !name && body) {
      const metadata = body.metadata as Record<string, unknown>;
      const key = `${namespace}/${String(metadata.name)}`;
      if (this.secrets.has(key)) {
        return this.status(res, 409, "AlreadyExists", `secrets "${String(metadata.name)}" already exists`);
      }
      this.put(namespace, body);
      return reply(201, this.secrets.get(key));
    }
    if (req.method === "PUT" && name && body) {
      const key = `${namespace}/${name}`;
      const current = this.secrets.get(key);
      if (!current) return this.status(res, 404, "NotFound", `secrets "${name}" not found`);
      const sent = (body.metadata as Record<string, unknown>).resourceVersion;
      const stored = (current.metadata as Record<string, unknown>).resourceVersion;
      if (sent !== undefined && sent !== stored) {
        return this.status(
          res,
          409,
          "Conflict",
          `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        );
      }
      this.put(namespace, body);
      return reply(200, this.secrets.get(key));
    }
    return this.status(res, 405, "MethodNotAllowed", `${req.method} is not supported here`);
  }
}
