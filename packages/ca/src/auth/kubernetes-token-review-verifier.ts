import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { CaError } from "../ca-error.js";
import type { SpiffeId } from "../spiffe-id.js";
import { serviceAccountToSpiffeId } from "./service-account.js";
import type { TokenVerifier, VerifiedToken } from "./token-verifier.js";

/** Options for {@link KubernetesTokenReviewVerifier}. */
export interface KubernetesTokenReviewOptions {
  /** API server base URL, e.g. `https://kubernetes.default.svc`. */
  readonly apiServer: string;
  /** The CA's own credential for the TokenReview call (its service-account token). */
  readonly bearerToken: string;
  /** PEM CA bundle for the API server's certificate. */
  readonly caCert?: string;
  /** Audiences the token must carry (Istio uses `istio-ca`). */
  readonly audiences?: readonly string[];
  /** Trust domain for the `spiffe://<td>/ns/<ns>/sa/<sa>` mapping (default `cluster.local`). */
  readonly trustDomain?: string;
  /** Request timeout in milliseconds (default 10s). */
  readonly timeoutMs?: number;
}

/**
 * Verifies Kubernetes service-account tokens with the API server's TokenReview API
 * (`POST /apis/authentication.k8s.io/v1/tokenreviews`), the way istiod authenticates workloads
 * without a third-party JWT issuer.
 */
export class KubernetesTokenReviewVerifier implements TokenVerifier {
  private readonly options: KubernetesTokenReviewOptions;

  constructor(options: KubernetesTokenReviewOptions) {
    this.options = options;
  }

  async verify(token: string): Promise<VerifiedToken> {
    const body = JSON.stringify({
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, ...(this.options.audiences ? { audiences: this.options.audiences } : {}) },
    });
    const review = (await this.post("/apis/authentication.k8s.io/v1/tokenreviews", body)) as {
      status?: {
        authenticated?: boolean;
        error?: string;
        user?: { username?: string };
        audiences?: string[];
      };
    };
    const status = review.status ?? {};
    if (!status.authenticated)
      throw new CaError(
        "unauthenticated",
        `TokenReview: not authenticated${status.error ? ` (${status.error})` : ""}`,
      );
    const username = status.user?.username ?? "";
    if (this.options.audiences && !status.audiences?.some((a) => this.options.audiences?.includes(a))) {
      throw new CaError("unauthenticated", "TokenReview: the token is not for the required audience");
    }
    const id = serviceAccountToSpiffeId(username, this.options.trustDomain ?? "cluster.local");
    if (!id) throw new CaError("unauthenticated", `TokenReview: ${username} is not a service account`);
    return { identities: [id] as SpiffeId[], attributes: { username } };
  }

  private post(path: string, body: string): Promise<unknown> {
    const url = new URL(path, this.options.apiServer);
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json",
            authorization: `Bearer ${this.options.bearerToken}`,
            "content-length": Buffer.byteLength(body),
          },
          ...(this.options.caCert ? { ca: this.options.caCert } : {}),
          timeout: this.options.timeoutMs ?? 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            if ((res.statusCode ?? 0) >= 300) {
              reject(
                new CaError(
                  "unauthenticated",
                  `TokenReview: API server answered ${res.statusCode}: ${text.slice(0, 200)}`,
                ),
              );
              return;
            }
            try {
              resolve(JSON.parse(text));
            } catch {
              reject(new CaError("unauthenticated", "TokenReview: the API server's answer is not JSON"));
            }
          });
        },
      );
      req.on("timeout", () =>
        req.destroy(new CaError("unauthenticated", "TokenReview: the API server did not answer in time")),
      );
      req.on("error", reject);
      req.end(body);
    });
  }
}
