import type { TokenVerifier } from "@meshlet/ca";
import { type AuthorizeHook, type AuthorizeRequest, GrpcStatus, type Refusal } from "@meshlet/xds";

// How meshletd decides who an xDS client is, as istiod does (pilot/pkg/xds/authentication.go with
// the client-certificate and Kubernetes JWT authenticators of security/pkg/server/ca/authenticate):
// a verified client certificate's SPIFFE ID, else the service-account token the agent sends in
// `authorization: Bearer` (reviewed by the API server, audience istio-ca). The node the client
// claims (id `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`, metadata NAMESPACE and
// SERVICE_ACCOUNT) is only the client's word: it must then match that identity. Unlike istiod,
// which skips authentication on its plaintext port, a client without a credential is refused on
// every port this hook guards.

/** Options of {@link authenticateNodes}. */
export interface NodeAuthenticationOptions {
  /**
   * Verifies `authorization: Bearer <token>` (meshletd: `KubernetesTokenReviewVerifier`,
   * audience `istio-ca`). Without it only client certificates authenticate.
   */
  readonly tokenVerifier?: TokenVerifier;
  /**
   * Binds the claimed node to the proven identity (the `MeshController`'s `authorize`): refuses a
   * node whose namespace or service account the identity does not grant.
   */
  readonly authorize: (request: { node: AuthorizeRequest["node"]; spiffeId?: string }) => Refusal | undefined;
}

/**
 * The xDS `authorize` hook of an authenticated port: proves the caller's SPIFFE ID (verified client
 * certificate, else bearer token) and binds the stream's node to it. Fails closed: no credential,
 * a malformed header, a token the verifier refuses or cannot check (API server down) refuse the
 * stream with UNAUTHENTICATED and a message saying which; an identity that does not grant the
 * node's claims is refused by `authorize` (PERMISSION_DENIED, naming both).
 */
export function authenticateNodes(options: NodeAuthenticationOptions): AuthorizeHook {
  return async (request) => {
    const identity = await proveIdentity(request, options.tokenVerifier);
    if ("code" in identity) return identity;
    return options.authorize({ node: request.node, spiffeId: identity.spiffeId });
  };
}

async function proveIdentity(
  request: AuthorizeRequest,
  verifier: TokenVerifier | undefined,
): Promise<{ spiffeId: string } | Refusal> {
  // Trusted: the xDS server sets spiffeId only from a client certificate TLS verified against the
  // CA's roots (never from an unverified one), and checked it is one valid SPIFFE ID.
  if (request.spiffeId !== undefined) return { spiffeId: request.spiffeId };
  const header = request.metadata.authorization;
  if (header === undefined || verifier === undefined) {
    return {
      code: GrpcStatus.UNAUTHENTICATED,
      message: `node ${JSON.stringify(request.node.id)}: no credential; send the service-account token (audience istio-ca) as "authorization: Bearer <token>"${verifier === undefined ? " (not accepted on this server)" : ""} or present a client certificate from this mesh's CA`,
    };
  }
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header);
  if (match === null) {
    return {
      code: GrpcStatus.UNAUTHENTICATED,
      message: `node ${JSON.stringify(request.node.id)}: the authorization metadata must be "Bearer <token>"`,
    };
  }
  try {
    // Trusted: the verifier asks the API server (TokenReview), which vouches for the token's
    // service account and audience; the token itself is never parsed for its claims here.
    const verified = await verifier.verify(match[1] as string);
    const spiffeId = verified.identities[0]?.toString();
    if (spiffeId === undefined) throw new Error("the token maps to no identity");
    return { spiffeId };
  } catch (error) {
    return {
      code: GrpcStatus.UNAUTHENTICATED,
      message: `node ${JSON.stringify(request.node.id)}: bearer token rejected: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
