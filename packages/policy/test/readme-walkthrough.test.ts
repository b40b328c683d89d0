import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apiKeyAdapter } from "../examples/api-key-adapter.js";
import { type Attributes, PolicyEngine, PolicyError } from "../src/index.js";

// The README's walkthrough, run as written: a CUSTOM policy delegating /api/* to the adapter.
describe("README walkthrough: a custom policy adapter in 30 lines", () => {
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");

  async function engine() {
    const e = new PolicyEngine({
      authorizationPolicies: [
        {
          metadata: { name: "api-keys", namespace: "shop" },
          spec: {
            action: "CUSTOM",
            provider: { name: "api-key" },
            rules: [{ to: [{ operation: { paths: ["/api/*"] } }] }],
          },
        },
      ],
    });
    await e.registerAdapter(apiKeyAdapter(), {
      config: { keySha256: [sha("s3cret")] },
      timeoutMs: 50,
      failurePolicy: "fail-closed",
    });
    return e;
  }
  const req = (path: string, key?: string): Attributes => ({
    destination: { namespace: "shop" },
    request: { path, headers: key === undefined ? {} : { "x-api-key": key } },
  });

  it("lets a known key through, rewriting headers, and rejects others with 401", async () => {
    const e = await engine();
    const ok = await e.check(req("/api/cart", "s3cret"));
    expect(ok).toMatchObject({
      allowed: true,
      removeRequestHeaders: ["x-api-key"],
      requestHeaders: { "x-api-client": sha("s3cret").slice(0, 12) },
    });
    expect(await e.check(req("/api/cart", "guess"))).toMatchObject({
      allowed: false,
      status: 401,
      reason: "custom-denied",
    });
    expect((await e.check(req("/public"))).allowed).toBe(true);
  });

  it("rejects a config that does not match the adapter's schema", async () => {
    const e = new PolicyEngine();
    await expect(e.registerAdapter(apiKeyAdapter(), { config: { keys: ["x"] } as never })).rejects.toThrow(
      PolicyError,
    );
  });
});
