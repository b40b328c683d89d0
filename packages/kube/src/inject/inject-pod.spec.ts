import { describe, expect, it } from "vitest";
import { deployMetaFromPod } from "./deploy-meta.js";
import { injectPod, parseInjectEnvs } from "./inject-pod.js";
import { injectionRequired } from "./injection-policy.js";
import { DEFAULT_INJECTOR_CONFIG, resolveInjectorConfig } from "./injector-config.js";
import type { Container, Pod } from "./pod-model.js";

function pod(
  overrides: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    containers?: Container[];
    hostNetwork?: boolean;
  } = {},
): Pod {
  return {
    metadata: {
      name: "web-0",
      namespace: "shop",
      labels: { app: "web", ...overrides.labels },
      ...(overrides.annotations !== undefined ? { annotations: overrides.annotations } : {}),
    },
    spec: {
      containers: overrides.containers ?? [
        {
          name: "web",
          image: "web:1",
          ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
          resources: {},
        },
      ],
      ...(overrides.hostNetwork !== undefined ? { hostNetwork: overrides.hostNetwork } : {}),
    },
  };
}

const proxyOf = (p: Pod) => p.spec.containers.find((c) => c.name === "istio-proxy");
const envOf = (c: Container | undefined) => Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));

// The precedence rules are istio/istio pkg/kube/inject/inject.go injectRequired.
describe("injectionRequired", () => {
  const config = DEFAULT_INJECTOR_CONFIG;
  it("never injects host-network pods or pods in system namespaces", () => {
    expect(injectionRequired(pod({ hostNetwork: true }), "shop", config).inject).toBe(false);
    expect(injectionRequired(pod(), "kube-system", config)).toEqual({
      inject: false,
      reason: "namespace kube-system is never injected",
    });
  });
  it("prefers the sidecar.istio.io/inject label over the annotation", () => {
    const p = pod({
      labels: { "sidecar.istio.io/inject": "false" },
      annotations: { "sidecar.istio.io/inject": "true" },
    });
    expect(injectionRequired(p, "shop", config)).toEqual({
      inject: false,
      reason: "label sidecar.istio.io/inject=false",
    });
  });
  it("reads YAML booleans: y, yes, true, on inject; anything else does not", () => {
    for (const v of ["y", "Yes", "TRUE", "on"]) {
      expect(
        injectionRequired(pod({ annotations: { "sidecar.istio.io/inject": v } }), "shop", {
          ...config,
          policy: "disabled",
        }).inject,
      ).toBe(true);
    }
    for (const v of ["n", "false", "off", "maybe"]) {
      expect(
        injectionRequired(pod({ annotations: { "sidecar.istio.io/inject": v } }), "shop", config).inject,
      ).toBe(false);
    }
  });
  it("applies never-inject before always-inject selectors, then the policy", () => {
    const withSelectors = {
      ...config,
      neverInjectSelector: [{ matchLabels: { tier: "batch" } }],
      alwaysInjectSelector: [{ matchExpressions: [{ key: "app", operator: "Exists" as const }] }],
      policy: "disabled" as const,
    };
    expect(injectionRequired(pod({ labels: { tier: "batch" } }), "shop", withSelectors).inject).toBe(false);
    expect(injectionRequired(pod(), "shop", withSelectors).inject).toBe(true);
    expect(injectionRequired(pod(), "shop", { ...config, policy: "disabled" }).inject).toBe(false);
  });
});

describe("injectPod", () => {
  it("points the agent at meshletd by default: CA_ADDR and the discovery address in PROXY_CONFIG", () => {
    const result = injectPod(pod(), DEFAULT_INJECTOR_CONFIG);
    if (!result.injected) throw new Error(result.reason);
    const env = envOf(proxyOf(result.pod));
    expect(env.CA_ADDR).toBe("meshletd.meshlet-system.svc:15012");
    expect(env.PROXY_CONFIG).toBe('{"discoveryAddress":"meshletd.meshlet-system.svc:15012"}\n');
    expect(proxyOf(result.pod)?.image).toBe("docker.io/istio/proxyv2:1.27.9");
    // A bare pod is its own workload.
    expect(env.ISTIO_META_OWNER).toBe("kubernetes://apis/v1/namespaces/shop/pods/web-0");
  });

  it("leaves an opted-out pod alone and says why", () => {
    const result = injectPod(
      pod({ labels: { "sidecar.istio.io/inject": "false" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    expect(result).toEqual({ injected: false, failed: false, reason: "label sidecar.istio.io/inject=false" });
  });

  it("does not inject a pod with an annotation it cannot honour, naming the annotation", () => {
    const bad = [
      ["traffic.sidecar.istio.io/includeOutboundIPRanges", "10.0.0.0/33"],
      ["traffic.sidecar.istio.io/excludeInboundPorts", "80,http"],
      ["traffic.sidecar.istio.io/excludeInterfaces", "eth0 -j ACCEPT"],
      ["sidecar.istio.io/interceptionMode", "IPVS"],
      ["sidecar.istio.io/proxyCPU", "lots"],
      ["proxy.istio.io/config", "discoveryAdress: x:1"],
      ["proxy.istio.io/config", "concurrency: two"],
      ["readiness.status.sidecar.istio.io/periodSeconds", "-1"],
    ];
    for (const [name, value] of bad) {
      const result = injectPod(
        pod({ annotations: { [name as string]: value as string } }),
        DEFAULT_INJECTOR_CONFIG,
      );
      expect(result.injected).toBe(false);
      if (result.injected) continue;
      expect(result.failed).toBe(true);
      expect(result.reason).toContain(`annotation ${name}`);
    }
  });

  it("refuses an unknown template by name, listing the known ones", () => {
    const result = injectPod(
      pod({ annotations: { "inject.istio.io/templates": "sidecar,spire" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    expect(result).toMatchObject({
      injected: false,
      failed: true,
      reason: 'requested template "spire" not found; have gateway, grpc-agent, sidecar',
    });
  });

  it("merges the application's Prometheus annotations into the agent (webhook.go applyPrometheusMerge)", () => {
    const result = injectPod(
      pod({
        annotations: {
          "prometheus.io/scrape": "true",
          "prometheus.io/port": "9102",
          "prometheus.io/path": "/metrics",
        },
      }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!result.injected) throw new Error(result.reason);
    expect(result.pod.metadata.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "15020",
      "prometheus.io/path": "/stats/prometheus",
    });
    expect(envOf(proxyOf(result.pod)).ISTIO_PROMETHEUS_ANNOTATIONS).toBe(
      '{"scrape":"true","path":"/metrics","port":"9102"}',
    );
  });

  it("keeps prometheus.io annotations of a pod that does not want to be scraped", () => {
    const result = injectPod(
      pod({ annotations: { "prometheus.io/scrape": "false" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!result.injected) throw new Error(result.reason);
    expect(result.pod.metadata.annotations?.["prometheus.io/scrape"]).toBe("false");
    expect(result.pod.metadata.annotations?.["prometheus.io/port"]).toBeUndefined();
  });

  it("rewrites HTTP, TCP and gRPC probes through the agent and records the originals", () => {
    const web: Container = {
      name: "web",
      image: "web:1",
      ports: [{ name: "http", containerPort: 8080 }],
      livenessProbe: {
        httpGet: { path: "/live", port: "http", scheme: "HTTP" },
        timeoutSeconds: 2,
        periodSeconds: 5,
      },
      readinessProbe: { tcpSocket: { port: 8080 } },
      startupProbe: { grpc: { port: 9090 } },
    };
    const exec: Container = { name: "side", image: "side:1", livenessProbe: { exec: { command: ["true"] } } };
    const result = injectPod(pod({ containers: [web, exec] }), DEFAULT_INJECTOR_CONFIG);
    if (!result.injected) throw new Error(result.reason);
    const [rewritten, side] = result.pod.spec.containers;
    expect(rewritten?.livenessProbe).toEqual({
      httpGet: { path: "/app-health/web/livez", port: 15020, scheme: "HTTP" },
      timeoutSeconds: 2,
      periodSeconds: 5,
    });
    expect(rewritten?.readinessProbe).toEqual({
      httpGet: { path: "/app-health/web/readyz", port: 15020, scheme: "HTTP" },
    });
    expect(rewritten?.startupProbe).toEqual({
      httpGet: { path: "/app-health/web/startupz", port: 15020, scheme: "HTTP" },
    });
    expect(side?.livenessProbe).toEqual({ exec: { command: ["true"] } });
    expect(JSON.parse(envOf(proxyOf(result.pod)).ISTIO_KUBE_APP_PROBERS as string)).toEqual({
      "/app-health/web/livez": { httpGet: { path: "/live", port: 8080, scheme: "HTTP" }, timeoutSeconds: 2 },
      "/app-health/web/readyz": { tcpSocket: { port: 8080 } },
      "/app-health/web/startupz": { grpc: { port: 9090 } },
    });
  });

  it("leaves probes alone when sidecar.istio.io/rewriteAppHTTPProbers is false", () => {
    const web: Container = {
      name: "web",
      image: "web:1",
      livenessProbe: { httpGet: { path: "/live", port: 8080 } },
    };
    const result = injectPod(
      pod({ containers: [web], annotations: { "sidecar.istio.io/rewriteAppHTTPProbers": "false" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!result.injected) throw new Error(result.reason);
    expect(result.pod.spec.containers[0]?.livenessProbe).toEqual({ httpGet: { path: "/live", port: 8080 } });
    expect(envOf(proxyOf(result.pod)).ISTIO_KUBE_APP_PROBERS).toBeUndefined();
  });

  it("is idempotent: injecting an injected pod again changes nothing", () => {
    const first = injectPod(pod({ annotations: { "prometheus.io/port": "9102" } }), DEFAULT_INJECTOR_CONFIG);
    if (!first.injected) throw new Error(first.reason);
    const second = injectPod(first.pod, DEFAULT_INJECTOR_CONFIG);
    if (!second.injected) throw new Error(second.reason);
    expect(second.pod).toEqual(first.pod);
    expect(second.patch).toEqual([]);
  });

  it("starts the proxy first and waits for it with holdApplicationUntilProxyStarts", () => {
    const result = injectPod(
      pod({ annotations: { "proxy.istio.io/config": "holdApplicationUntilProxyStarts: true" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!result.injected) throw new Error(result.reason);
    expect(result.pod.spec.containers.map((c) => c.name)).toEqual(["istio-proxy", "web"]);
    expect(result.pod.spec.containers[0]?.lifecycle).toEqual({
      postStart: { exec: { command: ["pilot-agent", "wait"] } },
    });
  });

  it("runs the proxy as root with NET_ADMIN in TPROXY mode and skips istio-init with NONE", () => {
    const tproxy = injectPod(
      pod({ annotations: { "sidecar.istio.io/interceptionMode": "TPROXY" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!tproxy.injected) throw new Error(tproxy.reason);
    expect(proxyOf(tproxy.pod)?.securityContext).toMatchObject({
      capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] },
      runAsUser: 0,
      runAsNonRoot: false,
    });
    expect(tproxy.pod.spec.initContainers?.[0]?.args).toContain("TPROXY");
    const none = injectPod(
      pod({ annotations: { "sidecar.istio.io/interceptionMode": "NONE" } }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!none.injected) throw new Error(none.reason);
    expect(none.pod.spec.initContainers ?? []).toEqual([]);
  });

  it("honours the resource, log level and outbound-port annotations", () => {
    const result = injectPod(
      pod({
        annotations: {
          "sidecar.istio.io/proxyCPU": "250m",
          "sidecar.istio.io/proxyMemory": "256Mi",
          "sidecar.istio.io/proxyMemoryLimit": "0.5Gi",
          "sidecar.istio.io/logLevel": "debug",
          "traffic.sidecar.istio.io/excludeOutboundPorts": "5432",
        },
      }),
      DEFAULT_INJECTOR_CONFIG,
    );
    if (!result.injected) throw new Error(result.reason);
    const proxy = proxyOf(result.pod);
    expect(proxy?.resources).toEqual({
      requests: { cpu: "250m", memory: "256Mi" },
      limits: { memory: "512Mi" },
    });
    expect(proxy?.args).toContain("--proxyLogLevel=debug");
    expect(proxy?.args?.slice(-2)).toEqual(["--concurrency", "1"]);
    const init = result.pod.spec.initContainers?.[0]?.args ?? [];
    expect(init.slice(init.indexOf("-o"), init.indexOf("-o") + 2)).toEqual(["-o", "5432"]);
  });

  it("sets cluster and network from the webhook path and the topology label", () => {
    expect(parseInjectEnvs("/inject/cluster/aks-west/net/net1")).toEqual({
      ISTIO_META_CLUSTER_ID: "aks-west",
      ISTIO_META_NETWORK: "net1",
    });
    expect(parseInjectEnvs("/inject")).toEqual({});
    const result = injectPod(pod(), DEFAULT_INJECTOR_CONFIG, { path: "/inject/cluster/aks-west/net/net1" });
    if (!result.injected) throw new Error(result.reason);
    const env = proxyOf(result.pod)?.env ?? [];
    expect(env.slice(-2)).toEqual([
      { name: "ISTIO_META_CLUSTER_ID", value: "aks-west" },
      { name: "ISTIO_META_NETWORK", value: "net1" },
    ]);
    expect(result.pod.metadata.labels?.["topology.istio.io/network"]).toBe("net1");
  });

  it("merges ProxyConfig resources between the mesh default and the annotation", () => {
    const config = resolveInjectorConfig({
      defaultProxyConfig: { discoveryAddress: "d:15012", proxyMetadata: { A: "mesh" } },
    });
    const result = injectPod(
      pod({ annotations: { "proxy.istio.io/config": "proxyMetadata: {C: pod}" } }),
      config,
      {
        proxyConfigFor: () => ({ proxyMetadata: { A: "cr", B: "cr" }, concurrency: 3 }),
      },
    );
    if (!result.injected) throw new Error(result.reason);
    const env = envOf(proxyOf(result.pod));
    expect(env.PROXY_CONFIG).toBe(
      '{"discoveryAddress":"d:15012","concurrency":3,"proxyMetadata":{"A":"cr","B":"cr","C":"pod"}}\n',
    );
    // An explicit concurrency means no estimate from the CPU limit.
    expect(proxyOf(result.pod)?.args).not.toContain("--concurrency");
  });
});

describe("deployMetaFromPod (istio/istio pkg/kube GetDeployMetaFromPod)", () => {
  const owned = (kind: string, name: string, labels: Record<string, string> = {}): Pod => ({
    metadata: {
      generateName: `${name}-`,
      labels,
      ownerReferences: [{ apiVersion: "batch/v1", kind, name, uid: "u", controller: true }],
    },
    spec: { containers: [] },
  });
  it("finds the CronJob behind a scheduled Job", () => {
    expect(deployMetaFromPod(owned("Job", "report-28934520"), "ops")).toEqual({
      name: "report",
      namespace: "ops",
      kind: "CronJob",
      apiVersion: "batch/v1",
    });
  });
  it("keeps a Job that no CronJob created, and a StatefulSet", () => {
    expect(deployMetaFromPod(owned("Job", "migrate"), "ops").kind).toBe("Job");
    expect(deployMetaFromPod(owned("StatefulSet", "db"), "ops")).toMatchObject({
      name: "db",
      kind: "StatefulSet",
    });
  });
  it("does not take a ReplicaSet for a Deployment unless the hash matches", () => {
    expect(
      deployMetaFromPod(owned("ReplicaSet", "web-abc", { "pod-template-hash": "xyz" }), "ops"),
    ).toMatchObject({ kind: "ReplicaSet", name: "web-abc" });
    expect(
      deployMetaFromPod(owned("ReplicaSet", "web-abc", { "pod-template-hash": "abc" }), "ops"),
    ).toMatchObject({ kind: "Deployment", name: "web" });
  });
});
