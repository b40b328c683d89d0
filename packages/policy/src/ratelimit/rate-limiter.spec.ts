import { describe, expect, it } from "vitest";
import { PolicyEngine } from "../policy-engine.js";
import { parseRateLimitConfig } from "./rate-limit-config.js";

// envoyproxy/ratelimit's documented example shapes.
const YAML = `
domain: edge
descriptors:
  - key: remote_address
    rate_limit:
      unit: second
      requests_per_unit: 2
  - key: generic_key
    value: unlimited
    rate_limit:
      unlimited: true
  - key: path
    value: /api/*
    rate_limit:
      unit: minute
      requests_per_unit: 3
  - key: tenant
    descriptors:
      - key: plan
        value: free
        rate_limit:
          name: free-plan
          unit: hour
          requests_per_unit: 1
      - key: plan
        rate_limit:
          unit: day
          requests_per_unit: 100
  - key: shadow
    shadow_mode: true
    rate_limit:
      unit: second
      requests_per_unit: 1
  - key: vip
    rate_limit:
      name: vip
      unit: hour
      requests_per_unit: 1000
      replaces:
        - name: free-plan
`;

function setup(start = Date.UTC(2026, 0, 1, 0, 0, 10, 250)) {
  const clock = { now: () => start };
  const engine = new PolicyEngine({ clock, rateLimits: parseRateLimitConfig(YAML, "edge.yaml") });
  const advance = (ms: number) => {
    start += ms;
  };
  return { engine, limiter: engine.rateLimiter, advance };
}
const d = (...kv: [string, string][]) => ({ entries: kv.map(([key, value]) => ({ key, value })) });

describe("RateLimiter", () => {
  it("limits per window and resets when the window rolls over", async () => {
    const { limiter, advance } = setup();
    const check = () =>
      limiter.shouldRateLimit({ domain: "edge", descriptors: [d(["remote_address", "10.0.0.1"])] });
    const first = await check();
    expect(first.statuses[0]).toEqual({
      code: "OK",
      currentLimit: { requestsPerUnit: 2, unit: "second" },
      limitRemaining: 1,
      durationUntilResetSeconds: 1,
    });
    expect((await check()).overallCode).toBe("OK");
    const third = await check();
    expect(third).toMatchObject({
      overallCode: "OVER_LIMIT",
      statuses: [{ code: "OVER_LIMIT", limitRemaining: 0 }],
    });
    expect(third.headers).toEqual({
      "ratelimit-limit": "2, 2;w=1",
      "ratelimit-remaining": "0",
      "ratelimit-reset": "1",
    });
    // Another address has its own counter.
    expect(
      (await limiter.shouldRateLimit({ domain: "edge", descriptors: [d(["remote_address", "10.0.0.2"])] }))
        .overallCode,
    ).toBe("OK");
    advance(1000);
    expect((await check()).overallCode).toBe("OK");
  });

  it("counts hits_addend", async () => {
    const { limiter } = setup();
    const r = await limiter.shouldRateLimit({
      domain: "edge",
      descriptors: [d(["remote_address", "a"])],
      hitsAddend: 3,
    });
    expect(r.overallCode).toBe("OVER_LIMIT");
  });

  it("walks nested descriptors: a specific value wins over the key default", async () => {
    const { limiter } = setup();
    const free = await limiter.shouldRateLimit({
      domain: "edge",
      descriptors: [d(["tenant", "acme"], ["plan", "free"])],
    });
    expect(free.statuses[0]?.currentLimit).toEqual({ name: "free-plan", requestsPerUnit: 1, unit: "hour" });
    expect(free.statuses[0]?.durationUntilResetSeconds).toBe(3590);
    const pro = await limiter.shouldRateLimit({
      domain: "edge",
      descriptors: [d(["tenant", "acme"], ["plan", "pro"])],
    });
    expect(pro.statuses[0]?.currentLimit).toEqual({ requestsPerUnit: 100, unit: "day" });
  });

  it("has no limit for a partial match, an unknown key or an unknown domain", async () => {
    const { limiter } = setup();
    for (const req of [
      { domain: "edge", descriptors: [d(["tenant", "acme"])] },
      { domain: "edge", descriptors: [d(["nope", "x"])] },
      { domain: "other", descriptors: [d(["remote_address", "x"])] },
    ]) {
      const r = await limiter.shouldRateLimit(req);
      expect(r.statuses[0]).toEqual({ code: "OK", limitRemaining: 0, durationUntilResetSeconds: 0 });
    }
  });

  it("matches wildcard values by prefix", async () => {
    const { limiter } = setup();
    const r = await limiter.shouldRateLimit({ domain: "edge", descriptors: [d(["path", "/api/users"])] });
    expect(r.statuses[0]?.currentLimit?.requestsPerUnit).toBe(3);
  });

  it("never limits an unlimited descriptor", async () => {
    const { limiter } = setup();
    for (let i = 0; i < 5; i++) {
      const r = await limiter.shouldRateLimit({
        domain: "edge",
        descriptors: [d(["generic_key", "unlimited"])],
      });
      expect(r.statuses[0]).toMatchObject({ code: "OK", unlimited: true });
    }
  });

  it("reports but does not enforce limits in shadow_mode", async () => {
    const { limiter } = setup();
    await limiter.shouldRateLimit({ domain: "edge", descriptors: [d(["shadow", "x"])] });
    const r = await limiter.shouldRateLimit({ domain: "edge", descriptors: [d(["shadow", "x"])] });
    expect(r).toMatchObject({
      overallCode: "OK",
      statuses: [{ code: "OK", shadowed: true, limitRemaining: 0 }],
    });
  });

  it("drops a limit replaced by another matched limit", async () => {
    const { limiter } = setup();
    const req = { domain: "edge", descriptors: [d(["tenant", "acme"], ["plan", "free"]), d(["vip", "yes"])] };
    for (let i = 0; i < 3; i++) {
      const r = await limiter.shouldRateLimit(req);
      expect(r.overallCode).toBe("OK");
      expect(r.statuses[0]).toEqual({ code: "OK", limitRemaining: 0, durationUntilResetSeconds: 0 });
      expect(r.statuses[1]?.currentLimit?.name).toBe("vip");
    }
  });

  it("honours a per-request limit override", async () => {
    const { limiter } = setup();
    const req = {
      domain: "edge",
      descriptors: [{ ...d(["x", "y"]), limit: { requestsPerUnit: 1, unit: "minute" as const } }],
    };
    expect((await limiter.shouldRateLimit(req)).overallCode).toBe("OK");
    expect((await limiter.shouldRateLimit(req)).overallCode).toBe("OVER_LIMIT");
  });

  it("reports the most restrictive descriptor in the headers and is OVER_LIMIT if any is", async () => {
    const { limiter } = setup();
    const req = {
      domain: "edge",
      descriptors: [d(["tenant", "a"], ["plan", "pro"]), d(["tenant", "a"], ["plan", "free"])],
    };
    await limiter.shouldRateLimit(req);
    const r = await limiter.shouldRateLimit(req);
    expect(r.statuses.map((s) => s.code)).toEqual(["OK", "OVER_LIMIT"]);
    expect(r.overallCode).toBe("OVER_LIMIT");
    expect(r.headers["ratelimit-limit"]).toBe("1, 1;w=3600");
  });

  it("allocates quota all-or-nothing, or best-effort", async () => {
    const { limiter } = setup();
    const descriptor = d(["path", "/api/q"]); // 3 per minute
    expect((await limiter.allocateQuota({ domain: "edge", descriptor, amount: 2 })).granted).toBe(2);
    expect((await limiter.allocateQuota({ domain: "edge", descriptor, amount: 2 })).granted).toBe(0);
    const best = await limiter.allocateQuota({ domain: "edge", descriptor, amount: 2, bestEffort: true });
    expect(best).toMatchObject({ granted: 1, validForSeconds: 50 });
    expect(
      (await limiter.allocateQuota({ domain: "edge", descriptor, amount: 1, bestEffort: true })).granted,
    ).toBe(0);
    expect(
      (await limiter.allocateQuota({ domain: "edge", descriptor: d(["free", "x"]), amount: 99 })).granted,
    ).toBe(99);
  });

  it("emits every decision on decisions$", async () => {
    const { limiter } = setup();
    const seen: string[] = [];
    const sub = limiter.decisions$.subscribe((x) => seen.push(x.overallCode));
    await limiter.shouldRateLimit({
      domain: "edge",
      descriptors: [d(["remote_address", "z"])],
      hitsAddend: 5,
    });
    sub.unsubscribe();
    expect(seen).toEqual(["OVER_LIMIT"]);
  });

  it("applies the counter backend's failure policy when it fails", async () => {
    for (const failurePolicy of ["fail-open", "fail-closed"] as const) {
      const { engine, limiter } = setup();
      await engine.registerAdapter(
        { name: "broken", kind: "quota", increment: () => Promise.reject(new Error("connection refused")) },
        { failurePolicy },
      );
      const r = await limiter.shouldRateLimit({ domain: "edge", descriptors: [d(["remote_address", "a"])] });
      expect(r.overallCode).toBe(failurePolicy === "fail-open" ? "OK" : "OVER_LIMIT");
      expect(r.adapterFailures[0]).toMatchObject({
        adapter: "broken",
        code: "adapter-failed",
        failurePolicy,
      });
    }
  });
});
