import type { PolicyEngine } from "@meshlet/policy";
import { Counter, Histogram, Registry } from "prom-client";
import { Subscription } from "rxjs";

/** Options of {@link PolicyMetrics}. */
export interface PolicyMetricsOptions {
  /** Where metrics are registered (default: a new registry, not prom-client's global one). */
  registry?: Registry;
  /** Metric name prefix (default `meshlet_policy_`). */
  prefix?: string;
}

/**
 * Prometheus metrics for a {@link PolicyEngine}: decisions by outcome, reason, policy and action;
 * check latency; dry-run outcomes; adapter errors and timeouts; rate-limit decisions and latency.
 * Fed by the engine's observables, so nothing in the request path knows about Prometheus.
 */
export class PolicyMetrics {
  /** The registry holding the metrics (serve it with `serveMetrics`). */
  readonly registry: Registry;
  readonly decisions: Counter<"decision" | "reason" | "policy" | "action">;
  readonly checkDuration: Histogram<"decision">;
  readonly dryRun: Counter<"action" | "would_allow" | "policy">;
  readonly adapterErrors: Counter<"adapter" | "kind" | "code">;
  readonly rateLimitDecisions: Counter<"domain" | "code">;
  readonly rateLimitDuration: Histogram<"domain">;

  constructor(options: PolicyMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const p = options.prefix ?? "meshlet_policy_";
    const registers = [this.registry];
    this.decisions = new Counter({
      name: `${p}decisions_total`,
      help: "Authorization decisions by outcome, reason, and the policy and action that made them.",
      labelNames: ["decision", "reason", "policy", "action"],
      registers,
    });
    this.checkDuration = new Histogram({
      name: `${p}check_duration_seconds`,
      help: "Time to decide one authorization check (including JWT verification and adapters).",
      labelNames: ["decision"],
      buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers,
    });
    this.dryRun = new Counter({
      name: `${p}dry_run_total`,
      help: "What dry-run (istio.io/dry-run) policies would have decided.",
      labelNames: ["action", "would_allow", "policy"],
      registers,
    });
    this.adapterErrors = new Counter({
      name: `${p}adapter_errors_total`,
      help: "Adapter errors and timeouts.",
      labelNames: ["adapter", "kind", "code"],
      registers,
    });
    this.rateLimitDecisions = new Counter({
      name: `${p}ratelimit_decisions_total`,
      help: "Rate-limit decisions by domain and overall code.",
      labelNames: ["domain", "code"],
      registers,
    });
    this.rateLimitDuration = new Histogram({
      name: `${p}ratelimit_duration_seconds`,
      help: "Time to answer one rate-limit check, including the counter backend.",
      labelNames: ["domain"],
      buckets: [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers,
    });
  }

  /** Starts recording an engine's decisions; unsubscribe to stop. */
  observe(engine: PolicyEngine): Subscription {
    const sub = new Subscription();
    sub.add(
      engine.decisions$.subscribe((d) => {
        const decision = d.allowed ? "allow" : "deny";
        this.decisions.inc({
          decision,
          reason: d.reason,
          policy: d.matched?.policy ?? "",
          action: d.matched?.action ?? "",
        });
        this.checkDuration.observe({ decision }, d.durationMs / 1000);
        for (const r of d.dryRun) {
          this.dryRun.inc({
            action: r.action,
            would_allow: String(r.wouldAllow),
            policy: r.matched?.policy ?? "",
          });
        }
      }),
    );
    sub.add(
      engine.adapterFailures$.subscribe((f) =>
        this.adapterErrors.inc({ adapter: f.adapter, kind: f.kind, code: f.code }),
      ),
    );
    sub.add(
      engine.rateLimiter.decisions$.subscribe((d) => {
        this.rateLimitDecisions.inc({ domain: d.domain, code: d.overallCode });
        this.rateLimitDuration.observe({ domain: d.domain }, d.durationMs / 1000);
      }),
    );
    return sub;
  }
}
