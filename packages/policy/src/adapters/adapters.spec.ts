import { firstValueFrom, take, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy } from "../authz/authorization-policy.js";
import { PolicyEngine } from "../policy-engine.js";
import { PolicyError } from "../policy-error.js";
import type { CheckAdapter } from "./adapter.js";

const custom: AuthorizationPolicy = {
  metadata: { name: "ext", namespace: "foo" },
  spec: { action: "CUSTOM", provider: { name: "slow" }, rules: [{}] },
};
const attrs = { destination: { namespace: "foo" }, request: { path: "/" } };

function adapter(behaviour: "hang" | "throw" | "allow"): CheckAdapter<{ url: string }> {
  return {
    name: "slow",
    kind: "check",
    configSchema: {
      type: "object",
      properties: { url: { type: "string" }, retries: { type: "integer", minimum: 0 } },
      required: ["url"],
      additionalProperties: false,
    },
    check: (_a, { signal }) => {
      if (behaviour === "throw") return Promise.reject(new Error("backend exploded"));
      if (behaviour === "allow") return Promise.resolve({ allowed: true });
      // Hangs until the engine aborts it on timeout.
      return new Promise((_resolve, reject) =>
        signal.addEventListener("abort", () => reject(new Error("aborted"))),
      );
    },
  };
}

describe("adapters", () => {
  it("validates adapter config against its schema, listing every problem", async () => {
    const engine = new PolicyEngine();
    const err = await engine
      .registerAdapter(adapter("allow"), { config: { urll: "x", retries: -1 } as never })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).code).toBe("invalid-adapter-config");
    expect((err as PolicyError).message).toContain("config.url: is required");
    expect((err as PolicyError).message).toContain("config.urll: is not a known option");
    expect((err as PolicyError).message).toContain("config.retries: must be >= 0");
  });

  it("passes the validated config to configure() and rejects a duplicate name", async () => {
    const engine = new PolicyEngine();
    let configured: unknown;
    await engine.registerAdapter(
      {
        ...adapter("allow"),
        configure: (c: { url: string }) => {
          configured = c;
        },
      },
      { config: { url: "http://x" } },
    );
    expect(configured).toEqual({ url: "http://x" });
    await expect(engine.registerAdapter(adapter("allow"), { config: { url: "y" } })).rejects.toThrow(
      /already registered/,
    );
  });

  it("times out a hanging adapter and fails closed by default, reporting the failure", async () => {
    const engine = new PolicyEngine({ authorizationPolicies: [custom] });
    await engine.registerAdapter(adapter("hang"), { config: { url: "x" }, timeoutMs: 20 });
    const failure = firstValueFrom(engine.adapterFailures$);
    const d = await engine.check(attrs);
    expect(d).toMatchObject({ allowed: false, reason: "custom-provider-failed" });
    expect(d.adapterFailures).toEqual([
      {
        adapter: "slow",
        kind: "check",
        code: "adapter-timeout",
        message: "no answer within 20 ms",
        failurePolicy: "fail-closed",
      },
    ]);
    expect((await failure).code).toBe("adapter-timeout");
  });

  it("fails open when configured so: the request continues to DENY/ALLOW evaluation", async () => {
    const engine = new PolicyEngine({ authorizationPolicies: [custom] });
    await engine.registerAdapter(adapter("throw"), { config: { url: "x" }, failurePolicy: "fail-open" });
    const decisions = firstValueFrom(engine.decisions$.pipe(take(1), toArray()));
    const d = await engine.check(attrs);
    expect(d).toMatchObject({ allowed: true, reason: "no-allow-policies" });
    expect(d.adapterFailures[0]).toMatchObject({
      code: "adapter-failed",
      message: "backend exploded",
      failurePolicy: "fail-open",
    });
    expect((await decisions)[0]?.adapterFailures).toHaveLength(1);
  });

  it("delivers reports to every report adapter and returns failures", async () => {
    const engine = new PolicyEngine();
    const got: number[] = [];
    await engine.registerAdapter({
      name: "sink",
      kind: "report",
      report: async (r) => void got.push(...r.map((x) => x.responseCode)),
    });
    await engine.registerAdapter({
      name: "broken",
      kind: "report",
      report: async () => Promise.reject(new Error("down")),
    });
    const failures = await engine.report([{ attributes: {}, responseCode: 200, durationMs: 3 }]);
    expect(got).toEqual([200]);
    expect(failures.map((f) => f.adapter)).toEqual(["broken"]);
  });
});
