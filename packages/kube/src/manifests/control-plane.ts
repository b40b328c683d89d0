import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IHorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import type { IClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import type { IRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import type { IRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IService } from "kubernetes-models/v1/Service";
import type { IServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import { stringify } from "yaml";
import { canonicalQuantity } from "../quantity.js";
import { injectorConfigFromValues, meshConfigFromValues } from "./mesh-config.js";
import { MESHLETD_PORTS, meshletNames } from "./names.js";
import type { MeshletValues, ResourceValues } from "./values.js";

/** The names of the webhook configurations meshletd patches with its CA bundle. */
export function webhookConfigurationNames(values: MeshletValues): { mutating: string; validating: string } {
  const suffix = values.revision === "" ? "" : `-${values.revision}`;
  return {
    mutating: `meshlet-sidecar-injector${suffix}`,
    validating: `meshlet-validator${suffix}-${values.namespace}`,
  };
}

/** Secrets holding CA material in meshletd's namespace: Istio's self-signed root and plug-in CA names. */
export const CA_SECRETS = ["istio-ca-secret", "cacerts"] as const;

/** Kubernetes resources as canonical quantities. */
export function resources(r: ResourceValues): {
  requests: Record<string, string>;
  limits: Record<string, string>;
} {
  return {
    requests: { cpu: canonicalQuantity(r.requests.cpu), memory: canonicalQuantity(r.requests.memory) },
    limits: { cpu: canonicalQuantity(r.limits.cpu), memory: canonicalQuantity(r.limits.memory) },
  };
}

export function controlPlaneNamespace(values: MeshletValues): INamespace {
  // The control plane is never injected: a sidecar in front of meshletd would need meshletd to start.
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: values.namespace,
      labels: { "istio-injection": "disabled", "app.kubernetes.io/part-of": "meshlet" },
    },
  };
}

export function serviceAccount(values: MeshletValues): IServiceAccount {
  const n = meshletNames(values);
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name: n.meshletd, namespace: values.namespace, labels: n.labels },
  };
}

const ISTIO_CONFIG_KINDS: ReadonlyArray<[string, string[]]> = [
  [
    "networking.istio.io",
    [
      "virtualservices",
      "destinationrules",
      "gateways",
      "serviceentries",
      "sidecars",
      "workloadentries",
      "workloadgroups",
      "envoyfilters",
      "proxyconfigs",
    ],
  ],
  ["security.istio.io", ["peerauthentications", "authorizationpolicies", "requestauthentications"]],
  ["telemetry.istio.io", ["telemetries"]],
  ["extensions.istio.io", ["wasmplugins"]],
];

/**
 * Least privilege for what meshletd does cluster-wide: read the Istio config kinds and the registry
 * kinds it translates (no write to any of them), review service-account tokens (the CA's
 * authentication, audience `istio-ca`), create and update `istio-ca-root-cert` in every namespace,
 * and update only its own two webhook configurations (their `caBundle`). RBAC cannot narrow
 * create/list/watch by name, so ConfigMaps are listed cluster-wide while update is limited to
 * `istio-ca-root-cert`.
 */
export function clusterRole(values: MeshletValues): IClusterRole {
  const n = meshletNames(values);
  const webhooks = webhookConfigurationNames(values);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: `${n.meshletd}-clusterrole-${values.namespace}`, labels: n.labels },
    rules: [
      ...ISTIO_CONFIG_KINDS.map(([group, kinds]) => ({
        apiGroups: [group],
        resources: kinds,
        verbs: ["get", "list", "watch"],
      })),
      {
        apiGroups: [""],
        resources: ["pods", "services", "namespaces", "nodes"],
        verbs: ["get", "list", "watch"],
      },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
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
        resourceNames: [webhooks.mutating],
        verbs: ["get", "update", "patch"],
      },
      {
        apiGroups: ["admissionregistration.k8s.io"],
        resources: ["validatingwebhookconfigurations"],
        resourceNames: [webhooks.validating],
        verbs: ["get", "update", "patch"],
      },
    ],
  };
}

export function clusterRoleBinding(values: MeshletValues): IClusterRoleBinding {
  const n = meshletNames(values);
  const name = `${n.meshletd}-clusterrole-${values.namespace}`;
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name, labels: n.labels },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
    subjects: [{ kind: "ServiceAccount", name: n.meshletd, namespace: values.namespace }],
  };
}

/**
 * In its own namespace only: the CA's Secrets. Replicas share one root through `istio-ca-secret`:
 * the first to start creates it (create cannot be limited by name), the others read it; `cacerts` is
 * Istio's plug-in CA Secret, read when `ca.mode=plugged`.
 */
export function role(values: MeshletValues): IRole {
  const n = meshletNames(values);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: n.meshletd, namespace: values.namespace, labels: n.labels },
    rules: [
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: [...CA_SECRETS],
        verbs: ["get", "watch", "update"],
      },
    ],
  };
}

export function roleBinding(values: MeshletValues): IRoleBinding {
  const n = meshletNames(values);
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: n.meshletd, namespace: values.namespace, labels: n.labels },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: n.meshletd },
    subjects: [{ kind: "ServiceAccount", name: n.meshletd, namespace: values.namespace }],
  };
}

/** `/etc/meshlet`: the MeshConfig (`mesh.yaml`) and the injector's configuration (`injector.json`). */
export function meshletConfigMap(values: MeshletValues): IConfigMap {
  const n = meshletNames(values);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: n.meshletd, namespace: values.namespace, labels: n.labels },
    data: {
      "mesh.yaml": stringify(meshConfigFromValues(values), { aliasDuplicateObjects: false }),
      "injector.json": `${JSON.stringify(injectorConfigFromValues(values), null, 2)}\n`,
    },
  };
}

function field(name: string, fieldPath: string): IEnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/**
 * meshletd: probes on its health port, Istio's control-plane ports, non-root with a read-only root
 * filesystem, spread over nodes and zones. The environment is the contract the composition reads
 * (documented in docs/aks.md, "meshletd's contract").
 */
export function meshletdDeployment(values: MeshletValues): IDeployment {
  const n = meshletNames(values);
  const env: IEnvVar[] = [
    field("POD_NAME", "metadata.name"),
    field("POD_NAMESPACE", "metadata.namespace"),
    field("SERVICE_ACCOUNT", "spec.serviceAccountName"),
    { name: "REVISION", value: n.rev },
    { name: "CLUSTER_ID", value: values.global.clusterId },
    { name: "TRUST_DOMAIN", value: values.global.trustDomain },
    { name: "MESHLET_SERVICE_HOST", value: n.serviceHost },
    { name: "MESHLET_CONFIG_DIR", value: "/etc/meshlet" },
    { name: "MESHLET_CA_MODE", value: values.ca.mode },
    { name: "MESHLET_LOG_LEVEL", value: values.global.logLevel },
    {
      name: "MESHLET_MUTATING_WEBHOOK",
      value: values.injection.enabled ? webhookConfigurationNames(values).mutating : "",
    },
    {
      name: "MESHLET_VALIDATING_WEBHOOK",
      value: values.validation.enabled ? webhookConfigurationNames(values).validating : "",
    },
  ];
  const volumes: IVolume[] = [
    { name: "config", configMap: { name: n.meshletd } },
    { name: "tmp", emptyDir: {} },
  ];
  const mounts: IVolumeMount[] = [
    { name: "config", mountPath: "/etc/meshlet", readOnly: true },
    { name: "tmp", mountPath: "/tmp" },
  ];
  if (values.ca.mode === "plugged") {
    volumes.push({ name: "cacerts", secret: { secretName: "cacerts", optional: false } });
    mounts.push({ name: "cacerts", mountPath: "/etc/cacerts", readOnly: true });
  }
  if (values.ca.mode === "vault") {
    const v = values.ca.vault;
    env.push(
      { name: "VAULT_ADDR", value: v.address },
      { name: "MESHLET_VAULT_PKI_MOUNT", value: v.pkiMount },
      { name: "MESHLET_VAULT_PKI_ROLE", value: v.role },
      { name: "MESHLET_VAULT_SERVING_ROLE", value: v.servingRole },
      { name: "MESHLET_VAULT_AUTH_MOUNT", value: v.authMount },
      { name: "MESHLET_VAULT_AUTH_ROLE", value: v.authRole },
      { name: "MESHLET_VAULT_TOKEN_PATH", value: "/var/run/secrets/vault/token" },
    );
    // Vault's Kubernetes auth reviews this token: a short-lived one with Vault's own audience.
    volumes.push({
      name: "vault-token",
      projected: {
        sources: [{ serviceAccountToken: { path: "token", audience: "vault", expirationSeconds: 3600 } }],
      },
    });
    mounts.push({ name: "vault-token", mountPath: "/var/run/secrets/vault", readOnly: true });
  }
  if (values.telemetry.otelCollector !== "") {
    env.push(
      { name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: `http://${values.telemetry.otelCollector}` },
      { name: "OTEL_SERVICE_NAME", value: "meshletd" },
    );
  }
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: n.meshletd, namespace: values.namespace, labels: n.labels },
    spec: {
      ...(values.meshletd.autoscale.enabled ? {} : { replicas: values.meshletd.replicas }),
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "100%", maxUnavailable: "25%" } },
      selector: { matchLabels: n.selector },
      template: {
        metadata: {
          labels: { ...n.labels, "sidecar.istio.io/inject": "false" },
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(MESHLETD_PORTS.monitoring),
            "prometheus.io/path": "/metrics",
          },
        },
        spec: {
          serviceAccountName: n.meshletd,
          ...(values.meshletd.priorityClassName !== ""
            ? { priorityClassName: values.meshletd.priorityClassName }
            : {}),
          ...(Object.keys(values.meshletd.nodeSelector).length > 0
            ? { nodeSelector: values.meshletd.nodeSelector }
            : {}),
          ...(values.global.imagePullSecrets.length > 0
            ? { imagePullSecrets: values.global.imagePullSecrets.map((name) => ({ name })) }
            : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            seccompProfile: { type: "RuntimeDefault" },
          },
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "topology.kubernetes.io/zone",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: n.selector },
            },
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: n.selector },
            },
          ],
          containers: [
            {
              name: "meshletd",
              image: values.meshletd.image,
              ...(values.global.imagePullPolicy !== ""
                ? { imagePullPolicy: values.global.imagePullPolicy }
                : {}),
              ports: [
                { name: "grpc-xds", containerPort: MESHLETD_PORTS.xdsPlaintext, protocol: "TCP" },
                { name: "https-dns", containerPort: MESHLETD_PORTS.xdsTls, protocol: "TCP" },
                { name: "http-monitoring", containerPort: MESHLETD_PORTS.monitoring, protocol: "TCP" },
                { name: "https-webhook", containerPort: MESHLETD_PORTS.webhook, protocol: "TCP" },
                { name: "http-health", containerPort: MESHLETD_PORTS.health, protocol: "TCP" },
              ],
              env,
              readinessProbe: {
                httpGet: { path: "/ready", port: MESHLETD_PORTS.health },
                initialDelaySeconds: 1,
                periodSeconds: 3,
                timeoutSeconds: 5,
              },
              livenessProbe: {
                httpGet: { path: "/healthz", port: MESHLETD_PORTS.health },
                initialDelaySeconds: 10,
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 6,
              },
              resources: resources(values.meshletd.resources),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

/** Istio's istiod Service, port for port: 15010 grpc-xds, 15012 https-dns, 443 https-webhook, 15014 http-monitoring. */
export function meshletdService(values: MeshletValues): IService {
  const n = meshletNames(values);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: n.meshletd, namespace: values.namespace, labels: n.labels },
    spec: {
      selector: n.selector,
      ports: [
        {
          name: "grpc-xds",
          port: MESHLETD_PORTS.xdsPlaintext,
          targetPort: MESHLETD_PORTS.xdsPlaintext,
          protocol: "TCP",
        },
        {
          name: "https-dns",
          port: MESHLETD_PORTS.xdsTls,
          targetPort: MESHLETD_PORTS.xdsTls,
          protocol: "TCP",
        },
        { name: "https-webhook", port: 443, targetPort: MESHLETD_PORTS.webhook, protocol: "TCP" },
        {
          name: "http-monitoring",
          port: MESHLETD_PORTS.monitoring,
          targetPort: MESHLETD_PORTS.monitoring,
          protocol: "TCP",
        },
      ],
    },
  };
}

export function podDisruptionBudget(
  name: string,
  namespace: string,
  selector: Record<string, string>,
  minAvailable: number,
): IPodDisruptionBudget {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name, namespace, labels: selector },
    spec: { minAvailable, selector: { matchLabels: selector } },
  };
}

export function horizontalPodAutoscaler(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  autoscale: MeshletValues["meshletd"]["autoscale"],
): IHorizontalPodAutoscaler {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name, namespace, labels },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
      minReplicas: autoscale.min,
      maxReplicas: autoscale.max,
      metrics: [
        {
          type: "Resource",
          resource: {
            name: "cpu",
            target: { type: "Utilization", averageUtilization: autoscale.targetCPUUtilizationPercentage },
          },
        },
      ],
    },
  };
}
