import { createHmac } from "node:crypto";
import type { ExternalSigner, ExternalSignRequest } from "@meshlet/ca";
import { CaError } from "@meshlet/ca";
import { requestJson } from "../http/http-json.js";

/** Options for {@link CfsslSigner}. */
export interface CfsslSignerOptions {
  /** cfssl API base URL, e.g. `http://127.0.0.1:8888`. */
  readonly url: string;
  /** Signing profile whose policy issues CA certificates (`ca_constraint.is_ca: true`). */
  readonly profile?: string;
  /** Hex HMAC key for profiles with an `auth_key`: requests go to `authsign` with a token. */
  readonly authKey?: string;
  /** Request timeout in milliseconds (default 10s). */
  readonly timeoutMs?: number;
}

interface CfsslResponse {
  success?: boolean;
  result?: { certificate?: string };
  errors?: { code?: number; message?: string }[];
}

/**
 * An upstream authority on CloudFlare's cfssl API (`cfssl serve`): it signs meshlet's intermediate
 * CA (`/api/v1/cfssl/sign`, or `authsign` with an HMAC token) and meshlet signs SVIDs with it.
 * cfssl's HTTP sign API cannot put URI SANs in a certificate, so it cannot sign SVIDs directly;
 * this is the same upstream-authority split SPIRE uses.
 */
export class CfsslSigner implements ExternalSigner {
  readonly name = "cfssl";
  readonly kind = "intermediate" as const;
  private readonly options: CfsslSignerOptions;

  constructor(options: CfsslSignerOptions) {
    this.options = options;
  }

  async sign(request: ExternalSignRequest): Promise<readonly string[]> {
    const hours = Math.max(1, Math.ceil(request.ttlMs / 3_600_000));
    const body = {
      certificate_request: request.csrPem,
      profile: this.options.profile ?? "intermediate",
      expiry: `${hours}h`,
    };
    let result: string;
    if (this.options.authKey) {
      // cfssl "standard" auth: the token is HMAC-SHA256(key, request bytes), both base64 in JSON.
      const bytes = Buffer.from(JSON.stringify(body));
      const token = createHmac("sha256", Buffer.from(this.options.authKey, "hex"))
        .update(bytes)
        .digest("base64");
      result = await this.call("authsign", { token, request: bytes.toString("base64") });
    } else {
      result = await this.call("sign", body);
    }
    return [result];
  }

  async roots(): Promise<readonly string[]> {
    return [await this.call("info", { profile: this.options.profile ?? "intermediate" })];
  }

  private async call(endpoint: string, body: unknown): Promise<string> {
    const url = new URL(`/api/v1/cfssl/${endpoint}`, this.options.url).toString();
    const { status, json, text } = await requestJson(this.name, url, {
      method: "POST",
      body,
      timeoutMs: this.options.timeoutMs ?? 10_000,
    });
    const response = json as CfsslResponse | undefined;
    const certificate = response?.result?.certificate;
    if (status !== 200 || !response?.success || !certificate) {
      const errors = response?.errors?.map((e) => `${e.code ?? ""} ${e.message ?? ""}`.trim()).join("; ");
      throw new CaError(
        "external-signer",
        `cfssl ${endpoint} answered ${status}: ${errors || text.slice(0, 200)}; check the profile and its policy`,
      );
    }
    return certificate;
  }
}
