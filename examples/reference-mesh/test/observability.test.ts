import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { copyFile, cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { create, fromBinary, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NodeSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { CheckRequestSchema, CheckResponseSchema } from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import {
  DiscoveryRequestSchema,
  type DiscoveryResponse,
  DiscoveryResponseSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { IstioCertificateRequestSchema } from "@meshlet/api/istio/security/v1alpha1/ca_pb";
import {
  createInjectionWebhook,
  createValidationWebhook,
  DEFAULT_INJECTOR_CONFIG,
  WebhookServer,
} from "@meshlet/kube";
import { CONTEXT_EXTENSION_LABELS, CONTEXT_EXTENSION_NAMESPACE } from "@meshlet/policy";
import { filter, firstValueFrom, timeout } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import type { ReferenceMesh as ReferenceMeshClass } from "../src/reference-mesh.js";

// Issue 16's observability test: every query of the two Grafana dashboards in
// aks/observability/grafana, run against a real `prometheus` (Debian's) scraping the local
// reference mesh — meshlet's control plane (its monitoring port, as meshletd's 15014) and the
// Bookinfo workloads' /metrics (Istio's standard metrics, as the agent's merged 15020 endpoint
// serves them in a cluster) — with the scrape jobs of aks/observability/prometheus/prometheus.yml
// and their relabelling. Kubernetes discovery cannot run here (no API server, and Debian's build
// lacks it): each job gets static targets carrying the __meta_kubernetes_* labels discovery would
// give, taken from the platform.yaml the mesh runs on. Metric names and labels are Istio's
// (istio/istio pilot/pkg/xds/monitoring.go, pkg/xds/monitoring.go,
// security/pkg/server/ca/monitoring.go, pkg/kube/inject/monitoring.go,
// pkg/webhooks/validation/server/monitoring.go; istio.io's "Istio Standard Metrics").
// What the local run would not do by itself, the test does once, through the real servers:
// AdmissionReviews to @meshlet/kube's webhook server composed on the control plane's registry,
// a CSR to the Istio CA API, an ext_authz Check, a NACK on an ADS stream, and a config change
// while Prometheus scrapes.

const EXAMPLE = fileURLToPath(new URL("..", import.meta.url));
const OBSERVABILITY = join(EXAMPLE, "aks", "observability");
const MESH_MODULE = join(EXAMPLE, "dist", "reference-mesh.js");
const RATE_INTERVAL = "1m";

/**
 * Panel queries that cannot return data here, and why. Keep this list short and true.
 */
const NO_DATA_HERE: Readonly<Record<string, string>> = {
  "meshlet — Mesh / Ingress gateway requests by response code / A":
    "no ingress gateway runs locally: it is Istio's Envoy in router mode, and Envoy cannot run here",
};

interface Dashboard {
  title: string;
  panels: Array<{ title: string; targets: Array<{ expr: string; refId: string }> }>;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe("the dashboards against a real prometheus scraping the local reference mesh", () => {
  let tmp = "";
  let configDir = "";
  let mesh: ReferenceMeshClass | undefined;
  let webhook: WebhookServer | undefined;
  let prometheus: ChildProcess | undefined;
  let api = "";
  const killPrometheus = () => prometheus?.kill("SIGKILL");

  const dashboards: Dashboard[] = ["mesh-dashboard.json", "control-plane-dashboard.json"].map(
    (f) => JSON.parse(readFileSync(join(OBSERVABILITY, "grafana", f), "utf8")) as Dashboard,
  );
  // Grafana's variables as a panel runs them: $__rate_interval is at least four scrape intervals
  // (1 s here; 1 m is what the dashboards get with Azure's 30 s), $namespace the demo's, $workload
  // "All".
  const expand = (expr: string) =>
    expr
      .replaceAll("$__rate_interval", RATE_INTERVAL)
      .replaceAll("$namespace", "default")
      .replaceAll("$workload", ".*");
  const queries = dashboards.flatMap((d) =>
    d.panels.flatMap((p) =>
      p.targets.map((t) => ({ where: `${d.title} / ${p.title} / ${t.refId}`, expr: expand(t.expr) })),
    ),
  );

  const query = async (expr: string): Promise<Sample[]> => {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: Sample[] } };
    if (body.status !== "success") throw new Error(`${expr}: ${body.status}: ${body.error}`);
    return body.data?.result ?? [];
  };
  /** Polls `check` (every 500 ms) until it returns undefined; fails with its last answer after `ms`. */
  const until = async (what: string, ms: number, check: () => Promise<string | undefined>) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const missing = await check();
      if (missing === undefined) return;
      if (Date.now() > deadline) throw new Error(`${what}: ${missing}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "meshlet-observability-"));
    configDir = join(tmp, "config");
    await cp(join(EXAMPLE, "config"), configDir, { recursive: true });
    await copyFile(join(EXAMPLE, "scenarios", "default.yaml"), join(configDir, "scenario.yaml"));
    const { ReferenceMesh } = (await import(pathToFileURL(MESH_MODULE).href)) as {
      ReferenceMesh: typeof ReferenceMeshClass;
    };
    mesh = await ReferenceMesh.start({
      configDir,
      stateDir: join(tmp, "state"),
      rps: 10,
      stepTimeoutMs: 120_000,
    });
    const plane = mesh.plane;
    if (plane.metrics === undefined || plane.addresses.metrics === undefined)
      throw new Error("the control plane serves no metrics");

    // The injection and validation webhooks, composed on the control plane's registry as meshletd
    // composes them, serving a certificate from the control plane's CA for the webhook Service's
    // DNS name (what the webhook configurations' caBundle vouches for in a cluster).
    const SERVICE_DNS = "meshletd.meshlet-system.svc";
    const keys = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const chain = await plane.ca.issue({
      publicKey: keys.publicKey,
      identity: `spiffe://${plane.trustDomain}/ns/meshlet-system/sa/meshletd`,
      dnsNames: [SERVICE_DNS],
    });
    const roots = [...plane.ca.trustBundle.roots];
    const certificate = {
      cert: chain.filter((pem) => !roots.includes(pem)).join(""),
      key: keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
    webhook = new WebhookServer({
      certificate,
      injection: createInjectionWebhook(DEFAULT_INJECTOR_CONFIG),
      validation: createValidationWebhook(),
      host: "127.0.0.1",
      port: 0,
    });
    plane.metrics.observeWebhooks(webhook.events$);
    const { port: webhookPort } = await webhook.listen();
    const review = (path: string, resource: Record<string, string>, object: unknown, name: string) =>
      new Promise<{ allowed: boolean }>((resolve, reject) => {
        const body = JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          request: {
            uid: `3c2b1a00-0000-4000-8000-${String(name.length).padStart(12, "0")}`,
            kind: {
              group: resource.group,
              version: resource.version,
              kind: (object as { kind: string }).kind,
            },
            resource,
            namespace: "default",
            name,
            operation: "CREATE",
            userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller" },
            object,
            oldObject: null,
            dryRun: false,
          },
        });
        const req = request(
          {
            host: "127.0.0.1",
            port: webhookPort,
            path,
            method: "POST",
            ca: roots,
            servername: SERVICE_DNS,
            agent: false,
            headers: { "content-type": "application/json" },
          },
          (res) => {
            let text = "";
            res.setEncoding("utf8").on("data", (c: string) => (text += c));
            res.on("end", () => {
              try {
                resolve((JSON.parse(text) as { response: { allowed: boolean } }).response);
              } catch (error) {
                reject(new Error(`${path} answered ${res.statusCode}: ${text}`, { cause: error }));
              }
            });
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    const pod = (name: string, annotations: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "default", labels: { app: "details", version: "v1" }, annotations },
      spec: { serviceAccountName: "bookinfo-details", containers: [{ name: "details", image: "details:1" }] },
    });
    const pods = { group: "", version: "v1", resource: "pods" };
    const virtualServices = { group: "networking.istio.io", version: "v1", resource: "virtualservices" };
    const virtualService = (name: string, host: string | undefined) => ({
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name, namespace: "default" },
      spec: { hosts: ["reviews"], http: [{ route: [{ destination: host === undefined ? {} : { host } }] }] },
    });
    // Injected, opted out, and one the injector cannot inject (an unknown template): admitted unchanged.
    expect(await review("/inject", pods, pod("details-injected", {}), "details-injected")).toMatchObject({
      allowed: true,
    });
    expect(
      await review(
        "/inject",
        pods,
        pod("details-opted-out", { "sidecar.istio.io/inject": "false" }),
        "details-opted-out",
      ),
    ).toMatchObject({ allowed: true });
    expect(
      await review(
        "/inject",
        pods,
        pod("details-bad", { "inject.istio.io/templates": "no-such-template" }),
        "details-bad",
      ),
    ).toMatchObject({ allowed: true });
    expect(
      await review("/validate", virtualServices, virtualService("good", "reviews"), "good"),
    ).toMatchObject({ allowed: true });
    expect(await review("/validate", virtualServices, virtualService("bad", undefined), "bad")).toMatchObject(
      { allowed: false },
    );

    // A CSR to the Istio CA API over the plaintext port: no client certificate, so refused as
    // UNAUTHENTICATED (counted as a CSR and an authentication failure, as istiod counts them).
    const client = new grpc.Client(plane.addresses.grpc, grpc.credentials.createInsecure());
    const unary = <T>(path: string, message: Uint8Array, decode: (b: Buffer) => T) =>
      new Promise<{ error: grpc.ServiceError | null; value: T | undefined }>((resolve) =>
        client.makeUnaryRequest(
          path,
          (m: Uint8Array) => Buffer.from(m),
          decode,
          message,
          (error, value) => resolve({ error, value }),
        ),
      );
    const csr = await unary(
      "/istio.v1.auth.IstioCertificateService/CreateCertificate",
      toBinary(
        IstioCertificateRequestSchema,
        create(IstioCertificateRequestSchema, { csr: "not a CSR", validityDuration: 3600n }),
      ),
      (b) => b,
    );
    expect(csr.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    // An ext_authz Check for reviews-v1, as Envoy's ext_authz filter sends it (the workload in the
    // context extensions the control plane writes into Envoy's config).
    const check = await unary(
      "/envoy.service.auth.v3.Authorization/Check",
      toBinary(
        CheckRequestSchema,
        create(CheckRequestSchema, {
          attributes: {
            destination: { principal: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews" },
            source: { principal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage" },
            request: { http: { method: "GET", path: "/reviews/0", host: "reviews", headers: {} } },
            contextExtensions: {
              [CONTEXT_EXTENSION_NAMESPACE]: "default",
              [CONTEXT_EXTENSION_LABELS]: JSON.stringify({ app: "reviews", version: "v1" }),
            },
          },
        }),
      ),
      (b) => fromBinary(CheckResponseSchema, b),
    );
    expect(check.error).toBeNull();
    client.close();

    // Prometheus, with the repository's scrape jobs and the targets discovery would hand them.
    const selfRun = parse(await readFile(join(OBSERVABILITY, "prometheus", "prometheus.yml"), "utf8")) as {
      scrape_configs: Array<Record<string, unknown>>;
    };
    const platform = parseAllDocuments(await readFile(mesh.platformFile, "utf8"))
      .map(
        (d) =>
          d.toJS() as {
            kind: string;
            metadata: {
              name: string;
              namespace: string;
              labels?: Record<string, string>;
              annotations?: Record<string, string>;
            };
            status?: { phase: string; podIP: string };
          },
      )
      .filter((d) => d?.kind === "Pod");
    const meta = (prefix: string, values: Record<string, string> | undefined) =>
      Object.fromEntries(
        Object.entries(values ?? {}).map(([k, v]) => [`${prefix}${k.replace(/[^a-zA-Z0-9_]/g, "_")}`, v]),
      );
    const metricsAddress = new URL(plane.addresses.metrics).host;
    const targets: Record<string, unknown[]> = {
      meshletd: [
        {
          targets: [metricsAddress],
          labels: {
            __meta_kubernetes_service_name: "meshletd",
            __meta_kubernetes_endpoint_port_name: "http-monitoring",
            __meta_kubernetes_pod_name: "meshletd-0",
            __meta_kubernetes_namespace: "meshlet-system",
          },
        },
      ],
      "kubernetes-pods": platform.map((p) => ({
        targets: [p.status?.podIP],
        labels: {
          __meta_kubernetes_pod_ip: p.status?.podIP,
          __meta_kubernetes_pod_phase: p.status?.phase,
          __meta_kubernetes_pod_name: p.metadata.name,
          __meta_kubernetes_namespace: p.metadata.namespace,
          ...meta("__meta_kubernetes_pod_label_", p.metadata.labels),
          ...meta("__meta_kubernetes_pod_annotation_", p.metadata.annotations),
        },
      })),
    };
    const config = { ...selfRun, global: { scrape_interval: "1s", evaluation_interval: "1s" } };
    for (const job of config.scrape_configs) {
      delete job.kubernetes_sd_configs;
      job.static_configs = targets[job.job_name as string];
    }
    await writeFile(join(tmp, "prometheus.yml"), stringify(config));
    const checked = spawnSync("promtool", ["check", "config", join(tmp, "prometheus.yml")], {
      encoding: "utf8",
    });
    expect(checked.stdout + checked.stderr).toContain("SUCCESS");

    prometheus = spawn(
      "prometheus",
      [
        `--config.file=${join(tmp, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(tmp, "tsdb")}`,
        "--web.listen-address=127.0.0.1:0",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    process.once("exit", killPrometheus);
    api = await new Promise<string>((resolve, reject) => {
      let log = "";
      prometheus?.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
        log += chunk;
        const match = /msg="Listening on" address=(127\.0\.0\.1:\d+)/.exec(log);
        if (match) resolve(`http://${match[1]}`);
      });
      prometheus?.on("exit", (code) => reject(new Error(`prometheus exited (${code}): ${log}`)));
    });

    // Every target up and scraped a few times (each job's scrape count, from Prometheus itself).
    const expectedTargets = platform.length + 1;
    await until("targets", 120_000, async () => {
      const body = (await fetch(`${api}/api/v1/targets`).then(
        (r) => r.json(),
        () => ({ data: { activeTargets: [] } }),
      )) as { data: { activeTargets: Array<{ health: string; scrapeUrl: string; lastError: string }> } };
      const active = body.data.activeTargets;
      const down = active.filter((t) => t.health !== "up");
      if (active.length !== expectedTargets || down.length > 0)
        return `${active.length}/${expectedTargets} targets, down: ${down.map((t) => `${t.scrapeUrl} ${t.lastError}`).join("; ")}`;
      const scrapes = await query("min(count_over_time(up[1m]))").catch(() => []);
      return Number(scrapes[0]?.value[1] ?? 0) >= 3 ? undefined : "fewer than 3 scrapes per target";
    });

    // A proxy rejecting config while Prometheus watches, as Envoy NACKs a response it cannot load:
    // an ADS stream as details-v1's node (the node of its bootstrap), a CDS response, its NACK.
    const details = mesh.workloads.find((w) => w.workload.app === "details")?.workload.pod ?? "";
    const bootstrapFile = plane.workloads.files("default", details)?.bootstrap ?? "";
    const bootstrap = JSON.parse(await readFile(bootstrapFile, "utf8")) as { node: JsonValue };
    const nacked = firstValueFrom(
      plane.xds.events$.pipe(
        filter((e) => e.type === "nack"),
        timeout(60_000),
      ),
    );
    const ads = new grpc.Client(plane.addresses.grpc, grpc.credentials.createInsecure());
    const stream = ads.makeBidiStreamRequest(
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
      (m: Uint8Array) => Buffer.from(m),
      (b: Buffer) => fromBinary(DiscoveryResponseSchema, b),
    );
    const CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    const first = new Promise<DiscoveryResponse>((resolve, reject) => {
      stream.once("data", resolve);
      stream.once("error", reject);
    });
    stream.write(
      toBinary(
        DiscoveryRequestSchema,
        create(DiscoveryRequestSchema, {
          node: fromJson(NodeSchema, bootstrap.node, { ignoreUnknownFields: true }),
          typeUrl: CDS,
        }),
      ),
    );
    const cds = await first;
    stream.write(
      toBinary(
        DiscoveryRequestSchema,
        create(DiscoveryRequestSchema, {
          typeUrl: CDS,
          responseNonce: cds.nonce,
          errorDetail: { code: grpc.status.INVALID_ARGUMENT, message: "cluster rejected by the test" },
        }),
      ),
    );
    await nacked;
    stream.on("error", () => undefined);
    stream.cancel();
    ads.close();

    // A config change while Prometheus watches: pushes, push latency and convergence move in the window.
    const pushed = firstValueFrom(
      plane.events$.pipe(
        filter((e) => e.type === "push" && e.push.cause === "config" && e.push.proxies.length > 0),
        timeout(120_000),
      ),
    );
    await copyFile(join(EXAMPLE, "scenarios", "reviews-v3.yaml"), join(configDir, "scenario.yaml"));
    await pushed;
  }, 400_000);

  afterAll(async () => {
    if (prometheus !== undefined && prometheus.exitCode === null && prometheus.signalCode === null) {
      const exited = new Promise((resolve) => prometheus?.once("exit", resolve));
      const kill = setTimeout(() => prometheus?.kill("SIGKILL"), 10_000);
      prometheus.kill("SIGTERM");
      await exited;
      clearTimeout(kill);
    }
    process.off("exit", killPrometheus);
    await webhook?.close().catch(() => undefined);
    await mesh?.close();
    if (tmp !== "") await rm(tmp, { recursive: true, force: true });
  }, 60_000);

  it("scrapes the control plane as job meshletd and every workload through the pod annotations", async () => {
    const up = await query("up");
    const byJob = new Map<string, string[]>();
    for (const s of up)
      byJob.set(s.metric.job ?? "", [...(byJob.get(s.metric.job ?? "") ?? []), s.metric.pod ?? ""]);
    expect(byJob.get("meshletd")).toEqual(["meshletd-0"]);
    expect(byJob.get("kubernetes-pods")?.sort()).toEqual(mesh?.workloads.map((w) => w.workload.pod).sort());
    expect(up.every((s) => s.value[1] === "1")).toBe(true);
  });

  it("every dashboard variable and panel query returns data (finite values)", async () => {
    const variables = dashboards.flatMap((d) =>
      d.templating.list
        .filter((v) => v.type === "query")
        .map((v) => {
          const match = /^label_values\((.+), (\w+)\)$/.exec((v.query as { query: string }).query);
          if (match === null)
            throw new Error(`${d.title}: variable ${v.name} is not label_values(metric, label)`);
          return { where: `${d.title} / $${v.name}`, expr: expand(`count by (${match[2]}) (${match[1]})`) };
        }),
    );
    expect(queries.length).toBeGreaterThan(30);
    for (const where of Object.keys(NO_DATA_HERE)) expect(queries.map((q) => q.where)).toContain(where);
    // Rates need two samples after the config change; poll until each query has answered with
    // data once (a rate over 1 m of the push at the start may fall out of its window later).
    const pending = new Map(
      [...variables, ...queries].filter((q) => !(q.where in NO_DATA_HERE)).map((q) => [q.where, q.expr]),
    );
    await until("queries without data", 120_000, async () => {
      for (const [where, expr] of pending) {
        const result = await query(expr);
        if (result.some((s) => Number.isFinite(Number(s.value[1])))) pending.delete(where);
      }
      return pending.size === 0 ? undefined : [...pending].map(([w, e]) => `${w}: ${e}`).join("\n");
    });
    expect([...pending.keys()]).toEqual([]);
    for (const where of Object.keys(NO_DATA_HERE))
      expect(await query(queries.find((q) => q.where === where)?.expr ?? "")).toEqual([]);
  }, 240_000);

  it("the values mean what the panels say", async () => {
    const value = async (expr: string) => Number((await query(expr))[0]?.value[1]);
    const variable = async (expr: string, label: string) =>
      (await query(expr)).map((s) => s.metric[label]).sort();
    // The mesh: the namespace and workloads the variables offer, traffic to each server, p50 ≤ p99.
    expect(
      await variable(
        'count by (destination_workload_namespace) (istio_requests_total{reporter="destination"})',
        "destination_workload_namespace",
      ),
    ).toEqual(["default"]);
    const servers = mesh?.workloads
      .filter((w) => w.workload.server)
      .map((w) => w.workload.workload)
      .sort();
    expect(
      await variable(
        'count by (destination_workload) (istio_requests_total{reporter="destination"})',
        "destination_workload",
      ),
    ).toEqual(servers);
    expect(
      await value(
        `sum(rate(istio_requests_total{reporter="destination", destination_workload="productpage-v1"}[${RATE_INTERVAL}]))`,
      ),
    ).toBeGreaterThan(0);
    const quantile = (q: number) =>
      value(
        `histogram_quantile(${q}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload="productpage-v1"}[${RATE_INTERVAL}])))`,
      );
    expect(await quantile(0.5)).toBeLessThanOrEqual(await quantile(0.99));
    expect(
      await value(
        `sum(rate(istio_requests_total{reporter="destination", connection_security_policy="mutual_tls"}[${RATE_INTERVAL}])) / sum(rate(istio_requests_total{reporter="destination"}[${RATE_INTERVAL}]))`,
      ),
    ).toBe(1);
    // The control plane: one stream per workload at least, pushes, a certificate per pod.
    expect(await value("sum(pilot_xds)")).toBeGreaterThanOrEqual(mesh?.workloads.length ?? Number.NaN);
    expect(await value("sum(pilot_xds_pushes)")).toBeGreaterThan(0);
    expect(await value('sum(pilot_total_xds_rejects{type="cds"})')).toBe(1);
    expect(await value("sum(increase(pilot_total_xds_rejects[1h]))")).toBeGreaterThan(0);
    expect(await value('sum(pilot_push_triggers{type="config"})')).toBeGreaterThanOrEqual(2);
    expect(await value("sum(citadel_server_success_cert_issuance_count)")).toBeGreaterThanOrEqual(
      mesh?.workloads.length ?? Number.NaN,
    );
    expect(await value("sum(citadel_server_csr_count)")).toBe(1);
    expect(await value("sum(citadel_server_authentication_failure_count)")).toBe(1);
    expect(await value("(min(citadel_server_root_cert_expiry_timestamp) - time()) / 86400")).toBeGreaterThan(
      30,
    );
    expect(await value("sum(meshlet_policy_decisions_total)")).toBe(1);
    expect(await value("sum(meshlet_ratelimit_decisions_total)")).toBeGreaterThan(0);
    // The webhooks: what the AdmissionReviews above asked for, under Istio's names and labels.
    expect(await value("sidecar_injection_requests_total")).toBe(3);
    expect(await value("sidecar_injection_success_total")).toBe(1);
    expect(await value("sidecar_injection_skip_total")).toBe(1);
    expect(await value("sidecar_injection_failure_total")).toBe(1);
    expect(
      await value(
        'galley_validation_passed{group="networking.istio.io", version="v1", resource="virtualservices"}',
      ),
    ).toBe(1);
    expect(
      await value('galley_validation_failed{resource="virtualservices", reason="invalid_resource"}'),
    ).toBe(1);
  }, 120_000);
});

// Debian's prometheus and promtool; scripts/setup.sh installs them.
execFileSync("prometheus", ["--version"], { stdio: "ignore" });
