import { createPublicKey, type JsonWebKey, KeyObject, verify } from "node:crypto";
import { CaError } from "../ca-error.js";
import type { SpiffeId } from "../spiffe-id.js";
import { serviceAccountToSpiffeId } from "./service-account.js";
import type { TokenVerifier, VerifiedToken } from "./token-verifier.js";

/** JWT claims as decoded JSON. */
export type JwtClaims = Readonly<Record<string, unknown>>;

/** Options for {@link JwtVerifier}. */
export interface JwtVerifierOptions {
  /** Verification keys as JWKs (matched by `kid` when the token names one) or `node:crypto` keys. */
  readonly keys: readonly (JsonWebKey | KeyObject)[];
  /** Required `iss`. */
  readonly issuer: string;
  /** Accepted audiences; the token's `aud` must contain one. */
  readonly audiences: readonly string[];
  /** Trust domain used by the default identity mapping (default `cluster.local`). */
  readonly trustDomain?: string;
  /**
   * Maps verified claims to identities. Default: Kubernetes service-account tokens
   * (`sub: system:serviceaccount:<ns>:<sa>`) to `spiffe://<td>/ns/<ns>/sa/<sa>`.
   */
  readonly toIdentities?: (claims: JwtClaims) => readonly SpiffeId[];
  /** Allowed clock skew in seconds (default 60). */
  readonly leewaySeconds?: number;
  /** Wall clock in epoch milliseconds (default `Date.now`). */
  readonly clock?: () => number;
}

const ALGORITHMS: Record<string, { digest: string | null; dsaEncoding?: "ieee-p1363"; kty: string }> = {
  RS256: { digest: "sha256", kty: "RSA" },
  ES256: { digest: "sha256", dsaEncoding: "ieee-p1363", kty: "EC" },
  ES384: { digest: "sha384", dsaEncoding: "ieee-p1363", kty: "EC" },
  EdDSA: { digest: null, kty: "OKP" },
};

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    if (typeof value !== "object" || value === null) throw new TypeError("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw new CaError("unauthenticated", `the JWT ${what} is not base64url JSON`);
  }
}

/**
 * Verifies signed JWTs (RS256, ES256, ES384, EdDSA) against known keys and checks `iss`, `aud`,
 * `exp` and `nbf` — the third-party-JWT path of Istio's CA. Signatures are native `node:crypto`.
 */
export class JwtVerifier implements TokenVerifier {
  private readonly keys: { kid?: string; key: KeyObject }[];
  private readonly options: JwtVerifierOptions;

  constructor(options: JwtVerifierOptions) {
    this.options = options;
    this.keys = options.keys.map((k) =>
      k instanceof KeyObject
        ? { key: k.type === "private" ? createPublicKey(k) : k }
        : { ...(k.kid ? { kid: String(k.kid) } : {}), key: createPublicKey({ key: k, format: "jwk" }) },
    );
  }

  async verify(token: string): Promise<VerifiedToken> {
    const parts = token.split(".");
    if (parts.length !== 3)
      throw new CaError("unauthenticated", "not a JWS compact token (expected three dot-separated parts)");
    const [h, p, s] = parts as [string, string, string];
    const header = decodeSegment(h, "header");
    const claims = decodeSegment(p, "payload");
    const alg = ALGORITHMS[String(header.alg)];
    if (!alg)
      throw new CaError(
        "unauthenticated",
        `algorithm ${String(header.alg)} is not accepted (use RS256, ES256, ES384 or EdDSA)`,
      );
    const candidates = this.keys.filter(
      (k) => header.kid === undefined || k.kid === undefined || k.kid === header.kid,
    );
    const signature = Buffer.from(s, "base64url");
    const data = Buffer.from(`${h}.${p}`);
    const ok = candidates.some(({ key }) => {
      try {
        return verify(
          alg.digest,
          data,
          alg.dsaEncoding ? { key, dsaEncoding: alg.dsaEncoding } : key,
          signature,
        );
      } catch {
        return false;
      }
    });
    if (!ok) throw new CaError("unauthenticated", "signature does not verify with any configured key");
    const now = (this.options.clock ?? Date.now)() / 1000;
    const leeway = this.options.leewaySeconds ?? 60;
    if (claims.iss !== this.options.issuer)
      throw new CaError("unauthenticated", `issuer ${String(claims.iss)} is not ${this.options.issuer}`);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.some((a) => this.options.audiences.includes(String(a)))) {
      throw new CaError(
        "unauthenticated",
        `audience ${JSON.stringify(claims.aud)} is not one of ${this.options.audiences.join(", ")}`,
      );
    }
    if (typeof claims.exp !== "number" || claims.exp + leeway < now)
      throw new CaError("unauthenticated", "the token has expired");
    if (typeof claims.nbf === "number" && claims.nbf - leeway > now)
      throw new CaError("unauthenticated", "the token is not valid yet");
    const identities = this.options.toIdentities
      ? this.options.toIdentities(claims)
      : [
          serviceAccountToSpiffeId(String(claims.sub ?? ""), this.options.trustDomain ?? "cluster.local"),
        ].filter((id): id is SpiffeId => id !== undefined);
    return { identities, attributes: claims };
  }
}
