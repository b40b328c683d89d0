export {
  createPrometheusReportAdapter,
  ISTIO_LABELS,
  type PrometheusReportAdapterOptions,
} from "./prometheus/istio-report-adapter.js";
export { type MetricsServer, serveMetrics } from "./prometheus/metrics-server.js";
export { PolicyMetrics, type PolicyMetricsOptions } from "./prometheus/policy-metrics.js";
