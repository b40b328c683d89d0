import { Annotation, Label } from "./annotations.js";
import type { InjectorConfig } from "./injector-config.js";
import { matchesLabelSelector } from "./label-selector.js";
import type { Pod } from "./pod-model.js";

/** Why a pod is or is not injected. */
export interface InjectionDecision {
  readonly inject: boolean;
  readonly reason: string;
}

/**
 * Istio's `injectRequired` (pkg/kube/inject/inject.go), rule for rule:
 * 1. `hostNetwork` pods are never injected (their iptables would rewrite the node's routing);
 * 2. nor are pods in the ignored system namespaces;
 * 3. the label `sidecar.istio.io/inject` decides if present, else the annotation of the same name
 *    (`y`/`yes`/`true`/`on` inject, any other non-empty value does not);
 * 4. otherwise a matching never-inject selector says no, then an always-inject selector says yes;
 * 5. otherwise the policy decides: `enabled` injects, `disabled` does not.
 * Namespace selection (`istio-injection=enabled`, `istio.io/rev`) happens before this, in the
 * webhook configuration's selectors, exactly as with Istio.
 */
export function injectionRequired(pod: Pod, namespace: string, config: InjectorConfig): InjectionDecision {
  if (pod.spec.hostNetwork === true) return { inject: false, reason: "the pod uses the host network" };
  if (config.ignoredNamespaces.includes(namespace)) {
    return { inject: false, reason: `namespace ${namespace} is never injected` };
  }
  const labels = pod.metadata.labels ?? {};
  const annotations = pod.metadata.annotations ?? {};
  const selector = Object.hasOwn(labels, Label.inject)
    ? labels[Label.inject]
    : annotations[Annotation.inject];
  const source = Object.hasOwn(labels, Label.inject) ? "label" : "annotation";
  if (selector !== undefined && selector !== "") {
    const yes = ["y", "yes", "true", "on"].includes(selector.toLowerCase());
    return { inject: yes, reason: `${source} ${Label.inject}=${selector}` };
  }
  if (config.neverInjectSelector.some((s) => matchesLabelSelector(s, labels))) {
    return { inject: false, reason: "the pod's labels match a never-inject selector" };
  }
  if (config.alwaysInjectSelector.some((s) => matchesLabelSelector(s, labels))) {
    return { inject: true, reason: "the pod's labels match an always-inject selector" };
  }
  return config.policy === "enabled"
    ? { inject: true, reason: "injection is enabled for the namespace" }
    : { inject: false, reason: "the injection policy is disabled and the pod does not opt in" };
}
