import { readFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { CaError, type CaErrorCode } from "../ca-error.js";

/** How to reach a Kubernetes API server. */
export interface KubernetesConnection {
  /** API server base URL, e.g. `https://kubernetes.default.svc`. */
  readonly apiServer: string;
  /** Bearer token (the pod's service-account token); see `tokenFile` for one that rotates. */
  readonly bearerToken: string;
  /**
   * A file holding the bearer token, read again for every request (it wins over `bearerToken`):
   * the kubelet rotates projected service-account tokens in place, as client-go's
   * `BearerTokenFile` expects. `inClusterConnection()` sets it.
   */
  readonly tokenFile?: string;
  /** PEM CA bundle for the API server's certificate. */
  readonly caCert?: string;
  /** Request timeout in milliseconds (default 10s). */
  readonly timeoutMs?: number;
}

/** Where a pod finds its service-account credentials (Kubernetes "Accessing the API from a Pod"). */
const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The in-cluster connection: `https://kubernetes.default.svc`, the mounted service-account token
 * and CA, and the pod's namespace.
 */
export async function inClusterConnection(
  dir = SERVICE_ACCOUNT_DIR,
): Promise<KubernetesConnection & { namespace: string }> {
  try {
    const [bearerToken, caCert, namespace] = await Promise.all([
      readFile(`${dir}/token`, "utf8"),
      readFile(`${dir}/ca.crt`, "utf8"),
      readFile(`${dir}/namespace`, "utf8"),
    ]);
    return {
      apiServer: "https://kubernetes.default.svc",
      bearerToken: bearerToken.trim(),
      tokenFile: `${dir}/token`,
      caCert,
      namespace: namespace.trim(),
    };
  } catch (error) {
    throw CaError.from(error, "invalid-argument", `not running in a Kubernetes pod (${dir} is unreadable)`);
  }
}

/** The token to send now: `tokenFile`'s content when set (it rotates), else `bearerToken`. */
async function currentToken(connection: KubernetesConnection, errorCode: CaErrorCode): Promise<string> {
  if (connection.tokenFile === undefined) return connection.bearerToken;
  try {
    return (await readFile(connection.tokenFile, "utf8")).trim();
  } catch (error) {
    throw CaError.from(error, errorCode, `${connection.tokenFile}: cannot read the service-account token`);
  }
}

/** One JSON request to the API server; resolves with the status and parsed body. */
export async function kubeRequest(
  connection: KubernetesConnection,
  method: "GET" | "POST" | "PUT",
  path: string,
  body: unknown,
  errorCode: CaErrorCode,
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const token = await currentToken(connection, errorCode);
  const url = new URL(path, connection.apiServer);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        headers: {
          accept: "application/json",
          authorization: `Bearer ${token}`,
          ...(payload !== undefined
            ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
            : {}),
        },
        ...(connection.caCert ? { ca: connection.caCert } : {}),
        timeout: connection.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: Record<string, unknown> | undefined;
          try {
            json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("timeout", () =>
      req.destroy(new CaError(errorCode, `${method} ${url.pathname}: the API server did not answer in time`)),
    );
    req.on("error", (error) => reject(CaError.from(error, errorCode, `${method} ${url.pathname} failed`)));
    req.end(payload);
  });
}
