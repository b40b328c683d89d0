import { create } from "@bufbuild/protobuf";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { CertificateServiceEvent, TrustBundle } from "@meshlet/ca";
import type { WebhookEvent } from "@meshlet/kube";
import type { MeshStatus, PushEvent } from "@meshlet/mesh";
import { TypeUrl, type XdsEvent } from "@meshlet/xds";
import { Subject } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { ControlPlaneMetrics } from "./control-plane-metrics.js";

// The names, types and label names are istiod's; each expectation cites where istio/istio
// defines the metric: pilot/pkg/xds/monitoring.go (pilot_xds by `version`, pilot_xds_pushes and
// pilot_xds_push_time by `type`, pilot_push_triggers, pilot_proxy_convergence_time),
// pkg/xds/monitoring.go (pilot_total_xds_rejects by `type`), security/pkg/server/ca/monitoring.go
// (citadel_server_*), pkg/kube/inject/monitoring.go (sidecar_injection_*),
// pkg/webhooks/validation/server/monitoring.go (galley_validation_* by group, version, resource).

const sources = () => ({
  xdsEvents$: new Subject<XdsEvent>(),
  pushes$: new Subject<PushEvent>(),
  status$: new Subject<MeshStatus>(),
  caEvents$: new Subject<CertificateServiceEvent>(),
  trustBundle$: new Subject<TrustBundle>(),
  webhooks$: new Subject<WebhookEvent>(),
});

/**
 * A self-signed certificate made with `openssl req -x509 … -days 3650`; `openssl x509 -noout
 * -enddate` says notAfter=Nov 30 13:54:05 2036 GMT, which is this many unix seconds.
 */
const EXPIRY_FIXTURE = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBtzCCAV2gAwIBAgIUV7UgWDPeQ1soTobKpPXyLI9hkzcwCgYIKoZIzj0EAwIw",
  "MTEWMBQGA1UECgwNbWVzaGxldCB0ZXN0czEXMBUGA1UEAwwOZXhwaXJ5IGZpeHR1",
  "cmUwHhcNMjYxMjAzMTM1NDA1WhcNMzYxMTMwMTM1NDA1WjAxMRYwFAYDVQQKDA1t",
  "ZXNobGV0IHRlc3RzMRcwFQYDVQQDDA5leHBpcnkgZml4dHVyZTBZMBMGByqGSM49",
  "AgEGCCqGSM49AwEHA0IABCEnzlPJFhhViex5+jZ/Pg8oehMuUevcjrAnsVU4nIdO",
  "6xZeGmHhakrvfUGJqHg5RU63F79GWU+nnoJANVdDb66jUzBRMB0GA1UdDgQWBBSb",
  "h61ZwF1jK26n07kk6hq9whjHADAfBgNVHSMEGDAWgBSbh61ZwF1jK26n07kk6hq9",
  "whjHADAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC30oMBqGFZ",
  "zj2NBfpebTl7wi6VXbY4eGpEPPk0IDt/gQIgK6uIx16lKKQ3CqzBnubU1T51QF0u",
  "Z+qRkzJngkvzdGA=",
  "-----END CERTIFICATE-----",
].join("\n");
const EXPIRY_FIXTURE_NOT_AFTER = 2111666045;

let metrics: ControlPlaneMetrics | undefined;
afterEach(() => metrics?.close());

async function exposition(m: ControlPlaneMetrics, name: string): Promise<string[]> {
  const text = await m.registry.metrics();
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`) || l.startsWith(`# TYPE ${name} `));
}

/** Every sample line is in the registry's exposition. */
async function expectSamples(m: ControlPlaneMetrics, samples: readonly string[]): Promise<void> {
  const lines = (await m.registry.metrics()).split("\n");
  for (const sample of samples) expect(lines).toContain(sample);
}

const node = (id: string, version?: string) =>
  create(NodeSchema, { id, ...(version !== undefined ? { metadata: { ISTIO_VERSION: version } } : {}) });
const base = (streamId: number, id: string, version?: string) => ({
  streamId,
  protocol: "sotw" as const,
  node: node(id, version),
});
const response = (streamId: number, id: string, typeUrl: string): XdsEvent => ({
  ...base(streamId, id),
  type: "response",
  typeUrl,
  version: "1",
  nonce: "n",
  resources: [],
  removed: [],
  heartbeat: false,
  bytes: 1,
});

describe("ControlPlaneMetrics", () => {
  it("counts xDS streams by the proxy's ISTIO_VERSION (pilot_xds is a gauge labelled version)", async () => {
    const s = sources();
    metrics = new ControlPlaneMetrics(s);
    s.xdsEvents$.next({ ...base(1, "a", "1.27.1"), type: "stream-open", service: "ads", peer: "p" });
    s.xdsEvents$.next({
      ...base(1, "a", "1.27.1"),
      type: "request",
      typeUrl: TypeUrl.Listener,
      versionInfo: "",
      responseNonce: "",
      resourceNames: [],
      unsubscribe: [],
      stale: false,
    });
    s.xdsEvents$.next(response(2, "b", TypeUrl.Cluster));
    s.xdsEvents$.next({ ...base(3, "c", "1.26.0"), type: "stream-open", service: "ads", peer: "p" });
    expect(await exposition(metrics, "pilot_xds")).toEqual([
      "# TYPE pilot_xds gauge",
      'pilot_xds{version="1.27.1"} 1',
      'pilot_xds{version=""} 1',
      'pilot_xds{version="1.26.0"} 1',
    ]);
    s.xdsEvents$.next({ ...base(1, "a"), type: "stream-close" });
    expect(await exposition(metrics, "pilot_xds")).toContain('pilot_xds{version="1.27.1"} 0');
  });

  it("counts pushes and NACKs by Istio's lower-case short type, with NACK counters at 0 for the core types", async () => {
    const s = sources();
    metrics = new ControlPlaneMetrics(s);
    expect(await exposition(metrics, "pilot_total_xds_rejects")).toEqual([
      "# TYPE pilot_total_xds_rejects counter",
      'pilot_total_xds_rejects{type="cds"} 0',
      'pilot_total_xds_rejects{type="eds"} 0',
      'pilot_total_xds_rejects{type="lds"} 0',
      'pilot_total_xds_rejects{type="rds"} 0',
    ]);
    s.xdsEvents$.next(response(1, "a", TypeUrl.Listener));
    s.xdsEvents$.next({ ...response(1, "a", TypeUrl.Listener), heartbeat: true } as XdsEvent);
    s.xdsEvents$.next({
      ...base(1, "a"),
      type: "nack",
      typeUrl: TypeUrl.Cluster,
      version: "1",
      rejectedVersion: "2",
      nonce: "n",
      errorDetail: { code: 3, message: "bad" },
    });
    expect(await exposition(metrics, "pilot_xds_pushes")).toEqual([
      "# TYPE pilot_xds_pushes counter",
      'pilot_xds_pushes{type="lds"} 1',
    ]);
    expect(await exposition(metrics, "pilot_total_xds_rejects")).toContain(
      'pilot_total_xds_rejects{type="cds"} 1',
    );
  });

  it("times each type's first response after a push (pilot_xds_push_time) and counts triggers by Istio's reasons", async () => {
    const s = sources();
    let now = 10_000;
    metrics = new ControlPlaneMetrics({ ...s, now: () => now });
    s.pushes$.next({
      cause: "config",
      version: "v",
      configs: [],
      proxies: ["a"],
      resourcesChanged: 1,
      durationMs: 20,
      at: 10_000,
    });
    s.pushes$.next({
      cause: "connect",
      version: "v",
      configs: [],
      proxies: [],
      resourcesChanged: 0,
      durationMs: 1,
      at: 10_000,
    });
    now = 10_030;
    s.xdsEvents$.next(response(1, "a", TypeUrl.Listener));
    now = 12_000;
    s.xdsEvents$.next(response(1, "a", TypeUrl.Listener));
    const time = await exposition(metrics, "pilot_xds_push_time_count");
    expect(time).toEqual(['pilot_xds_push_time_count{type="lds"} 1']);
    // 50 ms from the start of the push (10 000 - 20) to the response: in the 0.1 s bucket, not 0.01.
    const buckets = await exposition(metrics, "pilot_xds_push_time_bucket");
    expect(buckets).toContain('pilot_xds_push_time_bucket{le="0.01",type="lds"} 0');
    expect(buckets).toContain('pilot_xds_push_time_bucket{le="0.1",type="lds"} 1');
    expect(await exposition(metrics, "pilot_push_triggers")).toEqual([
      "# TYPE pilot_push_triggers counter",
      'pilot_push_triggers{type="config"} 1',
    ]);
    expect(await exposition(metrics, "pilot_proxy_convergence_time_count")).toEqual([
      "pilot_proxy_convergence_time_count 1",
    ]);
  });

  it("counts CSRs, authentication and parsing failures, and the root's expiry in unix seconds", async () => {
    const s = sources();
    metrics = new ControlPlaneMetrics(s);
    s.caEvents$.next({ type: "issued", spiffeId: "spiffe://td/ns/a/sa/b", authenticator: "mtls", peer: "p" });
    s.caEvents$.next({ type: "refused", code: "unauthenticated", reason: "no certificate", peer: "p" });
    s.caEvents$.next({ type: "refused", code: "malformed-csr", reason: "bad", peer: "p" });
    s.trustBundle$.next({ trustDomain: "td", roots: [EXPIRY_FIXTURE], sequence: 1 });
    await expectSamples(metrics, [
      `citadel_server_root_cert_expiry_timestamp ${EXPIRY_FIXTURE_NOT_AFTER}`,
      `citadel_server_cert_chain_expiry_timestamp ${EXPIRY_FIXTURE_NOT_AFTER}`,
    ]);
    await expectSamples(metrics, [
      "citadel_server_csr_count 3",
      "citadel_server_success_cert_issuance_count 1",
      "citadel_server_authentication_failure_count 1",
      "citadel_server_csr_parsing_err_count 1",
    ]);
  });

  it("counts a composed webhook server's requests under Istio's injector and Galley names", async () => {
    const s = sources();
    metrics = new ControlPlaneMetrics(s);
    metrics.observeWebhooks(s.webhooks$);
    for (const outcome of ["injected", "injected", "skipped", "failed"] as const)
      s.webhooks$.next({ type: "injection", outcome, pod: "default/p", durationMs: 1 });
    const gvr = { group: "networking.istio.io", version: "v1", resource: "virtualservices" };
    s.webhooks$.next({
      type: "validation",
      outcome: "allowed",
      resource: "VirtualService/default/a",
      gvr,
      durationMs: 1,
    });
    s.webhooks$.next({
      type: "validation",
      outcome: "denied",
      resource: "VirtualService/default/b",
      gvr,
      reason: "spec.http[0]: no host",
      durationMs: 1,
    });
    s.webhooks$.next({
      type: "validation",
      outcome: "unchecked",
      resource: "ConfigMap/default/c",
      durationMs: 1,
    });
    s.webhooks$.next({ type: "bad-request", path: "/validate", status: 400, reason: "not JSON" });
    await expectSamples(metrics, [
      "sidecar_injection_requests_total 4",
      "sidecar_injection_success_total 2",
      "sidecar_injection_skip_total 1",
      "sidecar_injection_failure_total 1",
      'galley_validation_passed{group="networking.istio.io",version="v1",resource="virtualservices"} 1',
      'galley_validation_failed{group="networking.istio.io",version="v1",resource="virtualservices",reason="invalid_resource"} 1',
      'galley_validation_http_error{status="400"} 1',
    ]);
  });

  it("exports the process metrics Prometheus clients export (process_cpu_seconds_total, process_resident_memory_bytes)", async () => {
    metrics = new ControlPlaneMetrics(sources());
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
  });
});
