import { createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import {
  asyncScheduler,
  BehaviorSubject,
  type Observable,
  type SchedulerLike,
  Subject,
  Subscription,
  timer,
} from "rxjs";
import { CaError } from "./ca-error.js";
import type {
  CertificateAuthorityOptions,
  FromSignerOptions,
  IstioCaCertsOptions,
  SelfSignedCaOptions,
} from "./ca-options.js";
import { directoryChanges$ } from "./directory-root-store.js";
import { type Duration, formatDuration, toMilliseconds } from "./duration.js";
import { ExternalLeafIssuer } from "./external-issuer.js";
import type { ExternalSigner } from "./external-signer.js";
import { checkDnsNames, resolveIdentity, resolveTtl } from "./identity-policy.js";
import type { Issuer } from "./issuer.js";
import { loadIstioCaCerts } from "./istio-ca-certs.js";
import {
  DEFAULT_JWT_SVID_TTL_MS,
  JwtAuthority,
  type JwtBundle,
  type JwtSvid,
  type ValidatedJwtSvid,
} from "./jwt-svid.js";
import { generateKey, type KeyType } from "./key-type.js";
import { LocalIssuer } from "./local-issuer.js";
import { type Logger, silentLogger } from "./logger.js";
import { fromPemOf, toPem } from "./pem.js";
import {
  type RootRotation,
  type RootRotationOptions,
  RootRotator,
  type RootRotatorOptions,
} from "./root-rotation.js";
import { materialFromStored, type RootStore } from "./root-store.js";
import { createSelfSignedRoot, type SigningMaterial } from "./signing-material.js";
import { SpiffeId } from "./spiffe-id.js";
import type { CertificateChain, SignedCertificate, SignRequest, X509Svid } from "./svid.js";
import { DEFAULT_MAX_BACKDATE_MS, SvidValidator, type ValidatedSvid } from "./svid-profile.js";
import type { TrustBundle } from "./trust-bundle.js";
import { fetchSignerRoots, UpstreamAuthority } from "./upstream-authority.js";
import { VerifyPool } from "./verify-pool.js";
import { parseCertificate } from "./x509/certificate.js";
import { createCsr, DEFAULT_MAX_CSR_BYTES, parseCsr } from "./x509/csr.js";
import { encodeSpki } from "./x509/public-key.js";

export type {
  CertificateAuthorityOptions,
  FromSignerOptions,
  IstioCaCertsOptions,
  SelfSignedCaOptions,
} from "./ca-options.js";
export type { RootRotation, RootRotationOptions, RootRotatorOptions } from "./root-rotation.js";
export type { CertificateChain, SignedCertificate, SignRequest, X509Svid } from "./svid.js";

/** Istio's defaults: workload certificates live 24h, at most 90 days; self-signed roots 10 years. */
export const DEFAULT_TTL_MS = 24 * 3_600_000;
/** Default maximum workload certificate lifetime (Istio's `MAX_WORKLOAD_CERT_TTL`). */
export const DEFAULT_MAX_TTL_MS = 90 * 24 * 3_600_000;
/** Default self-signed root lifetime (Istio's `CITADEL_SELF_SIGNED_CA_CERT_TTL`). */
export const DEFAULT_ROOT_TTL_MS = 10 * 365 * 24 * 3_600_000;

/** Who signs for the CA, and what it can do. */
type Backend =
  | {
      readonly kind: "self-signed";
      readonly issuer: LocalIssuer;
      readonly keyType: KeyType;
      readonly rootTtlMs: number;
      readonly store?: RootStore;
    }
  | { readonly kind: "plugged"; readonly issuer: LocalIssuer }
  | { readonly kind: "upstream"; readonly issuer: LocalIssuer; readonly upstream: UpstreamAuthority }
  | { readonly kind: "external-leaf"; readonly issuer: ExternalLeafIssuer };

/**
 * Citadel for meshlet: turns authenticated CSRs into SPIFFE X509-SVIDs and publishes the trust
 * bundle. Create it with {@link CertificateAuthority.selfSigned}, {@link CertificateAuthority.fromIstioCaCerts}
 * or {@link CertificateAuthority.fromSigner}; serve it with `IstioCertificateService`, `SdsServer`
 * or `WorkloadApiServer`.
 *
 * Every leaf, whoever signed it, passes the SVID profile check (`validateSvid`) before it is
 * returned: one URI SAN (critical, the subject is empty), cA=false, critical key usage
 * digitalSignature (+keyEncipherment for RSA keys), EKU serverAuth + clientAuth, a lifetime within
 * `maxTtl` and the issuer's, and a chain that verifies by signature to the current trust bundle.
 */
export class CertificateAuthority {
  /** The trust domain this CA issues identities in. */
  readonly trustDomain: string;
  /** The current trust bundle, then every change (root rotation, reload, upstream refresh). */
  readonly trustBundle$: Observable<TrustBundle>;
  /** Every root rotation step. */
  readonly rootRotation$: Observable<RootRotation>;

  private readonly backend: Backend;
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
  private readonly validator = new SvidValidator();
  private readonly jwt: JwtAuthority;
  private readonly maxJwtTtlMs: number;
  /** The JWT-SVID signing keys' bundle (`FetchJWTBundles`), then every change. */
  readonly jwtBundle$: Observable<JwtBundle>;
  private readonly rotator: RootRotator | undefined;
  private longestLifetimeMs: number;
  private readonly lastNotAfter = new WeakMap<SigningMaterial, number>();

  private constructor(
    options: CertificateAuthorityOptions,
    backend: (ca: { clock: () => number; backdateMs: number }) => Backend,
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
    this.longestLifetimeMs = this.defaultTtlMs;
    this.verifyPool = options.verifyThreads ? new VerifyPool(options.verifyThreads) : undefined;
    this.backend = backend({ clock: this.clock, backdateMs: this.backdateMs });
    this.bundle = new BehaviorSubject<TrustBundle>({
      trustDomain: this.trustDomain,
      roots: [...new Set(roots)],
      sequence: 1,
    });
    this.trustBundle$ = this.bundle.asObservable();
    this.maxJwtTtlMs = toMilliseconds(options.maxJwtTtl ?? 3_600_000, "maxJwtTtl");
    this.jwt = new JwtAuthority({
      trustDomain: this.trustDomain,
      clock: this.clock,
      scheduler: this.scheduler,
      retainMs: this.maxJwtTtlMs,
      tasks: this.tasks,
    });
    this.jwtBundle$ = this.jwt.bundle$;
    const local = this.backend.issuer;
    if (local instanceof LocalIssuer) {
      this.jwt.use(local.material.key);
      local.onUse((material) => this.jwt.use(material.key));
    }
    if (this.backend.kind === "self-signed") {
      // A self-signed root's key signs JWT-SVIDs too: every root of the bundle is a JWT authority,
      // so a prepared rotation's new key is known to validators before it signs.
      this.tasks.add(
        this.trustBundle$.subscribe((bundle) =>
          this.jwt.alsoPublish(bundle.roots.map((pem) => new X509Certificate(pem).publicKey)),
        ),
      );
    }
    const self = this.backend.kind === "self-signed" ? this.backend : undefined;
    this.rotator = self
      ? new RootRotator({
          trustDomain: this.trustDomain,
          keyType: self.keyType,
          rootTtlMs: self.rootTtlMs,
          backdateMs: this.backdateMs,
          clock: this.clock,
          scheduler: this.scheduler,
          logger: this.logger,
          tasks: this.tasks,
          material: () => self.issuer.material,
          use: (m) => self.issuer.use(m),
          roots: () => this.bundle.getValue().roots,
          publishRoots: (r) => this.publishRoots(r),
          // A stored root may have signed leaves this process never saw (before a restart, on
          // another replica): assume the longest any of them may live, maxTtl.
          longestLeafLifetimeMs: () =>
            self.store ? Math.max(this.maxTtlMs, this.longestLifetimeMs) : this.longestLifetimeMs,
          lastLeafNotAfter: (m) =>
            Math.max(this.lastNotAfter.get(m) ?? 0, self.store ? this.clock() + this.maxTtlMs : 0),
          persist: (m, roots) => (self.store ? this.persistRoot(self.store, m, roots) : undefined),
          emit: (rotation) => this.rotations.next(rotation),
        })
      : undefined;
    this.rootRotation$ = this.rotations.asObservable();
  }

  /**
   * A CA with a self-signed root (istiod's default mode). With `store`, the root is loaded from it
   * when one is stored (a restart, another replica) and stored there when it is generated here.
   */
  static async selfSigned(options: SelfSignedCaOptions): Promise<CertificateAuthority> {
    const keyType = options.keyType ?? "ecdsa-p256";
    const rootTtlMs = toMilliseconds(options.rootTtl ?? DEFAULT_ROOT_TTL_MS, "rootTtl");
    const trustDomain = SpiffeId.forTrustDomain(options.trustDomain).trustDomain;
    const now = (options.clock ?? Date.now)();
    const store = options.store;
    let stored = store ? await store.load() : undefined;
    if (!stored) {
      const { privateKey } = await generateKey(keyType);
      const root = await createSelfSignedRoot({
        key: privateKey,
        trustDomain,
        ttl: rootTtlMs,
        now,
        backdateMs: toMilliseconds(options.backdate ?? 60_000, "backdate"),
      });
      stored = {
        key: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
        cert: root.pem,
        roots: [root.pem],
      };
      if (store) stored = await store.create(stored);
    }
    const { material, roots } = materialFromStored(stored, store?.location ?? "self-signed root", now);
    const ca = new CertificateAuthority(
      options,
      ({ clock, backdateMs }) => ({
        kind: "self-signed",
        issuer: new LocalIssuer(material, { clock, backdateMs, name: "self-signed root" }),
        keyType,
        rootTtlMs,
        ...(store ? { store } : {}),
      }),
      roots,
    );
    if (store?.changes$) ca.followStore(store);
    return ca;
  }

  /**
   * A CA from Istio's plugged-in layout in `dir` (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
   * `cert-chain.pem`): an offline root with per-cluster intermediates. `root-cert.pem` may hold
   * several roots (a rotation's A+B state); expired ones are left out of the bundle. Throws a
   * precise `CaError` for missing files, malformed PEM, an expired signing certificate, a key that
   * does not match, or a chain that does not reach a root. With `watch`, changes are followed.
   */
  static async fromIstioCaCerts(
    dir: string,
    options: IstioCaCertsOptions = {},
  ): Promise<CertificateAuthority> {
    const loaded = await loadIstioCaCerts(dir, (options.clock ?? Date.now)());
    const ca = new CertificateAuthority(
      options,
      ({ clock, backdateMs }) => ({
        kind: "plugged",
        issuer: new LocalIssuer(loaded.material, { clock, backdateMs, name: dir }),
      }),
      loaded.roots,
    );
    for (const skipped of loaded.skippedRoots)
      ca.logger.warn("root left out of the trust bundle", { reason: skipped });
    if (options.watch) ca.watchCaCerts(dir);
    return ca;
  }

  /**
   * A CA backed by an external CA (cfssl, Vault PKI, … — adapters in `@meshlet/adapters`); it
   * still authenticates, authorizes and validates every leaf. A `leaf` signer signs every SVID; an
   * `intermediate` signer signs meshlet's own intermediate CA (key generated here, renewed at half
   * its lifetime) and meshlet signs the SVIDs. The signer's roots are fetched again every
   * `rootRefreshInterval`.
   */
  static async fromSigner(
    signer: ExternalSigner,
    options: FromSignerOptions = {},
  ): Promise<CertificateAuthority> {
    const roots = await fetchSignerRoots(signer);
    let ca: CertificateAuthority;
    if (signer.kind === "intermediate") {
      const upstream = new UpstreamAuthority(signer, {
        trustDomain: SpiffeId.forTrustDomain(options.trustDomain ?? "cluster.local").trustDomain,
        keyType: options.keyType ?? "ecdsa-p256",
        intermediateTtlMs: toMilliseconds(options.intermediateTtl ?? "48h", "intermediateTtl"),
        clock: options.clock ?? Date.now,
        scheduler: options.scheduler ?? asyncScheduler,
        logger: options.logger ?? silentLogger,
      });
      const material = await upstream.obtain(roots);
      ca = new CertificateAuthority(
        options,
        ({ clock, backdateMs }) => ({
          kind: "upstream",
          issuer: new LocalIssuer(material, { clock, backdateMs, name: `${signer.name} intermediate` }),
          upstream,
        }),
        roots,
      );
      const backend = ca.backend as Extract<Backend, { kind: "upstream" }>;
      upstream.scheduleRenewal(
        material,
        () => ca.trustBundle.roots,
        (renewed, fresh) => {
          ca.publishSignerRoots(fresh);
          backend.issuer.use(renewed);
        },
      );
    } else {
      ca = new CertificateAuthority(
        options,
        () => ({ kind: "external-leaf", issuer: new ExternalLeafIssuer(signer) }),
        roots,
      );
    }
    ca.refreshSignerRoots(
      signer,
      toMilliseconds(options.rootRefreshInterval ?? 3_600_000, "rootRefreshInterval"),
    );
    return ca;
  }

  /** The current trust bundle. */
  get trustBundle(): TrustBundle {
    return this.bundle.getValue();
  }

  /** The PEM certificate that signs leaves, or undefined for an external leaf signer. */
  get signingCertificate(): string | undefined {
    return this.backend.kind === "external-leaf"
      ? undefined
      : toPem("CERTIFICATE", this.backend.issuer.material.cert.der);
  }

  /**
   * Signs a workload CSR: checks its size, structure (strict DER) and self-signature, picks the
   * SPIFFE ID from the caller's authenticated `identities` (a CSR asking for any other ID is
   * refused with `identity-mismatch`), and returns the validated chain, leaf first, root last.
   */
  async sign(request: SignRequest): Promise<CertificateChain> {
    return (await this.signCsr(request)).chain;
  }

  /** Like {@link CertificateAuthority.sign}, also saying which SPIFFE ID was certified, until when. */
  async signCsr(request: SignRequest): Promise<SignedCertificate> {
    const ttlMs = resolveTtl(request.ttl, this.defaultTtlMs, this.maxTtlMs);
    const csr = parseCsr(request.csr, { maxBytes: this.maxCsrBytes });
    const spiffeId = resolveIdentity(csr.uris, request.identities, this.trustDomain);
    const spki = await csr.verifySignature(this.verifyPool);
    return this.issueChecked({
      spiffeId,
      spki,
      keyKind: csr.keyKind,
      ttlMs,
      dnsNames: [],
      ...(this.backend.issuer.needsCsr ? { csrPem: toPem("CERTIFICATE REQUEST", csr.der) } : {}),
    });
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
    const ttlMs = resolveTtl(request.ttl, this.defaultTtlMs, this.maxTtlMs);
    const spiffeId = resolveIdentity([], [request.identity], this.trustDomain);
    if (this.backend.issuer.needsCsr) {
      throw new CaError(
        "external-signer",
        "issue() needs a local signing key; use mintSvid() or sign() with a CSR",
      );
    }
    const publicKey =
      request.publicKey.type === "public" ? request.publicKey : createPublicKey(request.publicKey);
    const kind = publicKey.asymmetricKeyType;
    return (
      await this.issueChecked({
        spiffeId,
        spki: encodeSpki(publicKey),
        keyKind: kind === "rsa" ? "rsa" : kind === "ed25519" ? "ed25519" : "ec",
        ttlMs,
        dnsNames: checkDnsNames(request.dnsNames ?? []),
      })
    ).chain;
  }

  /** Generates a key (native) and issues an X509-SVID for it: what an agent does for a workload. */
  async mintSvid(request: {
    identity: SpiffeId | string;
    ttl?: Duration;
    keyType?: KeyType;
    /**
     * Extra DNS SANs (see {@link CertificateAuthority.issue}). With an external leaf signer they go
     * into the CSR sent to it (its role must allow exactly them) and the leaf must carry them.
     */
    dnsNames?: readonly string[];
  }): Promise<X509Svid> {
    const { privateKey, publicKey } = await generateKey(request.keyType ?? "ecdsa-p256");
    const spiffeId = resolveIdentity([], [request.identity], this.trustDomain);
    const ttl = request.ttl ?? this.defaultTtlMs;
    const chain = this.backend.issuer.needsCsr
      ? await this.signOwnKey(privateKey, spiffeId, ttl, request.dnsNames ?? [])
      : await this.issue({
          publicKey,
          identity: spiffeId,
          ttl,
          ...(request.dnsNames ? { dnsNames: request.dnsNames } : {}),
        });
    const leaf = parseCertificate(fromPemOf(chain[0] as string, "CERTIFICATE", "svid")[0] as Buffer);
    const { notBefore, notAfter } = leaf;
    return {
      spiffeId,
      chain,
      privateKey: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
      notBefore,
      notAfter,
    };
  }

  /**
   * Rotates a self-signed root now. `keep-key` (default) re-issues the root with the same key;
   * `new-key` publishes a new root, switches signing to it after `activateAfter`, and drops the
   * old root after `overlap` (see {@link RootRotationOptions}). Resolves with the first step.
   * Only for CAs created with {@link CertificateAuthority.selfSigned}; one rotation at a time.
   * With a `store`, each step is stored before it takes effect: when the store refuses (another
   * replica changed the root), nothing changes and the promise rejects with `root-store`.
   */
  rotateRoot(options: RootRotationOptions = {}): Promise<RootRotation> {
    if (!this.rotator) {
      return Promise.reject(
        new CaError(
          "ca-material",
          "rotateRoot: only a self-signed CA rotates its own root; plug in new CA files instead",
        ),
      );
    }
    return this.rotator.rotate(options);
  }

  /**
   * Checks the self-signed root every `checkInterval` and rotates it when less than
   * `gracePeriodRatio` of its lifetime remains, as istiod's self-signed root rotator does.
   * Unsubscribe the returned subscription (or call `close()`) to stop.
   */
  startRootRotation(options: RootRotatorOptions = {}): Subscription {
    if (!this.rotator)
      throw new CaError("ca-material", "startRootRotation: only a self-signed CA rotates its own root");
    return this.rotator.start(options);
  }

  /** The JWT-SVID signing keys, as a SPIFFE bundle's JWT authorities. */
  get jwtBundle(): JwtBundle {
    return this.jwt.current;
  }

  /**
   * Mints a JWT-SVID (SPIFFE JWT-SVID spec) for `identity`, signed by the CA's signing key: `sub`
   * the SPIFFE ID, `aud` the audiences (one is strongly recommended), `exp` after `ttl` (default 5
   * minutes, at most `maxJwtTtl`). Needs a local signing key (not an external leaf signer).
   */
  async mintJwtSvid(request: {
    identity: SpiffeId | string;
    audience: readonly string[];
    ttl?: Duration;
  }): Promise<JwtSvid> {
    const spiffeId = resolveIdentity([], [request.identity], this.trustDomain);
    const ttlMs = toMilliseconds(request.ttl ?? DEFAULT_JWT_SVID_TTL_MS, "ttl");
    if (ttlMs <= 0 || ttlMs > this.maxJwtTtlMs) {
      throw new CaError(
        "invalid-ttl",
        `JWT-SVID ttl ${formatDuration(ttlMs)} must be positive and at most ${formatDuration(this.maxJwtTtlMs)} (maxJwtTtl)`,
      );
    }
    return this.jwt.mint(spiffeId, request.audience, ttlMs);
  }

  /**
   * Validates a JWT-SVID of this trust domain for `audience` (JWT-SVID Appendix A); resolves with
   * the SPIFFE ID and claims, rejects with `unauthenticated` saying which rule failed.
   */
  validateJwtSvid(token: string, audience: string): Promise<ValidatedJwtSvid> {
    return this.jwt.validate(token, audience);
  }

  /** Stops timers, watches and verify threads, and completes `trustBundle$` and `rootRotation$`. */
  close(): void {
    this.jwt.complete();
    void this.verifyPool?.close();
    this.tasks.unsubscribe();
    if (this.backend.kind === "upstream") this.backend.upstream.close();
    this.bundle.complete();
    this.rotations.complete();
  }

  /**
   * An external leaf signer needs a CSR: one made here for a key generated here, with the SPIFFE ID
   * and the server-chosen DNS names (never a client's), validated to carry exactly those.
   */
  private async signOwnKey(
    privateKey: KeyObject,
    spiffeId: SpiffeId,
    ttl: Duration,
    dnsNames: readonly string[],
  ): Promise<CertificateChain> {
    const names = checkDnsNames(dnsNames);
    const csr = parseCsr(
      await createCsr({
        privateKey,
        uris: [spiffeId.toString()],
        ...(names.length > 0 ? { dnsNames: names } : {}),
      }),
      { maxBytes: this.maxCsrBytes },
    );
    return (
      await this.issueChecked({
        spiffeId,
        spki: await csr.verifySignature(this.verifyPool),
        keyKind: csr.keyKind,
        ttlMs: resolveTtl(ttl, this.defaultTtlMs, this.maxTtlMs),
        dnsNames: names,
        csrPem: toPem("CERTIFICATE REQUEST", csr.der),
      })
    ).chain;
  }

  /** Issues through the backend, then validates the result whatever made it. */
  private async issueChecked(request: Parameters<Issuer["issue"]>[0]): Promise<SignedCertificate> {
    const issuer = this.backend.issuer;
    const material = issuer instanceof LocalIssuer ? issuer.material : undefined;
    const chain = await issuer.issue(request);
    const now = this.clock();
    let validated: ValidatedSvid;
    try {
      validated = await this.validator.validate(chain, {
        spiffeId: request.spiffeId,
        roots: this.bundle.getValue().roots,
        maxTtlMs: this.maxTtlMs,
        now,
        spki: request.spki,
        dnsNames: request.dnsNames,
        maxBackdateMs: Math.max(this.backdateMs, DEFAULT_MAX_BACKDATE_MS),
      });
    } catch (error) {
      if (!issuer.needsCsr || !(error instanceof CaError) || error.code !== "invalid-svid") throw error;
      // The external CA's role or profile is wrong, not the caller's request: say whose it is.
      throw new CaError(
        "external-signer",
        `${issuer.name} returned a certificate that is ${error.message}; check the signer's profile or role`,
        { cause: error },
      );
    }
    const notAfter = validated.notAfter.getTime();
    this.longestLifetimeMs = Math.max(this.longestLifetimeMs, notAfter - now);
    if (material) this.lastNotAfter.set(material, Math.max(this.lastNotAfter.get(material) ?? 0, notAfter));
    return { chain: validated.chain, spiffeId: request.spiffeId, notAfter: validated.notAfter };
  }

  private publishRoots(roots: readonly string[]): void {
    const previous = this.bundle.getValue();
    this.bundle.next({
      trustDomain: this.trustDomain,
      roots: [...new Set(roots)],
      sequence: previous.sequence + 1,
    });
  }

  private publishRootsIfChanged(roots: readonly string[]): void {
    // The same roots in another order are the same bundle: no push for a reordering.
    const current = new Set(this.bundle.getValue().roots);
    const next = [...new Set(roots)];
    if (next.length !== current.size || next.some((r) => !current.has(r))) this.publishRoots(next);
  }

  /**
   * An external signer's roots: what it publishes now, plus every root of the bundle it stopped
   * publishing that has not expired (as SPIRE appends upstream roots and prunes only expired
   * ones): a root that left the signer's answer may still anchor the intermediate signing here
   * and the leaves workloads hold.
   */
  private publishSignerRoots(fresh: readonly string[]): void {
    const now = this.clock();
    const kept = this.bundle
      .getValue()
      .roots.filter((r) => !fresh.includes(r) && new Date(new X509Certificate(r).validTo).getTime() > now);
    this.publishRootsIfChanged([...fresh, ...kept]);
  }

  private persistRoot(store: RootStore, m: SigningMaterial, roots: readonly string[]): Promise<void> {
    return store.update({
      key: m.key.export({ format: "pem", type: "pkcs8" }) as string,
      cert: toPem("CERTIFICATE", m.cert.der),
      roots,
    });
  }

  /** Follows a root store changed elsewhere (another replica rotated). */
  private followStore(store: RootStore): void {
    const backend = this.backend as Extract<Backend, { kind: "self-signed" }>;
    this.tasks.add(
      store.changes$?.subscribe({
        next: (stored) => {
          try {
            const { material, roots } = materialFromStored(stored, store.location, this.clock());
            if (!material.cert.der.equals(backend.issuer.material.cert.der)) backend.issuer.use(material);
            this.publishRootsIfChanged(roots);
            this.rotator?.followed(roots);
          } catch (error) {
            this.logger.error("the stored root changed but cannot be used; keeping the current one", {
              store: store.location,
              error: String(error),
            });
          }
        },
        // A long-running CA never dies of its change feed (an unhandled observable error would
        // be thrown from a timer): it keeps signing with what it has.
        error: (error: unknown) =>
          this.logger.error("the root store's changes are no longer followed; keeping the current root", {
            store: store.location,
            error: String(error),
          }),
      }),
    );
  }

  private watchCaCerts(dir: string): void {
    const backend = this.backend as Extract<Backend, { kind: "plugged" }>;
    this.tasks.add(
      directoryChanges$(dir).subscribe({
        next: () => {
          loadIstioCaCerts(dir, this.clock()).then(
            (loaded) => {
              backend.issuer.use(loaded.material);
              this.publishRootsIfChanged(loaded.roots);
              this.logger.info("plugged-in CA files reloaded", { dir });
            },
            (error: unknown) =>
              this.logger.error("plugged-in CA files changed but do not load; keeping the current ones", {
                dir,
                error: String(error),
              }),
          );
        },
        error: (error: unknown) =>
          this.logger.error("plugged-in CA files are no longer watched; keeping the current ones", {
            dir,
            error: String(error),
          }),
      }),
    );
  }

  private refreshSignerRoots(signer: ExternalSigner, intervalMs: number): void {
    this.tasks.add(
      timer(intervalMs, intervalMs, this.scheduler).subscribe(() => {
        fetchSignerRoots(signer).then(
          (roots) => this.publishSignerRoots(roots),
          (error: unknown) =>
            this.logger.warn("could not refresh the signer's roots; keeping the current bundle", {
              signer: signer.name,
              error: String(error),
            }),
        );
      }),
    );
  }
}
