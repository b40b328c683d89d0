import {
  type ConfigSnapshot,
  type Pod,
  type ResourceKey,
  resourceKeyOf,
  type WorkloadEntry,
} from "@meshlet/config";
import {
  isTerminating,
  ownerReferences,
  podFinished,
  podIps,
  podNamedPorts,
  podReady,
  podServiceAccount,
} from "../config-access.js";
import type { HealthStatus } from "../model/service.js";
import { LOCALITY_LABEL, NETWORK_LABEL, TLS_MODE_LABEL } from "../model/service.js";
import { workloadIdentity } from "../naming/identity.js";

/**
 * A workload that can back service endpoints: a Pod or a WorkloadEntry (Istio `WorkloadInstance`),
 * with what endpoints inherit from it.
 */
export interface WorkloadInstance {
  readonly kind: "Pod" | "WorkloadEntry";
  readonly name: string;
  readonly namespace: string;
  readonly source: ResourceKey;
  /** Pod IPs or the WorkloadEntry address (an IP, a DNS name or `unix://…`). */
  readonly addresses: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Kubernetes service account name (`""` when a WorkloadEntry names none). */
  readonly serviceAccount: string;
  /** SPIFFE ID (`""` when there is no service account). */
  readonly identity: string;
  /** `region/zone/subzone`, `""` when unknown. */
  readonly locality: string;
  readonly network: string;
  /** `security.istio.io/tlsMode`: `istio` when the workload accepts Istio mTLS. */
  readonly tlsMode: string;
  /** The owning workload (Deployment) name, for telemetry. */
  readonly workloadName: string;
  readonly nodeName?: string;
  /** Named ports: Pod container ports by name, WorkloadEntry `ports`. */
  readonly ports: ReadonlyMap<string, number>;
  readonly health: HealthStatus;
  /** WorkloadEntry `weight` (0 = unset). */
  readonly weight: number;
}

/** Options that shape workload conversion. */
export interface WorkloadOptions {
  readonly trustDomain: string;
}

/**
 * The locality of a pod as Istio derives it (istio/istio pilot/pkg/serviceregistry/kube/controller
 * `getPodLocality`): the pod's `istio-locality` label (`.` read as `/`), else its node's
 * `topology.kubernetes.io/{region,zone}` (or the `failure-domain.beta` labels) and
 * `topology.istio.io/subzone`. Nodes are read from the snapshot when a `Node` kind is registered;
 * otherwise the EndpointSlice's `zone` for the endpoint (set by Kubernetes from the same node
 * label) stands in for the zone.
 */
export function podLocality(snapshot: ConfigSnapshot, pod: Pod, sliceZone?: string): string {
  const label = pod.metadata.labels?.[LOCALITY_LABEL];
  if (label !== undefined && label !== "") return localityFromLabel(label);
  const nodeName = pod.spec.nodeName;
  const node = nodeName === undefined ? undefined : snapshot.get("Node", "", nodeName);
  const nodeLabels = node?.metadata.labels ?? {};
  const region =
    nodeLabels["topology.kubernetes.io/region"] ??
    nodeLabels["failure-domain.beta.kubernetes.io/region"] ??
    "";
  const zone =
    nodeLabels["topology.kubernetes.io/zone"] ??
    nodeLabels["failure-domain.beta.kubernetes.io/zone"] ??
    sliceZone ??
    "";
  const subzone = nodeLabels["topology.istio.io/subzone"] ?? "";
  return region === "" && zone === "" && subzone === "" ? "" : `${region}/${zone}/${subzone}`;
}

/** `istio-locality` label value to a locality (Istio `GetLocalityLabel`: `.` → `/` unless `/` is used). */
export function localityFromLabel(label: string): string {
  return label.includes("/") ? label : label.replaceAll(".", "/");
}

/**
 * The workload name of a pod (what Istio reports as `destination_workload`): the Deployment name
 * behind a ReplicaSet owner (the owner name minus `-<pod-template-hash>`), another owner's name,
 * or the pod name.
 */
export function podWorkloadName(pod: Pod): string {
  const owner = ownerReferences(pod)[0];
  if (owner === undefined) return pod.metadata.name;
  const hash = pod.metadata.labels?.["pod-template-hash"];
  if (owner.kind === "ReplicaSet" && hash !== undefined && owner.name.endsWith(`-${hash}`)) {
    return owner.name.slice(0, -(hash.length + 1));
  }
  return owner.name;
}

/** A pod as a workload; undefined for pods without an IP or that have finished. */
export function podWorkload(
  snapshot: ConfigSnapshot,
  pod: Pod,
  options: WorkloadOptions,
): WorkloadInstance | undefined {
  const addresses = podIps(pod);
  if (addresses.length === 0 || podFinished(pod)) return undefined;
  const labels = pod.metadata.labels ?? {};
  const serviceAccount = podServiceAccount(pod);
  return {
    kind: "Pod",
    name: pod.metadata.name,
    namespace: pod.metadata.namespace,
    source: resourceKeyOf(pod),
    addresses,
    labels,
    serviceAccount,
    identity: identityOrEmpty(options.trustDomain, pod.metadata.namespace, serviceAccount),
    locality: podLocality(snapshot, pod),
    network: labels[NETWORK_LABEL] ?? "",
    tlsMode: labels[TLS_MODE_LABEL] ?? "disabled",
    workloadName: podWorkloadName(pod),
    ...(pod.spec.nodeName !== undefined ? { nodeName: pod.spec.nodeName } : {}),
    ports: podNamedPorts(pod),
    health: isTerminating(pod) ? "TERMINATING" : podReady(pod) ? "HEALTHY" : "UNHEALTHY",
    weight: 0,
  };
}

/**
 * A WorkloadEntry as a workload (istio/istio pilot/pkg/serviceregistry/serviceentry/conversion.go):
 * metadata labels win over `spec.labels`; the TLS mode is the `security.istio.io/tlsMode` label, else
 * `istio` when a service account is set; a `Healthy` status condition that is not `True` makes it
 * unhealthy.
 */
export function workloadEntryWorkload(
  entry: WorkloadEntry,
  options: WorkloadOptions,
): WorkloadInstance | undefined {
  const spec = entry.spec;
  if (spec.address === undefined || spec.address === "") return undefined;
  const labels = { ...(spec.labels ?? {}), ...(entry.metadata.labels ?? {}) };
  const serviceAccount = spec.serviceAccount ?? "";
  return {
    kind: "WorkloadEntry",
    name: entry.metadata.name,
    namespace: entry.metadata.namespace,
    source: resourceKeyOf(entry),
    addresses: [spec.address],
    labels,
    serviceAccount,
    identity: identityOrEmpty(options.trustDomain, entry.metadata.namespace, serviceAccount),
    locality: spec.locality !== undefined ? localityFromLabel(spec.locality) : "",
    network: spec.network ?? "",
    tlsMode: labels[TLS_MODE_LABEL] ?? (serviceAccount !== "" ? "istio" : "disabled"),
    workloadName: entry.metadata.name,
    ports: new Map(Object.entries(spec.ports ?? {})),
    health: workloadEntryHealthy(entry) ? "HEALTHY" : "UNHEALTHY",
    weight: spec.weight ?? 0,
  };
}

function workloadEntryHealthy(entry: WorkloadEntry): boolean {
  const conditions = (entry.status as { conditions?: unknown } | undefined)?.conditions;
  if (!Array.isArray(conditions)) return true;
  const healthy = conditions.find((c) => c?.type === "Healthy");
  return healthy === undefined || healthy.status === "True";
}

function identityOrEmpty(trustDomain: string, namespace: string, serviceAccount: string): string {
  if (serviceAccount === "" || namespace === "") return "";
  try {
    return workloadIdentity(trustDomain, namespace, serviceAccount);
  } catch {
    // Names that cannot form a SPIFFE ID get no identity; mTLS to them then fails closed.
    return "";
  }
}
