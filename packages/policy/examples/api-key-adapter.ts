// The "custom policy adapter in 30 lines" walkthrough from README.md, kept compiling and tested
// (test/readme-walkthrough.test.ts).
import { createHash } from "node:crypto";
import type { CheckAdapter } from "@meshlet/policy";

interface ApiKeyConfig {
  /** SHA-256 hex digests of the accepted keys (never the keys themselves). */
  keySha256: string[];
  header?: string;
}

export function apiKeyAdapter(): CheckAdapter<ApiKeyConfig> {
  let accepted = new Set<string>();
  let header = "x-api-key";
  return {
    name: "api-key",
    kind: "check",
    configSchema: {
      type: "object",
      required: ["keySha256"],
      additionalProperties: false,
      properties: { keySha256: { type: "array", items: { type: "string" } }, header: { type: "string" } },
    },
    configure(config) {
      accepted = new Set(config.keySha256);
      header = config.header ?? header;
    },
    async check(attributes) {
      const key = attributes.request?.headers?.[header];
      const digest = key === undefined ? "" : createHash("sha256").update(key).digest("hex");
      if (!accepted.has(digest)) return { allowed: false, status: 401, body: "missing or unknown API key" };
      return {
        allowed: true,
        requestHeaders: { "x-api-client": digest.slice(0, 12) },
        removeRequestHeaders: [header],
      };
    },
  };
}
