import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Annotation } from "../inject/annotations.js";
import { injectPod } from "../inject/inject-pod.js";
import { resolveInjectorConfig } from "../inject/injector-config.js";
import type { Pod } from "../inject/pod-model.js";
import { KubeError } from "../kube-error.js";
import { resources } from "./control-plane.js";
import { injectorConfigFromValues } from "./mesh-config.js";
import type { MeshletValues } from "./values.js";

/** The Azure load-balancer annotations the values ask for (cloud-provider-azure's names). */
export function azureServiceAnnotations(values: MeshletValues): Record<string, string> {
  const s = values.gateway.service;
  const out: Record<string, string> = {};
  if (s.azureInternal) out["service.beta.kubernetes.io/azure-load-balancer-internal"] = "true";
  if (s.azureInternalSubnet !== "")
    out["service.beta.kubernetes.io/azure-load-balancer-internal-subnet"] = s.azureInternalSubnet;
  if (s.azureResourceGroup !== "")
    out["service.beta.kubernetes.io/azure-load-balancer-resource-group"] = s.azureResourceGroup;
  if (s.azurePipName !== "") out["service.beta.kubernetes.io/azure-pip-name"] = s.azurePipName;
  if (s.azureDnsLabelName !== "")
    out["service.beta.kubernetes.io/azure-dns-label-name"] = s.azureDnsLabelName;
  return out;
}

export function gatewayNamespace(values: MeshletValues): INamespace {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: values.gateway.namespace, labels: { "app.kubernetes.io/part-of": "meshlet" } },
  };
}

export function gatewayServiceAccount(values: MeshletValues): IServiceAccount {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: {
      name: values.gateway.name,
      namespace: values.gateway.namespace,
      labels: gatewayLabels(values),
    },
  };
}

function gatewayLabels(values: MeshletValues): Record<string, string> {
  return { app: values.gateway.name, istio: "ingressgateway" };
}

/**
 * Istio's ingress gateway: `pilot-agent proxy router`, exactly the container Istio's `gateway`
 * template injects (it is rendered by injecting a pod with `inject.istio.io/templates: gateway`),
 * written out in full so the gateway does not depend on the webhook being up when it starts. Ports
 * 80 and 443 are bound by a non-root Envoy thanks to the `net.ipv4.ip_unprivileged_port_start=0`
 * sysctl, as Istio's gateway chart does.
 */
export function gatewayDeployment(values: MeshletValues): IDeployment {
  const g = values.gateway;
  const labels = gatewayLabels(values);
  // The pod the gateway's ReplicaSet will create, so the template writes the Deployment as the
  // workload (ISTIO_META_WORKLOAD_NAME, ISTIO_META_OWNER) and lists the gateway's ports.
  const hash = "rendered";
  const skeleton: Pod = {
    metadata: {
      generateName: `${g.name}-${hash}-`,
      namespace: g.namespace,
      labels: { ...labels, "pod-template-hash": hash },
      annotations: { "inject.istio.io/templates": "gateway" },
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: `${g.name}-${hash}`, uid: "", controller: true },
      ],
    },
    spec: {
      serviceAccountName: g.name,
      containers: [
        {
          name: "istio-proxy",
          image: "auto",
          ports: [
            { containerPort: 15021, name: "status-port", protocol: "TCP" },
            { containerPort: 80, name: "http2", protocol: "TCP" },
            { containerPort: 443, name: "https", protocol: "TCP" },
          ],
        },
      ],
    },
  };
  const injected = injectPod(skeleton, resolveInjectorConfig(injectorConfigFromValues(values)), {
    namespace: g.namespace,
  });
  if (!injected.injected)
    throw new KubeError("INVALID_VALUE", `the gateway template failed: ${injected.reason}`);
  const { pod } = injected;
  const proxy = pod.spec.containers.find((c) => c.name === "istio-proxy");
  if (proxy === undefined)
    throw new KubeError("INVALID_VALUE", "the gateway template produced no istio-proxy container");
  proxy.resources = resources(g.resources);
  proxy.securityContext = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ["ALL"] },
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsUser: 1337,
    runAsGroup: 1337,
    runAsNonRoot: true,
  };
  const { generateName: _g, namespace: _n, ownerReferences: _o, ...templateMeta } = pod.metadata;
  const { "pod-template-hash": _h, ...podLabels } = templateMeta.labels ?? {};
  const { [Annotation.overrides]: _overrides, ...podAnnotations } = templateMeta.annotations ?? {};
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: g.name, namespace: g.namespace, labels },
    spec: {
      ...(g.autoscale.enabled ? {} : { replicas: g.replicas }),
      selector: { matchLabels: labels },
      template: {
        metadata: {
          // Already injected: the webhook must leave it alone.
          labels: { ...podLabels, "sidecar.istio.io/inject": "false" },
          annotations: podAnnotations,
        },
        spec: {
          ...pod.spec,
          securityContext: {
            sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
            fsGroup: 1337,
          },
          terminationGracePeriodSeconds: 30,
        },
      },
    },
  };
}

/** A LoadBalancer (by default) in front of the gateway, with Azure's annotations as asked. */
export function gatewayService(values: MeshletValues): IService {
  const g = values.gateway;
  const annotations = azureServiceAnnotations(values);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: g.name,
      namespace: g.namespace,
      labels: gatewayLabels(values),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: {
      type: g.service.type,
      selector: gatewayLabels(values),
      ...(g.service.type !== "ClusterIP" ? { externalTrafficPolicy: g.service.externalTrafficPolicy } : {}),
      ...(g.service.loadBalancerSourceRanges.length > 0
        ? { loadBalancerSourceRanges: g.service.loadBalancerSourceRanges }
        : {}),
      ports: [
        { name: "status-port", port: 15021, targetPort: 15021, protocol: "TCP" },
        { name: "http2", port: 80, targetPort: 80, protocol: "TCP" },
        { name: "https", port: 443, targetPort: 443, protocol: "TCP" },
      ],
    },
  };
}
