import { X509Certificate } from "node:crypto";
import type { CertificateServiceEvent, TrustBundle } from "@meshlet/ca";
import type { WebhookEvent } from "@meshlet/kube";
import type { MeshStatus, PushCause, PushEvent } from "@meshlet/mesh";
import type { Decision, RateLimitDecision } from "@meshlet/policy";
import { typeShortName, type XdsEvent } from "@meshlet/xds";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Observable, Subscription } from "rxjs";

// The control plane's own Prometheus metrics, under istiod's names, types and label names so that
// Istio's dashboards and alerts work on meshlet (docs/aks.md, "Control-plane metrics: the
// contract"). Where each comes from in istio/istio:
// - pilot/pkg/xds/monitoring.go: pilot_xds (gauge, label `version`), pilot_xds_pushes (sum, `type`),
//   pilot_xds_push_time (distribution, `type`, buckets .01…30 s), pilot_push_triggers (sum, `type`),
//   pilot_proxy_convergence_time (distribution, buckets .1…30 s);
// - pkg/xds/monitoring.go: pilot_total_xds_rejects (sum, `type`), pilot_total_xds_internal_errors;
// - security/pkg/server/ca/monitoring.go: citadel_server_csr_count,
//   citadel_server_authentication_failure_count, citadel_server_csr_parsing_err_count,
//   citadel_server_success_cert_issuance_count,
//   citadel_server_root_cert_expiry_timestamp, citadel_server_cert_chain_expiry_timestamp;
// - pkg/kube/inject/monitoring.go: sidecar_injection_requests_total, _success_total, _skip_total,
//   _failure_total;
// - pkg/webhooks/validation/server/monitoring.go: galley_validation_passed (`group`, `version`,
//   `resource`), galley_validation_failed (… `reason`), galley_validation_http_error (`status`).
// Istio's xDS `type` label is the short lower-case name (model.GetMetricType: cds, eds, lds, rds,
// sds, …). meshlet's own metrics, where Istio has none, are under meshlet_.

/** Istio's `model.TriggerReason` for each of meshlet's push causes (`connect` is a first push, not a trigger). */
const TRIGGER: Readonly<Record<PushCause, string | undefined>> = {
  config: "config",
  subscription: "proxyrequest",
  manual: "debug",
  connect: undefined,
};

/** The xDS types every proxy subscribes to: their NACK counters start at 0 (Prometheus' advice for known label values). */
const CORE_TYPES = ["cds", "eds", "lds", "rds"];

/** What {@link ControlPlaneMetrics} observes; each optional source adds its metrics' data. */
export interface ControlPlaneMetricsSources {
  readonly xdsEvents$: Observable<XdsEvent>;
  readonly pushes$: Observable<PushEvent>;
  readonly status$: Observable<MeshStatus>;
  /** The Istio CA API's requests (`IstioCertificateService.events$`). */
  readonly caEvents$?: Observable<CertificateServiceEvent>;
  /** The CA's roots (`CertificateAuthority.trustBundle$`): the root's expiry. */
  readonly trustBundle$?: Observable<TrustBundle>;
  /** The CA's signing certificate (PEM), read whenever the roots change: the chain's expiry. */
  readonly signingCertificate?: () => string | undefined;
  /** Certificates the control plane issued itself (the workload files it writes for each pod). */
  readonly issued$?: Observable<unknown>;
  /** Authorization decisions (`PolicyEngine.decisions$`). */
  readonly policyDecisions$?: Observable<Decision>;
  /** Rate-limit decisions (`PolicyEngine.rateLimiter.decisions$`). */
  readonly rateLimitDecisions$?: Observable<RateLimitDecision>;
  /** The clock of push latencies (ms since the epoch; default `Date.now`). */
  readonly now?: () => number;
}

/**
 * The control plane's metrics (see the module comment), fed by its observables, on one
 * `registry` with the process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`…).
 * Webhook servers composed with it report on the same registry through {@link observeWebhooks}.
 */
export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly #subscriptions: Subscription[] = [];
  readonly #webhooks: {
    readonly requests: Counter;
    readonly success: Counter;
    readonly skip: Counter;
    readonly failure: Counter;
    readonly passed: Counter<"group" | "version" | "resource">;
    readonly failed: Counter<"group" | "version" | "resource" | "reason">;
    readonly httpError: Counter<"status">;
  };

  constructor(sources: ControlPlaneMetricsSources) {
    const registers = [this.registry];
    const now = sources.now ?? Date.now;
    collectDefaultMetrics({ register: this.registry });

    const connected = new Gauge({
      name: "pilot_xds",
      help: "Number of endpoints connected to this control plane using xDS, by the proxy's Istio version.",
      labelNames: ["version"],
      registers,
    });
    const pushes = new Counter({
      name: "pilot_xds_pushes",
      help: "xDS responses sent, by type.",
      labelNames: ["type"],
      registers,
    });
    const pushTime = new Histogram({
      name: "pilot_xds_push_time",
      help: "Seconds from the start of a push to a proxy's response of each type being sent.",
      labelNames: ["type"],
      buckets: [0.01, 0.1, 1, 3, 5, 10, 20, 30],
      registers,
    });
    const rejects = new Counter({
      name: "pilot_total_xds_rejects",
      help: "xDS responses rejected (NACKed) by proxies, by type.",
      labelNames: ["type"],
      registers,
    });
    for (const type of CORE_TYPES) rejects.inc({ type }, 0);
    const internalErrors = new Counter({
      name: "pilot_total_xds_internal_errors",
      help: "Proxies' config builds that failed (the proxy keeps its previous config).",
      registers,
    });
    const triggers = new Counter({
      name: "pilot_push_triggers",
      help: "Pushes, by the reason for the push.",
      labelNames: ["type"],
      registers,
    });
    const convergence = new Histogram({
      name: "pilot_proxy_convergence_time",
      help: "Seconds from a config change to the affected proxies' new config being ready to send.",
      buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30],
      registers,
    });
    const pushed = new Counter({
      name: "meshlet_pushes_total",
      help: "Snapshot pushes by cause.",
      labelNames: ["cause"],
      registers,
    });
    const findings = new Gauge({
      name: "meshlet_config_findings",
      help: "Analyzer findings (istioctl analyze) of the served config.",
      registers,
    });
    const refused = new Gauge({
      name: "meshlet_refused_nodes",
      help: "Nodes refused recently (no usable identity).",
      registers,
    });
    const csr = new Counter({
      name: "citadel_server_csr_count",
      help: "The number of CSRs received by the CA API.",
      registers,
    });
    const authnFailures = new Counter({
      name: "citadel_server_authentication_failure_count",
      help: "The number of CA API requests whose caller could not be authenticated.",
      registers,
    });
    const csrParseErrors = new Counter({
      name: "citadel_server_csr_parsing_err_count",
      help: "The number of errors occurred when parsing the CSR.",
      registers,
    });
    const issued = new Counter({
      name: "citadel_server_success_cert_issuance_count",
      help: "The number of certificates issued (CA API and the workload files the control plane writes).",
      registers,
    });
    const rootExpiry = new Gauge({
      name: "citadel_server_root_cert_expiry_timestamp",
      help: "The unix timestamp, in seconds, when the CA's root certificate expires.",
      registers,
    });
    const chainExpiry = new Gauge({
      name: "citadel_server_cert_chain_expiry_timestamp",
      help: "The unix timestamp, in seconds, when the CA's signing certificate expires.",
      registers,
    });
    const policy = new Counter({
      name: "meshlet_policy_decisions_total",
      help: "Authorization decisions by the policy engine: the matched policy's action, allow or deny, and why.",
      labelNames: ["action", "decision", "reason"],
      registers,
    });
    const rateLimits = new Counter({
      name: "meshlet_ratelimit_decisions_total",
      help: "Rate-limit decisions, by domain and overall code (OK, OVER_LIMIT).",
      labelNames: ["domain", "code"],
      registers,
    });
    this.#webhooks = {
      requests: new Counter({
        name: "sidecar_injection_requests_total",
        help: "Total number of sidecar injection requests.",
        registers,
      }),
      success: new Counter({
        name: "sidecar_injection_success_total",
        help: "Total number of successful sidecar injection requests.",
        registers,
      }),
      skip: new Counter({
        name: "sidecar_injection_skip_total",
        help: "Total number of skipped injection requests.",
        registers,
      }),
      failure: new Counter({
        name: "sidecar_injection_failure_total",
        help: "Total number of failed sidecar injection requests (the pod is admitted unchanged).",
        registers,
      }),
      passed: new Counter({
        name: "galley_validation_passed",
        help: "Resource is valid.",
        labelNames: ["group", "version", "resource"],
        registers,
      }),
      failed: new Counter({
        name: "galley_validation_failed",
        help: "Resource validation failed.",
        labelNames: ["group", "version", "resource", "reason"],
        registers,
      }),
      httpError: new Counter({
        name: "galley_validation_http_error",
        help: "Resource validation http serve errors.",
        labelNames: ["status"],
        registers,
      }),
    };

    // Streams are counted from their first request carrying a node (istiod counts a connection
    // once its node is known), by the node's ISTIO_VERSION as istiod labels them.
    const streams = new Map<number, string>();
    // Per node: when its latest push started, and the types already sent since.
    const pending = new Map<string, { start: number; sent: Set<string> }>();
    const shortType = (typeUrl: string) => (typeShortName[typeUrl] ?? typeUrl).toLowerCase();
    const failedBuilds = new Set<string>();

    this.#subscriptions.push(
      sources.xdsEvents$.subscribe((e) => {
        if (e.type === "stream-close") {
          const version = streams.get(e.streamId);
          if (version !== undefined) {
            connected.dec({ version });
            streams.delete(e.streamId);
          }
          if (e.node?.id !== undefined) pending.delete(e.node.id);
          return;
        }
        if (!streams.has(e.streamId) && e.node !== undefined) {
          const v = e.node.metadata?.ISTIO_VERSION;
          const version = typeof v === "string" ? v : "";
          streams.set(e.streamId, version);
          connected.inc({ version });
        }
        if (e.type === "response" && !e.heartbeat) {
          const type = shortType(e.typeUrl);
          pushes.inc({ type });
          const push = e.node?.id !== undefined ? pending.get(e.node.id) : undefined;
          if (push !== undefined && !push.sent.has(type)) {
            push.sent.add(type);
            pushTime.observe({ type }, Math.max(0, now() - push.start) / 1000);
          }
        } else if (e.type === "nack") rejects.inc({ type: shortType(e.typeUrl) });
      }),
      sources.pushes$.subscribe((p) => {
        pushed.inc({ cause: p.cause });
        const trigger = TRIGGER[p.cause];
        if (trigger !== undefined) triggers.inc({ type: trigger });
        if (p.proxies.length > 0) convergence.observe(p.durationMs / 1000);
        for (const id of p.proxies) pending.set(id, { start: p.at - p.durationMs, sent: new Set() });
      }),
      sources.status$.subscribe((s) => {
        findings.set(s.findings.length);
        refused.set(s.refused.length);
        for (const p of s.proxies) {
          if (p.error === undefined) continue;
          const key = `${p.id}\n${p.version ?? ""}\n${p.error}`;
          if (!failedBuilds.has(key)) internalErrors.inc();
          failedBuilds.add(key);
        }
        if (failedBuilds.size > 1000) failedBuilds.clear();
      }),
    );
    if (sources.caEvents$ !== undefined)
      this.#subscriptions.push(
        sources.caEvents$.subscribe((e) => {
          csr.inc();
          if (e.type === "issued") issued.inc();
          else if (e.code === "unauthenticated") authnFailures.inc();
          else if (e.code.startsWith("malformed-") || e.code === "csr-signature-invalid")
            csrParseErrors.inc();
        }),
      );
    if (sources.issued$ !== undefined)
      this.#subscriptions.push(sources.issued$.subscribe(() => issued.inc()));
    if (sources.trustBundle$ !== undefined)
      this.#subscriptions.push(
        sources.trustBundle$.subscribe((bundle) => {
          const root = expiresAt(bundle.roots[0]);
          if (root !== undefined) rootExpiry.set(root);
          const chain = expiresAt(sources.signingCertificate?.() ?? bundle.roots[0]);
          if (chain !== undefined) chainExpiry.set(chain);
        }),
      );
    if (sources.policyDecisions$ !== undefined)
      this.#subscriptions.push(
        sources.policyDecisions$.subscribe((d) =>
          policy.inc({
            ...(d.matched !== undefined ? { action: d.matched.action } : {}),
            decision: d.allowed ? "allow" : "deny",
            reason: d.reason,
          }),
        ),
      );
    if (sources.rateLimitDecisions$ !== undefined)
      this.#subscriptions.push(
        sources.rateLimitDecisions$.subscribe((d) =>
          rateLimits.inc({ domain: d.domain, code: d.overallCode }),
        ),
      );
  }

  /**
   * Counts a webhook server's requests (`WebhookServer.events$` from @meshlet/kube) under Istio's
   * injector and validation metric names, on this registry. Unsubscribe (or {@link close}) to stop.
   */
  observeWebhooks(events$: Observable<WebhookEvent>): Subscription {
    const m = this.#webhooks;
    const subscription = events$.subscribe((e) => {
      if (e.type === "injection") {
        m.requests.inc();
        (e.outcome === "injected" ? m.success : e.outcome === "skipped" ? m.skip : m.failure).inc();
      } else if (e.type === "validation" && e.outcome !== "unchecked") {
        const gvr = e.gvr ?? { group: "", version: "", resource: "" };
        const labels = { group: gvr.group, version: gvr.version, resource: gvr.resource };
        // Istio's reason values (reasonInvalidConfig …), not the message: one series per reason.
        if (e.outcome === "allowed") m.passed.inc(labels);
        else m.failed.inc({ ...labels, reason: "invalid_resource" });
      } else if (e.type === "bad-request" && e.path === "/validate") {
        m.httpError.inc({ status: String(e.status) });
      }
    });
    this.#subscriptions.push(subscription);
    return subscription;
  }

  close(): void {
    for (const s of this.#subscriptions.splice(0)) s.unsubscribe();
  }
}

/** A PEM certificate's notAfter in unix seconds; undefined when there is none or it does not parse. */
function expiresAt(pem: string | undefined): number | undefined {
  if (pem === undefined) return undefined;
  try {
    return Math.floor(Date.parse(new X509Certificate(pem).validTo) / 1000);
  } catch {
    return undefined;
  }
}
