#!/usr/bin/env node
// bench/policy: in-process PolicyEngine.check() with 100 and 1,000 policies; ext_authz Check over
// gRPC on loopback with C concurrent callers; ShouldRateLimit with the in-memory and the Redis
// counters (Redis: a redis-server started here on a free loopback port, skipped if not installed).
// Prints one JSON document. `--quick` shrinks the request counts. Run after `npm run build`.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { AddressSchema, SocketAddressSchema } from "@meshlet/api/envoy/config/core/v3/address_pb";
import { RateLimitDescriptorSchema } from "@meshlet/api/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import {
  AttributeContext_HttpRequestSchema,
  AttributeContext_PeerSchema,
  AttributeContext_RequestSchema,
  AttributeContextSchema,
} from "@meshlet/api/envoy/service/auth/v3/attribute_context_pb";
import { CheckRequestSchema, CheckResponseSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import {
  RateLimitRequestSchema,
  RateLimitResponseSchema,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { PolicyEngine } from "@meshlet/policy";
import { makePolicies, request } from "./policies.mjs";

const quick = process.argv.includes("--quick");
const here = fileURLToPath(new URL(".", import.meta.url));

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
function summary(latenciesMs, wallMs) {
  const s = Float64Array.from(latenciesMs).sort();
  const r = (x) => Math.round(x * 1000) / 1000;
  return {
    requests: s.length,
    perSecond: Math.round((s.length / wallMs) * 1000),
    p50Ms: r(pct(s, 50)),
    p99Ms: r(pct(s, 99)),
    maxMs: r(s[s.length - 1]),
  };
}

async function inProcess(n) {
  const engine = new PolicyEngine({ authorizationPolicies: makePolicies(n) });
  const total = quick ? 2_000 : n >= 1000 ? 10_000 : 50_000;
  for (let i = 0; i < Math.min(1000, total); i++) await engine.check(request); // warm-up (JIT, caches)
  const lat = new Array(total);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const t = performance.now();
    const d = await engine.check(request);
    lat[i] = performance.now() - t;
    if (!d.allowed) throw new Error(`unexpected deny: ${d.reason}`);
  }
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  await engine.close();
  return {
    policies: n + 1,
    ...summary(lat, wall),
    cpuUsPerDecision: Math.round(((cpu.user + cpu.system) / total) * 100) / 100,
  };
}

async function startServer(policyCount, redisUrl = "") {
  const child = spawn(process.execPath, [join(here, "server.mjs"), String(policyCount), redisUrl], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { value: line } = await lines.next();
  return {
    port: JSON.parse(line).port,
    /** The server process' CPU time so far, in µs. */
    cpuUs: async () => {
      child.kill("SIGUSR2");
      return JSON.parse((await lines.next()).value).cpuUs;
    },
    stop: async () => {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

/** C callers, each sending its next request when the previous answers, until `total` are done. */
async function load(server, path, reqSchema, resSchema, message, concurrency, total, validate = () => true) {
  const client = new Client(`127.0.0.1:${server.port}`, credentials.createInsecure());
  const bytes = reqSchema ? Buffer.from(toBinary(reqSchema, message)) : message;
  // Responses stay bytes during the run (Envoy decodes them in C++, not this load generator); one
  // is decoded up front to check the server answers what the benchmark claims to measure.
  const call = () =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(
        path,
        (b) => b,
        (b) => b,
        bytes,
        (e, r) => (e ? reject(e) : resolve(r)),
      ),
    );
  const sample = await call();
  if (resSchema && !validate(fromBinary(resSchema, sample))) throw new Error(`${path}: unexpected response`);
  for (let i = 0; i < 200; i++) await call(); // warm-up
  const lat = [];
  let issued = 0;
  const serverCpu0 = await server.cpuUs();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < total) {
        issued++;
        const t = performance.now();
        await call();
        lat.push(performance.now() - t);
      }
    }),
  );
  const wall = performance.now() - start;
  const serverCpuUs = (await server.cpuUs()) - serverCpu0;
  client.close();
  return {
    concurrency,
    ...summary(lat, wall),
    serverCpuUsPerRequest: Math.round((serverCpuUs / total) * 10) / 10,
  };
}

function checkRequest() {
  const peer = (principal, ip, port, labels = {}) =>
    create(AttributeContext_PeerSchema, {
      principal,
      labels,
      address: create(AddressSchema, {
        address: {
          case: "socketAddress",
          value: create(SocketAddressSchema, {
            address: ip,
            portSpecifier: { case: "portValue", value: port },
          }),
        },
      }),
    });
  return create(CheckRequestSchema, {
    attributes: create(AttributeContextSchema, {
      source: peer("spiffe://cluster.local/ns/frontend/sa/web", "10.0.0.7", 40000),
      destination: peer("spiffe://cluster.local/ns/bench/sa/bench", "10.1.0.1", 8080, { app: "bench" }),
      request: create(AttributeContext_RequestSchema, {
        http: create(AttributeContext_HttpRequestSchema, {
          method: "GET",
          path: "/api/items",
          host: "bench.svc",
          headers: { "x-tenant": "tenant-x" },
        }),
      }),
    }),
  });
}
const rlRequest = create(RateLimitRequestSchema, {
  domain: "bench",
  descriptors: [create(RateLimitDescriptorSchema, { entries: [{ key: "user", value: "alice" }] })],
});

async function freePort() {
  const s = createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function startRedis() {
  const dir = await mkdtemp(join(tmpdir(), "meshlet-bench-redis-"));
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const failed = once(child, "error").then(([e]) => e);
  let out = "";
  const ready = new Promise((resolve) =>
    child.stdout.on("data", (c) => {
      out += c;
      if (/Ready to accept/.test(out)) resolve();
    }),
  );
  const first = await Promise.race([ready.then(() => undefined), failed]);
  if (first) return undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await once(child, "exit");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const n = quick ? 3_000 : 20_000;
const result = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  note: "Latencies in ms. gRPC load runs in this process, the server in a child process, both on loopback. grpcEchoBaseline is a bare grpc-js echo on the same server at the same time: the transport's ceiling on this machine.",
  loadAverageAtStart: (await import("node:os")).loadavg().map((x) => Math.round(x * 10) / 10),
  check: [await inProcess(100), await inProcess(1000)],
};

const authz = await startServer(100);
try {
  result.extAuthz = [];
  result.grpcEchoBaseline = [];
  const checkBytes = toBinary(CheckRequestSchema, checkRequest()).length;
  for (const c of [1, 16, 64]) {
    result.extAuthz.push({
      policies: 101,
      ...(await load(
        authz,
        "/envoy.service.auth.v3.Authorization/Check",
        CheckRequestSchema,
        CheckResponseSchema,
        checkRequest(),
        c,
        n,
        (r) => r.status?.code === 0 && r.httpResponse.case === "okResponse",
      )),
    });
    // Same machine, same moment: an empty grpc-js unary echo of a same-sized payload.
    result.grpcEchoBaseline.push(
      await load(authz, "/bench.Echo/Echo", undefined, undefined, Buffer.alloc(checkBytes), c, n),
    );
  }
  result.shouldRateLimit = [
    {
      backend: "memory",
      ...(await load(
        authz,
        "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
        RateLimitRequestSchema,
        RateLimitResponseSchema,
        rlRequest,
        16,
        n,
        (r) => r.overallCode === 1,
      )),
    },
  ];
} finally {
  await authz.stop();
}

const redis = await startRedis();
if (redis) {
  const srv = await startServer(1, redis.url);
  try {
    result.shouldRateLimit.push({
      backend: "redis",
      ...(await load(
        srv,
        "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
        RateLimitRequestSchema,
        RateLimitResponseSchema,
        rlRequest,
        16,
        n,
        (r) => r.overallCode === 1,
      )),
    });
  } finally {
    await srv.stop();
    await redis.stop();
  }
} else {
  result.shouldRateLimit.push({
    backend: "redis",
    skipped: "redis-server is not installed (apt-get install redis-server)",
  });
}
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
