#!/usr/bin/env node
// Child process of bench/policy/run.mjs: serves ext_authz and rate limit on loopback so the load
// generator does not share an event loop with the server. Prints {"authz":port,"rls":port} when
// ready. Arguments: policy count, "http2" (the built-in transport) or "grpc-js", Redis URL or "".
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { ExtAuthzServer, PolicyEngine, parseRateLimitConfig, RateLimitServer } from "@meshlet/policy";
import { makePolicies } from "./policies.mjs";

const [, , policyCount = "100", transport = "http2", redisUrl = ""] = process.argv;
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
const authz = new ExtAuthzServer({ engine });
const rls = new RateLimitServer({ engine });
let ports;
let stop;
if (transport === "grpc-js") {
  const server = new Server();
  authz.register(server);
  rls.register(server);
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  ports = { authz: port, rls: port };
  stop = async () => server.forceShutdown();
} else {
  const a = await authz.listen();
  const r = await rls.listen();
  ports = { authz: a.port, rls: r.port };
  stop = async () => {
    await a.close(0);
    await r.close(0);
  };
}
process.stdout.write(`${JSON.stringify(ports)}\n`);
// SIGUSR2: report this process' CPU time so far (user + system, µs), for per-request CPU cost.
process.on("SIGUSR2", () => {
  const { user, system } = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuUs: user + system })}\n`);
});
process.on("SIGTERM", () => {
  stop()
    .then(() => engine.close())
    .finally(() => process.exit(0));
});
