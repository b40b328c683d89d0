import { CaError } from "./ca-error.js";
import type { ExternalSigner } from "./external-signer.js";
import type { IssueRequest, Issuer } from "./issuer.js";

/**
 * An external CA that signs every leaf (`ExternalSigner` of kind `leaf`, e.g. Vault PKI). The CSR
 * is forwarded as verified; the CA validates whatever comes back against the SVID profile, so a
 * misconfigured role (extra SANs, a CN, a long TTL, another CA) never reaches a workload.
 */
export class ExternalLeafIssuer implements Issuer {
  readonly needsCsr = true;
  readonly name: string;
  private readonly signer: ExternalSigner;

  constructor(signer: ExternalSigner) {
    this.signer = signer;
    this.name = signer.name;
  }

  async issue(request: IssueRequest): Promise<readonly string[]> {
    if (!request.csrPem) {
      throw new CaError("external-signer", `${this.name}: an external signer needs the workload's CSR`);
    }
    try {
      return await this.signer.sign({
        csrPem: request.csrPem,
        spiffeId: request.spiffeId,
        ttlMs: request.ttlMs,
      });
    } catch (error) {
      throw CaError.from(error, "external-signer", `${this.name}: signing ${request.spiffeId} failed`);
    }
  }
}
