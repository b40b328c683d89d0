import type { ExternalSigner, ExternalSignRequest } from "@meshlet/ca";
import { CaError } from "@meshlet/ca";
import { requestJson } from "../http/http-json.js";

/** Options for {@link VaultPkiSigner}. */
export interface VaultPkiSignerOptions {
  /** Vault address, e.g. `https://vault.example:8200`. */
  readonly address: string;
  /** A Vault token allowed to `update` `<mount>/sign/<role>`. */
  readonly token: string;
  /** PKI secrets engine mount path (default `pki`). */
  readonly mount?: string;
  /** The role to sign with; it must allow the URI SANs (`allowed_uri_sans`) and not require a CN. */
  readonly role: string;
  /** Vault Enterprise namespace, sent as `X-Vault-Namespace`. */
  readonly namespace?: string;
  /** Request timeout in milliseconds (default 10s). */
  readonly timeoutMs?: number;
}

interface VaultSignResponse {
  data?: { certificate?: string; issuing_ca?: string; ca_chain?: string[] };
  errors?: string[];
}

/**
 * Signs X509-SVIDs with HashiCorp Vault's PKI secrets engine: `POST /v1/<mount>/sign/<role>` with
 * the CSR, `uri_sans` set to the SPIFFE ID the CA authorized, and a TTL; roots from
 * `GET /v1/<mount>/ca/pem`. Vault's role policy applies on top of meshlet's checks.
 */
export class VaultPkiSigner implements ExternalSigner {
  readonly name = "vault";
  readonly kind = "leaf" as const;
  private readonly options: VaultPkiSignerOptions;

  constructor(options: VaultPkiSignerOptions) {
    this.options = options;
  }

  async sign(request: ExternalSignRequest): Promise<readonly string[]> {
    const url = this.url(`sign/${encodeURIComponent(this.options.role)}`);
    const { status, json, text } = await requestJson(this.name, url, {
      method: "POST",
      headers: this.headers(),
      body: {
        csr: request.csrPem,
        uri_sans: request.spiffeId.toString(),
        ttl: `${Math.ceil(request.ttlMs / 1000)}s`,
        format: "pem",
        exclude_cn_from_sans: true,
      },
      timeoutMs: this.options.timeoutMs ?? 10_000,
    });
    const response = json as VaultSignResponse | undefined;
    const certificate = response?.data?.certificate;
    if (status !== 200 || !certificate) {
      throw new CaError(
        "external-signer",
        `vault ${url} answered ${status}: ${response?.errors?.join("; ") ?? text.slice(0, 200)}; check the token's policy and the role's allowed_uri_sans`,
      );
    }
    const chain = response.data?.ca_chain ?? (response.data?.issuing_ca ? [response.data.issuing_ca] : []);
    return [certificate, ...chain];
  }

  async roots(): Promise<readonly string[]> {
    const url = this.url("ca/pem");
    let response: Response;
    try {
      response = await fetch(url, {
        headers: this.headers(),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (error) {
      throw CaError.from(error, "external-signer", `vault: GET ${url} failed`);
    }
    const pem = await response.text();
    if (response.status !== 200 || !pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new CaError(
        "external-signer",
        `vault ${url} answered ${response.status} without a PEM certificate`,
      );
    }
    return [pem];
  }

  private url(path: string): string {
    const mount = (this.options.mount ?? "pki").replace(/^\/+|\/+$/g, "");
    return new URL(`/v1/${mount}/${path}`, this.options.address).toString();
  }

  private headers(): Record<string, string> {
    return {
      "X-Vault-Token": this.options.token,
      ...(this.options.namespace ? { "X-Vault-Namespace": this.options.namespace } : {}),
    };
  }
}
