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

const ALGORITHMS: Record<string, { digest: string | null; dsaEncoding?: "ieee-p1363" }> = {
  RS256: { digest: "sha256" },
  ES256: { digest: "sha256", dsaEncoding: "ieee-p1363" },
  ES384: { digest: "sha384", dsaEncoding: "ieee-p1363" },
  EdDSA: { digest: null },
};

/**
 * The one `alg` a key may verify (RFC 8725 3.1: never let the token choose how its key is used;
 * RFC 7518 3.4: ES256 is P-256 with SHA-256, ES384 P-384 with SHA-384).
 */
export function algorithmForKey(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (type === "rsa") return "RS256";
  if (type === "ed25519") return "EdDSA";
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return curve === "prime256v1" ? "ES256" : curve === "secp384r1" ? "ES384" : undefined;
  }
  return undefined;
}

interface VerificationKey {
  readonly kid?: string;
  readonly key: KeyObject;
  /** The only alg this key verifies. */
  readonly alg: string | undefined;
}

function toVerificationKey(k: JsonWebKey | KeyObject): VerificationKey {
  if (k instanceof KeyObject) {
    const key = k.type === "private" ? createPublicKey(k) : k;
    return { key, alg: algorithmForKey(key) };
  }
  const key = createPublicKey({ key: k, format: "jwk" });
  const alg = algorithmForKey(key);
  // A JWK naming another alg than its key type allows verifies nothing.
  const pinned = typeof k.alg === "string" && k.alg !== alg ? undefined : alg;
  return { ...(k.kid ? { kid: String(k.kid) } : {}), key, alg: pinned };
}

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
 * `exp` and `nbf` — the third-party-JWT path of Istio's CA. Each key verifies only the alg its
 * type allows (RSA: RS256, P-256: ES256, P-384: ES384, Ed25519: EdDSA; a JWK's `alg` must agree),
 * so a token cannot pick how its signature is checked. Signatures are native `node:crypto`.
 */
export class JwtVerifier implements TokenVerifier {
  private readonly keys: VerificationKey[];
  private readonly options: JwtVerifierOptions;

  constructor(options: JwtVerifierOptions) {
    this.options = options;
    this.keys = options.keys.map(toVerificationKey);
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
      (k) =>
        k.alg === header.alg && (header.kid === undefined || k.kid === undefined || k.kid === header.kid),
    );
    if (candidates.length === 0) {
      throw new CaError(
        "unauthenticated",
        `alg ${String(header.alg)} matches no configured key's type${header.kid !== undefined ? ` for kid ${String(header.kid)}` : ""} (RFC 8725: alg is bound to the key)`,
      );
    }
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
