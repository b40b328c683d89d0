#!/usr/bin/env node
// bench/policy: in-process PolicyEngine.check() with 100 and 1,000 policies (a mesh's spread, all
// on one workload with and without the rule index); ext_authz Check and ShouldRateLimit over gRPC
// on loopback, driven by h2load (nghttp2-client, a native load generator) against the built-in
// HTTP/2 transport and, for comparison, grpc-js; ShouldRateLimit with the in-memory and the Redis
// counters (Redis: a redis-server started here on a free port). Prints one JSON document.
// `--quick` shrinks the runs. Run after `npm run build`. Needs `apt-get install -y nghttp2-client`
// for the gRPC part (skipped with a note otherwise) and redis-server for the Redis part.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { RateLimitDescriptorSchema } from "@meshlet/api/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import { CheckRequestSchema, CheckResponseSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import {
  RateLimitRequestSchema,
  RateLimitResponseSchema,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { PolicyEngine } from "@meshlet/policy";
import { makeMeshPolicies, makePolicies, makeUnindexedPolicies, request } from "./policies.mjs";

const quick = process.argv.includes("--quick");
// `--closed-loop`: the fixed-rate phase becomes one connection with one request in flight (each
// request sent when the previous answer arrives), so latency is the service's without the load
// generator's own scheduling; the JSON key is then `closedLoop` instead of `at5000rps`.
const closedLoop = process.argv.includes("--closed-loop");
const here = fileURLToPath(new URL(".", import.meta.url));
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** check() latencies in µs (the await included): p50, p99, max, and CPU per check. */
async function inProcess(name, policies) {
  const engine = new PolicyEngine({ authorizationPolicies: policies });
  if (engine.diagnostics.length > 0) throw new Error(`${name}: ${engine.diagnostics[0].message}`);
  const total = quick ? 5_000 : 100_000;
  for (let i = 0; i < 5_000; i++) await engine.check(request); // warm-up (JIT, workload cache)
  const lat = new Float64Array(total);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const t = performance.now();
    const d = await engine.check(request);
    lat[i] = performance.now() - t;
    if (!d.allowed) throw new Error(`${name}: unexpected deny: ${d.reason}`);
  }
  const wall = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  await engine.close();
  lat.sort();
  return {
    scenario: name,
    policies: policies.length,
    checks: total,
    perSecond: Math.round((total / wall) * 1000),
    p50Us: round(pct(lat, 50) * 1000),
    p99Us: round(pct(lat, 99) * 1000),
    maxUs: round(lat[lat.length - 1] * 1000),
    cpuUsPerCheck: round((cpu.user + cpu.system) / total, 2),
  };
}

async function startServer(policyCount, transport, redisUrl = "") {
  const child = spawn(
    process.execPath,
    [join(here, "server.mjs"), String(policyCount), transport, redisUrl],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const { value: line } = await lines.next();
  return {
    ports: JSON.parse(line),
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

/** One call with a real gRPC client, decoded: the server answers what the benchmark claims to measure. */
function sampleCall(port, path, reqSchema, resSchema, message) {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      path,
      (b) => b,
      (b) => fromBinary(resSchema, b),
      Buffer.from(toBinary(reqSchema, message)),
      (e, r) => {
        client.close();
        e ? reject(e) : resolve(r);
      },
    ),
  );
}

const SOCK = (ip, port) => ({
  address: {
    case: "socketAddress",
    value: { address: ip, portSpecifier: { case: "portValue", value: port } },
  },
});
const checkRequest = create(CheckRequestSchema, {
  attributes: {
    source: { principal: "spiffe://cluster.local/ns/frontend/sa/web", address: SOCK("10.0.0.7", 40000) },
    destination: { principal: "spiffe://cluster.local/ns/bench/sa/bench", address: SOCK("10.1.0.1", 8080) },
    // What the mesh sets in the ext_authz filter's context_extensions for the workload.
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
});
const rlRequest = create(RateLimitRequestSchema, {
  domain: "bench",
  descriptors: [create(RateLimitDescriptorSchema, { entries: [{ key: "user", value: "alice" }] })],
});

/** Writes the gRPC request body h2load sends: the 5-byte length prefix and the message. */
async function frameFile(dir, name, schema, message) {
  const bytes = toBinary(schema, message);
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  const file = join(dir, name);
  await writeFile(file, frame);
  return file;
}

function h2load(args) {
  const run = spawnSync("h2load", args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`h2load failed: ${run.stderr || run.stdout}`);
  const out = run.stdout;
  const num = (re) => Number(re.exec(out)?.[1] ?? Number.NaN);
  return {
    perSecond: Math.round(num(/finished in [\d.]+m?s, ([\d.]+) req\/s/)),
    requests: num(/requests: (\d+) total/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/),
  };
}

/** p50/p99/max of h2load's per-request log (third column: µs until the end of the response). */
async function logLatency(file) {
  const us = (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .map((l) => Number(l.split("\t")[2]))
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  return {
    p50Ms: round(pct(us, 50) / 1000, 3),
    p99Ms: round(pct(us, 99) / 1000, 3),
    maxMs: round(us[us.length - 1] / 1000, 3),
  };
}

/** Saturation (as fast as it answers) and a fixed 5,000 rps, with the server's CPU per request. */
async function measure(server, port, path, body, dir) {
  const url = `http://127.0.0.1:${port}${path}`;
  const common = ["-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers"];
  h2load(["-n", "2000", "-c", "4", "-m", "16", ...common, url]); // warm-up
  const total = quick ? 20_000 : 100_000;
  const cpu0 = await server.cpuUs();
  const max = h2load(["-n", String(total), "-c", "8", "-m", "32", ...common, url]);
  const cpu = (await server.cpuUs()) - cpu0;
  const log = join(dir, "h2load.log");
  await rm(log, { force: true });
  const seconds = quick ? 4 : 15;
  // 10 connections × 500 rps = 5,000 rps, up to 8 streams in flight per connection (open loop);
  // or, with --closed-loop, one connection and one request in flight.
  const shape = closedLoop ? ["-c", "1", "-m", "1"] : ["-c", "10", "-m", "8", "--rps", "500"];
  const fixed = h2load([
    "-D",
    String(seconds),
    ...shape,
    "--warm-up-time",
    "1",
    "--log-file",
    log,
    ...common,
    url,
  ]);
  return {
    saturation: { ...max, clients: 8, streamsPerClient: 32, serverCpuUsPerRequest: round(cpu / total) },
    ...(closedLoop
      ? { closedLoop: { ...fixed, ...(await logLatency(log)) } }
      : { at5000rps: { targetPerSecond: 5000, ...fixed, ...(await logLatency(log)) } }),
  };
}

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
  if (await Promise.race([ready.then(() => undefined), failed])) return undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await once(child, "exit");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const CHECK = "/envoy.service.auth.v3.Authorization/Check";
const RLS = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

const result = {
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  note: "check(): µs per call in this process (await included). gRPC: h2load (nghttp2) on loopback against a server child process; the two share this machine's cores.",
  loadAverageAtStart: loadavg().map((x) => round(x)),
  check: [
    await inProcess("mesh", makeMeshPolicies(100)),
    await inProcess("mesh", makeMeshPolicies(1000)),
    await inProcess("one-workload", makePolicies(100)),
    await inProcess("one-workload", makePolicies(1000)),
    await inProcess("one-workload-unindexed", makeUnindexedPolicies(100)),
    await inProcess("one-workload-unindexed", makeUnindexedPolicies(1000)),
  ],
};

if (spawnSync("h2load", ["--version"]).status !== 0) {
  result.grpc = { skipped: "h2load is not installed (apt-get install -y nghttp2-client)" };
} else {
  const dir = await mkdtemp(join(tmpdir(), "meshlet-bench-policy-"));
  try {
    const checkBody = await frameFile(dir, "check.bin", CheckRequestSchema, checkRequest);
    const rlBody = await frameFile(dir, "rls.bin", RateLimitRequestSchema, rlRequest);
    result.grpc = { checkRequestBytes: toBinary(CheckRequestSchema, checkRequest).length };
    for (const transport of ["http2", "grpc-js"]) {
      const server = await startServer(100, transport);
      try {
        const sample = await sampleCall(
          server.ports.authz,
          CHECK,
          CheckRequestSchema,
          CheckResponseSchema,
          checkRequest,
        );
        if (sample.status?.code !== 0 || sample.httpResponse.case !== "okResponse")
          throw new Error("Check: unexpected answer");
        const rl = await sampleCall(
          server.ports.rls,
          RLS,
          RateLimitRequestSchema,
          RateLimitResponseSchema,
          rlRequest,
        );
        if (rl.overallCode !== 1) throw new Error("ShouldRateLimit: unexpected answer");
        result.grpc[transport] = {
          extAuthzCheck: {
            policies: 101,
            ...(await measure(server, server.ports.authz, CHECK, checkBody, dir)),
          },
          shouldRateLimitMemory: await measure(server, server.ports.rls, RLS, rlBody, dir),
        };
      } finally {
        await server.stop();
      }
    }
    const redis = await startRedis();
    if (redis) {
      const server = await startServer(1, "http2", redis.url);
      try {
        result.grpc.http2.shouldRateLimitRedis = await measure(server, server.ports.rls, RLS, rlBody, dir);
      } finally {
        await server.stop();
        await redis.stop();
      }
    } else {
      result.grpc.http2.shouldRateLimitRedis = {
        skipped: "redis-server is not installed (apt-get install -y redis-server)",
      };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
result.loadAverageAtEnd = loadavg().map((x) => round(x));
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
