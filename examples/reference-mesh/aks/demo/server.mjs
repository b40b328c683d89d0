// The reference mesh's demo service, one program for every role (no dependencies): an HTTP service
// that answers with its name and version and calls its upstreams, or, with MODE=loadgen, a load
// generator that keeps traffic flowing so the dashboards have something to show.
//
//   SERVICE_NAME  name in answers (default "demo")     UPSTREAMS   comma-separated URLs to call
//   VERSION       version in answers (default "v1")    ERROR_RATE  share of requests answered 503 (0-1)
//   PORT          listen port (default 8080)           LATENCY_MS  added delay per request
//   MODE=loadgen  TARGET (URL) and RPS (default 5)
//
// Istio's sidecars see and trace every call; the application must forward the trace headers for
// spans to join up (Istio docs, "Distributed Tracing": x-request-id, traceparent, b3 …).
import { createServer } from "node:http";

const env = process.env;
const name = env.SERVICE_NAME ?? "demo";
const version = env.VERSION ?? "v1";
const port = Number(env.PORT ?? 8080);
const upstreams = (env.UPSTREAMS ?? "").split(",").filter((u) => u !== "");
const errorRate = Number(env.ERROR_RATE ?? 0);
const latencyMs = Number(env.LATENCY_MS ?? 0);
const TRACE_HEADERS = [
  "x-request-id",
  "traceparent",
  "tracestate",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
  "b3",
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(url, headers) {
  const started = Date.now();
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
    const body = await res.json().catch(() => ({}));
    return { url, status: res.status, ms: Date.now() - started, body };
  } catch (error) {
    return { url, status: 0, ms: Date.now() - started, error: String(error?.message ?? error) };
  }
}

function serve() {
  let ready = true;
  const server = createServer(async (req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ok\n" : "draining\n");
      return;
    }
    if (latencyMs > 0) await sleep(latencyMs * (0.5 + Math.random()));
    if (Math.random() < errorRate) {
      res
        .writeHead(503, { "content-type": "application/json" })
        .end(JSON.stringify({ service: name, version, error: "injected failure" }));
      return;
    }
    const forwarded = Object.fromEntries(
      TRACE_HEADERS.filter((h) => req.headers[h] !== undefined).map((h) => [h, String(req.headers[h])]),
    );
    const calls = await Promise.all(upstreams.map((u) => call(u, forwarded)));
    const failed = calls.some((c) => c.status === 0 || c.status >= 500);
    res
      .writeHead(failed ? 502 : 200, { "content-type": "application/json" })
      .end(JSON.stringify({ service: name, version, traceHeaders: forwarded, upstreams: calls }));
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, () =>
    console.log(
      `${name} ${version} listening on :${server.address().port}, upstreams: ${upstreams.join(", ") || "none"}`,
    ),
  );
  const stop = () => {
    // Fail readiness first so endpoints drop this pod, then finish what is in flight.
    ready = false;
    setTimeout(() => server.close(() => process.exit(0)), 5000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function loadgen() {
  const target = env.TARGET ?? "http://frontend:8080/";
  const rps = Math.max(0.1, Number(env.RPS ?? 5));
  let stopped = false;
  process.on("SIGTERM", () => {
    stopped = true;
  });
  console.log(`loadgen: ${rps} req/s to ${target}`);
  let sent = 0;
  let failed = 0;
  while (!stopped) {
    const result = await call(target, {});
    sent++;
    if (result.status === 0 || result.status >= 500) failed++;
    if (sent % 100 === 0) console.log(`loadgen: ${sent} sent, ${failed} failed`);
    await sleep(1000 / rps);
  }
}

if (env.MODE === "loadgen") loadgen();
else serve();
