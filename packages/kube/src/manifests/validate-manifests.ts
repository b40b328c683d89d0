import { KindRegistry, validateResource } from "@meshlet/config";
import { MutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import { ValidatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import type { KubeObject } from "./kube-object.js";

type Model = new (data: never) => { validate(): void };

// Kubernetes' own OpenAPI schemas, compiled by kubernetes-models, one class per kind.
const MODELS: Readonly<Record<string, Model>> = {
  "v1/Namespace": Namespace as unknown as Model,
  "v1/ServiceAccount": ServiceAccount as unknown as Model,
  "v1/ConfigMap": ConfigMap as unknown as Model,
  "v1/Service": Service as unknown as Model,
  "apps/v1/Deployment": Deployment as unknown as Model,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget as unknown as Model,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler as unknown as Model,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole as unknown as Model,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding as unknown as Model,
  "rbac.authorization.k8s.io/v1/Role": Role as unknown as Model,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding as unknown as Model,
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":
    MutatingWebhookConfiguration as unknown as Model,
  "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
    ValidatingWebhookConfiguration as unknown as Model,
};

function label(o: KubeObject): string {
  const ns = o.metadata?.namespace;
  return `${o.kind}/${ns !== undefined ? `${ns}/` : ""}${o.metadata?.name ?? "?"}`;
}

/**
 * Validates rendered objects against Kubernetes' schemas (the `kubernetes-models` package: types,
 * required fields, formats such as quantities) and Istio kinds with `@meshlet/config`. Returns one
 * message per problem, naming the object; empty when all are valid.
 */
export function validateManifests(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const registry = new KindRegistry();
  for (const object of objects) {
    const model = MODELS[`${object.apiVersion}/${object.kind}`];
    if (model !== undefined) {
      try {
        new model(object as never).validate();
      } catch (error) {
        problems.push(`${label(object)}: ${error instanceof Error ? error.message : String(error)}`);
      }
      continue;
    }
    if (registry.get(object.kind) !== undefined) {
      const result = validateResource(object, { source: "manifests" }, { registry });
      for (const d of result.diagnostics.filter((x) => x.severity === "error")) {
        problems.push(`${label(object)}: ${d.path !== undefined ? `${d.path}: ` : ""}${d.message}`);
      }
      continue;
    }
    problems.push(`${label(object)}: no schema for ${object.apiVersion} ${object.kind}`);
  }
  return problems;
}
