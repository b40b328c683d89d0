import type { ObjectMeta, WorkloadSelector } from "./authorization-policy.js";

/** The workload a request is for: what policy scoping is decided on. */
export interface Workload {
  namespace: string;
  labels: Record<string, string>;
}

/**
 * Istio scoping: a policy in the root namespace applies mesh-wide; elsewhere it applies to its
 * own namespace; a `selector` further narrows it to workloads carrying all its labels.
 */
export function appliesTo(
  resource: { metadata: ObjectMeta; spec: { selector?: WorkloadSelector } },
  workload: Workload,
  rootNamespace: string,
): boolean {
  const ns = resource.metadata.namespace ?? "default";
  if (ns !== rootNamespace && ns !== workload.namespace) return false;
  const match = resource.spec.selector?.matchLabels;
  if (!match) return true;
  for (const [k, v] of Object.entries(match)) if (workload.labels[k] !== v) return false;
  return true;
}
