import type { IVolume } from "kubernetes-models/v1/Volume";
import { Label } from "../annotations.js";
import { appContainers, type Container, PROXY_CONTAINER } from "../pod-model.js";
import {
  agentEnv,
  canonicalLabels,
  credentialVolumes,
  interceptionMode,
  logArgs,
  PODINFO_VOLUME,
  type PodOverlay,
  proxyMetadataEnv,
  pullPolicy,
  pullSecrets,
  readinessProbe,
  type TemplateContext,
} from "./template-context.js";

/**
 * Istio's `gateway` template (istio/istio manifests/charts/istio-control/istio-discovery/files/
 * gateway-injection-template.yaml): Envoy in router mode (`pilot-agent proxy router`), no traffic
 * capture; Istio's gateway chart deploys pods with `inject.istio.io/templates: gateway` and an
 * `istio-proxy` container whose image is `auto`. meshlet's rendered ingress gateway uses the same
 * container, written out in full (see `renderManifests`).
 */
export function gatewayTemplate(ctx: TemplateContext): PodOverlay {
  const apps = appContainers(ctx.pod.spec).map((c) => c.name);
  const labels = ctx.pod.metadata.labels ?? {};
  const proxy: Container = {
    name: PROXY_CONTAINER,
    image: ctx.proxyImage,
    ports: [{ containerPort: 15090, protocol: "TCP", name: "http-envoy-prom" }],
    args: [
      "proxy",
      "router",
      "--domain",
      `$(POD_NAMESPACE).svc.${ctx.config.clusterDomain}`,
      ...logArgs(ctx),
    ],
    env: [
      ...agentEnv(ctx, { interceptionMode: interceptionMode(ctx), appContainers: apps }),
      ...proxyMetadataEnv(ctx),
    ],
    ...pullPolicy(ctx),
    readinessProbe: {
      ...readinessProbe(ctx, 15021),
      initialDelaySeconds: ctx.config.proxy.readinessInitialDelaySeconds,
    },
    volumeMounts: [
      { name: "workload-socket", mountPath: "/var/run/secrets/workload-spiffe-uds" },
      { name: "credential-socket", mountPath: "/var/run/secrets/credential-uds" },
      { name: "workload-certs", mountPath: "/var/run/secrets/workload-spiffe-credentials" },
      { mountPath: "/var/run/secrets/istio", name: "istiod-ca-cert" },
      { mountPath: "/var/lib/istio/data", name: "istio-data" },
      { mountPath: "/etc/istio/proxy", name: "istio-envoy" },
      { mountPath: "/var/run/secrets/tokens", name: "istio-token" },
      { name: "istio-podinfo", mountPath: "/etc/istio/pod" },
    ],
  };
  const volumes: IVolume[] = [
    { emptyDir: {}, name: "workload-socket" },
    { emptyDir: {}, name: "credential-socket" },
    { emptyDir: {}, name: "workload-certs" },
    { emptyDir: { medium: "Memory" }, name: "istio-envoy" },
    { name: "istio-data", emptyDir: {} },
    PODINFO_VOLUME,
    ...credentialVolumes(ctx),
  ];
  const annotations: Record<string, string> = {};
  if (apps.length === 1) {
    annotations["kubectl.kubernetes.io/default-logs-container"] = apps[0] as string;
    annotations["kubectl.kubernetes.io/default-container"] = apps[0] as string;
  }
  return {
    labels: {
      ...canonicalLabels(ctx),
      [Label.rev]: labels[Label.rev] ?? (ctx.config.revision || "default"),
    },
    annotations,
    initContainers: [],
    containers: [proxy],
    volumes,
    imagePullSecrets: pullSecrets(ctx),
  };
}
