import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type ServiceError, status } from "@grpc/grpc-js";
import { CheckRequestSchema, CheckResponseSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import {
  RateLimitRequestSchema,
  RateLimitResponseSchema,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CONTEXT_EXTENSION_LABELS,
  CONTEXT_EXTENSION_NAMESPACE,
  ExtAuthzServer,
  type ListeningServer,
  PolicyEngine,
  parseRateLimitConfig,
  RateLimitServer,
} from "../src/index.js";
import { TestGrpcClient } from "./grpc-client.js";

// The built-in HTTP/2 transport against two independent gRPC implementations: grpc-js and gRPC
// C-core (Debian's python3-grpcio, run with /usr/bin/python3), on loopback.
const script = fileURLToPath(new URL("./helpers/grpc-c-core-call.py", import.meta.url));
const CHECK = "/envoy.service.auth.v3.Authorization/Check";
const RLS = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

function cCore(port: number, path: string, request: Uint8Array, compression = "none"): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/bin/python3", [script, String(port), path, compression], { timeout: 60_000 });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      err += c;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`python3 exited ${code}: ${err}`)),
    );
    child.stdin.end(Buffer.from(request).toString("hex"));
  });
}

const checkRequest = create(CheckRequestSchema, {
  attributes: {
    contextExtensions: { [CONTEXT_EXTENSION_NAMESPACE]: "foo", [CONTEXT_EXTENSION_LABELS]: "{}" },
    request: { http: { method: "GET", path: "/public", host: "a" } },
  },
});

describe("the built-in HTTP/2 gRPC transport", () => {
  let engine: PolicyEngine;
  let authz: ListeningServer;
  let rls: ListeningServer;

  beforeAll(async () => {
    engine = new PolicyEngine({
      authorizationPolicies: [
        {
          metadata: { name: "public", namespace: "foo" },
          spec: { rules: [{ to: [{ operation: { paths: ["/public"] } }] }] },
        },
      ],
      rateLimits: parseRateLimitConfig(
        "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: minute\n      requests_per_unit: 1\n",
      ),
    });
    authz = await new ExtAuthzServer({ engine }).listen({ maxReceiveMessageBytes: 64 * 1024 });
    rls = await new RateLimitServer({ engine }).listen();
  });
  afterAll(async () => {
    await authz?.close(0);
    await rls?.close(0);
    await engine?.close();
  });

  it("answers gRPC C-core, uncompressed and gzip-compressed", async () => {
    for (const compression of ["none", "gzip"]) {
      const hex = await cCore(authz.port, CHECK, toBinary(CheckRequestSchema, checkRequest), compression);
      const res = fromBinary(CheckResponseSchema, Buffer.from(hex, "hex"));
      expect(res.status?.code).toBe(status.OK);
      expect(res.httpResponse.case).toBe("okResponse");
    }
    const rl = create(RateLimitRequestSchema, {
      domain: "d",
      descriptors: [{ entries: [{ key: "k", value: "v" }] }],
    });
    const codes = [];
    for (let i = 0; i < 2; i++) {
      const res = fromBinary(
        RateLimitResponseSchema,
        Buffer.from(await cCore(rls.port, RLS, toBinary(RateLimitRequestSchema, rl)), "hex"),
      );
      codes.push(res.overallCode);
    }
    expect(codes).toEqual([1, 2]); // OK, then OVER_LIMIT
  });

  it("answers UNIMPLEMENTED for a method it does not serve, and a C-core client sees the status", async () => {
    expect(await cCore(authz.port, "/envoy.service.auth.v2.Authorization/Check", new Uint8Array())).toMatch(
      /^ERROR UNIMPLEMENTED/,
    );
    const client = new TestGrpcClient(authz.port);
    try {
      const err = (await client
        .raw("/x.Y/Z", Buffer.alloc(0), CheckResponseSchema)
        .catch((e: unknown) => e)) as ServiceError;
      expect(err.code).toBe(status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });

  it("refuses a request larger than maxReceiveMessageBytes with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const big = create(CheckRequestSchema, {
      attributes: {
        contextExtensions: { [CONTEXT_EXTENSION_NAMESPACE]: "foo", [CONTEXT_EXTENSION_LABELS]: "{}" },
        request: { http: { path: "/public", body: "x".repeat(100_000) } },
      },
    });
    expect(await cCore(authz.port, CHECK, toBinary(CheckRequestSchema, big))).toMatch(
      /^ERROR RESOURCE_EXHAUSTED/,
    );
    const ok = fromBinary(
      CheckResponseSchema,
      Buffer.from(await cCore(authz.port, CHECK, toBinary(CheckRequestSchema, checkRequest)), "hex"),
    );
    expect(ok.status?.code).toBe(status.OK);
  });
});
