import { type EndpointSlice, type Service as KubeService, labelsMatch, resourceKeyOf } from "@meshlet/config";
import { creationTime, type EndpointSliceEndpoint, kubeServiceExtras } from "../config-access.js";
import { protocolOfKubernetesPort } from "../model/protocol.js";
import {
  type HealthStatus,
  type IstioEndpoint,
  type Service,
  type ServiceInstance,
  type ServicePort,
  UNSPECIFIED_IP,
} from "../model/service.js";
import { workloadIdentity } from "../naming/identity.js";
import type { WorkloadInstance } from "./workload.js";

// Kubernetes Services and their endpoints, as Istio's Kubernetes registry builds them
// (istio/istio pilot/pkg/serviceregistry/kube/conversion.go `ConvertService`,
// pilot/pkg/serviceregistry/kube/controller/endpointslice.go, endpoint_builder.go).

const EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo";
const CANONICAL_SA_ANNOTATION = "alpha.istio.io/canonical-serviceaccounts";
const KUBERNETES_SA_ANNOTATION = "alpha.istio.io/kubernetes-serviceaccounts";
/** EndpointSlice label naming its Service (`discovery.k8s.io/v1` `LabelServiceName`). */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** Options for Kubernetes conversion. */
export interface KubeConversionOptions {
  readonly domainSuffix: string;
  readonly clusterId: string;
  readonly trustDomain: string;
}

/**
 * A Kubernetes Service as an Istio service: host `<name>.<ns>.svc.<domainSuffix>`; `ClusterIP: None`
 * is Passthrough; `ExternalName` is an Alias and mesh-external; ports get their protocol from
 * `appProtocol` or the name prefix; `networking.istio.io/exportTo` is a comma list;
 * `alpha.istio.io/{canonical,kubernetes}-serviceaccounts` name the identities that run it.
 */
export function convertKubeService(svc: KubeService, options: KubeConversionOptions): Service {
  const spec = svc.spec;
  const annotations = svc.metadata.annotations ?? {};
  const extras = kubeServiceExtras(svc);
  let resolution: Service["resolution"] = "ClientSide";
  let externalName: string | undefined;
  if (spec.type === "ExternalName" && spec.externalName !== undefined && spec.externalName !== "") {
    externalName = spec.externalName;
    resolution = "Alias";
  }
  let addresses: string[] = [];
  if (spec.clusterIP === "None") resolution = "Passthrough";
  else if (spec.clusterIP !== undefined && spec.clusterIP !== "") {
    addresses = extras.clusterIps.length > 1 ? extras.clusterIps : [spec.clusterIP];
  }
  const ports: ServicePort[] = (spec.ports ?? []).map((p) => ({
    name: p.name ?? "",
    port: p.port,
    protocol: protocolOfKubernetesPort({
      port: p.port,
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.protocol !== undefined ? { protocol: p.protocol } : {}),
      ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
    }),
    ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
  }));
  const serviceAccounts: string[] = [];
  const canonical = annotations[CANONICAL_SA_ANNOTATION];
  if (canonical !== undefined && canonical !== "") serviceAccounts.push(...canonical.split(","));
  const kubeSas = annotations[KUBERNETES_SA_ANNOTATION];
  if (kubeSas !== undefined && kubeSas !== "") {
    for (const sa of kubeSas.split(",")) {
      try {
        serviceAccounts.push(workloadIdentity(options.trustDomain, svc.metadata.namespace, sa));
      } catch {
        // A name that cannot be a SPIFFE ID grants nothing.
      }
    }
  }
  const exportToText = annotations[EXPORT_TO_ANNOTATION];
  const exportTo =
    exportToText !== undefined && exportToText !== ""
      ? new Set(exportToText.split(",").map((s) => s.trim()))
      : undefined;
  const created = creationTime(svc);
  return {
    hostname: `${svc.metadata.name}.${svc.metadata.namespace}.svc.${options.domainSuffix}`,
    namespace: svc.metadata.namespace,
    name: svc.metadata.name,
    registry: "Kubernetes",
    source: resourceKeyOf(svc),
    ports,
    defaultAddress: addresses[0] ?? UNSPECIFIED_IP,
    addresses,
    resolution,
    meshExternal: externalName !== undefined,
    ...(exportTo !== undefined ? { exportTo } : {}),
    labels: svc.metadata.labels ?? {},
    ...(spec.selector !== undefined ? { selector: spec.selector } : {}),
    serviceAccounts,
    ...(externalName !== undefined ? { externalName } : {}),
    ...(created !== undefined ? { creationTime: created } : {}),
  };
}

/** What endpoint building needs to find workloads. */
export interface WorkloadLookup {
  /** Pods and WorkloadEntries of a namespace. */
  inNamespace(namespace: string): readonly WorkloadInstance[];
  /** The Pod with this name, if known. */
  pod(namespace: string, name: string): WorkloadInstance | undefined;
  /** Pods by IP in a namespace. */
  podsByIp(namespace: string, ip: string): readonly WorkloadInstance[];
}

/**
 * Endpoints of a Kubernetes Service. From its EndpointSlices when it has any (label
 * `kubernetes.io/service-name`): each address and slice port becomes an endpoint of the service
 * port with the same name, carrying the labels, identity and locality of the Pod it targets; a
 * slice that targets a Pod the registry does not know is skipped (Istio waits for the Pod). Without
 * slices, endpoints are derived from the Pods the selector matches, as Kubernetes' EndpointSlice
 * controller would (so a directory of YAML needs no EndpointSlices). WorkloadEntries the selector
 * matches are endpoints too (Istio's workload-instance handler).
 */
export function kubeServiceInstances(
  service: Service,
  slices: readonly EndpointSlice[],
  workloads: WorkloadLookup,
  options: KubeConversionOptions,
): ServiceInstance[] {
  const out: ServiceInstance[] = [];
  const byPortName = new Map(service.ports.map((p) => [p.name, p]));
  const seen = new Set<string>();
  const push = (servicePort: ServicePort, endpoint: IstioEndpoint) => {
    // Duplicates across slices (an endpoint moving between slices) are dropped, as Istio's
    // endpointSliceCache.Get does by (address, port name).
    const key = `${endpoint.addresses[0]}|${endpoint.servicePortName}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ service, servicePort, endpoint });
  };

  if (slices.length > 0) {
    for (const slice of slices) {
      if (slice.addressType === "FQDN") continue; // Istio does not support FQDN slices either
      for (const ep of slice.endpoints ?? []) {
        const health = sliceEndpointHealth(ep);
        for (const address of ep.addresses) {
          const ref = ep.targetRef;
          let workload: WorkloadInstance | undefined;
          if (ref?.kind === "Pod" && ref.name !== undefined) {
            workload = workloads.pod(ref.namespace ?? slice.metadata.namespace, ref.name);
            if (workload === undefined) continue;
          } else {
            workload = workloads.podsByIp(slice.metadata.namespace, address)[0];
          }
          for (const sp of slice.ports ?? [{}]) {
            const servicePort = byPortName.get(sp.name ?? "");
            if (servicePort === undefined || sp.port === undefined) continue;
            push(
              servicePort,
              endpointFrom(workload, [address], sp.port, servicePort.name, health, options, ep),
            );
          }
        }
      }
    }
  } else if (service.selector !== undefined && Object.keys(service.selector).length > 0) {
    for (const w of workloads.inNamespace(service.namespace)) {
      if (w.kind !== "Pod" || !labelsMatch(service.selector, w.labels)) continue;
      for (const servicePort of service.ports) {
        const port = podTargetPort(servicePort, w);
        if (port === undefined) continue;
        push(servicePort, endpointFrom(w, w.addresses, port, servicePort.name, w.health, options));
      }
    }
  }
  if (service.selector !== undefined && Object.keys(service.selector).length > 0) {
    for (const w of workloads.inNamespace(service.namespace)) {
      if (w.kind !== "WorkloadEntry" || !labelsMatch(service.selector, w.labels)) continue;
      for (const servicePort of service.ports) {
        // A WorkloadEntry's named port wins, then a numeric targetPort, then the service port.
        const port =
          w.ports.get(servicePort.name) ??
          (typeof servicePort.targetPort === "number" ? servicePort.targetPort : servicePort.port);
        push(servicePort, endpointFrom(w, w.addresses, port, servicePort.name, w.health, options));
      }
    }
  }
  return out;
}

/**
 * EndpointSlice conditions to a health status (istio/istio endpointslice.go `endpointHealthStatus`):
 * `ready` unset or true is HEALTHY; not ready and `terminating` is TERMINATING; otherwise UNHEALTHY.
 */
export function sliceEndpointHealth(ep: EndpointSliceEndpoint): HealthStatus {
  const c = ep.conditions;
  if (c?.ready === undefined || c.ready) return "HEALTHY";
  return c.terminating === true ? "TERMINATING" : "UNHEALTHY";
}

function podTargetPort(servicePort: ServicePort, pod: WorkloadInstance): number | undefined {
  const target = servicePort.targetPort;
  if (target === undefined) return servicePort.port;
  if (typeof target === "number") return target;
  return pod.ports.get(target);
}

function endpointFrom(
  workload: WorkloadInstance | undefined,
  addresses: readonly string[],
  port: number,
  servicePortName: string,
  health: HealthStatus,
  options: KubeConversionOptions,
  sliceEndpoint?: EndpointSliceEndpoint,
): IstioEndpoint {
  const nodeName = workload?.nodeName ?? sliceEndpoint?.nodeName;
  const zone = (sliceEndpoint as { zone?: unknown } | undefined)?.zone;
  const locality =
    workload?.locality !== undefined && workload.locality !== ""
      ? workload.locality
      : typeof zone === "string" && zone !== ""
        ? `/${zone}/`
        : "";
  return {
    addresses,
    port,
    servicePortName,
    labels: workload?.labels ?? {},
    serviceAccount: workload?.identity ?? "",
    locality,
    clusterId: options.clusterId,
    network: workload?.network ?? "",
    lbWeight: workload?.weight ?? 0,
    tlsMode: workload?.tlsMode ?? "disabled",
    namespace: workload?.namespace ?? "",
    workloadName: workload?.workloadName ?? "",
    ...(nodeName !== undefined ? { nodeName } : {}),
    health,
    ...(workload !== undefined ? { workload: workload.source } : {}),
  };
}
