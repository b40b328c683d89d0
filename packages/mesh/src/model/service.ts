import type { ResourceKey } from "@meshlet/config";
import type { Protocol } from "./protocol.js";

// The service model, close to Istio's `model.Service`, `ServiceInstance` and `IstioEndpoint`
// (istio/istio pilot/pkg/model/service.go). Values are plain immutable data built by `Registry`.

/**
 * How clients reach a service's instances (Istio `Resolution`, `String()` spelling):
 * - `ClientSide`: the proxy load-balances over known endpoints (Kubernetes ClusterIP, STATIC SE);
 * - `DNS` / `DNSRoundRobin`: the proxy resolves the endpoints' DNS names (SE `DNS`, `DNS_ROUND_ROBIN`);
 * - `Passthrough`: to the original destination (headless Service, SE `NONE`);
 * - `Alias`: a Kubernetes `ExternalName` Service, an alias of another name.
 */
export type Resolution = "ClientSide" | "DNS" | "DNSRoundRobin" | "Passthrough" | "Alias";

/** Registry a service comes from (Istio `provider.ID`). */
export type ServiceRegistryKind = "Kubernetes" | "External";

/** A service port (Istio `model.Port`) plus the target port the service maps it to. */
export interface ServicePort {
  /** Port name (`""` for the single unnamed port of a Kubernetes Service). */
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** Kubernetes `targetPort` (a number or a container port name) or ServiceEntry `targetPort`; absent = `port`. */
  readonly targetPort?: number | string;
}

/** The default address of a service without a VIP (Istio `constants.UnspecifiedIP`). */
export const UNSPECIFIED_IP = "0.0.0.0";

/** A service in the mesh (Istio `model.Service`). */
export interface Service {
  /** Fully qualified host: `reviews.default.svc.cluster.local`, `httpbin.org`, `*.example.com`. */
  readonly hostname: string;
  /** Namespace of the Service or ServiceEntry. */
  readonly namespace: string;
  /** Istio `Attributes.Name`: the Kubernetes Service name, or the host for a ServiceEntry. */
  readonly name: string;
  readonly registry: ServiceRegistryKind;
  /** The resource it came from. */
  readonly source: ResourceKey;
  readonly ports: readonly ServicePort[];
  /** First VIP, or {@link UNSPECIFIED_IP}. */
  readonly defaultAddress: string;
  /** All VIPs (Kubernetes `clusterIPs`, ServiceEntry `addresses`; `/32` CIDRs written as IPs). */
  readonly addresses: readonly string[];
  readonly resolution: Resolution;
  /** True for MESH_EXTERNAL ServiceEntries and ExternalName Services. */
  readonly meshExternal: boolean;
  /** `exportTo` (`networking.istio.io/exportTo` annotation on Services); undefined = the mesh default. */
  readonly exportTo?: ReadonlySet<string>;
  /** Labels of the Service / ServiceEntry. */
  readonly labels: Readonly<Record<string, string>>;
  /** Workload selector (Service `selector`, ServiceEntry `workloadSelector`). */
  readonly selector?: Readonly<Record<string, string>>;
  /** Identities that run the service (annotations, SE `subjectAltNames`), as SPIFFE IDs or names. */
  readonly serviceAccounts: readonly string[];
  /** `spec.externalName` of an ExternalName Service. */
  readonly externalName?: string;
  /** Creation time (ms), when the resource carries one; orders duplicates as Istio does. */
  readonly creationTime?: number;
}

/** Health of an endpoint (Istio `HealthStatus`). Only HEALTHY endpoints receive new traffic. */
export type HealthStatus = "HEALTHY" | "UNHEALTHY" | "DRAINING" | "TERMINATING";

/** A network endpoint of one service port (Istio `IstioEndpoint`). */
export interface IstioEndpoint {
  /** IP addresses (first is primary), or a DNS name for DNS-resolved ServiceEntries. */
  readonly addresses: readonly string[];
  /** The port the workload listens on (may differ from the service port). */
  readonly port: number;
  /** Name of the service port this endpoint serves. */
  readonly servicePortName: string;
  /** Workload labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** SPIFFE ID of the workload, or `""` when unknown. */
  readonly serviceAccount: string;
  /** Locality label `region/zone/subzone` (`""` when unknown). */
  readonly locality: string;
  readonly clusterId: string;
  readonly network: string;
  /** Load-balancing weight; 0 means unset (treated as 1). */
  readonly lbWeight: number;
  /** `security.istio.io/tlsMode` (`istio` accepts Istio mTLS; default `disabled`). */
  readonly tlsMode: string;
  /** Namespace of the workload (telemetry). */
  readonly namespace: string;
  /** Workload name, e.g. the Deployment (telemetry). */
  readonly workloadName: string;
  readonly nodeName?: string;
  readonly health: HealthStatus;
  /** The Pod or WorkloadEntry behind the endpoint, when known. */
  readonly workload?: ResourceKey;
}

/** One endpoint of one service port (Istio `ServiceInstance`). */
export interface ServiceInstance {
  readonly service: Service;
  readonly servicePort: ServicePort;
  readonly endpoint: IstioEndpoint;
}

/** A service port served by a given workload, with the port the workload listens on (Istio `ServiceTarget`). */
export interface ServiceTarget {
  readonly service: Service;
  readonly port: ServicePort;
  readonly targetPort: number;
}

/** Istio's `Service.Key()`: `<namespace>/<hostname>`, how dependencies name a service. */
export function serviceKey(service: { readonly namespace: string; readonly hostname: string }): string {
  return `${service.namespace}/${service.hostname}`;
}

/**
 * What identifies a service within one registry: the resource it came from and its host (a
 * ServiceEntry makes one service per host). Copies of a service (a scope's, with fewer ports) have
 * the same key.
 */
export function serviceSourceKey(service: Pick<Service, "source" | "hostname">): string {
  return `${service.source.kind}/${service.source.namespace}/${service.source.name}|${service.hostname}`;
}

/** The TLS mode label (Istio `label.SecurityTlsMode`). */
export const TLS_MODE_LABEL = "security.istio.io/tlsMode";
/** Locality override label on pods and WorkloadEntries (Istio `LocalityLabel`, `.` for `/`). */
export const LOCALITY_LABEL = "istio-locality";
/** Network label (Istio `label.TopologyNetwork`). */
export const NETWORK_LABEL = "topology.istio.io/network";
