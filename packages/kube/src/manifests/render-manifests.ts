import { stringify } from "yaml";
import {
  clusterRole,
  clusterRoleBinding,
  controlPlaneNamespace,
  horizontalPodAutoscaler,
  meshletConfigMap,
  meshletdDeployment,
  meshletdService,
  podDisruptionBudget,
  role,
  roleBinding,
  serviceAccount,
} from "./control-plane.js";
import {
  gatewayDeployment,
  gatewayNamespace,
  gatewayService,
  gatewayServiceAccount,
} from "./ingress-gateway.js";
import type { IstioTelemetry, KubeObject } from "./kube-object.js";
import { OTEL_TRACING_PROVIDER } from "./mesh-config.js";
import { meshletNames } from "./names.js";
import { checkValues, defaultValues, type MeshletValues } from "./values.js";
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from "./webhook-configurations.js";

/**
 * Everything the reference mesh needs on a cluster, in apply order, like `istioctl manifest
 * generate`: namespace, service account and RBAC, meshletd's config, Deployment, Service,
 * disruption budget and autoscaler, the webhook configurations, and the ingress gateway. Istio's
 * CRDs are not included: install them from Istio's base chart (docs/aks.md).
 */
export function renderManifests(values: MeshletValues = defaultValues()): KubeObject[] {
  checkValues(values);
  const n = meshletNames(values);
  const objects: KubeObject[] = [
    controlPlaneNamespace(values),
    serviceAccount(values),
    clusterRole(values),
    clusterRoleBinding(values),
    role(values),
    roleBinding(values),
    meshletConfigMap(values),
    meshletdDeployment(values),
    meshletdService(values),
    podDisruptionBudget(
      n.meshletd,
      values.namespace,
      n.selector,
      values.meshletd.podDisruptionBudget.minAvailable,
    ),
  ];
  if (values.meshletd.autoscale.enabled) {
    objects.push(horizontalPodAutoscaler(n.meshletd, values.namespace, n.labels, values.meshletd.autoscale));
  }
  if (values.injection.enabled) objects.push(mutatingWebhookConfiguration(values));
  if (values.validation.enabled) objects.push(validatingWebhookConfiguration(values));
  if (values.telemetry.otelCollector !== "") objects.push(meshTelemetry(values));
  if (values.gateway.enabled) {
    const g = values.gateway;
    const selector = { app: g.name, istio: "ingressgateway" };
    objects.push(
      gatewayNamespace(values),
      gatewayServiceAccount(values),
      gatewayDeployment(values),
      gatewayService(values),
    );
    objects.push(podDisruptionBudget(g.name, g.namespace, selector, 1));
    if (g.autoscale.enabled)
      objects.push(horizontalPodAutoscaler(g.name, g.namespace, selector, g.autoscale));
  }
  return objects;
}

/** Mesh-wide tracing through the OpenTelemetry provider, sampled at the configured percentage. */
function meshTelemetry(values: MeshletValues): IstioTelemetry {
  return {
    apiVersion: "telemetry.istio.io/v1",
    kind: "Telemetry",
    metadata: { name: "mesh-default", namespace: values.namespace },
    spec: {
      tracing: [
        {
          providers: [{ name: OTEL_TRACING_PROVIDER }],
          randomSamplingPercentage: values.telemetry.samplingPercentage,
        },
      ],
    },
  };
}

/** Multi-document YAML, one object per document, as `kubectl apply -f -` reads it. */
export function toYamlDocuments(objects: readonly KubeObject[]): string {
  return objects.map((o) => `---\n${stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })}`).join("");
}

/** A Kubernetes `List` in JSON (what `-o json` prints; `kubectl apply -f` accepts it). */
export function toJsonList(objects: readonly KubeObject[]): string {
  return `${JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2)}\n`;
}
