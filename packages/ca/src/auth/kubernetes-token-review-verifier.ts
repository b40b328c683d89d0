import { CaError } from "../ca-error.js";
import { type KubernetesConnection, kubeRequest } from "../kubernetes/kube-request.js";
import { serviceAccountToSpiffeId } from "./service-account.js";
import type { TokenVerifier, VerifiedToken } from "./token-verifier.js";

/** The audience istio-agent requests for the token it presents to the CA (Istio's `istio-ca`). */
export const ISTIO_CA_AUDIENCE = "istio-ca";

/** Options for {@link KubernetesTokenReviewVerifier}. */
export interface KubernetesTokenReviewOptions extends KubernetesConnection {
  /**
   * Audiences the token must carry (default `["istio-ca"]`, what istio-agent's projected token is
   * issued for). A token for any other audience, such as the API server's own, is refused: a token
   * a workload was given for something else must not buy it a certificate.
   */
  readonly audiences?: readonly string[];
  /** Trust domain for the `spiffe://<td>/ns/<ns>/sa/<sa>` mapping (default `cluster.local`). */
  readonly trustDomain?: string;
}

interface TokenReviewStatus {
  authenticated?: boolean;
  error?: string;
  user?: { username?: string; groups?: string[] };
  audiences?: string[];
}

/**
 * Verifies Kubernetes service-account tokens with the API server's TokenReview API
 * (`POST /apis/authentication.k8s.io/v1/tokenreviews`), the way istiod authenticates workloads
 * without a third-party JWT issuer. The CA's service account needs the `system:auth-delegator`
 * ClusterRole (create TokenReviews).
 */
export class KubernetesTokenReviewVerifier implements TokenVerifier {
  private readonly options: KubernetesTokenReviewOptions;
  private readonly audiences: readonly string[];

  constructor(options: KubernetesTokenReviewOptions) {
    this.options = options;
    this.audiences = options.audiences ?? [ISTIO_CA_AUDIENCE];
    if (this.audiences.length === 0) {
      throw new CaError("invalid-argument", "KubernetesTokenReviewVerifier: audiences must not be empty");
    }
  }

  async verify(token: string): Promise<VerifiedToken> {
    const body = {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenReview",
      spec: { token, audiences: this.audiences },
    };
    const { status: httpStatus, json } = await kubeRequest(
      this.options,
      "POST",
      "/apis/authentication.k8s.io/v1/tokenreviews",
      body,
      "unauthenticated",
    );
    if (httpStatus >= 300 || !json) {
      throw new CaError("unauthenticated", `TokenReview: API server answered ${httpStatus}`);
    }
    const status = (json.status ?? {}) as TokenReviewStatus;
    // Strict: `authenticated` is the boolean true (not a truthy string), and a review that carries
    // an error is refused even if it says authenticated (istiod checks `error` first:
    // istio/istio security/pkg/k8s/tokenreview/k8sauthn.go).
    if (status.authenticated !== true || (typeof status.error === "string" && status.error !== ""))
      throw new CaError(
        "unauthenticated",
        `TokenReview: not authenticated${status.error ? ` (${status.error})` : ""}`,
      );
    // The API server answers with the requested audiences the token is valid for; an API server
    // that ignores spec.audiences answers with the token's own, which must still match.
    if (!status.audiences?.some((a) => this.audiences.includes(a))) {
      throw new CaError(
        "unauthenticated",
        `TokenReview: the token is not for audience ${this.audiences.join(" or ")}`,
      );
    }
    const username = status.user?.username ?? "";
    // Only the API server's service-account authenticator puts a user in system:serviceaccounts;
    // a webhook or OIDC user merely named "system:serviceaccount:…" is not one (istiod checks the
    // same group: istio/istio security/pkg/k8s/tokenreview/k8sauthn.go).
    if (!status.user?.groups?.includes("system:serviceaccounts")) {
      throw new CaError(
        "unauthenticated",
        `TokenReview: ${username || "the user"} is not a service account (not in group system:serviceaccounts)`,
      );
    }
    const id = serviceAccountToSpiffeId(username, this.options.trustDomain ?? "cluster.local");
    if (!id) throw new CaError("unauthenticated", `TokenReview: ${username} is not a service account`);
    return { identities: [id], attributes: { username } };
  }
}
