import type { ExternalSigner, ExternalSignRequest } from "@meshlet/ca";
import { CaError } from "@meshlet/ca";
import { requestJson } from "../http/http-json.js";

/** Gives the Vault token to use now; `refresh: true` when Vault refused the last one. */
export type VaultTokenProvider = (options?: { readonly refresh?: boolean }) => Promise<string>;

/** Options for {@link VaultPkiSigner}. */
export interface VaultPkiSignerOptions {
  /** Vault address, e.g. `https://vault.example:8200`. */
  readonly address: string;
  /**
   * A Vault token allowed to `update` `<mount>/sign/<role>`, or a provider of the current one
   * (e.g. `VaultKubernetesAuth#token`). A provider is asked before every request; when Vault
   * answers 403 it is asked once more with `{ refresh: true }` and the request is retried.
   */
  readonly token: string | VaultTokenProvider;
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
    const body = {
      csr: request.csrPem,
      uri_sans: request.spiffeId.toString(),
      ttl: `${Math.ceil(request.ttlMs / 1000)}s`,
      format: "pem",
      exclude_cn_from_sans: true,
    };
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const { status, json, text } = await this.withToken((headers) =>
      requestJson(this.name, url, { method: "POST", headers, body, timeoutMs }),
    );
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
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const { status, text: pem } = await this.withToken((headers) =>
      requestJson(this.name, url, { method: "GET", headers, timeoutMs }),
    );
    if (status !== 200 || !pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new CaError("external-signer", `vault ${url} answered ${status} without a PEM certificate`);
    }
    return [pem];
  }

  /** Sends with the current token; on 403 from a provider's token, once more with a fresh one. */
  private async withToken<T extends { status: number }>(
    send: (headers: Record<string, string>) => Promise<T>,
  ): Promise<T> {
    const token = this.options.token;
    if (typeof token === "string") return send(this.headers(token));
    const first = await send(this.headers(await token()));
    if (first.status !== 403) return first;
    return send(this.headers(await token({ refresh: true })));
  }

  private url(path: string): string {
    const mount = (this.options.mount ?? "pki").replace(/^\/+|\/+$/g, "");
    return new URL(`/v1/${mount}/${path}`, this.options.address).toString();
  }

  private headers(token: string): Record<string, string> {
    return {
      "X-Vault-Token": token,
      ...(this.options.namespace ? { "X-Vault-Namespace": this.options.namespace } : {}),
    };
  }
}
