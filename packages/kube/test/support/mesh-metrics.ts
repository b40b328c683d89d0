import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

// A scrape target standing in for the reference mesh, since none can run here yet: one sidecar's
// merged endpoint (`/stats/prometheus`) with Istio's standard metrics and labels (istio.io docs,
// "Istio Standard Metrics": istio_requests_total, istio_request_duration_milliseconds; reporter,
// source_/destination_workload[_namespace], response_code, connection_security_policy …), and
// meshletd's `/metrics` with the control-plane metric names docs/aks.md defines as the contract.
// Counters grow on every scrape so rate() and histogram_quantile() have something to compute.

const DEMO =
  'source_workload_namespace="demo",destination_workload_namespace="demo",destination_service_namespace="demo",request_protocol="http",destination_cluster="Kubernetes",source_cluster="Kubernetes"';

function series(name: string, labels: string, value: number): string {
  return `${name}{${labels}} ${value}`;
}

function histogram(name: string, labels: string, buckets: number[], tick: number, scale: number): string[] {
  const lines: string[] = [];
  let cumulative = 0;
  for (const [i, le] of buckets.entries()) {
    cumulative += tick * scale * (i + 1);
    lines.push(series(`${name}_bucket`, `${labels}${labels === "" ? "" : ","}le="${le}"`, cumulative));
  }
  lines.push(series(`${name}_bucket`, `${labels}${labels === "" ? "" : ","}le="+Inf"`, cumulative + tick));
  lines.push(series(`${name}_sum`, labels, cumulative * buckets[1]!));
  lines.push(series(`${name}_count`, labels, cumulative + tick));
  return lines;
}

function sidecar(tick: number): string {
  const calls: Array<[string, string, string, string, number]> = [
    // reporter, source, destination, code, per-scrape increment
    ["destination", "frontend", "catalog-v1", "200", 9],
    ["destination", "frontend", "catalog-v2", "200", 1],
    ["destination", "frontend", "catalog-v2", "503", 1],
    ["destination", "loadgen", "frontend", "200", 5],
    ["source", "frontend", "catalog-v1", "200", 9],
    ["source", "istio-ingressgateway", "frontend", "200", 2],
    ["source", "istio-ingressgateway", "frontend", "404", 1],
  ];
  const lines = ["# TYPE istio_requests_total counter"];
  for (const [reporter, source, destination, code, step] of calls) {
    const app = destination.replace(/-v\d$/, "");
    const labels = `reporter="${reporter}",source_workload="${source}",destination_workload="${destination}",destination_app="${app}",destination_service="${app}.demo.svc.cluster.local",destination_service_name="${app}",response_code="${code}",response_flags="-",connection_security_policy="${reporter === "destination" ? "mutual_tls" : "unknown"}",${DEMO}`;
    lines.push(series("istio_requests_total", labels, tick * step));
  }
  lines.push("# TYPE istio_request_duration_milliseconds histogram");
  for (const destination of ["catalog-v1", "catalog-v2", "frontend"]) {
    const labels = `reporter="destination",source_workload="frontend",destination_workload="${destination}",response_code="200",${DEMO}`;
    lines.push(
      ...histogram("istio_request_duration_milliseconds", labels, [5, 10, 25, 50, 100, 250], tick, 1),
    );
  }
  return `${lines.join("\n")}\n`;
}

function meshletd(tick: number, now: number): string {
  const lines = [
    "# TYPE pilot_xds gauge",
    series("pilot_xds", 'version="1.27.9"', 7),
    series("pilot_xds", 'version="1.26.8"', 2),
    "# TYPE pilot_xds_pushes counter",
    ...["cds", "eds", "lds", "rds", "sds"].map((type, i) =>
      series("pilot_xds_pushes", `type="${type}"`, tick * (i + 1)),
    ),
    "# TYPE pilot_xds_push_time histogram",
    ...histogram("pilot_xds_push_time", 'type="eds"', [0.01, 0.1, 1, 3, 5, 10, 20, 30], tick, 1),
    "# TYPE pilot_proxy_convergence_time histogram",
    ...histogram("pilot_proxy_convergence_time", "", [0.1, 0.5, 1, 3, 5, 10, 20, 30], tick, 1),
    "# TYPE pilot_total_xds_rejects counter",
    series("pilot_total_xds_rejects", 'type="lds"', tick),
    "# TYPE pilot_total_xds_internal_errors counter",
    series("pilot_total_xds_internal_errors", "", 0),
    "# TYPE pilot_push_triggers counter",
    series("pilot_push_triggers", 'type="config"', tick * 2),
    series("pilot_push_triggers", 'type="endpoint"', tick * 5),
    "# TYPE citadel_server_csr_count counter",
    series("citadel_server_csr_count", "", tick * 3),
    "# TYPE citadel_server_success_cert_issuance_count counter",
    series("citadel_server_success_cert_issuance_count", "", tick * 3),
    "# TYPE citadel_server_authentication_failure_count counter",
    series("citadel_server_authentication_failure_count", "", tick),
    "# TYPE citadel_server_root_cert_expiry_timestamp gauge",
    series("citadel_server_root_cert_expiry_timestamp", "", Math.floor(now / 1000) + 3650 * 86400),
    "# TYPE citadel_server_cert_chain_expiry_timestamp gauge",
    series("citadel_server_cert_chain_expiry_timestamp", "", Math.floor(now / 1000) + 365 * 86400),
    "# TYPE meshlet_policy_decisions_total counter",
    series("meshlet_policy_decisions_total", 'action="ALLOW",decision="allow"', tick * 4),
    series("meshlet_policy_decisions_total", 'action="DENY",decision="deny"', tick),
    "# TYPE meshlet_ratelimit_decisions_total counter",
    series("meshlet_ratelimit_decisions_total", 'domain="demo",code="OK"', tick * 4),
    series("meshlet_ratelimit_decisions_total", 'domain="demo",code="OVER_LIMIT"', tick),
    "# TYPE sidecar_injection_success_total counter",
    series("sidecar_injection_success_total", "", tick),
    "# TYPE sidecar_injection_skip_total counter",
    series("sidecar_injection_skip_total", "", tick),
    "# TYPE sidecar_injection_failure_total counter",
    series("sidecar_injection_failure_total", "", 0),
    "# TYPE galley_validation_passed counter",
    series("galley_validation_passed", "", tick),
    "# TYPE galley_validation_failed counter",
    series("galley_validation_failed", "", tick),
    "# TYPE process_resident_memory_bytes gauge",
    series("process_resident_memory_bytes", "", 150_000_000),
    "# TYPE process_cpu_seconds_total counter",
    series("process_cpu_seconds_total", "", tick * 0.05),
  ];
  return `${lines.join("\n")}\n`;
}

/** Serves `/stats/prometheus` (a sidecar) and `/metrics` (meshletd) on 127.0.0.1, port 0. */
export async function startMeshMetrics(): Promise<{
  port: number;
  scrapes: Map<string, number>;
  close(): Promise<void>;
}> {
  const scrapes = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? "/";
    const tick = (scrapes.get(path) ?? 0) + 1;
    scrapes.set(path, tick);
    const body =
      path === "/stats/prometheus"
        ? sidecar(tick)
        : path === "/metrics"
          ? meshletd(tick, Date.now())
          : undefined;
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    scrapes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
