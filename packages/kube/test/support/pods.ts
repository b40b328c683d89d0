import { parse } from "yaml";
import type { Pod } from "../../src/index.js";

/**
 * The pod a ReplicaSet controller creates from a Deployment's pod template, as the API server
 * sends it to admission webhooks: generated name, controller reference to the ReplicaSet
 * `<deployment>-<hash>`, the `pod-template-hash` label, and the defaulted `resources: {}` on each
 * container (Go's corev1.Container always serialises it).
 */
export function podFromDeployment(
  deploymentYaml: string,
  options: { namespace?: string; hash?: string } = {},
): Pod {
  const deployment = parse(deploymentYaml) as {
    metadata: { name: string };
    spec: { template: { metadata?: Pod["metadata"]; spec: Pod["spec"] } };
  };
  const hash = options.hash ?? "5d8f7c9b6";
  const name = deployment.metadata.name;
  const template = structuredClone(deployment.spec.template);
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      ...template.metadata,
      generateName: `${name}-${hash}-`,
      namespace: options.namespace ?? "default",
      labels: { ...(template.metadata?.labels ?? {}), "pod-template-hash": hash },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: `${name}-${hash}`,
          uid: "6b2a4f0e-2f0c-4a9e-9d6b-0c1e5f1d2a3b",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      ...template.spec,
      containers: template.spec.containers.map((c) => ({ resources: {}, ...c })),
    },
  };
}

/** The pod template part of an injected pod, for comparison with Istio's golden Deployments. */
export function asTemplate(pod: Pod): { metadata: Pod["metadata"]; spec: Pod["spec"] } {
  const { generateName: _g, namespace: _n, ownerReferences: _o, ...metadata } = pod.metadata;
  const { "pod-template-hash": _h, ...labels } = metadata.labels ?? {};
  return { metadata: { ...metadata, labels }, spec: pod.spec };
}

/** The pod template of a golden Deployment (YAML), with Go's `creationTimestamp: null` dropped. */
export function goldenTemplate(yaml: string): { metadata: Pod["metadata"]; spec: Pod["spec"] } {
  const doc = parse(yaml) as { spec: { template: { metadata: Record<string, unknown>; spec: Pod["spec"] } } };
  const { creationTimestamp: _c, ...metadata } = doc.spec.template.metadata;
  return { metadata: metadata as Pod["metadata"], spec: doc.spec.template.spec };
}
