import {
  type AuthorizationPolicy,
  labelsMatch,
  type PeerAuthentication,
  type RequestAuthentication,
  type Resource,
  type ResourceKey,
  resourceKeyOf,
} from "@meshlet/config";
import { creationTime } from "../config-access.js";

/** A peer authentication mode (Istio `MutualTLSMode`, `UNSET` resolved). */
export type MtlsMode = "STRICT" | "PERMISSIVE" | "DISABLE";

/** The workload a policy is evaluated for. */
export interface PolicyTarget {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * The PeerAuthentication in effect for a workload (Istio `MergedPeerAuthentication`): the mode,
 * per-port overrides keyed by the workload's (target) port, and the policies that decided.
 */
export interface EffectivePeerAuthentication {
  readonly mode: MtlsMode;
  readonly perPort: ReadonlyMap<number, MtlsMode>;
  /** Mesh-level, namespace-level and workload-level policies that were applied, in that order. */
  readonly from: readonly ResourceKey[];
}

/** Mode for a port: its port-level mode, else the workload mode (Istio `GetMutualTLSModeForPort`). */
export function mtlsModeForPort(effective: EffectivePeerAuthentication, port: number): MtlsMode {
  return effective.perPort.get(port) ?? effective.mode;
}

/**
 * Composes the PeerAuthentications that apply to a workload as Istio does
 * (istio/istio pilot/pkg/security/authn/policy_applier.go `ComposePeerAuthentication`):
 * - candidates are the root namespace's policies and the workload namespace's policies whose
 *   selector is empty or matches the workload's labels;
 * - a policy without selector is mesh-level in the root namespace and namespace-level elsewhere; a
 *   policy with a selector is workload-level, except in the root namespace, where it is ignored;
 * - at each level the oldest policy wins (then by name);
 * - the narrowest level that sets a mode wins; `UNSET` inherits from the level above; with nothing
 *   set the mode is PERMISSIVE;
 * - `portLevelMtls` of the workload-level policy overrides per port, `UNSET` inheriting the
 *   workload's mode.
 */
export function composePeerAuthentication(
  policies: readonly PeerAuthentication[],
  rootNamespace: string,
  target: PolicyTarget,
): EffectivePeerAuthentication {
  let mesh: PeerAuthentication | undefined;
  let namespace: PeerAuthentication | undefined;
  let workload: PeerAuthentication | undefined;
  for (const pa of sortByCreation(policies)) {
    const ns = pa.metadata.namespace;
    if (ns !== rootNamespace && ns !== target.namespace) continue;
    const selector = pa.spec.selector?.matchLabels;
    const hasSelector = selector !== undefined && Object.keys(selector).length > 0;
    if (!hasSelector) {
      if (ns === rootNamespace) mesh ??= pa;
      else namespace ??= pa;
    } else if (ns !== rootNamespace && labelsMatch(selector, target.labels)) {
      workload ??= pa;
    }
  }
  let mode: MtlsMode = "PERMISSIVE";
  const from: ResourceKey[] = [];
  for (const pa of [mesh, namespace, workload]) {
    if (pa === undefined) continue;
    from.push(resourceKeyOf(pa));
    const m = pa.spec.mtls?.mode;
    if (m !== undefined && m !== "UNSET") mode = m;
  }
  const perPort = new Map<number, MtlsMode>();
  for (const [port, setting] of Object.entries(workload?.spec.portLevelMtls ?? {})) {
    const m = setting.mode;
    perPort.set(Number(port), m === undefined || m === "UNSET" ? mode : m);
  }
  return { mode, perPort, from };
}

/** AuthorizationPolicies that apply to a workload, by action (Istio `AuthorizationPoliciesResult`). */
export interface WorkloadAuthorizationPolicies {
  readonly allow: readonly AuthorizationPolicy[];
  readonly deny: readonly AuthorizationPolicy[];
  readonly audit: readonly AuthorizationPolicy[];
  readonly custom: readonly AuthorizationPolicy[];
}

/**
 * The AuthorizationPolicies that apply to a workload (Istio `ListAuthorizationPolicies`): those of
 * the root namespace, then those of the workload's namespace, whose selector is empty or matches
 * the workload's labels, oldest first, grouped by action (unset = ALLOW). Policies attached with
 * `targetRef`/`targetRefs` bind to Gateway API gateways and waypoints, never to sidecars, and are
 * left out.
 */
export function authorizationPoliciesFor(
  policies: readonly AuthorizationPolicy[],
  rootNamespace: string,
  target: PolicyTarget,
): WorkloadAuthorizationPolicies {
  const out = {
    allow: [] as AuthorizationPolicy[],
    deny: [] as AuthorizationPolicy[],
    audit: [] as AuthorizationPolicy[],
    custom: [] as AuthorizationPolicy[],
  };
  for (const p of selectPolicies(policies, rootNamespace, target)) {
    const action = p.spec.action ?? "ALLOW";
    out[
      action === "ALLOW" ? "allow" : action === "DENY" ? "deny" : action === "AUDIT" ? "audit" : "custom"
    ].push(p);
  }
  return out;
}

/** The RequestAuthentications that apply to a workload, selected like AuthorizationPolicies. */
export function requestAuthenticationsFor(
  policies: readonly RequestAuthentication[],
  rootNamespace: string,
  target: PolicyTarget,
): RequestAuthentication[] {
  return selectPolicies(policies, rootNamespace, target);
}

function selectPolicies<P extends AuthorizationPolicy | RequestAuthentication>(
  policies: readonly P[],
  rootNamespace: string,
  target: PolicyTarget,
): P[] {
  const namespaces = target.namespace === rootNamespace ? [rootNamespace] : [rootNamespace, target.namespace];
  const sorted = sortByCreation(policies);
  const out: P[] = [];
  for (const ns of namespaces) {
    for (const p of sorted) {
      if (p.metadata.namespace !== ns) continue;
      const spec = p.spec as {
        targetRef?: unknown;
        targetRefs?: readonly unknown[];
        selector?: { matchLabels?: Record<string, string> };
      };
      if (spec.targetRef !== undefined || (spec.targetRefs !== undefined && spec.targetRefs.length > 0))
        continue;
      const selector = spec.selector?.matchLabels;
      if (selector === undefined || labelsMatch(selector, target.labels)) out.push(p);
    }
  }
  return out;
}

/** Istio's `sortConfigByCreationTime`: oldest first, then by name, then namespace. */
export function sortByCreation<R extends Resource>(resources: readonly R[]): R[] {
  return [...resources].sort(
    (a, b) =>
      (creationTime(a) ?? 0) - (creationTime(b) ?? 0) ||
      (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0) ||
      (a.metadata.namespace < b.metadata.namespace
        ? -1
        : a.metadata.namespace > b.metadata.namespace
          ? 1
          : 0),
  );
}
