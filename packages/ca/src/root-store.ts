import type { Observable } from "rxjs";

/**
 * A self-signed root as persisted: the signing key and certificate, and every root the trust
 * bundle holds (the signing root first; during a rotation the other root too).
 */
export interface StoredRoot {
  /** PEM private key of the root (PKCS#8). */
  readonly key: string;
  /** PEM root certificate that signs leaves. */
  readonly cert: string;
  /** PEM roots of the trust bundle, `cert` included. */
  readonly roots: readonly string[];
}

/**
 * Where `CertificateAuthority.selfSigned({ store })` keeps its root, so a restart keeps it and
 * replicas share it (istiod keeps its self-signed root in the `istio-ca-secret` Secret).
 * Implementations: {@link DirectoryRootStore} (Istio's plug-in `cacerts` file layout) and
 * {@link KubernetesSecretRootStore} (a Secret compatible with istiod's `istio-ca-secret`).
 */
export interface RootStore {
  /** Where the root lives, for logs and errors (a path, `namespace/name`). */
  readonly location: string;
  /** The stored root, or undefined when none is stored yet. */
  load(): Promise<StoredRoot | undefined>;
  /**
   * Stores a freshly generated root only if none is stored yet, and resolves with the root that is
   * stored afterwards: `root`, or the one another replica stored first (then use that one).
   */
  create(root: StoredRoot): Promise<StoredRoot>;
  /** Replaces the stored root (after a rotation). */
  update(root: StoredRoot): Promise<void>;
  /**
   * Optional: the stored root each time it changes elsewhere (another replica rotated, an operator
   * replaced the files). The CA follows it.
   */
  readonly changes$?: Observable<StoredRoot>;
}
