import { PolicyEngine, parseRateLimitConfig } from "@meshlet/policy";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRedisQuotaAdapter } from "../src/redis.js";
import { startRedis, type TestProcess } from "./processes.js";

// Against a real redis-server (Debian package `redis-server`), started here on a random loopback port.
const CONFIG = parseRateLimitConfig(`
domain: api
descriptors:
  - key: user
    rate_limit:
      unit: minute
      requests_per_unit: 5
`);
const check = (engine: PolicyEngine, user = "alice") =>
  engine.rateLimiter.shouldRateLimit({
    domain: "api",
    descriptors: [{ entries: [{ key: "user", value: user }] }],
  });

describe("Redis quota adapter against redis-server", () => {
  let redis: TestProcess;
  const engines: PolicyEngine[] = [];

  async function replica(failurePolicy: "fail-open" | "fail-closed" = "fail-closed", keyPrefix?: string) {
    const engine = new PolicyEngine({ rateLimits: CONFIG });
    const adapter = createRedisQuotaAdapter({
      url: `redis://127.0.0.1:${redis.port}`,
      ...(keyPrefix && { keyPrefix }),
    });
    await engine.registerAdapter(adapter, { failurePolicy, timeoutMs: 2000 });
    engines.push(engine);
    if (adapter.client.status !== "ready") await new Promise((r) => adapter.client.once("ready", r));
    return { engine, adapter };
  }

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await Promise.all(engines.splice(0).map((e) => e.close()));
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("shares one limit between engine replicas", async () => {
    const [a, b] = [await replica(), await replica()];
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      codes.push(
        (await check(a.engine, "shared")).overallCode,
        (await check(b.engine, "shared")).overallCode,
      );
    }
    expect(codes.filter((c) => c === "OK")).toHaveLength(5);
    expect(codes.slice(5)).toEqual(["OVER_LIMIT", "OVER_LIMIT", "OVER_LIMIT"]);
    const last = await check(a.engine, "shared");
    expect(last.statuses[0]?.limitRemaining).toBe(0);
  });

  it("stores fixed-window counters that expire with their window", async () => {
    const { engine, adapter } = await replica("fail-closed", "test:ttl:");
    await check(engine, "ttl");
    const keys = await adapter.client.keys("test:ttl:*");
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^test:ttl:api_user_ttl_\d+$/);
    const ttl = await adapter.client.ttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(await adapter.client.get(keys[0] as string)).toBe("1");
  });

  it("allocates quota best-effort across replicas", async () => {
    const [a, b] = [await replica(), await replica()];
    const descriptor = { entries: [{ key: "user", value: "quota" }] };
    expect((await a.engine.rateLimiter.allocateQuota({ domain: "api", descriptor, amount: 3 })).granted).toBe(
      3,
    );
    expect((await b.engine.rateLimiter.allocateQuota({ domain: "api", descriptor, amount: 3 })).granted).toBe(
      0,
    );
    expect(
      (await b.engine.rateLimiter.allocateQuota({ domain: "api", descriptor, amount: 3, bestEffort: true }))
        .granted,
    ).toBe(2);
  });

  it("applies fail-open and fail-closed when redis-server is killed, and recovers when it returns", async () => {
    const open = await replica("fail-open");
    const closed = await replica("fail-closed");
    expect((await check(open.engine, "kill")).overallCode).toBe("OK");
    const port = redis.port;
    const dir = redis.dir;
    await redis.kill("SIGKILL");
    await new Promise((r) =>
      open.adapter.client.status === "ready" ? open.adapter.client.once("close", r) : r(null),
    );
    const whenOpen = await check(open.engine, "kill");
    expect(whenOpen.overallCode).toBe("OK");
    expect(whenOpen.adapterFailures[0]).toMatchObject({ adapter: "redis", failurePolicy: "fail-open" });
    const whenClosed = await check(closed.engine, "kill");
    expect(whenClosed.overallCode).toBe("OVER_LIMIT");
    expect(whenClosed.adapterFailures[0]).toMatchObject({ adapter: "redis", failurePolicy: "fail-closed" });

    redis = await startRedis({ port, dir });
    await new Promise((r) =>
      closed.adapter.client.status === "ready" ? r(null) : closed.adapter.client.once("ready", r),
    );
    const healed = await check(closed.engine, "kill");
    expect(healed.adapterFailures).toEqual([]);
    expect(healed.overallCode).toBe("OK");
  });
});
