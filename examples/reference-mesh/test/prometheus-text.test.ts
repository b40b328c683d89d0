import { describe, expect, it } from "vitest";
import { histogramQuantile, parsePrometheusText } from "../src/prometheus-text.js";

describe("parsePrometheusText", () => {
  it("reads the exposition format's example (prometheus.io docs/instrumenting/exposition_formats)", () => {
    // The documented example: a timestamped sample, escapes in label values, +Inf, histograms.
    const text = [
      "# HELP http_requests_total The total number of HTTP requests.",
      "# TYPE http_requests_total counter",
      'http_requests_total{method="post",code="200"} 1027 1395066363000',
      'http_requests_total{method="post",code="400"}    3 1395066363000',
      'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
      "metric_without_timestamp_and_labels 12.47",
      'http_request_duration_seconds_bucket{le="+Inf"} 144320',
      "something weird",
    ].join("\n");
    expect(parsePrometheusText(text)).toEqual([
      { name: "http_requests_total", labels: { method: "post", code: "200" }, value: 1027 },
      { name: "http_requests_total", labels: { method: "post", code: "400" }, value: 3 },
      {
        name: "msdos_file_access_time_seconds",
        labels: { path: "C:\\DIR\\FILE.TXT", error: 'Cannot find file:\n"FILE.TXT"' },
        value: 1.458255915e9,
      },
      { name: "metric_without_timestamp_and_labels", labels: {}, value: 12.47 },
      { name: "http_request_duration_seconds_bucket", labels: { le: "+Inf" }, value: 144320 },
    ]);
  });
});

// Expected values: prometheus/prometheus promql/promqltest/testdata/histograms.test (classic
// `_bucket` histograms evaluated at 50m and 7m; the bucket counts below are the loaded series'
// values at those times).
describe("histogramQuantile (PromQL's histogram_quantile)", () => {
  const positive: Array<[number, number]> = [
    [0.1, 50],
    [0.2, 70],
    [1, 110],
    [Number.POSITIVE_INFINITY, 120],
  ];
  const negative: Array<[number, number]> = [
    [-0.2, 10],
    [-0.1, 20],
    [0.3, 20],
    [Number.POSITIVE_INFINITY, 30],
  ];
  const three: Array<[number, number]> = [
    [0, 0],
    [0.1, 50],
    [0.2, 70],
    [1, 110],
    [Number.POSITIVE_INFINITY, 110],
  ];
  const two: Array<[number, number]> = [
    [0, 0],
    [2, 1],
    [4, 2],
    [6, 3],
    [Number.POSITIVE_INFINITY, 3],
  ];

  it.each([
    ["testhistogram positive", positive, 0, 0],
    ["testhistogram positive", positive, 0.2, 0.048],
    ["testhistogram positive", positive, 0.5, 0.15],
    ["testhistogram positive", positive, 0.8, 0.72],
    ["testhistogram positive", positive, 1, 1],
    ["testhistogram negative", negative, 0, -0.2],
    ["testhistogram negative", negative, 0.2, -0.2],
    ["testhistogram negative", negative, 0.5, -0.15],
    ["testhistogram negative", negative, 0.8, 0.3],
    ["testhistogram negative", negative, 1, 0.3],
    ["testhistogram3 positive", three, 0.25, 0.055],
    ["testhistogram3 positive", three, 0.5, 0.125],
    ["testhistogram3 positive", three, 0.75, 0.45],
    ["testhistogram3 positive", three, 1, 1],
    ["testhistogram2", two, 1 / 6, 1],
    ["testhistogram2", two, 0.5, 3],
    ["testhistogram2", two, 5 / 6, 5],
  ] as const)("%s q=%d → %d", (_name, buckets, q, expected) => {
    expect(histogramQuantile(q, buckets)).toBeCloseTo(expected, 10);
  });

  it("answers -Inf, +Inf and NaN for quantiles out of range, and NaN without observations", () => {
    expect(histogramQuantile(-0.1, positive)).toBe(Number.NEGATIVE_INFINITY);
    expect(histogramQuantile(1.01, positive)).toBe(Number.POSITIVE_INFINITY);
    expect(histogramQuantile(Number.NaN, positive)).toBeNaN();
    expect(
      histogramQuantile(0.5, [
        [1, 0],
        [Number.POSITIVE_INFINITY, 0],
      ]),
    ).toBeNaN();
  });
});
