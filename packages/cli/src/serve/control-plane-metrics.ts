import type { CertificateServiceEvent } from "@meshlet/ca";
import type { MeshStatus, PushEvent } from "@meshlet/mesh";
import { typeShortName, type XdsEvent } from "@meshlet/xds";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Observable, Subscription } from "rxjs";

// The control plane's own Prometheus metrics, named after istiod's where one exists
// (istio.io docs/reference/commands/pilot-discovery/#metrics): pilot_xds (connected proxies),
// pilot_xds_pushes (responses by type), pilot_total_xds_rejects (NACKs by type),
// pilot_proxy_convergence_time (push duration), citadel_server_csr_count and
// citadel_server_success_cert_issue_count; meshlet's own under meshlet_.

/** Metrics fed by the control plane's observables. */
export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly #subscriptions: Subscription[] = [];

  constructor(sources: {
    readonly xdsEvents$: Observable<XdsEvent>;
    readonly pushes$: Observable<PushEvent>;
    readonly status$: Observable<MeshStatus>;
    readonly caEvents$?: Observable<CertificateServiceEvent>;
  }) {
    const registers = [this.registry];
    const connected = new Gauge({
      name: "pilot_xds",
      help: "Connected xDS clients, by proxy kind.",
      labelNames: ["kind"],
      registers,
    });
    const pushes = new Counter({
      name: "pilot_xds_pushes",
      help: "xDS responses sent, by type.",
      labelNames: ["type"],
      registers,
    });
    const rejects = new Counter({
      name: "pilot_total_xds_rejects",
      help: "xDS responses rejected (NACKed) by proxies, by type.",
      labelNames: ["type"],
      registers,
    });
    const convergence = new Histogram({
      name: "pilot_proxy_convergence_time",
      help: "Seconds from a change to the affected proxies' new snapshots.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
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
      help: "Certificate signing requests received.",
      registers,
    });
    const issued = new Counter({
      name: "citadel_server_success_cert_issue_count",
      help: "Certificates issued.",
      registers,
    });
    this.#subscriptions.push(
      sources.xdsEvents$.subscribe((e) => {
        if (e.type === "response" && !e.heartbeat)
          pushes.inc({ type: typeShortName[e.typeUrl] ?? e.typeUrl });
        else if (e.type === "nack") rejects.inc({ type: typeShortName[e.typeUrl] ?? e.typeUrl });
      }),
      sources.pushes$.subscribe((p) => {
        pushed.inc({ cause: p.cause });
        if (p.proxies.length > 0) convergence.observe(p.durationMs / 1000);
      }),
      sources.status$.subscribe((s) => {
        connected.reset();
        for (const p of s.proxies) connected.inc({ kind: p.kind });
        findings.set(s.findings.length);
        refused.set(s.refused.length);
      }),
    );
    if (sources.caEvents$ !== undefined) {
      this.#subscriptions.push(
        sources.caEvents$.subscribe((e) => {
          csr.inc();
          if (e.type === "issued") issued.inc();
        }),
      );
    }
  }

  close(): void {
    for (const s of this.#subscriptions.splice(0)) s.unsubscribe();
  }
}
