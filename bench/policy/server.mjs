#!/usr/bin/env node
import { Server, ServerCredentials } from "@grpc/grpc-js";
// Child process of bench/policy/run.mjs: serves ext_authz and rate limit over gRPC on loopback so
// the load generator does not share an event loop with the server. Prints {"port":N} when ready.
import { ExtAuthzServer, PolicyEngine, parseRateLimitConfig, RateLimitServer } from "@meshlet/policy";
import { makePolicies } from "./policies.mjs";

const [, , policyCount = "100", redisUrl = ""] = process.argv;
const engine = new PolicyEngine({
  authorizationPolicies: makePolicies(Number(policyCount)),
  rateLimits: parseRateLimitConfig(
    "domain: bench\ndescriptors:\n  - key: user\n    rate_limit:\n      unit: hour\n      requests_per_unit: 1000000000\n",
  ),
});
if (redisUrl) {
  const { createRedisQuotaAdapter } = await import("@meshlet/adapters/redis");
  const adapter = createRedisQuotaAdapter({ url: redisUrl });
  await engine.registerAdapter(adapter, { failurePolicy: "fail-closed", timeoutMs: 1000 });
  if (adapter.client.status !== "ready") await new Promise((r) => adapter.client.once("ready", r));
}
const server = new Server();
// Baseline: a bare grpc-js unary echo, to show the transport's ceiling on the same machine.
const raw = (b) => b;
server.addService(
  {
    echo: {
      path: "/bench.Echo/Echo",
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  },
  { echo: (call, callback) => callback(null, call.request) },
);
new ExtAuthzServer({ engine }).register(server);
new RateLimitServer({ engine }).register(server);
const port = await new Promise((resolve, reject) =>
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);
process.stdout.write(`${JSON.stringify({ port })}\n`);
// SIGUSR2: report this process' CPU time so far (user + system, µs), for per-request CPU cost.
process.on("SIGUSR2", () => {
  const { user, system } = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuUs: user + system })}\n`);
});
process.on("SIGTERM", () => {
  server.forceShutdown();
  engine.close().finally(() => process.exit(0));
});
