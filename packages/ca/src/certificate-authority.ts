import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import {
  asyncScheduler,
  BehaviorSubject,
  exhaustMap,
  filter,
  type Observable,
  type SchedulerLike,
  Subject,
  Subscription,
  timer,
} from "rxjs";
import { CaError } from "./ca-error.js";
import { type Duration, formatDuration, toMilliseconds } from "./duration.js";
import type { ExternalSigner } from "./external-signer.js";
import { loadIstioCaCerts } from "./istio-ca-certs.js";
import { generateKey, type KeyType } from "./key-type.js";
import { type Logger, silentLogger } from "./logger.js";
import { fromPemOf, toPem } from "./pem.js";
import {
  createSelfSignedRoot,
  createSigningMaterial,
  type SigningMaterial,
  spkiPublicKeyBits,
} from "./signing-material.js";
import { SpiffeId } from "./spiffe-id.js";
import type { TrustBundle } from "./trust-bundle.js";
import { VerifyPool } from "./verify-pool.js";
import { parseCertificate } from "./x509/certificate.js";
import { encodeTbsCertificate, randomSerial, signCertificate } from "./x509/certificate-builder.js";
import { createCsr, DEFAULT_MAX_CSR_BYTES, parseCsr } from "./x509/csr.js";
import {
  extension,
  keyIdentifier,
  LEAF_EXTENSIONS,
  subjectAltNameValue,
  subjectKeyIdentifierValue,
} from "./x509/extensions.js";
import { Oid } from "./x509/oids.js";

/** Istio's defaults: workload certificates live 24h, at most 90 days; self-signed roots 10 years. */
export const DEFAULT_TTL_MS = 24 * 3_600_000;
/** Default maximum workload certificate lifetime (Istio's `MAX_WORKLOAD_CERT_TTL`). */
export const DEFAULT_MAX_TTL_MS = 90 * 24 * 3_600_000;
/** Default self-signed root lifetime (Istio's `CITADEL_SELF_SIGNED_CA_CERT_TTL`). */
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3_600_000;
const EMPTY_SUBJECT = Buffer.from([0x30, 0x00]);

/** Options shared by every way of creating a {@link CertificateAuthority}. */
export interface CertificateAuthorityOptions {
  /** The trust domain the CA issues for (default `cluster.local`). */
  readonly trustDomain?: string;
  /** Lifetime when a request names none (default 24h). Numbers are milliseconds. */
  readonly defaultTtl?: Duration;
  /** Longest lifetime a request may ask for (default 90 days); longer requests are refused. */
  readonly maxTtl?: Duration;
  /** Largest CSR accepted, in bytes (default 16 KiB). */
  readonly maxCsrBytes?: number;
  /** notBefore is set this far in the past to absorb clock skew (default 60s). */
  readonly backdate?: Duration;
  /** Wall clock in epoch milliseconds (default `Date.now`); inject for tests. */
  readonly clock?: () => number;
  /** Scheduler for root rotation checks and overlap expiry (default `asyncScheduler`). */
  readonly scheduler?: SchedulerLike;
  /** Where the CA logs (default silent). */
  readonly logger?: Logger;
  /**
   * Verify CSR signatures on this many worker threads (default 0: on the main thread via the
   * libuv pool). Worth it for EC CSRs on multi-core machines, where key import dominates.
   */
  readonly verifyThreads?: number;
}

/** Options for {@link CertificateAuthority.selfSigned}. */
export interface SelfSignedCaOptions extends CertificateAuthorityOptions {
  readonly trustDomain: string;
  /** Root key type: `ecdsa-p256` (default) or `rsa-2048` (Istio's default). */
  readonly keyType?: KeyType;
  /** Root lifetime (default 10 years). */
  readonly rootTtl?: Duration;
}

/** Options for {@link CertificateAuthority.fromSigner}. */
export interface FromSignerOptions extends CertificateAuthorityOptions {
  /** Key type of meshlet's intermediate, for `intermediate` signers (default `ecdsa-p256`). */
  readonly keyType?: KeyType;
  /** Lifetime to request for the intermediate (default 48h); it is renewed at half of it. */
  readonly intermediateTtl?: Duration;
}

/** A request to sign a workload CSR. */
export interface SignRequest {
  /** PKCS#10 CSR, PEM or DER. Its URI SAN, if any, must be one of `identities`. */
  readonly csr: string | Uint8Array;
  /**
   * The caller's authenticated identities (from mTLS, a JWT, a TokenReview, …). The certificate's
   * URI SAN is taken from here, never from the CSR alone.
   */
  readonly identities: readonly (SpiffeId | string)[];
  /** Requested lifetime; default `defaultTtl`, refused above `maxTtl`. Numbers are milliseconds. */
  readonly ttl?: Duration;
}

/** A PEM certificate chain, leaf first, the root last (the shape of Istio's `cert_chain`). */
export type CertificateChain = string[];

/** A signed CSR: the chain and what it certifies. */
export interface SignedCertificate {
  /** PEM chain, leaf first, root last. */
  readonly chain: CertificateChain;
  /** The SPIFFE ID in the leaf's URI SAN. */
  readonly spiffeId: SpiffeId;
  /** The leaf's expiry (second precision in the certificate). */
  readonly notAfter: Date;
}

/** An X509-SVID with its private key, as served by the Workload API and SDS. */
export interface X509Svid {
  readonly spiffeId: SpiffeId;
  /** PEM chain, leaf first, root last. */
  readonly chain: CertificateChain;
  /** PKCS#8 PEM private key of the leaf. */
  readonly privateKey: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** How a self-signed root is rotated. */
export interface RootRotationOptions {
  /**
   * `keep-key` re-issues the root with the same key and a new validity (what istiod does; existing
   * leaves keep verifying). `new-key` rolls a new key; old and new roots share the trust bundle for
   * `overlap`, then the old root is dropped.
   */
  readonly mode?: "keep-key" | "new-key";
  /** How long the previous root stays in the trust bundle after a `new-key` rotation (default 24h). */
  readonly overlap?: Duration;
}

/** Options for {@link CertificateAuthority.startRootRotation}. */
export interface RootRotatorOptions extends RootRotationOptions {
  /** How often to check the root's remaining lifetime (default 1h, as istiod). */
  readonly checkInterval?: Duration;
  /** Rotate when less than this fraction of the root's lifetime remains (default 0.2, as istiod). */
  readonly gracePeriodRatio?: number;
}

/** Emitted on `rootRotation$` after a root was rotated. */
export interface RootRotation {
  readonly mode: "keep-key" | "new-key";
  readonly previousRoot: string;
  readonly root: string;
  readonly at: Date;
}

interface SelfSignedState {
  readonly keyType: KeyType;
  readonly rootTtl: Duration;
}

/**
 * Citadel for meshlet: turns authenticated CSRs into SPIFFE X509-SVIDs and publishes the trust
 * bundle. Create it with {@link CertificateAuthority.selfSigned}, {@link CertificateAuthority.fromIstioCaCerts}
 * or {@link CertificateAuthority.fromSigner}; serve it with `IstioCertificateService`, `SdsServer`
 * or `WorkloadApiServer`.
 *
 * Every leaf follows the SPIFFE X509-SVID rules: one URI SAN (critical, the subject is empty),
 * cA=false, critical key usage digitalSignature (+keyEncipherment for RSA keys), EKU serverAuth +
 * clientAuth. Key work (verification and signatures) is native `node:crypto`.
 */
export class CertificateAuthority {
  /** The trust domain this CA issues identities in. */
  readonly trustDomain: string;
  /** The current trust bundle, then every change (root rotation, overlap expiry). */
  readonly trustBundle$: Observable<TrustBundle>;
  /** Every root rotation. */
  readonly rootRotation$: Observable<RootRotation>;

  private material: SigningMaterial | undefined;
  private readonly signer: ExternalSigner | undefined;
  private readonly selfSignedState: SelfSignedState | undefined;
  private readonly bundle: BehaviorSubject<TrustBundle>;
  private readonly rotations = new Subject<RootRotation>();
  private readonly tasks = new Subscription();
  private readonly defaultTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly backdateMs: number;
  private readonly maxCsrBytes: number;
  private readonly clock: () => number;
  private readonly scheduler: SchedulerLike;
  private readonly logger: Logger;
  private readonly verifyPool: VerifyPool | undefined;

  private constructor(
    options: CertificateAuthorityOptions,
    source: { material?: SigningMaterial; signer?: ExternalSigner; selfSigned?: SelfSignedState },
    roots: readonly string[],
  ) {
    this.trustDomain = SpiffeId.forTrustDomain(options.trustDomain ?? "cluster.local").trustDomain;
    this.defaultTtlMs = toMilliseconds(options.defaultTtl ?? DEFAULT_TTL_MS, "defaultTtl");
    this.maxTtlMs = toMilliseconds(options.maxTtl ?? DEFAULT_MAX_TTL_MS, "maxTtl");
    this.backdateMs = toMilliseconds(options.backdate ?? 60_000, "backdate");
    this.maxCsrBytes = options.maxCsrBytes ?? DEFAULT_MAX_CSR_BYTES;
    this.clock = options.clock ?? Date.now;
    this.scheduler = options.scheduler ?? asyncScheduler;
    this.logger = options.logger ?? silentLogger;
    if (this.defaultTtlMs <= 0 || this.defaultTtlMs > this.maxTtlMs) {
      throw new CaError("invalid-ttl", "defaultTtl must be positive and not above maxTtl");
    }
    this.verifyPool = options.verifyThreads ? new VerifyPool(options.verifyThreads) : undefined;
    this.material = source.material;
    this.signer = source.signer;
    this.selfSignedState = source.selfSigned;
    this.bundle = new BehaviorSubject<TrustBundle>({ trustDomain: this.trustDomain, roots, sequence: 1 });
    this.trustBundle$ = this.bundle.asObservable();
    this.rootRotation$ = this.rotations.asObservable();
  }

  /** A CA with a freshly generated self-signed root (istiod's default mode). */
  static async selfSigned(options: SelfSignedCaOptions): Promise<CertificateAuthority> {
    const keyType = options.keyType ?? "ecdsa-p256";
    const rootTtl = options.rootTtl ?? DEFAULT_ROOT_TTL_MS;
    const trustDomain = SpiffeId.forTrustDomain(options.trustDomain).trustDomain;
    const { privateKey } = await generateKey(keyType);
    const now = (options.clock ?? Date.now)();
    const root = await createSelfSignedRoot({ key: privateKey, trustDomain, ttl: rootTtl, now });
    const material = createSigningMaterial(privateKey, root.der, [root.pem], "self-signed root");
    return new CertificateAuthority(options, { material, selfSigned: { keyType, rootTtl } }, [root.pem]);
  }

  /**
   * A CA from Istio's plugged-in layout in `dir` (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
   * `cert-chain.pem`): an offline root with per-cluster intermediates. Throws a precise `CaError`
   * for missing files, malformed PEM, expired certificates, a key that does not match, or a chain
   * that does not reach the root.
   */
  static async fromIstioCaCerts(
    dir: string,
    options: CertificateAuthorityOptions = {},
  ): Promise<CertificateAuthority> {
    const { material, roots } = await loadIstioCaCerts(dir, (options.clock ?? Date.now)());
    return new CertificateAuthority(options, { material }, roots);
  }

  /**
   * A CA backed by an external CA (cfssl, Vault PKI, …); it still authenticates, authorizes and
   * checks. A `leaf` signer signs every SVID; an `intermediate` signer signs meshlet's own
   * intermediate CA (key generated here, renewed at half its lifetime) and meshlet signs the SVIDs.
   */
  static async fromSigner(
    signer: ExternalSigner,
    options: FromSignerOptions = {},
  ): Promise<CertificateAuthority> {
    let roots: readonly string[];
    try {
      roots = await signer.roots();
    } catch (error) {
      throw CaError.from(error, "external-signer", `${signer.name}: cannot fetch the root certificates`);
    }
    if (roots.length === 0)
      throw new CaError("external-signer", `${signer.name}: returned no root certificates`);
    roots = roots.flatMap((pem, i) =>
      fromPemOf(pem, "CERTIFICATE", `${signer.name} root ${i + 1}`).map((der) => toPem("CERTIFICATE", der)),
    );
    if (signer.kind === "intermediate") {
      const trustDomain = SpiffeId.forTrustDomain(options.trustDomain ?? "cluster.local").trustDomain;
      const obtain = () =>
        obtainIntermediate(
          signer,
          trustDomain,
          options.keyType ?? "ecdsa-p256",
          toMilliseconds(options.intermediateTtl ?? "48h", "intermediateTtl"),
          roots,
        );
      const ca = new CertificateAuthority(options, { material: await obtain() }, roots);
      ca.renewIntermediate(obtain, signer.name);
      return ca;
    }
    return new CertificateAuthority(options, { signer }, roots);
  }

  /** The current trust bundle. */
  get trustBundle(): TrustBundle {
    return this.bundle.getValue();
  }

  /** The PEM certificate that signs leaves, or undefined for an external signer. */
  get signingCertificate(): string | undefined {
    return this.material ? toPem("CERTIFICATE", this.material.cert.der) : undefined;
  }

  /**
   * Signs a workload CSR: checks its size and self-signature, picks the SPIFFE ID from the caller's
   * authenticated `identities` (a CSR asking for any other ID is refused with `identity-mismatch`),
   * and returns the chain, leaf first, root last.
   */
  async sign(request: SignRequest): Promise<CertificateChain> {
    return (await this.signCsr(request)).chain;
  }

  /** Like {@link CertificateAuthority.sign}, also saying which SPIFFE ID was certified, until when. */
  async signCsr(request: SignRequest): Promise<SignedCertificate> {
    const ttlMs = this.resolveTtl(request.ttl);
    const csr = parseCsr(request.csr, { maxBytes: this.maxCsrBytes });
    const spiffeId = this.resolveIdentity(csr.uris, request.identities);
    await csr.verifySignature(this.verifyPool);
    if (this.signer) {
      const chain = await this.signExternally(
        toPem("CERTIFICATE REQUEST", csr.der),
        csr.spkiRaw,
        spiffeId,
        ttlMs,
      );
      return { chain, spiffeId, notAfter: new Date(new X509Certificate(chain[0] as string).validTo) };
    }
    const { chain, notAfter } = await this.issueLocal(
      csr.spkiRaw,
      csr.publicKeyBits,
      csr.keyKind === "rsa",
      spiffeId,
      ttlMs,
    );
    return { chain, spiffeId, notAfter };
  }

  /**
   * Issues an X509-SVID for a public key the caller already trusts (keys generated server-side, as
   * for the Workload API). `identity` must be in this CA's trust domain.
   */
  async issue(request: {
    publicKey: KeyObject;
    identity: SpiffeId | string;
    ttl?: Duration;
    /**
     * Extra DNS SANs for serving certificates (e.g. istiod's `istiod.istio-system.svc`, which
     * istio-agent checks). SPIFFE X509-SVID 2 allows other SAN types beside the one URI SAN. Only
     * for server-side issuance, never taken from a CSR.
     */
    dnsNames?: readonly string[];
  }): Promise<CertificateChain> {
    const ttlMs = this.resolveTtl(request.ttl);
    const spiffeId = this.resolveIdentity([], [request.identity]);
    const publicKey =
      request.publicKey.type === "public" ? request.publicKey : createPublicKey(request.publicKey);
    const spki = publicKey.export({ format: "der", type: "spki" });
    if (this.signer) {
      throw new CaError(
        "external-signer",
        "issue() needs a local signing key; use mintSvid() or sign() with a CSR",
      );
    }
    return (
      await this.issueLocal(
        spki,
        spkiPublicKeyBits(spki),
        request.publicKey.asymmetricKeyType === "rsa",
        spiffeId,
        ttlMs,
        checkDnsNames(request.dnsNames ?? []),
      )
    ).chain;
  }

  /** Generates a key (native) and issues an X509-SVID for it: what an agent does for a workload. */
  async mintSvid(request: {
    identity: SpiffeId | string;
    ttl?: Duration;
    keyType?: KeyType;
    /** Extra DNS SANs (see {@link CertificateAuthority.issue}); local signing keys only. */
    dnsNames?: readonly string[];
  }): Promise<X509Svid> {
    const { privateKey, publicKey } = await generateKey(request.keyType ?? "ecdsa-p256");
    const spiffeId = this.resolveIdentity([], [request.identity]);
    const chain = this.signer
      ? await this.sign({
          csr: await createCsr({ privateKey, uris: [spiffeId.toString()] }),
          identities: [spiffeId],
          ttl: request.ttl ?? this.defaultTtlMs,
        })
      : await this.issue({
          publicKey,
          identity: spiffeId,
          ttl: request.ttl ?? this.defaultTtlMs,
          ...(request.dnsNames ? { dnsNames: request.dnsNames } : {}),
        });
    const leaf = new X509Certificate(chain[0] as string);
    return {
      spiffeId,
      chain,
      privateKey: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
    };
  }

  /**
   * Rotates a self-signed root now. With `keep-key` (default) the root is re-issued with the same
   * key; with `new-key` a new key is generated and the previous root stays in the trust bundle for
   * `overlap`. Only for CAs created with {@link CertificateAuthority.selfSigned}.
   */
  async rotateRoot(options: RootRotationOptions = {}): Promise<RootRotation> {
    const state = this.selfSignedState;
    const current = this.material;
    if (!state || !current) {
      throw new CaError(
        "ca-material",
        "rotateRoot: only a self-signed CA rotates its own root; plug in new CA files instead",
      );
    }
    const mode = options.mode ?? "keep-key";
    const overlapMs = toMilliseconds(options.overlap ?? DEFAULT_TTL_MS, "overlap");
    const key = mode === "keep-key" ? current.key : (await generateKey(state.keyType)).privateKey;
    const now = this.clock();
    const root = await createSelfSignedRoot({ key, trustDomain: this.trustDomain, ttl: state.rootTtl, now });
    const previousRoot = toPem("CERTIFICATE", current.cert.der);
    this.material = createSigningMaterial(key, root.der, [root.pem], "rotated self-signed root");
    const old = this.bundle.getValue();
    if (mode === "keep-key") {
      this.publishRoots([root.pem, ...old.roots.filter((r) => r !== previousRoot)]);
    } else {
      this.publishRoots([root.pem, ...old.roots]);
      this.tasks.add(
        this.scheduler.schedule(() => {
          this.publishRoots(this.bundle.getValue().roots.filter((r) => r !== previousRoot));
          this.logger.info("previous root left the trust bundle after the overlap", {
            trustDomain: this.trustDomain,
          });
        }, overlapMs),
      );
    }
    const rotation: RootRotation = { mode, previousRoot, root: root.pem, at: new Date(now) };
    this.logger.info("self-signed root rotated", { mode, trustDomain: this.trustDomain });
    this.rotations.next(rotation);
    return rotation;
  }

  /**
   * Checks the self-signed root every `checkInterval` and rotates it when less than
   * `gracePeriodRatio` of its lifetime remains, as istiod's self-signed root rotator does.
   * Unsubscribe the returned subscription (or call `close()`) to stop.
   */
  startRootRotation(options: RootRotatorOptions = {}): Subscription {
    const interval = toMilliseconds(options.checkInterval ?? 3_600_000, "checkInterval");
    const ratio = options.gracePeriodRatio ?? 0.2;
    if (!(ratio > 0 && ratio < 1))
      throw new CaError("invalid-argument", "gracePeriodRatio must be between 0 and 1");
    // The decision is taken synchronously at each tick (so virtual time is exact); exhaustMap
    // ignores ticks while a rotation is in flight.
    const subscription = timer(0, interval, this.scheduler)
      .pipe(
        filter(() => {
          const cert = this.material?.cert;
          if (!cert) return false;
          const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
          return cert.notAfter.getTime() - this.clock() < lifetime * ratio;
        }),
        exhaustMap(() =>
          this.rotateRoot(options).catch((error: unknown) => {
            this.logger.error("root rotation failed; will retry at the next check", { error: String(error) });
          }),
        ),
      )
      .subscribe();
    this.tasks.add(subscription);
    return subscription;
  }

  /** Schedules renewal of an upstream-signed intermediate at half its lifetime; retries every 30s on failure. */
  private renewIntermediate(obtain: () => Promise<SigningMaterial>, name: string): void {
    const cert = (this.material as SigningMaterial).cert;
    const half = cert.notBefore.getTime() + (cert.notAfter.getTime() - cert.notBefore.getTime()) / 2;
    const attempt = (delay: number) =>
      this.tasks.add(
        this.scheduler.schedule(() => {
          obtain().then(
            (material) => {
              this.material = material;
              this.logger.info("intermediate CA renewed", {
                signer: name,
                notAfter: material.cert.notAfter.toISOString(),
              });
              this.renewIntermediate(obtain, name);
            },
            (error: unknown) => {
              this.logger.error("intermediate CA renewal failed; retrying in 30s", {
                signer: name,
                error: String(error),
              });
              attempt(30_000);
            },
          );
        }, delay),
      );
    attempt(Math.max(0, half - this.clock()));
  }

  /** Stops rotation timers and verify threads, and completes `trustBundle$` and `rootRotation$`. */
  close(): void {
    void this.verifyPool?.close();
    this.tasks.unsubscribe();
    this.bundle.complete();
    this.rotations.complete();
  }

  private publishRoots(roots: readonly string[]): void {
    const previous = this.bundle.getValue();
    this.bundle.next({
      trustDomain: this.trustDomain,
      roots: [...new Set(roots)],
      sequence: previous.sequence + 1,
    });
  }

  private resolveTtl(ttl: Duration | undefined): number {
    const ms = ttl === undefined ? this.defaultTtlMs : toMilliseconds(ttl, "ttl");
    if (ms <= 0) throw new CaError("invalid-ttl", `ttl must be positive, got ${formatDuration(ms)}`);
    if (ms > this.maxTtlMs) {
      throw new CaError(
        "invalid-ttl",
        `requested ttl ${formatDuration(ms)} exceeds the maximum ${formatDuration(this.maxTtlMs)}; ask for less or raise maxTtl`,
      );
    }
    return ms;
  }

  /** SANs come from the authenticated identities; the CSR may only narrow them to one it owns. */
  private resolveIdentity(
    requested: readonly string[],
    identities: readonly (SpiffeId | string)[],
  ): SpiffeId {
    const owned = identities.map((id) => (typeof id === "string" ? SpiffeId.parse(id) : id));
    if (owned.length === 0) {
      throw new CaError("no-identity", "the caller has no authenticated identity; nothing can be signed");
    }
    if (requested.length > 1) {
      throw new CaError(
        "identity-mismatch",
        `the CSR asks for ${requested.length} URI SANs; an X509-SVID carries exactly one SPIFFE ID`,
      );
    }
    let chosen: SpiffeId;
    if (requested.length === 1) {
      const match = owned.find((id) => id.equals(requested[0] as string));
      if (!match) {
        throw new CaError(
          "identity-mismatch",
          `the CSR asks for ${requested[0]} but the caller is authenticated as ${owned.join(", ")}; request your own identity`,
        );
      }
      chosen = match;
    } else if (owned.length === 1) {
      chosen = owned[0] as SpiffeId;
    } else {
      throw new CaError(
        "identity-mismatch",
        `the caller has ${owned.length} identities (${owned.join(", ")}); put the one to certify in the CSR's URI SAN`,
      );
    }
    if (!chosen.memberOf(this.trustDomain)) {
      throw new CaError(
        "foreign-trust-domain",
        `${chosen} is outside trust domain ${this.trustDomain}; this CA only issues for its own trust domain`,
      );
    }
    return chosen;
  }

  private async issueLocal(
    spkiRaw: Buffer,
    publicKeyBits: Buffer,
    rsa: boolean,
    spiffeId: SpiffeId,
    ttlMs: number,
    dnsNames: readonly string[] = [],
  ): Promise<{ chain: CertificateChain; notAfter: Date }> {
    const m = this.material as SigningMaterial;
    const now = this.clock();
    const notAfter = Math.min(now + ttlMs, m.cert.notAfter.getTime());
    const tbs = encodeTbsCertificate(
      {
        serialNumber: randomSerial(),
        issuerRaw: m.cert.subjectRaw,
        notBefore: new Date(now - this.backdateMs),
        notAfter: new Date(notAfter),
        subjectRaw: EMPTY_SUBJECT,
        spkiRaw,
        extensions: [
          // SPIFFE X509-SVID 4.1/4.2: URI SAN is critical because the subject is empty.
          extension(Oid.subjectAltName, true, subjectAltNameValue([spiffeId.toString()], [...dnsNames])),
          rsa ? LEAF_EXTENSIONS.keyUsageRsa : LEAF_EXTENSIONS.keyUsageEc,
          LEAF_EXTENSIONS.extKeyUsage,
          LEAF_EXTENSIONS.basicConstraints,
          extension(Oid.subjectKeyIdentifier, false, subjectKeyIdentifierValue(keyIdentifier(publicKeyBits))),
          m.authorityKeyId,
        ],
      },
      m.scheme,
    );
    const der = await signCertificate(tbs, m.key, m.scheme);
    return {
      chain: [toPem("CERTIFICATE", der), ...m.chainPem],
      notAfter: new Date(Math.floor(notAfter / 1000) * 1000),
    };
  }

  private async signExternally(
    csrPem: string,
    spkiRaw: Buffer,
    spiffeId: SpiffeId,
    ttlMs: number,
  ): Promise<CertificateChain> {
    const signer = this.signer as ExternalSigner;
    let chain: readonly string[];
    try {
      chain = await signer.sign({ csrPem, spiffeId, ttlMs });
    } catch (error) {
      throw CaError.from(error, "external-signer", `${signer.name}: signing ${spiffeId} failed`);
    }
    const ders = chain.flatMap((pem, i) =>
      fromPemOf(pem, "CERTIFICATE", `${signer.name} certificate ${i + 1}`),
    );
    if (ders.length === 0) throw new CaError("external-signer", `${signer.name}: returned no certificate`);
    const leaf = parseCertificate(ders[0] as Buffer, `${signer.name} leaf`);
    const problems: string[] = [];
    if (!leaf.spkiRaw.equals(spkiRaw)) problems.push("its public key is not the CSR's");
    if (leaf.uris.length !== 1 || leaf.uris[0] !== spiffeId.toString()) {
      problems.push(`its URI SANs are [${leaf.uris.join(", ")}], expected exactly ${spiffeId}`);
    }
    if (leaf.isCa) problems.push("it is a CA certificate");
    if (problems.length > 0) {
      throw new CaError(
        "external-signer",
        `${signer.name} returned a certificate that is not a valid X509-SVID: ${problems.join("; ")}; check the signer's profile or role`,
      );
    }
    const pems = ders.map((der) => toPem("CERTIFICATE", der));
    const roots = this.bundle.getValue().roots;
    const last = pems[pems.length - 1] as string;
    if (!roots.includes(last)) {
      const lastX509 = new X509Certificate(last);
      const root = roots.find((r) => lastX509.checkIssued(new X509Certificate(r)));
      if (root) pems.push(root);
    }
    return pems;
  }
}

/** Gets meshlet's intermediate signed by an upstream authority and checks what comes back. */
async function obtainIntermediate(
  signer: ExternalSigner,
  trustDomain: string,
  keyType: KeyType,
  ttlMs: number,
  roots: readonly string[],
): Promise<SigningMaterial> {
  const { privateKey } = await generateKey(keyType);
  const trustDomainId = SpiffeId.forTrustDomain(trustDomain);
  const csrPem = await createCsr({
    privateKey,
    uris: [trustDomainId.toString()],
    subject: { organization: trustDomain, commonName: "meshlet intermediate CA" },
  });
  let chain: readonly string[];
  try {
    chain = await signer.sign({ csrPem, spiffeId: trustDomainId, ttlMs });
  } catch (error) {
    throw CaError.from(error, "external-signer", `${signer.name}: signing meshlet's intermediate CA failed`);
  }
  const ders = chain.flatMap((pem, i) =>
    fromPemOf(pem, "CERTIFICATE", `${signer.name} certificate ${i + 1}`),
  );
  if (ders.length === 0) throw new CaError("external-signer", `${signer.name}: returned no certificate`);
  const pems = ders.map((der) => toPem("CERTIFICATE", der));
  const last = new X509Certificate(ders[ders.length - 1] as Buffer);
  if (!roots.includes(pems[pems.length - 1] as string)) {
    const root = roots.find((r) => {
      const candidate = new X509Certificate(r);
      return last.checkIssued(candidate) && last.verify(candidate.publicKey);
    });
    if (!root) {
      throw new CaError(
        "external-signer",
        `${signer.name}: the intermediate it signed does not chain to its root certificates`,
      );
    }
    pems.push(root);
  }
  const material = createSigningMaterial(privateKey, ders[0] as Buffer, pems, `${signer.name} intermediate`);
  if (material.cert.subjectRaw.length <= 2) {
    // RFC 5280 4.1.2.4: the issuer field of the leaves must be a non-empty name.
    throw new CaError(
      "external-signer",
      `${signer.name}: the intermediate it signed has an empty subject; configure it to keep the CSR's subject`,
    );
  }
  return material;
}

/** DNS SANs must be plain hostnames (RFC 1123 labels, optional leading wildcard label). */
function checkDnsNames(names: readonly string[]): readonly string[] {
  for (const name of names) {
    if (
      !/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(name) ||
      name.length > 253
    ) {
      throw new CaError("invalid-argument", `dnsNames: ${JSON.stringify(name)} is not a valid DNS name`);
    }
  }
  return names;
}
