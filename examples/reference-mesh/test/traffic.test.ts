import { describe, expect, it } from "vitest";
import type { Sample } from "../src/prometheus-text.js";
import { trafficWindow } from "../src/traffic.js";

// The view's arithmetic on hand-made scrapes: counter increases over the window, error rates by
// gRPC status, the version split, quantiles from bucket increases, identities from both reports.

const labels = (reporter: string, version: string, status: string, extra: Record<string, string> = {}) => ({
  reporter,
  source_workload: "productpage-v1",
  destination_workload: `reviews-${version}`,
  destination_service_name: "reviews",
  destination_version: version,
  grpc_response_status: status,
  response_flags: "-",
  source_principal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
  destination_principal: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
  connection_security_policy: reporter === "source" ? "unknown" : "mutual_tls",
  ...extra,
});
const req = (value: number, l: Record<string, string>): Sample => ({
  name: "istio_requests_total",
  labels: l,
  value,
});
const bucket = (le: string, value: number, l: Record<string, string>): Sample => ({
  name: "istio_request_duration_milliseconds_bucket",
  labels: { ...l, le },
  value,
});

describe("trafficWindow", () => {
  it("takes increases over the window per edge, by status and version, with quantiles and identities", () => {
    const v1 = labels("source", "v1", "0");
    const v3 = labels("source", "v3", "0");
    const denied = labels("source", "unknown", "7");
    const scrapes = [
      {
        at: 0,
        samples: [req(100, v1), bucket("5", 100, v1), bucket("10", 100, v1), bucket("+Inf", 100, v1)],
      },
      {
        at: 2000,
        samples: [req(105, v1), bucket("5", 105, v1), bucket("10", 105, v1), bucket("+Inf", 105, v1)],
      },
      {
        at: 5000,
        samples: [
          req(110, v1),
          bucket("5", 110, v1),
          bucket("10", 110, v1),
          bucket("+Inf", 110, v1),
          req(8, v3),
          bucket("5", 0, v3),
          bucket("10", 8, v3),
          bucket("+Inf", 8, v3),
          req(2, denied),
          req(12, labels("destination", "v1", "0")),
        ],
      },
    ];
    const w = trafficWindow(scrapes, 5);
    expect(w.seconds).toBe(5);
    expect(w.edges).toHaveLength(1);
    const [edge] = w.edges;
    expect(edge).toMatchObject({
      source: "productpage-v1",
      destination: "reviews",
      requests: 20,
      errors: 2,
      rps: 4,
    });
    expect(Object.fromEntries(edge?.statuses ?? [])).toEqual({ OK: 18, PERMISSION_DENIED: 2 });
    expect(Object.fromEntries(edge?.versions ?? [])).toEqual({ v1: 10, v3: 8, unknown: 2 });
    // Increases: 10 under 5 ms, 8 in (5, 10]: rank 9 of 18 → 4.5 ms; rank 17.82 → 5 + 5·7.82/8.
    expect(edge?.p50).toBeCloseTo(4.5, 10);
    expect(edge?.p99).toBeCloseTo(5 + (5 * 7.82) / 8, 10);
    expect(w.identities).toContainEqual({
      source: "productpage-v1",
      destination: "reviews-v1",
      sourcePrincipal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
      destinationPrincipal: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
      securityPolicy: "mutual_tls",
    });

    // A shorter window starts at the newest scrape at least that old.
    expect(trafficWindow(scrapes, 3).edges[0]?.requests).toBe(15);
  });

  it("counts a counter that went down (a restarted workload) from zero", () => {
    const l = labels("source", "v1", "0");
    const w = trafficWindow(
      [
        { at: 0, samples: [req(50, l)] },
        { at: 1000, samples: [req(4, l)] },
      ],
      1,
    );
    expect(w.edges[0]?.requests).toBe(4);
  });
});
