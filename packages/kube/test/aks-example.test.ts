import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { DEFAULT_INJECTOR_CONFIG, injectPod, type KubeObject, validateManifests } from "../src/index.js";
import { startMeshMetrics } from "./support/mesh-metrics.js";

// The AKS reference mesh's files (examples/reference-mesh/aks), checked with real tools where they
// run here: bash -n and shellcheck for the scripts, Debian's promtool and prometheus for the scrape
// configuration and every dashboard query, node for the demo service, Kubernetes' schemas
// (kubernetes-models) and @meshlet/config for the manifests. Azure, AKS, a Kubernetes API server and
// a container runtime cannot run here: deploy.sh, the Dockerfiles and the images are checked for
// their form only (docs/aks.md, "Verified here vs only on paper").

const AKS = fileURLToPath(new URL("../../../examples/reference-mesh/aks/", import.meta.url));
const DOCS = fileURLToPath(new URL("../../../docs/aks.md", import.meta.url));
const GRAFANA_DATASOURCE = ["$", "{datasource}"].join("");
const read = (path: string) => readFileSync(join(AKS, path), "utf8");
const yamlDocs = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject)
    .filter((d) => d !== null);

interface Dashboard {
  uid: string;
  title: string;
  panels: Array<{
    id: number;
    title: string;
    datasource: { uid: string };
    targets: Array<{ expr: string; refId: string }>;
  }>;
  templating: { list: Array<{ name: string; type: string; query: unknown }> };
}
const dashboards: Dashboard[] = ["mesh-dashboard.json", "control-plane-dashboard.json"].map(
  (f) => JSON.parse(read(`observability/grafana/${f}`)) as Dashboard,
);
// Grafana's variables, as a panel would run with "All" selected and a 10 s rate window.
const expand = (expr: string) =>
  expr
    .replaceAll("$__rate_interval", "10s")
    .replaceAll('=~"$namespace"', '=~".*"')
    .replaceAll('=~"$workload"', '=~".*"');
const queries = dashboards.flatMap((d) =>
  d.panels.flatMap((p) =>
    p.targets.map((t) => ({ where: `${d.title} / ${p.title} / ${t.refId}`, expr: expand(t.expr) })),
  ),
);

describe("scripts", () => {
  for (const script of ["deploy.sh", "teardown.sh", "vault/vault-setup.sh"]) {
    it(`${script} passes bash -n and shellcheck`, () => {
      expect(spawnSync("bash", ["-n", join(AKS, script)]).status).toBe(0);
      const check = spawnSync("shellcheck", [join(AKS, script)], { encoding: "utf8" });
      expect(check.stdout).toBe("");
      expect(check.status).toBe(0);
    });
  }

  it("deploy.sh refuses to run beside the AKS Istio add-on and installs only Istio's CRDs", () => {
    const deploy = read("deploy.sh");
    expect(deploy).toContain("serviceMeshProfile.mode");
    expect(deploy).toContain("az aks mesh disable");
    expect(deploy).toMatch(/helm pull istio\/base --version "\$ISTIO_VERSION"/);
    expect(deploy).toMatch(/kubectl apply --server-side --force-conflicts -f "\$CRDS"/);
    expect(deploy).toContain("npx meshlet manifest generate");
  });
});

describe("Dockerfiles", () => {
  for (const file of ["Dockerfile.meshletd", "Dockerfile.demo"]) {
    it(`${file} is multi-stage and runs as a non-root user with an exec-form entrypoint`, () => {
      const text = read(file);
      const stages = text.match(/^FROM .+$/gm) ?? [];
      expect(stages.length).toBeGreaterThanOrEqual(2);
      for (const stage of stages) expect(stage).not.toMatch(/:latest\b/);
      const final = text.slice(text.lastIndexOf("\nFROM "));
      expect(final).toMatch(/^USER 10001:10001$/m);
      expect(final).toMatch(/^ENTRYPOINT \[".*"\]$/m);
      expect(final).not.toMatch(/npm (ci|install)/);
    });
  }
  it("ships meshletd with production dependencies only", () => {
    expect(read("Dockerfile.meshletd")).toMatch(/npm prune --omit=dev/);
  });
});

describe("demo", () => {
  const docs = yamlDocs(
    read("demo/demo.yaml").replaceAll("__DEMO_IMAGE__", "meshletacr.azurecr.io/meshlet-demo:abc123"),
  );

  it("validates against Kubernetes' schemas and meshlet's Istio validation", () => {
    expect(validateManifests(docs)).toEqual([]);
    expect(docs.find((d) => d.kind === "Namespace")?.metadata?.labels).toEqual({
      "istio-injection": "enabled",
    });
  });

  it("is injected by meshlet's injector: every demo pod gets istio-proxy and istio-init", () => {
    for (const d of docs) {
      if (d.kind !== "Deployment") continue;
      const template = d.spec?.template;
      const result = injectPod(
        {
          metadata: { ...template?.metadata, namespace: "demo" },
          spec: template?.spec ?? { containers: [] },
        },
        DEFAULT_INJECTOR_CONFIG,
      );
      expect(result.injected, d.metadata?.name).toBe(true);
      if (!result.injected) continue;
      expect(result.pod.spec.containers.map((c) => c.name).at(-1)).toBe("istio-proxy");
      expect(result.pod.spec.initContainers?.map((c) => c.name)).toEqual(["istio-init"]);
    }
  });

  it("the demo service answers, calls its upstreams with the trace headers, and injects failures", async () => {
    const started: ChildProcess[] = [];
    const run = (env: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [join(AKS, "demo/server.mjs")], {
          env: { ...process.env, PORT: "0", ...env },
          stdio: ["ignore", "pipe", "inherit"],
        });
        started.push(child);
        child.on("error", reject);
        child.stdout?.on("data", (chunk: Buffer) => {
          const match = /listening on :(\d+)/.exec(chunk.toString());
          if (match) resolve(Number(match[1]));
        });
      });
    try {
      const ratings = await run({ SERVICE_NAME: "ratings" });
      const broken = await run({ SERVICE_NAME: "catalog", VERSION: "v2", ERROR_RATE: "1" });
      const frontend = await run({ SERVICE_NAME: "frontend", UPSTREAMS: `http://127.0.0.1:${ratings}/` });
      const res = await fetch(`http://127.0.0.1:${frontend}/`, {
        headers: {
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          "x-request-id": "r-1",
        },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        service: string;
        upstreams: Array<{ status: number; body: { service: string; traceHeaders: Record<string, string> } }>;
      };
      expect(body.service).toBe("frontend");
      expect(body.upstreams[0]?.status).toBe(200);
      expect(body.upstreams[0]?.body.traceHeaders).toEqual({
        "x-request-id": "r-1",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      });
      expect((await fetch(`http://127.0.0.1:${broken}/`)).status).toBe(503);
    } finally {
      for (const child of started) child.kill("SIGKILL");
    }
  });
});

describe("manifests next to the example", () => {
  it("self-run Prometheus and the OpenTelemetry collector validate against Kubernetes' schemas", () => {
    expect(validateManifests(yamlDocs(read("observability/prometheus/prometheus.yaml")))).toEqual([]);
    const otel = yamlDocs(read("observability/otel-collector.yaml"));
    expect(validateManifests(otel)).toEqual([]);
    const config = parse((otel[0] as { data: Record<string, string> }).data["config.yaml"] as string) as {
      receivers: { otlp: { protocols: { grpc: { endpoint: string } } } };
      service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
    };
    expect(config.receivers.otlp.protocols.grpc.endpoint).toBe("0.0.0.0:4317");
    expect(config.service.pipelines.traces.exporters).toContain("azuremonitor");
  });
});

describe("dashboards", () => {
  it("are Grafana dashboards whose panels use the datasource variable", () => {
    for (const d of dashboards) {
      expect(d.templating.list[0]).toMatchObject({
        name: "datasource",
        type: "datasource",
        query: "prometheus",
      });
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of d.panels) {
        // Grafana's variable syntax, not a template literal.
        expect(p.datasource.uid, p.title).toBe(GRAFANA_DATASOURCE);
        expect(new Set(p.targets.map((t) => t.refId)).size, p.title).toBe(p.targets.length);
      }
    }
  });

  it("cover request rate, errors and p50/p99 by workload from Istio's metrics", () => {
    const mesh = dashboards[0]?.panels.flatMap((p) => p.targets.map((t) => t.expr)).join("\n") ?? "";
    expect(mesh).toContain("istio_requests_total");
    expect(mesh).toContain('response_code=~"5.."');
    expect(mesh).toMatch(
      /histogram_quantile\(0\.50, sum by \(le, destination_workload, destination_workload_namespace\) \(rate\(istio_request_duration_milliseconds_bucket/,
    );
    expect(mesh).toMatch(
      /histogram_quantile\(0\.99, sum by \(le, destination_workload, destination_workload_namespace\)/,
    );
  });

  it("every query parses (promtool check rules)", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlet-promql-"));
    try {
      const rules = {
        groups: [
          {
            name: "dashboards",
            rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })),
          },
        ],
      };
      writeFileSync(join(dir, "rules.yml"), stringify(rules));
      const out = spawnSync("promtool", ["check", "rules", join(dir, "rules.yml")], { encoding: "utf8" });
      expect(out.stdout + out.stderr).toContain(`SUCCESS: ${queries.length} rules found`);
      expect(out.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("use only control-plane metric names docs/aks.md defines as meshletd's contract", () => {
    const contract = readFileSync(DOCS, "utf8");
    const used = new Set(
      queries
        .flatMap((q) => q.expr.match(/\b(?:pilot|citadel|meshlet|sidecar|galley|process)_[a-z0-9_]+/g) ?? [])
        .map((m) => m.replace(/_bucket$/, "")),
    );
    expect(used.size).toBeGreaterThan(15);
    for (const metric of used) expect(contract, metric).toContain(`| \`${metric}\``);
  });
});

describe("Prometheus scrape configuration", () => {
  const selfRun = parse(read("observability/prometheus/prometheus.yml")) as { scrape_configs: unknown[] };
  const azure = parse(read("observability/azure-monitor/prometheus-config")) as { scrape_configs: unknown[] };

  it("is the same for Azure Monitor managed Prometheus and a self-run Prometheus", () => {
    expect(azure.scrape_configs).toEqual(selfRun.scrape_configs);
  });

  it("passes promtool check config (Kubernetes discovery swapped for static targets: Debian's Prometheus is built without it)", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlet-promconfig-"));
    try {
      for (const [name, config] of [
        ["self-run.yml", selfRun],
        ["azure.yml", azure],
      ] as const) {
        const swapped = JSON.parse(
          JSON.stringify(config).replaceAll('"kubernetes_sd_configs"', '"static_configs"'),
        ) as { scrape_configs: Array<{ static_configs: unknown[] }> };
        for (const job of swapped.scrape_configs) job.static_configs = [{ targets: ["127.0.0.1:9"] }];
        writeFileSync(join(dir, name), stringify(swapped));
        const out = spawnSync("promtool", ["check", "config", join(dir, name)], { encoding: "utf8" });
        expect(out.stdout + out.stderr, name).toContain("SUCCESS");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("with a real prometheus scraping a stand-in for the mesh", () => {
    let dir = "";
    let prometheus: ChildProcess | undefined;
    let metrics: Awaited<ReturnType<typeof startMeshMetrics>> | undefined;
    let api = "";

    beforeAll(async () => {
      metrics = await startMeshMetrics();
      dir = mkdtempSync(join(tmpdir(), "meshlet-prometheus-"));
      // What Kubernetes service discovery would hand each job, as static targets with the same
      // __meta_kubernetes_* labels: the relabelling under test is the real one.
      const injected = injectPod(
        {
          metadata: { name: "catalog-v1-7c9d", namespace: "demo", labels: { app: "catalog", version: "v1" } },
          spec: { containers: [{ name: "catalog", image: "demo" }] },
        },
        DEFAULT_INJECTOR_CONFIG,
      );
      if (!injected.injected) throw new Error(injected.reason);
      const annotationLabels = Object.fromEntries(
        Object.entries(injected.pod.metadata.annotations ?? {})
          .filter(([k]) => k.startsWith("prometheus.io/"))
          .map(([k, v]) => [`__meta_kubernetes_pod_annotation_${k.replace(/[^a-zA-Z0-9_]/g, "_")}`, v]),
      );
      expect(annotationLabels).toEqual({
        __meta_kubernetes_pod_annotation_prometheus_io_port: "15020",
        __meta_kubernetes_pod_annotation_prometheus_io_path: "/stats/prometheus",
        __meta_kubernetes_pod_annotation_prometheus_io_scrape: "true",
      });
      const pod = (name: string, extra: Record<string, string>) => ({
        targets: ["127.0.0.1"],
        labels: {
          __meta_kubernetes_pod_ip: "127.0.0.1",
          __meta_kubernetes_pod_phase: "Running",
          __meta_kubernetes_pod_name: name,
          __meta_kubernetes_namespace: "demo",
          ...extra,
        },
      });
      const targets: Record<string, unknown[]> = {
        "kubernetes-pods": [
          // The injector's annotations, with the stand-in's port instead of 15020.
          pod("catalog-v1-7c9d", {
            ...annotationLabels,
            __meta_kubernetes_pod_annotation_prometheus_io_port: String(metrics.port),
            __meta_kubernetes_pod_label_app: "catalog",
          }),
          pod("unannotated", { __meta_kubernetes_pod_label_app: "other" }),
          pod("meshletd-5f7", {
            __meta_kubernetes_pod_annotation_prometheus_io_scrape: "true",
            __meta_kubernetes_pod_annotation_prometheus_io_port: String(metrics.port),
            __meta_kubernetes_pod_label_app: "meshletd",
          }),
          pod("pending", { ...annotationLabels, __meta_kubernetes_pod_phase: "Pending" }),
        ],
        meshletd: [
          {
            targets: [`127.0.0.1:${metrics.port}`],
            labels: {
              __meta_kubernetes_service_name: "meshletd",
              __meta_kubernetes_endpoint_port_name: "http-monitoring",
              __meta_kubernetes_pod_name: "meshletd-5f7",
              __meta_kubernetes_namespace: "meshlet-system",
            },
          },
          {
            targets: ["127.0.0.1:15010"],
            labels: {
              __meta_kubernetes_service_name: "meshletd",
              __meta_kubernetes_endpoint_port_name: "grpc-xds",
            },
          },
        ],
      };
      const config = structuredClone(selfRun) as {
        global: Record<string, string>;
        scrape_configs: Array<Record<string, unknown>>;
      };
      config.global = { scrape_interval: "1s", evaluation_interval: "1s" };
      for (const job of config.scrape_configs) {
        delete job.kubernetes_sd_configs;
        job.static_configs = targets[job.job_name as string];
      }
      writeFileSync(join(dir, "prometheus.yml"), stringify(config));
      prometheus = spawn(
        "prometheus",
        [
          `--config.file=${join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          "--web.listen-address=127.0.0.1:0",
        ],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      api = await new Promise<string>((resolve, reject) => {
        let log = "";
        prometheus?.stderr?.on("data", (chunk: Buffer) => {
          log += chunk.toString();
          const match = /msg="Listening on" address=(127\.0\.0\.1:\d+)/.exec(log);
          if (match) resolve(`http://${match[1]}`);
        });
        prometheus?.on("exit", (code) => reject(new Error(`prometheus exited (${code}): ${log}`)));
      });
      // It listens before its storage is open: /-/ready answers 503 until then.
      for (let i = 0; i < 240; i++) {
        const ready = await fetch(`${api}/-/ready`).then(
          (r) => r.status === 200,
          () => false,
        );
        if (ready) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    });

    afterAll(async () => {
      if (prometheus !== undefined && prometheus.exitCode === null) {
        const exited = new Promise((resolve) => prometheus?.on("exit", resolve));
        prometheus.kill("SIGTERM");
        await exited;
      }
      await metrics?.close();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    const query = async (expr: string) => {
      const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
      const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
      if (body.status !== "success") throw new Error(`${expr}: ${body.error}`);
      return body.data?.result ?? [];
    };

    it("keeps the injected sidecar and meshletd's monitoring port, and drops the rest", async () => {
      let active: Array<{ labels: Record<string, string>; scrapeUrl: string; health: string }> = [];
      let dropped: unknown[] = [];
      for (let i = 0; i < 120; i++) {
        const body = (await (await fetch(`${api}/api/v1/targets`)).json()) as {
          data: { activeTargets: typeof active; droppedTargets: unknown[] };
        };
        active = body.data.activeTargets;
        dropped = body.data.droppedTargets;
        if (active.length === 2 && active.every((t) => t.health === "up")) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const byJob = Object.fromEntries(active.map((t) => [t.labels.job, t]));
      expect(byJob["kubernetes-pods"]?.scrapeUrl).toBe(`http://127.0.0.1:${metrics?.port}/stats/prometheus`);
      expect(byJob["kubernetes-pods"]?.labels).toMatchObject({
        namespace: "demo",
        pod: "catalog-v1-7c9d",
        app: "catalog",
      });
      expect(byJob.meshletd?.scrapeUrl).toBe(`http://127.0.0.1:${metrics?.port}/metrics`);
      expect(byJob.meshletd?.labels).toMatchObject({ pod: "meshletd-5f7", namespace: "meshlet-system" });
      expect(active.map((t) => t.health)).toEqual(["up", "up"]);
      expect(dropped).toHaveLength(4);
    });

    it("every dashboard query and variable returns data", async () => {
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
      let empty: string[] = [];
      for (let i = 0; i < 120; i++) {
        empty = [];
        for (const q of [...queries, ...variables])
          if ((await query(q.expr)).length === 0) empty.push(q.where);
        if (empty.length === 0) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(empty).toEqual([]);
      // And they mean what they say: catalog-v2's answers include 503s, its 5xx share is 0.5.
      const errors = (await query(
        expand(queries.find((q) => q.where.includes("Errors by workload"))?.expr ?? ""),
      )) as Array<{ metric: Record<string, string>; value: [number, string] }>;
      expect(
        Number(errors.find((r) => r.metric.destination_workload === "catalog-v2")?.value[1]),
      ).toBeCloseTo(0.5, 5);
      expect(Number(errors.find((r) => r.metric.destination_workload === "catalog-v1")?.value[1])).toBe(0);
    });
  });
});

// promtool and prometheus are Debian's; scripts/setup.sh installs them (and shellcheck).
execFileSync("promtool", ["--version"], { stdio: "ignore" });
