import { isIP } from "node:net";
import { labelsMatch, resourceKeyOf, type ServiceEntry } from "@meshlet/config";
import {
  creationTime,
  type ServiceEntryPort,
  selectorLabels,
  type WorkloadEntrySpec,
} from "../config-access.js";
import { parseProtocol } from "../model/protocol.js";
import {
  type IstioEndpoint,
  type Resolution,
  type Service,
  type ServiceInstance,
  type ServicePort,
  TLS_MODE_LABEL,
  UNSPECIFIED_IP,
} from "../model/service.js";
import { workloadIdentity } from "../naming/identity.js";
import type { WorkloadInstance } from "./workload.js";
import { localityFromLabel } from "./workload.js";

// ServiceEntries as services and endpoints (istio/istio
// pilot/pkg/serviceregistry/serviceentry/conversion.go `convertServices`, `convertEndpoint`,
// `convertServiceEntryToInstances`, `convertWorkloadInstanceToServiceInstance`).

const RESOLUTIONS: Readonly<Record<string, Resolution>> = {
  NONE: "Passthrough",
  STATIC: "ClientSide",
  DNS: "DNS",
  DNS_ROUND_ROBIN: "DNSRoundRobin",
};

/**
 * One service per host of a ServiceEntry. `resolution` defaults to `NONE` (Passthrough) and
 * `location` to `MESH_EXTERNAL`, the proto defaults; addresses are IPs or CIDRs (a `/32` or `/128`
 * CIDR is written as its IP); ports take the protocol named in `protocol` (case-insensitive; none
 * declared = sniffed). Istio makes one service per host *and address*; meshlet keeps one per host
 * and lists every address in {@link Service.addresses}.
 */
export function convertServiceEntry(se: ServiceEntry): Service[] {
  const spec = se.spec;
  const resolution = RESOLUTIONS[spec.resolution ?? "NONE"] ?? "Passthrough";
  const ports: ServicePort[] = (spec.ports ?? []).map((p) => ({
    name: p.name ?? "",
    port: p.number,
    protocol: parseProtocol(p.protocol ?? ""),
    ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
  }));
  const addresses = (spec.addresses ?? []).flatMap((a) => normalizeAddress(a));
  const selector = selectorLabels(spec.workloadSelector);
  const created = creationTime(se);
  return spec.hosts.map((host) => ({
    hostname: host,
    namespace: se.metadata.namespace,
    name: host,
    registry: "External" as const,
    source: resourceKeyOf(se),
    ports,
    defaultAddress: addresses[0] ?? UNSPECIFIED_IP,
    addresses,
    resolution,
    meshExternal: spec.location !== "MESH_INTERNAL",
    ...(spec.exportTo !== undefined && spec.exportTo.length > 0 ? { exportTo: new Set(spec.exportTo) } : {}),
    labels: se.metadata.labels ?? {},
    ...(selector !== undefined ? { selector } : {}),
    serviceAccounts: spec.subjectAltNames ?? [],
    ...(created !== undefined ? { creationTime: created } : {}),
  }));
}

function normalizeAddress(address: string): string[] {
  if (isIP(address) !== 0) return [address];
  const slash = address.indexOf("/");
  if (slash < 0) return [];
  const ip = address.slice(0, slash);
  const bits = address.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d+$/.test(bits)) return [];
  return Number(bits) === (family === 4 ? 32 : 128) ? [ip] : [address];
}

/** Options for ServiceEntry endpoint building. */
export interface ServiceEntryEndpointOptions {
  readonly clusterId: string;
  readonly trustDomain: string;
}

/**
 * The endpoints of one ServiceEntry service:
 * - inline `endpoints`, one per service port, on the port the endpoint names for that port name,
 *   else the port's `targetPort`, else its number (`unix://` addresses listen on port 0);
 * - with DNS/DNS_ROUND_ROBIN resolution and neither endpoints nor a selector, the host itself on
 *   the (target) port;
 * - with a `workloadSelector`, the Pods and WorkloadEntries of the namespace it matches, on the
 *   workload's port of that name, else the target port, else the port number.
 */
export function serviceEntryInstances(
  se: ServiceEntry,
  service: Service,
  workloadsInNamespace: readonly WorkloadInstance[],
  options: ServiceEntryEndpointOptions,
): ServiceInstance[] {
  const spec = se.spec;
  const out: ServiceInstance[] = [];
  const sePorts = spec.ports ?? [];
  const selector = selectorLabels(spec.workloadSelector);
  const endpoints = spec.endpoints ?? [];
  for (const sePort of sePorts) {
    const servicePort = service.ports.find((p) => p.port === sePort.number && p.name === (sePort.name ?? ""));
    if (servicePort === undefined) continue;
    if (
      endpoints.length === 0 &&
      selector === undefined &&
      (service.resolution === "DNS" || service.resolution === "DNSRoundRobin")
    ) {
      out.push({
        service,
        servicePort,
        endpoint: {
          addresses: [service.hostname],
          port: sePort.targetPort ?? sePort.number,
          servicePortName: servicePort.name,
          labels: {},
          serviceAccount: "",
          locality: "",
          clusterId: "",
          network: "",
          lbWeight: 0,
          tlsMode: "disabled",
          namespace: "",
          workloadName: "",
          health: "HEALTHY",
        },
      });
      continue;
    }
    for (const we of endpoints) {
      const endpoint = inlineEndpoint(we, sePort, service.namespace, options);
      if (endpoint !== undefined) out.push({ service, servicePort, endpoint });
    }
    if (selector !== undefined) {
      for (const w of workloadsInNamespace) {
        if (!labelsMatch(selector, w.labels)) continue;
        out.push({ service, servicePort, endpoint: workloadEndpoint(w, sePort, options) });
      }
    }
  }
  return out;
}

function inlineEndpoint(
  we: WorkloadEntrySpec,
  sePort: ServiceEntryPort,
  namespace: string,
  options: ServiceEntryEndpointOptions,
): IstioEndpoint | undefined {
  let address = we.address;
  if (address === undefined || address === "") return undefined;
  let port: number;
  if (address.startsWith("unix://")) {
    address = address.slice("unix://".length);
    port = 0;
  } else {
    port = we.ports?.[sePort.name ?? ""] ?? sePort.targetPort ?? sePort.number;
  }
  const labels = we.labels ?? {};
  const sa = we.serviceAccount ?? "";
  let identity = "";
  if (sa !== "") {
    try {
      identity = workloadIdentity(options.trustDomain, namespace, sa);
    } catch {
      identity = "";
    }
  }
  return {
    addresses: [address],
    port,
    servicePortName: sePort.name ?? "",
    labels,
    serviceAccount: identity,
    locality: we.locality !== undefined ? localityFromLabel(we.locality) : "",
    clusterId: options.clusterId,
    network: we.network ?? "",
    lbWeight: we.weight ?? 0,
    tlsMode: labels[TLS_MODE_LABEL] ?? (sa !== "" ? "istio" : "disabled"),
    namespace,
    workloadName: "",
    health: "HEALTHY",
  };
}

function workloadEndpoint(
  w: WorkloadInstance,
  sePort: ServiceEntryPort,
  options: ServiceEntryEndpointOptions,
): IstioEndpoint {
  const port = w.ports.get(sePort.name ?? "") ?? sePort.targetPort ?? sePort.number;
  return {
    addresses: w.addresses,
    port,
    servicePortName: sePort.name ?? "",
    labels: w.labels,
    serviceAccount: w.identity,
    locality: w.locality,
    clusterId: options.clusterId,
    network: w.network,
    lbWeight: w.weight,
    tlsMode: w.tlsMode,
    namespace: w.namespace,
    workloadName: w.workloadName,
    ...(w.nodeName !== undefined ? { nodeName: w.nodeName } : {}),
    health: w.health,
    workload: w.source,
  };
}
