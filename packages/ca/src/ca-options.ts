import type { SchedulerLike } from "rxjs";
import type { Duration } from "./duration.js";
import type { KeyType } from "./key-type.js";
import type { Logger } from "./logger.js";
import type { RootStore } from "./root-store.js";

/** Options shared by every way of creating a `CertificateAuthority`. */
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
  /** Scheduler for rotation, renewal and refresh timers (default `asyncScheduler`). */
  readonly scheduler?: SchedulerLike;
  /** Where the CA logs (default silent). */
  readonly logger?: Logger;
  /**
   * Longest JWT-SVID lifetime (default 1h); `mintJwtSvid` defaults to 5 minutes, as SPIRE. A
   * replaced signing key stays in the JWT bundle this long.
   */
  readonly maxJwtTtl?: Duration;
  /**
   * Verify CSR signatures on this many worker threads (default 0: on the main thread via the
   * libuv pool). Worth it for EC CSRs on multi-core machines, where key import dominates.
   */
  readonly verifyThreads?: number;
}

/** Options for `CertificateAuthority.selfSigned`. */
export interface SelfSignedCaOptions extends CertificateAuthorityOptions {
  readonly trustDomain: string;
  /** Root key type: `ecdsa-p256` (default) or `rsa-2048` (Istio's default). */
  readonly keyType?: KeyType;
  /** Root lifetime (default 10 years). */
  readonly rootTtl?: Duration;
  /**
   * Where the root is kept: loaded when one is stored, generated and stored otherwise, rewritten on
   * rotation, and followed when another replica changes it. See `DirectoryRootStore` (Istio's
   * `cacerts` layout) and `KubernetesSecretRootStore` (istiod's `istio-ca-secret`).
   */
  readonly store?: RootStore;
}

/** Options for `CertificateAuthority.fromIstioCaCerts`. */
export interface IstioCaCertsOptions extends CertificateAuthorityOptions {
  /**
   * Watch the directory and reload when the files change (a Kubernetes Secret update, an operator
   * adding a root): the new roots reach `trustBundle$` and the new key signs. A set of files that
   * does not load is logged and ignored; the CA keeps what it had.
   */
  readonly watch?: boolean;
}

/** Options for `CertificateAuthority.fromSigner`. */
export interface FromSignerOptions extends CertificateAuthorityOptions {
  /** Key type of meshlet's intermediate, for `intermediate` signers (default `ecdsa-p256`). */
  readonly keyType?: KeyType;
  /** Lifetime to request for the intermediate (default 48h); it is renewed at half of it. */
  readonly intermediateTtl?: Duration;
  /** How often the signer's roots are fetched again, so an upstream root rotation is followed (default 1h). */
  readonly rootRefreshInterval?: Duration;
}
