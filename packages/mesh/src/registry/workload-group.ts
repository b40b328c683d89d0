import type { WorkloadEntry, WorkloadGroup } from "@meshlet/config";
import { MeshError } from "../mesh-error.js";
import { LOCALITY_LABEL } from "../model/service.js";
import type { Proxy } from "../proxy/proxy.js";

/** Annotation Istio puts on auto-registered WorkloadEntries (istio/istio pilot/pkg/autoregistration). */
export const AUTO_REGISTRATION_GROUP_ANNOTATION = "istio.io/autoRegistrationGroup";

/**
 * The name Istio gives a WorkloadEntry a proxy auto-registers (`GenerateWorkloadEntryName`):
 * `<group>-<ip>[-<network>]`, with `:` of IPv6 replaced by `-`, cut to its last 253 characters.
 */
export function autoRegisteredWorkloadEntryName(group: string, proxy: Proxy): string {
  const ip = proxy.ipAddresses[0] ?? "";
  const parts = [group, ip.replaceAll(":", "-")];
  if (proxy.metadata.network !== undefined && proxy.metadata.network !== "")
    parts.push(proxy.metadata.network);
  const name = parts.join("-");
  return name.length > 253 ? name.slice(name.length - 253) : name;
}

/**
 * The WorkloadEntry a proxy that sets `AUTO_REGISTER_GROUP` registers (Istio
 * `workloadEntryFromGroup`): the group's template with the proxy's first IP as address; labels
 * merged template < group `metadata.labels` < the node's `LABELS` (without `istio-locality`, which
 * becomes the `locality` field); the node's network and locality; annotation
 * `istio.io/autoRegistrationGroup: <group>` plus the group's annotations. The caller adds it to the
 * config (meshlet serves it from memory) and removes it when the proxy disconnects.
 */
export function workloadEntryFromGroup(group: WorkloadGroup, proxy: Proxy): WorkloadEntry {
  if (proxy.namespace !== group.metadata.namespace) {
    throw new MeshError(
      "INVALID_ARGUMENT",
      `proxy ${JSON.stringify(proxy.id)} in namespace ${proxy.namespace} cannot register with WorkloadGroup ${group.metadata.namespace}/${group.metadata.name}`,
    );
  }
  const template = group.spec.template;
  const labels: Record<string, string> = {
    ...(template.labels ?? {}),
    ...(group.spec.metadata?.labels ?? {}),
    ...proxy.metadata.labels,
  };
  delete labels[LOCALITY_LABEL];
  const locality = proxy.locality;
  const localityText =
    locality === undefined ? template.locality : [locality.region, locality.zone, locality.subZone].join("/");
  const network =
    proxy.metadata.network !== undefined && proxy.metadata.network !== ""
      ? proxy.metadata.network
      : template.network;
  const spec: WorkloadEntry["spec"] = {
    ...template,
    address: proxy.ipAddresses[0] ?? "",
    labels,
    ...(network !== undefined ? { network } : {}),
    ...(localityText !== undefined ? { locality: localityText } : {}),
  };
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "WorkloadEntry",
    metadata: {
      name: autoRegisteredWorkloadEntryName(group.metadata.name, proxy),
      namespace: proxy.namespace,
      labels,
      annotations: {
        [AUTO_REGISTRATION_GROUP_ANNOTATION]: group.metadata.name,
        ...(group.spec.metadata?.annotations ?? {}),
      },
    },
    spec,
  };
}
