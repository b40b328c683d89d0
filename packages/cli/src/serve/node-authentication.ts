import { SpiffeId, type TokenVerifier } from "@meshlet/ca";
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
   * The mesh's trust domain: an identity outside it (a certificate from another mesh sharing a
   * plugged root, a verifier configured for another domain) is refused. Default `cluster.local`.
   */
  readonly trustDomain?: string;
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
  const trustDomain = options.trustDomain ?? "cluster.local";
  return async (request) => {
    const identity = await proveIdentity(request, options.tokenVerifier);
    if ("code" in identity) return identity;
    const refused = checkIdNamespaces(request.node.id, identity.spiffeId, trustDomain);
    if (refused !== undefined) return refused;
    return options.authorize({ node: request.node, spiffeId: identity.spiffeId });
  };
}

/**
 * The proven identity must be of this trust domain, and the namespaces the node id names
 * (`<pod>.<ns>` and `<ns>.svc.<domain>`, as istio-agent and Istio's proxyless bootstrap write them)
 * must be its namespace. Stricter than istiod, which reads only NAMESPACE (else the DNS domain):
 * an id naming another namespace than the workload's is a forged or broken id either way.
 */
function checkIdNamespaces(nodeId: string, spiffeId: string, trustDomain: string): Refusal | undefined {
  const id = SpiffeId.tryParse(spiffeId);
  const shown = JSON.stringify(nodeId);
  if (id === undefined || !id.memberOf(trustDomain))
    return {
      code: GrpcStatus.PERMISSION_DENIED,
      message: `node ${shown}: identity ${spiffeId} is not of this mesh's trust domain ${trustDomain}`,
    };
  const namespace = id.istio?.namespace;
  // Not Istio's /ns/<ns>/sa/<sa> form: the binding refuses it, naming what it expected.
  if (namespace === undefined) return undefined;
  const parts = nodeId.split("~");
  if (parts.length !== 4) return undefined; // malformed: the binding says why
  const workload = parts[2] as string;
  const named = [
    workload.includes(".") ? workload.slice(workload.lastIndexOf(".") + 1) : undefined,
    /^([^.]+)\.svc\./.exec(parts[3] as string)?.[1],
  ].filter((n): n is string => n !== undefined);
  const other = named.find((n) => n !== namespace);
  if (other === undefined) return undefined;
  return {
    code: GrpcStatus.PERMISSION_DENIED,
    message: `node ${shown} claims ns/${other} in its id but the caller is ${spiffeId}; a workload of ns/${namespace} must send sidecar~<ip>~<pod>.${namespace}~${namespace}.svc.<cluster domain>`,
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
  // RFC 7235 2.1: the scheme is case-insensitive; RFC 6750 2.1: one token of b64token characters.
  const match = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(header);
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
