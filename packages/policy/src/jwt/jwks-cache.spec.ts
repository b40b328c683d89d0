import type { Logger } from "@meshlet/api/logger";
import { describe, expect, it } from "vitest";
import { JwksCache } from "./jwks-cache.js";

// One Logger interface across packages (@meshlet/api/logger): context goes in a fields object,
// never as extra positional arguments, so a structured logger can index it.
describe("JwksCache logging", () => {
  it("reports a failed fetch with the URI and the error as fields", async () => {
    const calls: Array<[string, Record<string, unknown> | undefined]> = [];
    const logger: Logger = {
      debug() {},
      info() {},
      warn: (message, fields) => {
        calls.push([message, fields]);
      },
      error() {},
    };
    const cache = new JwksCache({
      clock: { now: () => 0 },
      logger,
      fetch: async () => ({ ok: false, status: 503, json: async () => ({}) }),
    });
    await expect(cache.get("https://issuer.example/jwks")).rejects.toMatchObject({
      code: "jwks-fetch-failed",
    });
    expect(calls).toHaveLength(1);
    const [message, fields] = calls[0] ?? [];
    expect(message).toContain("fetching JWKS https://issuer.example/jwks failed");
    expect(fields).toMatchObject({ uri: "https://issuer.example/jwks", error: "HTTP 503" });
  });
});
