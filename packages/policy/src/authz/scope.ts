import { PolicyError } from "../policy-error.js";
import type { ObjectMeta, PolicyTargetReference, WorkloadSelector } from "./authorization-policy.js";

/** The workload a request is for: what policy scoping is decided on. */
export interface Workload {
  namespace: string;
  labels: Record<string, string>;
}

/**
 * The label Istio's Gateway API deployments carry, naming their `Gateway`: a policy whose
 * `targetRefs` names that Gateway applies to these workloads (istio/istio
 * `pilot/pkg/model/policyattachment.go`).
 */
export const GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name";

/** Where a policy applies, resolved once when it loads. */
export interface PolicyScope {
  namespace: string;
  /** `selector.matchLabels` as pairs; absent = every workload of the scope. */
  selector?: readonly (readonly [string, string])[];
  /** Names of the Gateways (`targetRefs`) the policy is attached to; absent = selector scoping. */
  gateways?: readonly string[];
}

const GATEWAY_GROUP = "gateway.networking.k8s.io";

/**
 * Resolves a policy's scope as Istio does: `targetRefs` (or the older `targetRef`) of kind
 * `Gateway` bind to the Gateway's workloads in the policy's namespace; otherwise the namespace
 * (mesh-wide in the root namespace) narrowed by `selector`. istio/api documents `Service`,
 * `ServiceEntry` and `GatewayClass` targets as waypoint-only: meshlet has no waypoints, so a
 * policy naming them is refused, never widened to its namespace.
 * @throws PolicyError `unsupported` (a target meshlet cannot bind) or `invalid-policy`.
 */
export function resolveScope(resource: {
  metadata: ObjectMeta;
  spec: {
    selector?: WorkloadSelector;
    targetRef?: PolicyTargetReference;
    targetRefs?: PolicyTargetReference[];
  };
}): PolicyScope {
  const namespace = resource.metadata.namespace || "default";
  const spec = resource.spec;
  const refs =
    spec.targetRefs && spec.targetRefs.length > 0 ? spec.targetRefs : spec.targetRef ? [spec.targetRef] : [];
  const selector = spec.selector?.matchLabels;
  if (refs.length === 0) {
    return { namespace, ...(selector && { selector: Object.entries(selector) }) };
  }
  const field = spec.targetRefs && spec.targetRefs.length > 0 ? "spec.targetRefs" : "spec.targetRef";
  if (spec.selector !== undefined) {
    throw new PolicyError(
      "invalid-policy",
      `spec.selector: cannot be combined with ${field}; keep one (Istio: at most one of selector and targetRefs)`,
    );
  }
  const gateways: string[] = [];
  refs.forEach((ref, i) => {
    const at = field === "spec.targetRefs" ? `${field}[${i}]` : field;
    const group = ref.group === "core" ? "" : (ref.group ?? "");
    if (ref.kind === "Gateway" && group === GATEWAY_GROUP) {
      if (ref.namespace && ref.namespace !== namespace) {
        throw new PolicyError(
          "invalid-policy",
          `${at}.namespace: "${ref.namespace}" is not the policy's namespace "${namespace}"; a policy attaches only to Gateways of its own namespace`,
        );
      }
      gateways.push(ref.name);
      return;
    }
    const waypointOnly =
      (ref.kind === "Service" && group === "") ||
      (ref.kind === "ServiceEntry" && group === "networking.istio.io") ||
      (ref.kind === "GatewayClass" && group === GATEWAY_GROUP);
    throw new PolicyError(
      "unsupported",
      waypointOnly
        ? `${at}: ${ref.kind} targets apply to waypoint proxies only (Istio), and meshlet has no waypoints; the policy is not applied. Use a selector, or target a Gateway`
        : `${at}: kind ${ref.kind} of group "${ref.group ?? ""}" is not a target Istio supports (Gateway of ${GATEWAY_GROUP}, or for waypoints Service, ServiceEntry, GatewayClass); the policy is not applied`,
    );
  });
  return { namespace, gateways };
}

/** Whether a resolved scope covers a workload (`rootNamespace`: where selector policies are mesh-wide). */
export function scopeCovers(scope: PolicyScope, workload: Workload, rootNamespace: string): boolean {
  if (scope.gateways) {
    const gw = workload.labels[GATEWAY_NAME_LABEL];
    return gw !== undefined && workload.namespace === scope.namespace && scope.gateways.includes(gw);
  }
  if (scope.namespace !== rootNamespace && scope.namespace !== workload.namespace) return false;
  if (scope.selector) for (const [k, v] of scope.selector) if (workload.labels[k] !== v) return false;
  return true;
}

/**
 * Istio scoping of one policy for one workload: the root namespace's policies apply mesh-wide, a
 * namespace's to its workloads, `selector` narrows by labels, `targetRefs` attach to Gateways.
 * A policy whose targets cannot be bound applies nowhere.
 */
export function appliesTo(
  resource: Parameters<typeof resolveScope>[0],
  workload: Workload,
  rootNamespace: string,
): boolean {
  let scope: PolicyScope;
  try {
    scope = resolveScope(resource);
  } catch {
    return false;
  }
  return scopeCovers(scope, workload, rootNamespace);
}

/** What a loaded resource says about itself, read defensively (the input may be malformed). */
export interface ResourceIdentity<S> {
  name?: string;
  namespace: string;
  /** `<namespace>/<name>`, or `<unnamed>`. */
  id: string;
  spec?: S;
  /** Where it applies, when that can be determined. */
  scope?: PolicyScope;
  /** Why its scope cannot be determined (an unsupported target, …). */
  scopeError?: PolicyError;
}

/** Reads a policy's name, namespace and scope without trusting its shape. */
export function identify<S extends object>(
  resource: { metadata?: ObjectMeta; spec?: S } | undefined,
): ResourceIdentity<S> {
  const meta = resource && typeof resource === "object" ? resource.metadata : undefined;
  const name = meta && typeof meta.name === "string" && meta.name !== "" ? meta.name : undefined;
  const namespace =
    meta && typeof meta.namespace === "string" && meta.namespace !== "" ? meta.namespace : "default";
  const spec =
    resource && typeof resource === "object" && resource.spec && typeof resource.spec === "object"
      ? resource.spec
      : undefined;
  const out: ResourceIdentity<S> = {
    ...(name !== undefined && { name }),
    namespace,
    id: name === undefined ? "<unnamed>" : `${namespace}/${name}`,
    ...(spec && { spec }),
  };
  if (name !== undefined && spec) {
    try {
      out.scope = resolveScope({
        metadata: { ...meta, name, namespace },
        spec: spec as Parameters<typeof resolveScope>[0]["spec"],
      });
    } catch (e) {
      out.scopeError = e as PolicyError;
    }
  }
  return out;
}
