import { type AuthorizationPolicy, PolicyEngine, parseRateLimitConfig } from "@meshlet/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPrometheusReportAdapter,
  type MetricsServer,
  PolicyMetrics,
  serveMetrics,
} from "../src/prometheus.js";
import { startPrometheus, type TestProcess } from "./processes.js";

// A real Prometheus (Debian package `prometheus`) scrapes the adapter's /metrics on loopback; the
// test then asks Prometheus' HTTP API for the series, as a dashboard would.
interface QueryResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(prom: TestProcess, promql: string): Promise<QueryResult[]> {
  const res = await fetch(`http://127.0.0.1:${prom.port}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; data: { result: QueryResult[] } };
  if (body.status !== "success") throw new Error(`query ${promql} failed: ${JSON.stringify(body)}`);
  return body.data.result;
}

/** Prometheus has no push notification for "scraped": poll its API, bounded in time. */
async function eventually(
  prom: TestProcess,
  promql: string,
  ok: (r: QueryResult[]) => boolean,
): Promise<QueryResult[]> {
  const deadline = Date.now() + 45_000;
  let last: QueryResult[] = [];
  while (Date.now() < deadline) {
    last = await query(prom, promql);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${promql} never satisfied the expectation; last result ${JSON.stringify(last)}`);
}

describe("Prometheus adapter scraped by a real prometheus", () => {
  let engine: PolicyEngine;
  let metrics: MetricsServer;
  let prom: TestProcess;

  beforeAll(async () => {
    const policies: AuthorizationPolicy[] = [
      {
        metadata: { name: "deny-admin", namespace: "shop" },
        spec: { action: "DENY", rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }] },
      },
      {
        metadata: { name: "ext", namespace: "shop" },
        spec: {
          action: "CUSTOM",
          provider: { name: "flaky" },
          rules: [{ to: [{ operation: { paths: ["/flaky"] } }] }],
        },
      },
    ];
    engine = new PolicyEngine({
      authorizationPolicies: policies,
      rateLimits: parseRateLimitConfig(
        "domain: shop\ndescriptors:\n  - key: user\n    rate_limit:\n      unit: hour\n      requests_per_unit: 1\n",
      ),
    });
    const policyMetrics = new PolicyMetrics();
    policyMetrics.observe(engine);
    const istio = createPrometheusReportAdapter();
    await engine.registerAdapter(istio);
    await engine.registerAdapter(
      { name: "flaky", kind: "check", check: () => Promise.reject(new Error("boom")) },
      { failurePolicy: "fail-open" },
    );
    const dest = {
      namespace: "shop",
      labels: { app: "cart", version: "v2" },
      principal: "cluster.local/ns/shop/sa/cart",
    };
    await engine.check({ destination: dest, request: { path: "/admin/users" } });
    await engine.check({ destination: dest, request: { path: "/flaky" } });
    for (let i = 0; i < 2; i++) {
      await engine.rateLimiter.shouldRateLimit({
        domain: "shop",
        descriptors: [{ entries: [{ key: "user", value: "u" }] }],
      });
    }
    const attributes = {
      source: { principal: "cluster.local/ns/web/sa/frontend" },
      destination: dest,
      request: { host: "cart.shop.svc.cluster.local:8080", method: "GET", path: "/cart" },
    };
    await engine.report([
      {
        attributes,
        responseCode: 200,
        durationMs: 12,
        requestBytes: 100,
        responseBytes: 2048,
        sourceWorkload: "frontend",
        destinationWorkload: "cart-v2",
        connectionSecurityPolicy: "mutual_tls",
      },
      {
        attributes,
        responseCode: 200,
        durationMs: 30,
        sourceWorkload: "frontend",
        destinationWorkload: "cart-v2",
        connectionSecurityPolicy: "mutual_tls",
      },
      {
        attributes,
        responseCode: 503,
        durationMs: 5,
        sourceWorkload: "frontend",
        destinationWorkload: "cart-v2",
        connectionSecurityPolicy: "mutual_tls",
        responseFlags: "UH",
      },
    ]);
    metrics = await serveMetrics([policyMetrics.registry, istio.registry]);
    prom = await startPrometheus([`127.0.0.1:${metrics.port}`]);
  });
  afterAll(async () => {
    await prom?.stop();
    await metrics?.close();
    await engine?.close();
  });

  it("exposes istio_requests_total with Istio's labels", async () => {
    const result = await eventually(prom, 'istio_requests_total{job="meshlet"}', (r) => r.length === 2);
    const ok = result.find((r) => r.metric.response_code === "200");
    expect(ok?.value[1]).toBe("2");
    expect(ok?.metric).toMatchObject({
      reporter: "destination",
      source_workload: "frontend",
      source_workload_namespace: "web",
      source_principal: "spiffe://cluster.local/ns/web/sa/frontend",
      destination_workload: "cart-v2",
      destination_workload_namespace: "shop",
      destination_app: "cart",
      destination_version: "v2",
      destination_service: "cart.shop.svc.cluster.local",
      destination_service_name: "cart",
      request_protocol: "http",
      connection_security_policy: "mutual_tls",
      response_flags: "-",
    });
    expect(result.find((r) => r.metric.response_code === "503")?.metric.response_flags).toBe("UH");
  });

  it("exposes istio_request_duration_milliseconds as a histogram", async () => {
    const [sum] = await eventually(
      prom,
      'sum(istio_request_duration_milliseconds_sum{job="meshlet"})',
      (r) => r.length === 1,
    );
    expect(Number(sum?.value[1])).toBe(47);
    const [le25] = await eventually(
      prom,
      'sum(istio_request_duration_milliseconds_bucket{job="meshlet",le="25"})',
      (r) => r.length === 1,
    );
    expect(le25?.value[1]).toBe("2");
  });

  it("exposes decisions by policy, adapter errors and rate-limit outcomes", async () => {
    const denied = await eventually(
      prom,
      'meshlet_policy_decisions_total{decision="deny"}',
      (r) => r.length === 1,
    );
    expect(denied[0]?.metric).toMatchObject({
      reason: "deny-policy",
      policy: "shop/deny-admin",
      action: "DENY",
    });
    const errors = await eventually(prom, "meshlet_policy_adapter_errors_total", (r) => r.length === 1);
    expect(errors[0]?.metric).toMatchObject({ adapter: "flaky", kind: "check", code: "adapter-failed" });
    const rl = await eventually(prom, "meshlet_policy_ratelimit_decisions_total", (r) => r.length === 2);
    expect(Object.fromEntries(rl.map((r) => [r.metric.code, r.value[1]]))).toEqual({
      OK: "1",
      OVER_LIMIT: "1",
    });
  });
});
