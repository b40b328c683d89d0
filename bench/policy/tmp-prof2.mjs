import { create, toBinary } from "@bufbuild/protobuf";
import { RateLimitDescriptorSchema } from "@meshlet/api/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import { CheckRequestSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { RateLimitRequestSchema } from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { ExtAuthzServer, PolicyEngine, parseRateLimitConfig, RateLimitServer } from "@meshlet/policy";
import { makePolicies } from "./policies.mjs";

const engine = new PolicyEngine({
  authorizationPolicies: makePolicies(100),
  rateLimits: parseRateLimitConfig(
    "domain: bench\ndescriptors:\n  - key: user\n    rate_limit:\n      unit: hour\n      requests_per_unit: 1000000000\n",
  ),
});
const which = process.argv[2];
const rls = new RateLimitServer({ engine });
const authz = new ExtAuthzServer({ engine });
const SOCK = (ip, port) => ({
  address: {
    case: "socketAddress",
    value: { address: ip, portSpecifier: { case: "portValue", value: port } },
  },
});
const cbytes = toBinary(
  CheckRequestSchema,
  create(CheckRequestSchema, {
    attributes: {
      source: { principal: "spiffe://cluster.local/ns/frontend/sa/web", address: SOCK("10.0.0.7", 40000) },
      destination: { principal: "spiffe://cluster.local/ns/bench/sa/bench", address: SOCK("10.1.0.1", 8080) },
      contextExtensions: { "meshlet.io/namespace": "bench", "meshlet.io/labels": '{"app":"bench"}' },
      request: {
        http: {
          method: "GET",
          path: "/api/items",
          host: "bench.svc",
          protocol: "HTTP/1.1",
          headers: {
            ":authority": "bench.svc",
            "user-agent": "curl/8.5",
            "x-request-id": "7f6e2c1a",
            "x-tenant": "tenant-x",
          },
        },
      },
    },
  }),
);
const rbytes = toBinary(
  RateLimitRequestSchema,
  create(RateLimitRequestSchema, {
    domain: "bench",
    descriptors: [create(RateLimitDescriptorSchema, { entries: [{ key: "user", value: "alice" }] })],
  }),
);
const fn = which === "rls" ? () => rls.shouldRateLimitBytes(rbytes) : () => authz.checkBytes(cbytes);
for (let i = 0; i < 5000; i++) await fn();
const t = performance.now();
const N = 100000;
for (let i = 0; i < N; i++) await fn();
console.log(which, "us", (((performance.now() - t) * 1000) / N).toFixed(2));
