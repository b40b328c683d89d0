import { createPrivateKey, type KeyObject } from "node:crypto";
import type { Observable } from "rxjs";
import { CaError } from "./ca-error.js";
import { fromPemOf, toPem } from "./pem.js";
import { createSigningMaterial, type SigningMaterial } from "./signing-material.js";

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

/** Reads a stored root: key and certificate must match and the certificate must be valid now. */
export function materialFromStored(
  stored: StoredRoot,
  where: string,
  now: number,
): { material: SigningMaterial; roots: readonly string[] } {
  let key: KeyObject;
  try {
    key = createPrivateKey(stored.key);
  } catch (error) {
    throw CaError.from(error, "root-store", `${where}: the stored root key cannot be decoded`);
  }
  const certDer = fromPemOf(stored.cert, "CERTIFICATE", `${where} root certificate`)[0] as Buffer;
  const material = createSigningMaterial(key, certDer, [toPem("CERTIFICATE", certDer)], where);
  if (material.cert.notAfter.getTime() <= now) {
    throw new CaError(
      "ca-expired",
      `${where}: the stored root expired at ${material.cert.notAfter.toISOString()}; remove it to generate a new one`,
    );
  }
  const rootPem = toPem("CERTIFICATE", material.cert.der);
  const others = stored.roots.flatMap((r) =>
    fromPemOf(r, "CERTIFICATE", `${where} roots`).map((der) => toPem("CERTIFICATE", der)),
  );
  return { material, roots: [rootPem, ...others.filter((r) => r !== rootPem)] };
}
