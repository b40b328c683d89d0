import { X509Certificate } from "node:crypto";
import { type SchedulerLike, Subscription } from "rxjs";
import { CaError } from "./ca-error.js";
import type { ExternalSigner } from "./external-signer.js";
import { generateKey, type KeyType } from "./key-type.js";
import type { Logger } from "./logger.js";
import { fromPemOf, toPem } from "./pem.js";
import { createSigningMaterial, type SigningMaterial } from "./signing-material.js";
import { SpiffeId } from "./spiffe-id.js";
import { createCsr } from "./x509/csr.js";

/** Fetches an external signer's roots as normalised PEM (one certificate per entry). */
export async function fetchSignerRoots(signer: ExternalSigner): Promise<string[]> {
  let roots: readonly string[];
  try {
    roots = await signer.roots();
  } catch (error) {
    throw CaError.from(error, "external-signer", `${signer.name}: cannot fetch the root certificates`);
  }
  if (roots.length === 0)
    throw new CaError("external-signer", `${signer.name}: returned no root certificates`);
  return roots.flatMap((pem, i) =>
    fromPemOf(pem, "CERTIFICATE", `${signer.name} root ${i + 1}`).map((der) => toPem("CERTIFICATE", der)),
  );
}

/** Options for {@link UpstreamAuthority}. */
export interface UpstreamAuthorityOptions {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly intermediateTtlMs: number;
  readonly clock: () => number;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
}

/**
 * An upstream authority (SPIRE's term): an external CA that signs meshlet's own intermediate (key
 * generated here), which then signs the SVIDs locally. Needed for CAs that cannot put URI SANs in
 * a certificate, such as cfssl's HTTP API. The intermediate is renewed at half its lifetime.
 */
export class UpstreamAuthority {
  private readonly signer: ExternalSigner;
  private readonly options: UpstreamAuthorityOptions;
  private readonly tasks = new Subscription();

  constructor(signer: ExternalSigner, options: UpstreamAuthorityOptions) {
    this.signer = signer;
    this.options = options;
  }

  /** Generates a key, has the upstream sign its intermediate, and checks what comes back. */
  async obtain(roots: readonly string[]): Promise<SigningMaterial> {
    const { signer } = this;
    const { privateKey } = await generateKey(this.options.keyType);
    const trustDomainId = SpiffeId.forTrustDomain(this.options.trustDomain);
    const csrPem = await createCsr({
      privateKey,
      uris: [trustDomainId.toString()],
      subject: { organization: this.options.trustDomain, commonName: "meshlet intermediate CA" },
    });
    let chain: readonly string[];
    try {
      chain = await signer.sign({ csrPem, spiffeId: trustDomainId, ttlMs: this.options.intermediateTtlMs });
    } catch (error) {
      throw CaError.from(
        error,
        "external-signer",
        `${signer.name}: signing meshlet's intermediate CA failed`,
      );
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
    const material = createSigningMaterial(
      privateKey,
      ders[0] as Buffer,
      pems,
      `${signer.name} intermediate`,
    );
    if (material.cert.subjectRaw.length <= 2) {
      // RFC 5280 4.1.2.4: the issuer field of the leaves must be a non-empty name.
      throw new CaError(
        "external-signer",
        `${signer.name}: the intermediate it signed has an empty subject; configure it to keep the CSR's subject`,
      );
    }
    return material;
  }

  /**
   * Renews the intermediate at half its lifetime (retrying every 30s on failure), refreshing the
   * upstream's roots first so a rotated upstream root reaches the trust bundle.
   */
  scheduleRenewal(
    current: SigningMaterial,
    roots: () => readonly string[],
    update: (material: SigningMaterial, roots: readonly string[]) => void,
  ): void {
    const { clock, scheduler, logger } = this.options;
    const cert = current.cert;
    const half = cert.notBefore.getTime() + (cert.notAfter.getTime() - cert.notBefore.getTime()) / 2;
    const attempt = (delay: number) =>
      this.tasks.add(
        scheduler.schedule(() => {
          const renew = async () => {
            const fresh = await fetchSignerRoots(this.signer).catch(() => roots());
            return { material: await this.obtain(fresh), fresh };
          };
          renew().then(
            ({ material, fresh }) => {
              update(material, fresh);
              logger.info("intermediate CA renewed", {
                signer: this.signer.name,
                notAfter: material.cert.notAfter.toISOString(),
              });
              this.scheduleRenewal(material, roots, update);
            },
            (error: unknown) => {
              logger.error("intermediate CA renewal failed; retrying in 30s", {
                signer: this.signer.name,
                error: String(error),
              });
              attempt(30_000);
            },
          );
        }, delay),
      );
    attempt(Math.max(0, half - clock()));
  }

  /** Stops renewal. */
  close(): void {
    this.tasks.unsubscribe();
  }
}
