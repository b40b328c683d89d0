import type { ReportAdapter, RequestReport } from "@meshlet/policy";
import { Counter, Histogram, Registry } from "prom-client";

/** The labels of Istio's standard metrics, in Istio's names. */
export const ISTIO_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;

type IstioLabel = (typeof ISTIO_LABELS)[number];

/** Options of {@link createPrometheusReportAdapter}. */
export interface PrometheusReportAdapterOptions {
  name?: string;
  registry?: Registry;
  /** Value of `source_cluster`/`destination_cluster` (default `Kubernetes`, Istio's default). */
  cluster?: string;
}

// Istio's default bucket boundaries for these histograms.
const DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];
const BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

function labels(r: RequestReport, cluster: string): Record<IstioLabel, string> {
  const a = r.attributes;
  const unknown = (v: string | undefined) => (v === undefined || v === "" ? "unknown" : v);
  const spiffe = (p: string | undefined) =>
    p ? (p.startsWith("spiffe://") ? p : `spiffe://${p}`) : "unknown";
  const sourceNs = a.source?.namespace ?? /\/ns\/([^/]+)\//.exec(a.source?.principal ?? "")?.[1];
  const host = r.destinationService ?? a.request?.host?.replace(/:\d+$/, "");
  return {
    reporter: r.reporter ?? "destination",
    source_workload: unknown(r.sourceWorkload),
    source_workload_namespace: unknown(sourceNs),
    source_principal: spiffe(a.source?.principal),
    source_app: unknown(r.sourceApp ?? a.source?.labels?.app),
    source_version: unknown(r.sourceVersion ?? a.source?.labels?.version),
    source_canonical_service: unknown(r.sourceCanonicalService ?? r.sourceApp ?? r.sourceWorkload),
    source_canonical_revision: r.sourceVersion ?? "latest",
    source_cluster: cluster,
    destination_workload: unknown(r.destinationWorkload),
    destination_workload_namespace: unknown(a.destination?.namespace),
    destination_principal: spiffe(a.destination?.principal),
    destination_app: unknown(r.destinationApp ?? a.destination?.labels?.app),
    destination_version: unknown(r.destinationVersion ?? a.destination?.labels?.version),
    destination_service: unknown(host),
    destination_service_name: unknown(r.destinationServiceName ?? host?.split(".")[0]),
    destination_service_namespace: unknown(a.destination?.namespace),
    destination_canonical_service: unknown(
      r.destinationCanonicalService ?? r.destinationApp ?? r.destinationWorkload,
    ),
    destination_canonical_revision: r.destinationVersion ?? "latest",
    destination_cluster: cluster,
    request_protocol: r.protocol ?? "http",
    response_code: String(r.responseCode),
    grpc_response_status: r.grpcResponseStatus ?? "",
    response_flags: r.responseFlags ?? "-",
    connection_security_policy: r.connectionSecurityPolicy ?? "unknown",
  };
}

/**
 * A {@link ReportAdapter} that turns request reports into Istio's standard metrics —
 * `istio_requests_total`, `istio_request_duration_milliseconds`, `istio_request_bytes`,
 * `istio_response_bytes` — with Istio's label names and defaults (`unknown` for what is not known).
 */
export function createPrometheusReportAdapter(
  options: PrometheusReportAdapterOptions = {},
): ReportAdapter & { registry: Registry } {
  const registry = options.registry ?? new Registry();
  const cluster = options.cluster ?? "Kubernetes";
  const labelNames = [...ISTIO_LABELS];
  const registers = [registry];
  const requests = new Counter({
    name: "istio_requests_total",
    help: "Requests processed.",
    labelNames,
    registers,
  });
  const duration = new Histogram({
    name: "istio_request_duration_milliseconds",
    help: "Request duration in milliseconds.",
    labelNames,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const requestBytes = new Histogram({
    name: "istio_request_bytes",
    help: "HTTP request body sizes.",
    labelNames,
    buckets: BYTES_BUCKETS,
    registers,
  });
  const responseBytes = new Histogram({
    name: "istio_response_bytes",
    help: "HTTP response body sizes.",
    labelNames,
    buckets: BYTES_BUCKETS,
    registers,
  });
  return {
    name: options.name ?? "prometheus",
    kind: "report",
    registry,
    async report(reports) {
      for (const r of reports) {
        const l = labels(r, cluster);
        requests.inc(l);
        duration.observe(l, r.durationMs);
        if (r.requestBytes !== undefined) requestBytes.observe(l, r.requestBytes);
        if (r.responseBytes !== undefined) responseBytes.observe(l, r.responseBytes);
      }
    },
  };
}
