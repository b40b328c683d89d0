import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ISTIO_REQUESTS_TOTAL, MeshGraph } from "./mesh-graph.js";
import type { MetricSample } from "./prometheus-text.js";
import { parseSamples } from "./prometheus-text.js";

// The fixture is Bookinfo traffic in Istio's metric shape (labels from istio.io
// docs/reference/config/metrics); its header says what it holds.
const FIXTURE = readFileSync(
  new URL("../../test/fixtures/istio-requests-total.prom", import.meta.url),
  "utf8",
);

describe("parseSamples (Prometheus text exposition format)", () => {
  it("reads labels with escapes and values, and skips comments, other metrics and broken lines", () => {
    const text = [
      "# HELP istio_requests_total Total requests.",
      "# TYPE istio_requests_total counter",
      'istio_requests_total{a="x\\"y",b="line\\nnext",c="back\\\\slash"} 12 1700000000000',
      'istio_requests_total_other{a="1"} 5',
      "istio_requests_total 3",
      'istio_requests_total{a="unterminated} 7',
      'istio_requests_total{a="1"} not-a-number',
      'istio_requests_total{a="2"} +Inf',
    ].join("\n");
    expect(parseSamples(text, ISTIO_REQUESTS_TOTAL)).toEqual([
      { labels: { a: 'x"y', b: "line\nnext", c: "back\\slash" }, value: 12 },
      { labels: {}, value: 3 },
      { labels: { a: "2" }, value: Number.POSITIVE_INFINITY },
    ]);
  });
});

describe("MeshGraph", () => {
  const scaled = (k: number): MetricSample[] =>
    parseSamples(FIXTURE, ISTIO_REQUESTS_TOTAL).map((s) => ({ ...s, value: s.value * k }));

  it("draws services as nodes and counts each request once (the source's report), with rates over the window", async () => {
    let now = 1_000_000;
    let k = 1;
    const graph = new MeshGraph({ source: async () => scaled(k), now: () => now, windowMs: 60_000 });
    const first = await graph.read();
    expect(first.windowSeconds).toBe(0);
    expect(first.nodes.map((n) => n.id)).toEqual([
      "default/details",
      "default/productpage",
      "default/ratings",
      "default/reviews",
      "istio-system/istio-ingressgateway",
    ]);
    const reviews = first.edges.find(
      (e) => e.source === "default/productpage" && e.destination === "default/reviews",
    );
    // 45 + 50 + 5 reported by the source; the destination's 95 are the same requests.
    expect(reviews).toMatchObject({ requestsTotal: 100, errorsTotal: 5, requestRate: 0 });
    now += 10_000;
    k = 3;
    const second = await graph.read();
    expect(second.windowSeconds).toBe(10);
    const r2 = second.edges.find(
      (e) => e.source === "default/productpage" && e.destination === "default/reviews",
    );
    // 200 more requests in 10 s, 10 of them 503.
    expect(r2?.requestRate).toBeCloseTo(20);
    expect(r2?.errorRate).toBeCloseTo(0.05);
    const ingress = second.edges.find((e) => e.source === "istio-system/istio-ingressgateway");
    expect(ingress).toMatchObject({ destination: "default/productpage", errorRate: 0 });
    expect(ingress?.requestRate).toBeCloseTo(20);
  });

  it("reuses a sample read less than minIntervalMs ago, treats a counter reset as a restart, and says why a read failed", async () => {
    let now = 0;
    let calls = 0;
    let values = scaled(10);
    const graph = new MeshGraph({
      source: async () => {
        calls++;
        if (values.length === 0) throw new Error("connection refused");
        return values;
      },
      now: () => now,
    });
    await graph.read();
    now += 500;
    await graph.read();
    expect(calls).toBe(1);
    now += 1000;
    values = scaled(1); // the process restarted: counters back near zero
    const after = await graph.read();
    const e = after.edges.find((x) => x.source === "default/reviews");
    expect(e?.requestRate).toBeGreaterThan(0);
    now += 1000;
    values = [];
    expect((await graph.read()).note).toBe("metrics could not be read: connection refused");
  });

  it("takes the destination's report when no source reported (a caller outside the mesh)", async () => {
    const l = {
      reporter: "destination",
      source_workload: "unknown",
      source_canonical_service: "unknown",
      source_workload_namespace: "unknown",
      destination_service_name: "productpage",
      destination_service_namespace: "default",
      response_code: "200",
    };
    const graph = new MeshGraph({ source: async () => [{ labels: l, value: 7 }] });
    const g = await graph.read();
    expect(g.edges).toMatchObject([
      { source: "unknown/unknown", destination: "default/productpage", requestsTotal: 7 },
    ]);
  });

  it("counts gRPC failures by grpc_response_status, not by the HTTP 200 they travel in", async () => {
    const base = {
      reporter: "source",
      source_canonical_service: "a",
      source_workload_namespace: "ns",
      destination_service_name: "b",
      destination_service_namespace: "ns",
      request_protocol: "grpc",
      response_code: "200",
    };
    const graph = new MeshGraph({
      source: async () => [
        { labels: { ...base, grpc_response_status: "0" }, value: 8 },
        { labels: { ...base, grpc_response_status: "14" }, value: 2 },
      ],
    });
    expect((await graph.read()).edges[0]).toMatchObject({ requestsTotal: 10, errorsTotal: 2 });
  });
});
