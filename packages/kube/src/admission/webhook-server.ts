import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { createSecureContext } from "node:tls";
import { type Observable, Subject, type Subscription } from "rxjs";
import { KubeError } from "../kube-error.js";
import { parseAdmissionReview } from "./admission-review.js";
import type { AdmissionHandler } from "./injection-webhook.js";
import type { WebhookEvent } from "./webhook-event.js";

/** A serving certificate: PEM chain (leaf first) and PEM private key. */
export interface ServingCertificate {
  readonly cert: string;
  readonly key: string;
}

/** Options for {@link WebhookServer}. */
export interface WebhookServerOptions {
  /** The serving certificate; its chain's root is what the webhook configurations' `caBundle` holds. */
  readonly certificate: ServingCertificate;
  /** Rotated certificates: each one is served to new connections from then on, without a restart. */
  readonly certificate$?: Observable<ServingCertificate>;
  /** `/inject` (and `/inject/…`, whose path can carry cluster and network). */
  readonly injection?: AdmissionHandler;
  /** `/validate`. */
  readonly validation?: AdmissionHandler;
  /** Largest request body accepted (default 4 MiB: the API server's objects are at most ~1.5 MiB). */
  readonly maxBodyBytes?: number;
  /** A request that has not arrived in full by then is dropped (default 10 s; the API server waits at most 30 s). */
  readonly requestTimeoutMs?: number;
  readonly host?: string;
  readonly port?: number;
}

/**
 * The HTTPS server the API server calls for sidecar injection and config validation, with
 * `node:https`. Each request is answered on its own: a malformed one gets a 4xx with a
 * Kubernetes `Status` body and the server keeps serving everyone else. The certificate is
 * hot-swapped (`setCertificate`, or `certificate$`) so meshletd's CA can rotate it in place.
 */
export class WebhookServer {
  readonly #options: WebhookServerOptions;
  readonly #events = new Subject<WebhookEvent>();
  readonly #server: Server;
  #rotation: Subscription | undefined;
  #certificate: ServingCertificate;

  /** One event per request; see {@link WebhookEvent}. */
  readonly events$: Observable<WebhookEvent> = this.#events.asObservable();

  constructor(options: WebhookServerOptions) {
    this.#options = options;
    checkCertificate(options.certificate);
    this.#certificate = options.certificate;
    this.#server = createServer(
      { cert: options.certificate.cert, key: options.certificate.key, minVersion: "TLSv1.2" },
      (req, res) => this.#handle(req, res),
    );
    this.#server.requestTimeout = options.requestTimeoutMs ?? 10_000;
    this.#server.headersTimeout = Math.min(this.#server.requestTimeout, 10_000);
  }

  /** The certificate new connections are served. */
  get certificate(): ServingCertificate {
    return this.#certificate;
  }

  /**
   * Serves `certificate` to every new TLS connection from now on (connections already open keep
   * theirs). Throws `INVALID_CERTIFICATE` and keeps the current one if it cannot be used.
   */
  setCertificate(certificate: ServingCertificate): void {
    checkCertificate(certificate);
    this.#server.setSecureContext({ cert: certificate.cert, key: certificate.key, minVersion: "TLSv1.2" });
    this.#certificate = certificate;
  }

  /** Starts listening (default 0.0.0.0, port 0 = any); resolves with the port. */
  async listen(): Promise<{ port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#options.port ?? 0, this.#options.host ?? "0.0.0.0", () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    this.#rotation = this.#options.certificate$?.subscribe((certificate) => {
      try {
        this.setCertificate(certificate);
        this.#events.next({ type: "certificate", outcome: "rotated" });
      } catch (error) {
        // A bad rotation keeps the current certificate; say so once per bad certificate.
        this.#events.next({
          type: "certificate",
          outcome: "rejected",
          reason: error instanceof Error ? error.message : String(error),
        });
      }
    });
    return { port: (this.#server.address() as AddressInfo).port };
  }

  /** Stops accepting connections, closes idle ones, and resolves when every open request has ended. */
  async close(): Promise<void> {
    this.#rotation?.unsubscribe();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
    this.#events.complete();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? "/", "https://webhook").pathname;
    const fail = (status: number, reason: string) => {
      this.#events.next({ type: "bad-request", path, status, reason });
      sendStatus(res, status, reason);
    };
    if (path === "/ready" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    const handler =
      path === "/inject" || path.startsWith("/inject/")
        ? this.#options.injection
        : path === "/validate"
          ? this.#options.validation
          : undefined;
    if (handler === undefined) {
      fail(404, `no webhook at ${path}; this server answers ${this.#paths().join(", ")}`);
      return;
    }
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      fail(405, `${req.method} is not allowed: the API server POSTs AdmissionReviews`);
      return;
    }
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (contentType !== "application/json") {
      fail(
        415,
        `Content-Type must be application/json, got ${JSON.stringify(req.headers["content-type"] ?? "")}`,
      );
      req.resume();
      return;
    }
    const limit = this.#options.maxBodyBytes ?? 4 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    // An oversized body is drained, not stored, and refused once it has arrived, so the client
    // reads the 413 instead of a reset connection; requestTimeout bounds how long that can take.
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on("error", () => {
      failed = true;
    });
    req.on("end", () => {
      if (failed) return;
      if (size > limit) {
        fail(413, `the request body exceeds ${limit} bytes`);
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch (error) {
        fail(400, `the body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      const parsed = parseAdmissionReview(body);
      if (parsed.review === undefined) {
        fail(400, `not an AdmissionReview: ${parsed.error}`);
        return;
      }
      try {
        const { review, event } = handler(parsed.review, path);
        this.#events.next(event);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(review));
      } catch (error) {
        // Handlers do not throw by design; if one does, answer this request and keep serving.
        fail(500, `webhook failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    });
  }

  #paths(): string[] {
    return [
      ...(this.#options.injection !== undefined ? ["POST /inject"] : []),
      ...(this.#options.validation !== undefined ? ["POST /validate"] : []),
      "GET /ready",
    ];
  }
}

function checkCertificate(certificate: ServingCertificate): void {
  try {
    createSecureContext({ cert: certificate.cert, key: certificate.key });
  } catch (cause) {
    throw new KubeError(
      "INVALID_CERTIFICATE",
      `the webhook's serving certificate and key cannot be used together: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/** A Kubernetes `Status` object, the body shape the API server and kubectl understand for errors. */
function sendStatus(res: ServerResponse, code: number, message: string): void {
  if (res.headersSent) return;
  const reason =
    {
      400: "BadRequest",
      404: "NotFound",
      405: "MethodNotAllowed",
      413: "RequestEntityTooLarge",
      415: "UnsupportedMediaType",
    }[code] ?? "InternalError";
  res
    .writeHead(code, { "content-type": "application/json", connection: "close" })
    .end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code, reason, message }));
}
