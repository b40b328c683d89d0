import type { ResourceKey } from "@meshlet/config";
import { formatResourceKey } from "@meshlet/config";
import { type Service, serviceKey } from "../model/service.js";
import type { PushContext } from "../push/push-context.js";
import type { Registry } from "../registry/registry.js";

// What an endpoints-only change (PushContext.endpointsOnly) touches, for the controller's plan.

/** Kinds whose changes move workloads: proxies at their addresses may have new services or labels. */
const WORKLOAD_KINDS: ReadonlySet<string> = new Set(["Pod", "WorkloadEntry"]);

/**
 * Addresses whose workload or endpoints changed: the addresses whose endpoints of the changed
 * services differ between the registries, and the addresses of changed Pods and WorkloadEntries. A
 * proxy at one of them may serve different services or have other labels, so it is rebuilt in full.
 */
export function changedAddresses(
  previous: PushContext,
  next: PushContext,
  changed: readonly ResourceKey[],
  services: ReadonlySet<string>,
): Set<string> {
  const out = new Set<string>();
  const endpointsByAddress = (registry: Registry) => {
    const m = new Map<string, string[]>();
    if (services.size === 0) return m;
    for (const s of registry.services()) {
      const key = serviceKey(s);
      if (!services.has(key)) continue;
      for (const i of registry.instances(s)) {
        const text = JSON.stringify([key, i.servicePort, i.endpoint]);
        for (const a of i.endpoint.addresses) {
          const list = m.get(a);
          if (list === undefined) m.set(a, [text]);
          else list.push(text);
        }
      }
    }
    return m;
  };
  const before = endpointsByAddress(previous.registry);
  const after = endpointsByAddress(next.registry);
  for (const [a, list] of before) if (after.get(a)?.join("\n") !== list.join("\n")) out.add(a);
  for (const a of after.keys()) if (!before.has(a)) out.add(a);
  const workloads = new Set(changed.filter((k) => WORKLOAD_KINDS.has(k.kind)).map(formatResourceKey));
  if (workloads.size > 0) {
    for (const registry of [previous.registry, next.registry]) {
      for (const w of registry.workloads())
        if (workloads.has(formatResourceKey(w.source))) for (const a of w.addresses) out.add(a);
    }
  }
  return out;
}

/**
 * Whether the changed services can be pushed as load assignments alone (Istio's incremental EDS,
 * pilot/pkg/model/endpointshards.go: a change of the endpoints' service accounts needs a full push):
 * each is resolved through EDS before and after (not DNS, which Envoy clusters carry inline, nor
 * passthrough, whose endpoints become listeners) and its endpoints' identities, which clusters
 * verify as SANs, are the same.
 */
export function endpointsOnlyChange(
  previous: Registry,
  next: Registry,
  services: ReadonlySet<string>,
): boolean {
  const byKey = (registry: Registry) => {
    const m = new Map<string, Service[]>();
    for (const s of registry.services()) {
      const key = serviceKey(s);
      if (!services.has(key)) continue;
      const list = m.get(key);
      if (list === undefined) m.set(key, [s]);
      else list.push(s);
    }
    return m;
  };
  const before = byKey(previous);
  const after = byKey(next);
  for (const key of services) {
    const a = before.get(key);
    const b = after.get(key);
    if (a === undefined || b === undefined || a.length !== b.length) return false;
    if ([...a, ...b].some((s) => s.resolution !== "ClientSide")) return false;
    if (identities(previous, a) !== identities(next, b)) return false;
  }
  return true;
}

function identities(registry: Registry, services: readonly Service[]): string {
  const out = new Set<string>();
  for (const s of services) for (const i of registry.instances(s)) out.add(i.endpoint.serviceAccount);
  return [...out].sort().join(",");
}
