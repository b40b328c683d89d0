import type { IObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";

/** A container, as Kubernetes' own schema types it (the `kubernetes-models` package). */
export type Container = IContainer;
/** A pod spec, as Kubernetes' own schema types it. */
export type PodSpec = IPodSpec;
/** Object metadata, as Kubernetes' own schema types it. */
export type ObjectMeta = IObjectMeta;

/**
 * A pod as the injector reads and writes it: `metadata` and `spec` always present (an
 * AdmissionReview's pod on CREATE may lack `metadata.name` and `metadata.namespace`).
 */
export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: PodSpec;
  [field: string]: unknown;
}

/** The name Istio gives the injected proxy container. */
export const PROXY_CONTAINER = "istio-proxy";
/** The init container that installs the iptables redirection. */
export const INIT_CONTAINER = "istio-init";
/** The init container that turns on core dumps (`sidecar.istio.io/enableCoreDump`). */
export const CORE_DUMP_CONTAINER = "enable-core-dump";

/** The pod's containers other than `istio-proxy`, in order. */
export function appContainers(spec: PodSpec): Container[] {
  return (spec.containers ?? []).filter((c) => c.name !== PROXY_CONTAINER);
}

/** A deep copy of a JSON value. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** The pod's name for messages: its name, or its generateName followed by `*` while it has none yet. */
export function podDisplayName(pod: Pod): string {
  const ns = pod.metadata.namespace ?? "";
  const name = pod.metadata.name ?? (pod.metadata.generateName ? `${pod.metadata.generateName}*` : "?");
  return ns === "" ? name : `${ns}/${name}`;
}
