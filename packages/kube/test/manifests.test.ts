import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  injectPod,
  type KubeObject,
  renderManifests,
  resolveInjectorConfig,
  toJsonList,
  toYamlDocuments,
  validateManifests,
  valuesFromSets,
} from "../src/index.js";

// Rendered manifests checked against Kubernetes' own schemas (the kubernetes-models package, which
// compiles Kubernetes' OpenAPI definitions) and, for Istio kinds, @meshlet/config. No API server runs
// here, so `kubectl apply --dry-run=server` is left to docs/aks.md.

function find<K extends KubeObject["kind"]>(
  objects: KubeObject[],
  kind: K,
  name?: string,
): Extract<KubeObject, { kind: K }> {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  if (found === undefined) throw new Error(`no ${kind} ${name ?? ""}`);
  return found as Extract<KubeObject, { kind: K }>;
}

describe("renderManifests", () => {
  it("renders every object valid against Kubernetes' schemas, in apply order", () => {
    const objects = renderManifests();
    expect(validateManifests(objects)).toEqual([]);
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
      "Namespace/meshlet-system",
      "ServiceAccount/meshletd",
      "ClusterRole/meshletd-clusterrole-meshlet-system",
      "ClusterRoleBinding/meshletd-clusterrole-meshlet-system",
      "Role/meshletd",
      "RoleBinding/meshletd",
      "ConfigMap/meshletd",
      "Deployment/meshletd",
      "Service/meshletd",
      "PodDisruptionBudget/meshletd",
      "HorizontalPodAutoscaler/meshletd",
      "MutatingWebhookConfiguration/meshlet-sidecar-injector",
      "ValidatingWebhookConfiguration/meshlet-validator-meshlet-system",
      "Namespace/istio-ingress",
      "ServiceAccount/istio-ingressgateway",
      "Deployment/istio-ingressgateway",
      "Service/istio-ingressgateway",
      "PodDisruptionBudget/istio-ingressgateway",
      "HorizontalPodAutoscaler/istio-ingressgateway",
    ]);
  });

  it("is caught by the schema check when a value would make an invalid object", () => {
    const objects = renderManifests();
    const deployment = find(objects, "Deployment", "meshletd");
    (deployment.spec as { replicas?: unknown }).replicas = "two";
    expect(validateManifests(objects)).toEqual([
      expect.stringMatching(/^Deployment\/meshlet-system\/meshletd: .*replicas must be integer/),
    ]);
  });

  it("writes multi-document YAML and a JSON List that parse back to the same objects", () => {
    const objects = renderManifests();
    const docs = parseAllDocuments(toYamlDocuments(objects)).map((d) => d.toJS());
    expect(docs).toEqual(JSON.parse(JSON.stringify(objects)));
    expect(JSON.parse(toJsonList(objects)).items).toEqual(JSON.parse(JSON.stringify(objects)));
    expect(toYamlDocuments(objects)).not.toMatch(/[&*]a\d/); // no YAML anchors: kubectl reads them, reviewers should not have to
  });

  it("serves Istio's control-plane ports from meshletd's Service", () => {
    const svc = find(renderManifests(), "Service", "meshletd");
    expect(svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([
      ["grpc-xds", 15010, 15010],
      ["https-dns", 15012, 15012],
      ["https-webhook", 443, 15017],
      ["http-monitoring", 15014, 15014],
    ]);
  });

  it("grants least privilege: reads for config, writes only for the root-cert ConfigMaps, its webhooks and its CA secrets", () => {
    const objects = renderManifests();
    const cluster = find(objects, "ClusterRole").rules ?? [];
    const writes = cluster.filter((r) => r.verbs.some((v) => !["get", "list", "watch"].includes(v)));
    expect(writes).toEqual([
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      { apiGroups: [""], resources: ["configmaps"], verbs: ["create", "list", "watch"] },
      {
        apiGroups: [""],
        resources: ["configmaps"],
        resourceNames: ["istio-ca-root-cert"],
        verbs: ["get", "update"],
      },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["mutatingwebhookconfigurations"],
        resourceNames: ["meshlet-sidecar-injector"],
        verbs: ["get", "update", "patch"],
      },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["validatingwebhookconfigurations"],
        resourceNames: ["meshlet-validator-meshlet-system"],
        verbs: ["get", "update", "patch"],
      },
    ]);
    for (const rule of cluster) {
      expect(rule.verbs).not.toContain("*");
      expect(rule.resources).not.toContain("*");
      expect(rule.resources).not.toContain("secrets");
    }
    expect(find(objects, "Role").rules).toEqual([
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["istio-ca-secret", "cacerts"],
        verbs: ["get", "watch", "update"],
      },
    ]);
  });

  it("selects pods for injection as Istio's webhooks do, never blocking pod creation", () => {
    const mwc = find(renderManifests(), "MutatingWebhookConfiguration");
    expect(mwc.webhooks?.map((w) => w.name)).toEqual([
      "rev.namespace.sidecar-injector.meshlet.io",
      "rev.object.sidecar-injector.meshlet.io",
      "namespace.sidecar-injector.meshlet.io",
      "object.sidecar-injector.meshlet.io",
    ]);
    for (const w of mwc.webhooks ?? []) {
      expect(w.failurePolicy).toBe("Ignore");
      expect(w.clientConfig.service).toEqual({
        name: "meshletd",
        namespace: "meshlet-system",
        path: "/inject",
        port: 443,
      });
      expect(w.rules).toEqual([
        { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] },
      ]);
    }
    expect(mwc.webhooks?.[2]?.namespaceSelector).toEqual({
      matchExpressions: [{ key: "istio-injection", operator: "In", values: ["enabled"] }],
    });
    // A revisioned control plane answers only its istio.io/rev.
    const rev = find(renderManifests(valuesFromSets(["revision=canary"])), "MutatingWebhookConfiguration");
    expect(rev.metadata?.name).toBe("meshlet-sidecar-injector-canary");
    expect(rev.webhooks?.map((w) => w.name)).toEqual([
      "rev.namespace.sidecar-injector.meshlet.io",
      "rev.object.sidecar-injector.meshlet.io",
    ]);
    expect(rev.webhooks?.[0]?.namespaceSelector?.matchExpressions?.[0]).toEqual({
      key: "istio.io/rev",
      operator: "In",
      values: ["canary"],
    });
  });

  it("keeps the injector, meshletd's Service and the gateway pointing at the same address", () => {
    const objects = renderManifests(valuesFromSets(["namespace=mesh", "global.proxyVersion=1.26.8"]));
    const cm = find(objects, "ConfigMap", "meshletd");
    const config = resolveInjectorConfig(JSON.parse(cm.data?.["injector.json"] ?? "{}"));
    const result = injectPod(
      { metadata: { name: "p", namespace: "shop" }, spec: { containers: [{ name: "app", image: "app:1" }] } },
      config,
    );
    if (!result.injected) throw new Error(result.reason);
    const proxy = result.pod.spec.containers.find((c) => c.name === "istio-proxy");
    expect(proxy?.image).toBe("docker.io/istio/proxyv2:1.26.8");
    expect(proxy?.env?.find((e) => e.name === "CA_ADDR")?.value).toBe("meshletd.mesh.svc:15012");
    expect(cm.data?.["mesh.yaml"]).toContain("discoveryAddress: meshletd.mesh.svc:15012");
    const gateway = find(objects, "Deployment", "istio-ingressgateway").spec?.template.spec?.containers[0];
    expect(gateway?.args?.slice(0, 2)).toEqual(["proxy", "router"]);
    expect(gateway?.env?.find((e) => e.name === "CA_ADDR")?.value).toBe("meshletd.mesh.svc:15012");
    expect(gateway?.env?.find((e) => e.name === "ISTIO_META_OWNER")?.value).toBe(
      "kubernetes://apis/apps/v1/namespaces/istio-ingress/deployments/istio-ingressgateway",
    );
  });

  it("renders the ingress gateway behind an Azure load balancer, internal when asked", () => {
    const objects = renderManifests(
      valuesFromSets([
        "gateway.service.azureInternal=true",
        "gateway.service.azureInternalSubnet=ingress-subnet",
        "gateway.service.externalTrafficPolicy=Local",
        "gateway.service.loadBalancerSourceRanges=10.0.0.0/8",
      ]),
    );
    expect(validateManifests(objects)).toEqual([]);
    const svc = find(objects, "Service", "istio-ingressgateway");
    expect(svc.metadata?.annotations).toEqual({
      "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
      "service.beta.kubernetes.io/azure-load-balancer-internal-subnet": "ingress-subnet",
    });
    expect(svc.spec).toMatchObject({
      type: "LoadBalancer",
      externalTrafficPolicy: "Local",
      loadBalancerSourceRanges: ["10.0.0.0/8"],
    });
    expect(svc.spec?.ports?.map((p) => p.port)).toEqual([15021, 80, 443]);
    const pod = find(objects, "Deployment", "istio-ingressgateway").spec?.template;
    expect(pod?.metadata?.labels?.["sidecar.istio.io/inject"]).toBe("false");
    expect(pod?.spec?.securityContext?.sysctls).toEqual([
      { name: "net.ipv4.ip_unprivileged_port_start", value: "0" },
    ]);
    const publicLb = find(
      renderManifests(
        valuesFromSets(["gateway.service.azurePipName=mesh-ip", "gateway.service.azureResourceGroup=net-rg"]),
      ),
      "Service",
      "istio-ingressgateway",
    );
    expect(publicLb.metadata?.annotations).toEqual({
      "service.beta.kubernetes.io/azure-load-balancer-resource-group": "net-rg",
      "service.beta.kubernetes.io/azure-pip-name": "mesh-ip",
    });
  });

  it("wires an external CA on Vault and OpenTelemetry tracing when asked", () => {
    const objects = renderManifests(
      valuesFromSets([
        "ca.mode=vault",
        "ca.vault.address=https://vault.vault.svc:8200",
        "ca.vault.servingRole=meshletd-tls",
        "telemetry.otelCollector=otel-collector.observability.svc:4317",
        "telemetry.samplingPercentage=10",
      ]),
    );
    expect(validateManifests(objects)).toEqual([]);
    const spec = find(objects, "Deployment", "meshletd").spec?.template.spec;
    const env = Object.fromEntries((spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      MESHLET_CA_MODE: "vault",
      VAULT_ADDR: "https://vault.vault.svc:8200",
      MESHLET_VAULT_PKI_MOUNT: "pki_int",
      MESHLET_VAULT_AUTH_ROLE: "meshletd",
      MESHLET_VAULT_SERVING_ROLE: "meshletd-tls",
      MESHLET_VAULT_TOKEN_PATH: "/var/run/secrets/vault/token",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.observability.svc:4317",
    });
    expect(
      spec?.volumes?.find((v) => v.name === "vault-token")?.projected?.sources?.[0]?.serviceAccountToken
        ?.audience,
    ).toBe("vault");
    const telemetry = find(objects, "Telemetry");
    expect(telemetry.spec).toEqual({
      tracing: [{ providers: [{ name: "otel-tracing" }], randomSamplingPercentage: 10 }],
    });
    expect(find(objects, "ConfigMap").data?.["mesh.yaml"]).toContain(
      "service: otel-collector.observability.svc",
    );
  });

  it("leaves out what is switched off", () => {
    const objects = renderManifests(
      valuesFromSets([
        "gateway.enabled=false",
        "validation.enabled=false",
        "meshletd.autoscale.enabled=false",
        "meshletd.replicas=3",
      ]),
    );
    expect(objects.some((o) => o.kind === "ValidatingWebhookConfiguration")).toBe(false);
    expect(objects.some((o) => o.metadata?.namespace === "istio-ingress")).toBe(false);
    expect(objects.some((o) => o.kind === "HorizontalPodAutoscaler")).toBe(false);
    expect(find(objects, "Deployment", "meshletd").spec?.replicas).toBe(3);
  });
});
