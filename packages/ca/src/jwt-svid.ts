import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from "jose";
import { BehaviorSubject, type Observable, type SchedulerLike, type Subscription } from "rxjs";
import { CaError } from "./ca-error.js";
import { SpiffeId } from "./spiffe-id.js";

/** SPIRE's default JWT-SVID lifetime: five minutes. */
export const DEFAULT_JWT_SVID_TTL_MS = 5 * 60_000;

/** A JWT-SVID (SPIFFE JWT-SVID spec): a JWS compact token with `sub`, `aud` and `exp`. */
export interface JwtSvid {
  readonly spiffeId: SpiffeId;
  /** The JWS compact serialization, to send as `authorization: Bearer <token>`. */
  readonly token: string;
  readonly audience: readonly string[];
  readonly expiresAt: Date;
}

/** One JWT authority of a SPIFFE bundle (`use: "jwt-svid"`, `kid` required). */
export interface JwtBundleKey extends JsonWebKey {
  readonly kid: string;
  readonly use: "jwt-svid";
  readonly alg: string;
}

/** The keys that verify a trust domain's JWT-SVIDs, versioned like the X.509 trust bundle. */
export interface JwtBundle {
  readonly trustDomain: string;
  readonly keys: readonly JwtBundleKey[];
  readonly sequence: number;
}

/** A JWT-SVID that passed validation: whose it is and every claim. */
export interface ValidatedJwtSvid {
  readonly spiffeId: SpiffeId;
  readonly claims: JWTPayload;
}

/**
 * The SPIFFE bundle JSON of a JWT bundle (SPIFFE Trust Domain and Bundle spec: a JWK Set whose
 * JWT authorities carry `use: "jwt-svid"` and a `kid`), as the Workload API's `FetchJWTBundles`
 * sends it.
 */
export function toJwtBundleJson(bundle: JwtBundle): Buffer {
  return Buffer.from(JSON.stringify({ keys: bundle.keys, spiffe_sequence: bundle.sequence }));
}

/** RFC 7638 JWK thumbprint (SHA-256 over the required members in lexicographic order). */
function thumbprint(jwk: JsonWebKey): string {
  const members =
    jwk.kty === "EC"
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : jwk.kty === "RSA"
        ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}

/**
 * The JWS alg a signing key uses (RFC 7518; RSA keys sign RS256), or undefined for a key JWT-SVID
 * 2.1 does not allow (Ed25519: EdDSA is not among RS*, ES*, PS*).
 */
function algFor(key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (type === "rsa") return "RS256";
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "ES256";
    if (curve === "secp384r1") return "ES384";
  }
  return undefined;
}

/** The JWT-SVID `alg` values (JWT-SVID 2.1: RFC 7518 3.3–3.5). */
const JWT_SVID_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"];
/** JWT-SVID 2: any other header parameter must not be present. */
const ALLOWED_HEADERS = new Set(["alg", "kid", "typ"]);

/** The JWT authority of `key`, or undefined when JWT-SVID does not allow its algorithm. */
export function bundleKeyOf(key: KeyObject): JwtBundleKey | undefined {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const alg = algFor(publicKey);
  if (alg === undefined) return undefined;
  const jwk = publicKey.export({ format: "jwk" });
  return { ...jwk, kid: thumbprint(jwk), use: "jwt-svid", alg };
}

/**
 * Signs and validates JWT-SVIDs with the CA's signing key. When the key changes (root rotation,
 * intermediate renewal, reload), the previous key stays in the JWT bundle for `retainMs`, so
 * tokens it signed keep validating until they expire.
 */
export class JwtAuthority {
  private readonly trustDomain: string;
  private readonly clock: () => number;
  private readonly scheduler: SchedulerLike;
  private readonly retainMs: number;
  private readonly tasks: Subscription;
  private signing: { key: KeyObject; bundleKey: JwtBundleKey } | undefined;
  /** Why there is no signing key (a key type JWT-SVID does not allow). */
  private unusable: string | undefined;
  private retained: JwtBundleKey[] = [];
  /** Extra keys to publish (a self-signed CA's roots: a prepared rotation's new key). */
  private extra: JwtBundleKey[] = [];
  private readonly bundle: BehaviorSubject<JwtBundle>;
  readonly bundle$: Observable<JwtBundle>;

  constructor(options: {
    trustDomain: string;
    clock: () => number;
    scheduler: SchedulerLike;
    retainMs: number;
    tasks: Subscription;
  }) {
    this.trustDomain = options.trustDomain;
    this.clock = options.clock;
    this.scheduler = options.scheduler;
    this.retainMs = options.retainMs;
    this.tasks = options.tasks;
    this.bundle = new BehaviorSubject<JwtBundle>({ trustDomain: this.trustDomain, keys: [], sequence: 0 });
    this.bundle$ = this.bundle.asObservable();
  }

  get current(): JwtBundle {
    return this.bundle.getValue();
  }

  /** Signs with `key` from now on; the previous key is retained for `retainMs`. */
  use(key: KeyObject): void {
    const bundleKey = bundleKeyOf(key);
    const previous = this.signing;
    if (bundleKey && previous?.bundleKey.kid === bundleKey.kid) return;
    this.signing = bundleKey ? { key, bundleKey } : undefined;
    this.unusable = bundleKey
      ? undefined
      : `the CA's ${key.asymmetricKeyType ?? "unknown"} key cannot sign JWT-SVIDs (JWT-SVID 2.1 allows RS256–512, ES256–512 and PS256–512); use an RSA or ECDSA CA key`;
    if (previous) {
      this.retained.push(previous.bundleKey);
      this.tasks.add(
        this.scheduler.schedule(() => {
          this.retained = this.retained.filter((k) => k.kid !== previous.bundleKey.kid);
          this.publish();
        }, this.retainMs),
      );
    }
    this.publish();
  }

  /** Publishes these keys too (e.g. the public keys of every root of a self-signed trust bundle). */
  alsoPublish(keys: readonly KeyObject[]): void {
    this.extra = keys.map(bundleKeyOf).filter((k): k is JwtBundleKey => k !== undefined);
    this.publish();
  }

  complete(): void {
    this.bundle.complete();
  }

  private publish(): void {
    const keys = new Map<string, JwtBundleKey>();
    for (const k of [...(this.signing ? [this.signing.bundleKey] : []), ...this.retained, ...this.extra]) {
      keys.set(k.kid, k);
    }
    const next = [...keys.values()];
    const previous = this.bundle.getValue();
    if (next.length === previous.keys.length && next.every((k, i) => k.kid === previous.keys[i]?.kid)) return;
    this.bundle.next({ trustDomain: this.trustDomain, keys: next, sequence: previous.sequence + 1 });
  }

  /** Mints a JWT-SVID for `spiffeId` and `audience` (JWT-SVID 3: sub, aud, exp; header alg, kid, typ). */
  async mint(spiffeId: SpiffeId, audience: readonly string[], ttlMs: number): Promise<JwtSvid> {
    if (this.unusable) throw new CaError("unsupported-key", this.unusable);
    if (!this.signing) {
      throw new CaError(
        "external-signer",
        "JWT-SVIDs need a local signing key; this CA signs through an external CA",
      );
    }
    if (audience.length === 0 || audience.some((a) => a.length === 0)) {
      throw new CaError(
        "invalid-argument",
        "a JWT-SVID needs at least one non-empty audience (JWT-SVID 3.2)",
      );
    }
    const now = this.clock();
    const expiresAt = new Date(Math.floor((now + ttlMs) / 1000) * 1000);
    const { key, bundleKey } = this.signing;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: bundleKey.alg, kid: bundleKey.kid, typ: "JWT" })
      .setSubject(spiffeId.toString())
      .setAudience([...audience])
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(key);
    return { spiffeId, token, audience: [...audience], expiresAt };
  }

  /**
   * Validates a JWT-SVID against this trust domain's JWT bundle (JWT-SVID Appendix A): an allowed
   * `alg` bound to the key its `kid` names, only `alg`/`kid`/`typ` headers (`typ` JWT or JOSE),
   * `aud` containing `audience`, `exp` present and not past (30s leeway), and `sub` a SPIFFE ID in
   * this trust domain. Throws `unauthenticated` saying which rule failed.
   */
  async validate(token: string, audience: string): Promise<ValidatedJwtSvid> {
    if (!audience) throw new CaError("invalid-argument", "an audience to validate against is required");
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new CaError("unauthenticated", "not a JWS compact token");
    }
    const extra = Object.keys(header).filter((h) => !ALLOWED_HEADERS.has(h));
    if (extra.length > 0)
      throw new CaError(
        "unauthenticated",
        `header parameters ${extra.join(", ")} are not allowed in a JWT-SVID`,
      );
    if (header.typ !== undefined && header.typ !== "JWT" && header.typ !== "JOSE") {
      throw new CaError("unauthenticated", `typ ${String(header.typ)} is not JWT or JOSE`);
    }
    if (!JWT_SVID_ALGORITHMS.includes(String(header.alg))) {
      throw new CaError("unauthenticated", `alg ${String(header.alg)} is not allowed for JWT-SVIDs`);
    }
    let payload: JWTPayload;
    // jose only selects keys without `use` or with `use: "sig"`; SPIFFE's JWT authorities say "jwt-svid".
    const keys = this.current.keys.map(({ use: _use, ...k }) => k);
    try {
      ({ payload } = await jwtVerify(token, createLocalJWKSet({ keys }), {
        audience,
        algorithms: JWT_SVID_ALGORITHMS,
        requiredClaims: ["sub", "aud", "exp"],
        currentDate: new Date(this.clock()),
        clockTolerance: 30,
      }));
    } catch (error) {
      const detail =
        error instanceof joseErrors.JWTExpired
          ? "the token has expired"
          : error instanceof joseErrors.JWTClaimValidationFailed
            ? `claim ${error.claim} is not valid (${error.reason})`
            : error instanceof Error
              ? error.message
              : String(error);
      throw new CaError("unauthenticated", `JWT-SVID rejected: ${detail}`, { cause: error });
    }
    const spiffeId = SpiffeId.tryParse(String(payload.sub));
    if (!spiffeId || spiffeId.path === "") {
      throw new CaError("unauthenticated", `sub ${String(payload.sub)} is not a workload SPIFFE ID`);
    }
    if (!spiffeId.memberOf(this.trustDomain)) {
      throw new CaError("unauthenticated", `sub ${spiffeId} is not in trust domain ${this.trustDomain}`);
    }
    return { spiffeId, claims: payload };
  }
}
