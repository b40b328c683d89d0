import { spiffeId } from "./platform.js";
import type { TrafficWindow } from "./traffic.js";
import { errorSummary, reviewsShare } from "./view.js";

// The smoke run (`npm start -- --smoke`): the demo as a test. After the mesh starts, each step
// applies a scenario and waits until the traffic, as the workloads' Istio metrics report it over
// the last few seconds, shows what the scenario promises — or fails after a generous timeout.
// Nothing depends on the machine's speed beyond that timeout: a step passes as soon as enough
// requests in the window agree.

/** One smoke step. */
export interface SmokeStep {
  readonly name: string;
  /** The scenario applied before the check; none keeps the current one. */
  readonly scenario: string;
  /** Undefined when the window shows the expected traffic, else what is missing. */
  check(window: TrafficWindow): string | undefined;
}

/** Requests a window needs before a step may pass on it. */
export const MIN_REQUESTS = 15;

const reviewsEdge = (w: TrafficWindow) =>
  w.edges.find((e) => e.source === "productpage-v1" && e.destination === "reviews");

/** The steps: round robin with real identities, a traffic shift to v3, an authorization denial. */
export const SMOKE_STEPS: readonly SmokeStep[] = [
  {
    name: "round robin over reviews v1, v2, v3 over mTLS with SPIFFE identities",
    scenario: "default",
    check(w) {
      const edge = reviewsEdge(w);
      if (edge === undefined || edge.requests < MIN_REQUESTS)
        return `only ${edge?.requests ?? 0} requests to reviews`;
      if (edge.errors > 0) return `errors: ${errorSummary(edge)}`;
      const share = reviewsShare(w);
      for (const [v, p] of share)
        if (p < 10) return `reviews ${v} got ${p.toFixed(0)}% (expected about a third)`;
      const pair = w.identities.find(
        (i) => i.source === "productpage-v1" && i.destination.startsWith("reviews-"),
      );
      const expected = {
        sourcePrincipal: spiffeId("bookinfo-productpage"),
        destinationPrincipal: spiffeId("bookinfo-reviews"),
        securityPolicy: "mutual_tls",
      };
      if (
        pair === undefined ||
        pair.sourcePrincipal !== expected.sourcePrincipal ||
        pair.destinationPrincipal !== expected.destinationPrincipal ||
        pair.securityPolicy !== expected.securityPolicy
      )
        return `identities productpage → reviews: ${JSON.stringify(pair)} (expected ${JSON.stringify(expected)})`;
      return undefined;
    },
  },
  {
    name: "traffic shifting: every reviews request goes to v3",
    scenario: "reviews-v3",
    check(w) {
      const edge = reviewsEdge(w);
      if (edge === undefined || edge.requests < MIN_REQUESTS)
        return `only ${edge?.requests ?? 0} requests to reviews`;
      const v3 = reviewsShare(w).get("v3") ?? 0;
      return v3 >= 100 && edge.errors === 0
        ? undefined
        : `reviews v3 got ${v3.toFixed(0)}%, errors: ${errorSummary(edge) || "none"}`;
    },
  },
  {
    name: "authorization: reviews refuses productpage (PERMISSION_DENIED), the page still renders",
    scenario: "deny-reviews",
    check(w) {
      const edge = reviewsEdge(w);
      if (edge === undefined || edge.requests < MIN_REQUESTS)
        return `only ${edge?.requests ?? 0} requests to reviews`;
      const denied = edge.statuses.get("PERMISSION_DENIED") ?? 0;
      if (denied !== edge.requests) return `productpage → reviews: ${errorSummary(edge) || "no errors"}`;
      const page = w.edges.find((e) => e.destination === "productpage");
      if (page === undefined || page.requests === 0) return "no requests to productpage";
      return page.errors === 0 ? undefined : `loadgen → productpage: ${errorSummary(page)}`;
    },
  },
];
