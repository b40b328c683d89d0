import { CaError } from "../ca-error.js";
import type { Authenticator, CallContext, Caller } from "./authenticator.js";
import type { TokenVerifier } from "./token-verifier.js";

/**
 * Authenticates `authorization: Bearer <token>` metadata with a pluggable {@link TokenVerifier}
 * (Istio's JWT authenticator: a Kubernetes service-account token or a third-party JWT).
 */
export class JwtAuthenticator implements Authenticator {
  readonly name = "jwt";
  private readonly verifier: TokenVerifier;

  constructor(verifier: TokenVerifier) {
    this.verifier = verifier;
  }

  async authenticate(context: CallContext): Promise<Caller | undefined> {
    const header = context.metadata.get("authorization")[0];
    if (header === undefined) return undefined;
    const match = /^Bearer\s+(\S+)$/i.exec(String(header));
    if (!match) throw new CaError("unauthenticated", "authorization metadata must be 'Bearer <token>'");
    try {
      const verified = await this.verifier.verify(match[1] as string);
      if (verified.identities.length === 0)
        throw new CaError("unauthenticated", "the token maps to no identity");
      return {
        identities: verified.identities,
        authenticator: this.name,
        ...(verified.attributes ? { attributes: verified.attributes } : {}),
      };
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new CaError("unauthenticated", `bearer token rejected: ${detail}`, { cause: error });
    }
  }
}
