import type { Container, Pod } from "./pod-model.js";
import type { PodOverlay } from "./templates/template-context.js";

type Json = Record<string, unknown>;

// The patch merge keys Kubernetes declares for the lists the templates touch
// (k8s.io/api/core/v1 types.go `patchMergeKey`): these lists merge item by item, others replace.
const CONTAINER_LIST_KEYS: Readonly<Record<string, string>> = {
  env: "name",
  volumeMounts: "mountPath",
  ports: "containerPort",
  volumeDevices: "devicePath",
};

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Merges maps recursively; lists and scalars in `patch` replace those in `base`. */
function deepMerge(base: Json, patch: Json): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = out[key];
    out[key] = isObject(current) && isObject(value) ? deepMerge(current, value) : structuredClone(value);
  }
  return out;
}

/** Merges lists of objects by `key`: matching items merge, new ones are appended in patch order. */
function mergeByKey<T extends object>(
  base: readonly T[],
  patch: readonly T[],
  key: string,
  merge: (a: T, b: T) => T,
): T[] {
  const out = base.map((item) => structuredClone(item));
  for (const item of patch) {
    const index = out.findIndex((existing) => (existing as Json)[key] === (item as Json)[key]);
    if (index >= 0) out[index] = merge(out[index] as T, item);
    else out.push(structuredClone(item));
  }
  return out;
}

/** Merges a container over another of the same name, as a strategic merge patch does. */
export function mergeContainer(base: Container, patch: Container): Container {
  const out: Json = { ...(base as unknown as Json) };
  for (const [field, value] of Object.entries(patch)) {
    const current = out[field];
    const listKey = CONTAINER_LIST_KEYS[field];
    if (listKey !== undefined && Array.isArray(current) && Array.isArray(value)) {
      out[field] = mergeByKey(current as Json[], value as Json[], listKey, deepMerge);
    } else if (isObject(current) && isObject(value)) {
      out[field] = deepMerge(current, value);
    } else {
      out[field] = structuredClone(value);
    }
  }
  return out as unknown as Container;
}

/**
 * Lays a template's overlay over a pod the way Istio applies its rendered template (a strategic
 * merge patch on `corev1.Pod`): labels and annotations merge, containers, init containers, volumes
 * and image pull secrets merge by name, the pod security context merges field by field.
 */
export function applyOverlay(pod: Pod, overlay: PodOverlay): Pod {
  const out = structuredClone(pod);
  out.metadata.labels = { ...(pod.metadata.labels ?? {}), ...overlay.labels };
  out.metadata.annotations = { ...(pod.metadata.annotations ?? {}), ...overlay.annotations };
  out.spec.containers = mergeByKey(pod.spec.containers ?? [], overlay.containers, "name", mergeContainer);
  if (overlay.initContainers.length > 0) {
    out.spec.initContainers = mergeByKey(
      pod.spec.initContainers ?? [],
      overlay.initContainers,
      "name",
      mergeContainer,
    );
  }
  if (overlay.volumes.length > 0) {
    out.spec.volumes = mergeByKey(
      pod.spec.volumes ?? [],
      overlay.volumes,
      "name",
      (a, b) => deepMerge(a as unknown as Json, b as unknown as Json) as unknown as typeof a,
    );
  }
  if (overlay.imagePullSecrets.length > 0) {
    out.spec.imagePullSecrets = mergeByKey(
      pod.spec.imagePullSecrets ?? [],
      overlay.imagePullSecrets,
      "name",
      (a) => a,
    );
  }
  if (overlay.securityContext !== undefined) {
    out.spec.securityContext = deepMerge(
      (pod.spec.securityContext ?? {}) as Json,
      overlay.securityContext as Json,
    );
  }
  return out;
}

/** Merges one container over the pod's container of the same name (or init container, when `init`). */
export function applyContainer(pod: Pod, container: Container, init: boolean): Pod {
  const out = structuredClone(pod);
  if (init)
    out.spec.initContainers = mergeByKey(pod.spec.initContainers ?? [], [container], "name", mergeContainer);
  else out.spec.containers = mergeByKey(pod.spec.containers ?? [], [container], "name", mergeContainer);
  return out;
}
