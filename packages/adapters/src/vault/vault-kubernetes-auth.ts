import { readFile } from "node:fs/promises";
import { CaError } from "@meshlet/ca";
import { requestJson } from "../http/http-json.js";

/** Options for {@link VaultKubernetesAuth}. */
export interface VaultKubernetesAuthOptions {
  /** Vault address, e.g. `https://vault.example:8200`. */
  readonly address: string;
  /** The Kubernetes auth role bound to this service account (`MESHLET_VAULT_AUTH_ROLE`). */
  readonly role: string;
  /** Kubernetes auth mount path (default `kubernetes`). */
  readonly mount?: string;
  /**
   * The projected service-account token (audience `vault`) presented at login, read again on every
   * login because the kubelet rotates it (default `/var/run/secrets/vault/token`).
   */
  readonly tokenPath?: string;
  /** Vault Enterprise namespace, sent as `X-Vault-Namespace`. */
  readonly namespace?: string;
  /** Request timeout in milliseconds (default 10s). */
  readonly timeoutMs?: number;
  /** Milliseconds since the epoch (default `Date.now`); tests pass a virtual clock. */
  readonly clock?: () => number;
  /**
   * Share of the lease after which the token is renewed (or, when not renewable, replaced by a new
   * login) before it is used again (default 2/3).
   */
  readonly renewAfter?: number;
}

/** The Vault token in use and when it stops being good. */
interface Lease {
  readonly token: string;
  /** Epoch ms; Infinity for a token without a lease (`lease_duration` 0). */
  readonly expiresAt: number;
  readonly renewAt: number;
  readonly renewable: boolean;
}

interface VaultAuthResponse {
  auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown };
  errors?: string[];
}

/**
 * A Vault token obtained with Vault's Kubernetes auth method: `POST /v1/auth/<mount>/login` with
 * `{ role, jwt }` (the projected service-account token), answered with `auth.client_token`,
 * `auth.lease_duration` (seconds) and `auth.renewable`. The token is renewed with
 * `POST /v1/auth/token/renew-self` once `renewAfter` of its lease has passed, or replaced by a new
 * login when it is not renewable, its renewal fails or it has expired. Renewal happens when the
 * token is asked for (no timers): a CA that signs nothing for a while logs in again on next use.
 * Every failure throws a `CaError` with code `external-signer` (gRPC UNAVAILABLE): no token, no
 * certificate.
 */
export class VaultKubernetesAuth {
  private readonly options: VaultKubernetesAuthOptions;
  private readonly clock: () => number;
  private lease: Lease | undefined;
  private pending: Promise<string> | undefined;

  constructor(options: VaultKubernetesAuthOptions) {
    if (options.role === "") throw new CaError("external-signer", "vault kubernetes auth: the role is empty");
    const renewAfter = options.renewAfter ?? 2 / 3;
    if (!(renewAfter > 0 && renewAfter < 1))
      throw new CaError(
        "external-signer",
        `vault kubernetes auth: renewAfter must be in (0, 1), got ${renewAfter}`,
      );
    this.options = options;
    this.clock = options.clock ?? Date.now;
  }

  /**
   * The current Vault token: logs in, renews or logs in again as needed. `refresh: true` drops the
   * token held (Vault refused it: revoked, or its policy changed) and logs in again.
   */
  token(options: { readonly refresh?: boolean } = {}): Promise<string> {
    if (options.refresh) this.lease = undefined;
    const lease = this.lease;
    if (lease !== undefined && this.clock() < lease.renewAt) return Promise.resolve(lease.token);
    // One login or renewal at a time; concurrent callers share it.
    this.pending ??= this.refresh(lease).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async refresh(lease: Lease | undefined): Promise<string> {
    if (lease?.renewable && this.clock() < lease.expiresAt) {
      try {
        this.lease = await this.call("auth/token/renew-self", {}, lease.token);
        return this.lease.token;
      } catch {
        // A token Vault will not renew (max TTL reached, revoked): log in again.
      }
    }
    this.lease = undefined;
    const jwt = await this.readJwt();
    this.lease = await this.call(`auth/${this.mount()}/login`, { role: this.options.role, jwt });
    return this.lease.token;
  }

  private async readJwt(): Promise<string> {
    const path = this.options.tokenPath ?? "/var/run/secrets/vault/token";
    let jwt: string;
    try {
      jwt = (await readFile(path, "utf8")).trim();
    } catch (error) {
      throw CaError.from(
        error,
        "external-signer",
        `vault kubernetes auth: cannot read the service-account token ${path}; mount a projected token with audience "vault" there`,
      );
    }
    if (jwt === "")
      throw new CaError(
        "external-signer",
        `vault kubernetes auth: the service-account token ${path} is empty`,
      );
    return jwt;
  }

  private async call(path: string, body: Record<string, unknown>, token?: string): Promise<Lease> {
    const url = new URL(`/v1/${path}`, this.options.address).toString();
    const started = this.clock();
    const { status, json, text } = await requestJson("vault kubernetes auth", url, {
      method: "POST",
      headers: {
        ...(token !== undefined ? { "X-Vault-Token": token } : {}),
        ...(this.options.namespace ? { "X-Vault-Namespace": this.options.namespace } : {}),
      },
      body,
      timeoutMs: this.options.timeoutMs ?? 10_000,
    });
    const response = json as VaultAuthResponse | undefined;
    const auth = response?.auth;
    if (status !== 200 || typeof auth?.client_token !== "string" || auth.client_token === "") {
      throw new CaError(
        "external-signer",
        `vault ${url} answered ${status}: ${response?.errors?.join("; ") ?? text.slice(0, 200)}; check the Kubernetes auth role "${this.options.role}" (bound service account, namespace, audience "vault")`,
      );
    }
    const seconds =
      typeof auth.lease_duration === "number" && auth.lease_duration > 0 ? auth.lease_duration : 0;
    const ms = seconds * 1000;
    return {
      token: auth.client_token,
      expiresAt: seconds === 0 ? Number.POSITIVE_INFINITY : started + ms,
      renewAt: seconds === 0 ? Number.POSITIVE_INFINITY : started + ms * (this.options.renewAfter ?? 2 / 3),
      renewable: auth.renewable === true,
    };
  }

  private mount(): string {
    return (this.options.mount ?? "kubernetes").replace(/^\/+|\/+$/g, "");
  }
}
