import { create } from "@bufbuild/protobuf";
import { type ServiceError, status } from "@grpc/grpc-js";
import {
  RateLimitDescriptor_EntrySchema,
  RateLimitDescriptor_RateLimitOverrideSchema,
  RateLimitDescriptorSchema,
} from "@meshlet/api/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import {
  RateLimitRequestSchema,
  RateLimitResponse_Code,
  RateLimitResponse_RateLimit_Unit,
  RateLimitResponseSchema,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { RateLimitUnit } from "@meshlet/api/envoy/type/v3/ratelimit_unit_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ListeningServer, PolicyEngine, parseRateLimitConfig, RateLimitServer } from "../src/index.js";
import { TestGrpcClient } from "./grpc-client.js";

// Real gRPC over loopback: the server is what Envoy's global rate limit filter would call.
const PATH = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
const descriptor = (entries: [string, string][], limit?: { requestsPerUnit: number; unit: RateLimitUnit }) =>
  create(RateLimitDescriptorSchema, {
    entries: entries.map(([key, value]) => create(RateLimitDescriptor_EntrySchema, { key, value })),
    ...(limit && { limit: create(RateLimitDescriptor_RateLimitOverrideSchema, limit) }),
  });

describe("RateLimitServer over gRPC", () => {
  let engine: PolicyEngine;
  let server: ListeningServer;
  let client: TestGrpcClient;

  beforeAll(async () => {
    engine = new PolicyEngine({
      rateLimits: parseRateLimitConfig(
        "domain: edge\ndescriptors:\n  - key: user\n    rate_limit:\n      name: per-user\n      unit: hour\n      requests_per_unit: 2\n",
      ),
    });
    server = await new RateLimitServer({ engine }).listen();
    client = new TestGrpcClient(server.port);
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await engine?.close();
  });

  it("answers per-descriptor statuses with limit, remaining, reset and RateLimit headers", async () => {
    const req = create(RateLimitRequestSchema, {
      domain: "edge",
      descriptors: [descriptor([["user", "alice"]]), descriptor([["other", "x"]])],
    });
    const first = await client.call(PATH, RateLimitRequestSchema, RateLimitResponseSchema, req);
    expect(first.overallCode).toBe(RateLimitResponse_Code.OK);
    const [s0, s1] = first.statuses;
    expect(s0?.code).toBe(RateLimitResponse_Code.OK);
    expect(s0?.currentLimit).toMatchObject({
      name: "per-user",
      requestsPerUnit: 2,
      unit: RateLimitResponse_RateLimit_Unit.HOUR,
    });
    expect(s0?.limitRemaining).toBe(1);
    expect(Number(s0?.durationUntilReset?.seconds)).toBeGreaterThan(0);
    expect(Number(s0?.durationUntilReset?.seconds)).toBeLessThanOrEqual(3600);
    expect(s1?.currentLimit).toBeUndefined();
    expect(first.responseHeadersToAdd.map((h) => h.key)).toEqual([
      "ratelimit-limit",
      "ratelimit-remaining",
      "ratelimit-reset",
    ]);
    await client.call(PATH, RateLimitRequestSchema, RateLimitResponseSchema, req);
    const third = await client.call(PATH, RateLimitRequestSchema, RateLimitResponseSchema, req);
    expect(third.overallCode).toBe(RateLimitResponse_Code.OVER_LIMIT);
    expect(third.statuses[0]?.limitRemaining).toBe(0);
  });

  it("applies a descriptor's limit override", async () => {
    const req = create(RateLimitRequestSchema, {
      domain: "edge",
      descriptors: [descriptor([["anything", "1"]], { requestsPerUnit: 1, unit: RateLimitUnit.MINUTE })],
    });
    expect((await client.call(PATH, RateLimitRequestSchema, RateLimitResponseSchema, req)).overallCode).toBe(
      RateLimitResponse_Code.OK,
    );
    const second = await client.call(PATH, RateLimitRequestSchema, RateLimitResponseSchema, req);
    expect(second.overallCode).toBe(RateLimitResponse_Code.OVER_LIMIT);
    expect(second.statuses[0]?.currentLimit?.unit).toBe(RateLimitResponse_RateLimit_Unit.MINUTE);
  });

  it("answers INVALID_ARGUMENT for an empty domain or an empty descriptor and keeps serving", async () => {
    for (const bad of [
      create(RateLimitRequestSchema, { domain: "", descriptors: [descriptor([["user", "a"]])] }),
      create(RateLimitRequestSchema, { domain: "edge", descriptors: [descriptor([])] }),
    ]) {
      const err = (await client
        .call(PATH, RateLimitRequestSchema, RateLimitResponseSchema, bad)
        .catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(status.INVALID_ARGUMENT);
    }
    const ok = await client.call(
      PATH,
      RateLimitRequestSchema,
      RateLimitResponseSchema,
      create(RateLimitRequestSchema, { domain: "edge", descriptors: [descriptor([["user", "bob"]])] }),
    );
    expect(ok.overallCode).toBe(RateLimitResponse_Code.OK);
  });
});
