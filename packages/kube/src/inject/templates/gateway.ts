import { Label } from "../annotations.js";
import { appContainers, type Container, PROXY_CONTAINER } from "../pod-model.js";
import {
  agentEnv,
  agentStorage,
  canonicalLabels,
  interceptionMode,
  logArgs,
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
  const storage = agentStorage(ctx, {
    credentialSocket: true,
    socketVolume: "istio-envoy",
    explicitEmptyDir: true,
    bootstrap: false,
    bootstrapMount: false,
    userVolumes: false,
  });
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
    volumeMounts: storage.mounts,
  };
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
    volumes: storage.volumes,
    imagePullSecrets: pullSecrets(ctx),
  };
}
