/**
 * Kubernetes object metadata as meshlet reads it: identity plus the fields controllers use.
 * Unknown metadata fields (uid, ownerReferences, …) are kept as they were written.
 */
export interface ObjectMeta {
  readonly name: string;
  /** Empty string for cluster-scoped kinds; defaulted for namespaced kinds written without one. */
  readonly namespace: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly [field: string]: unknown;
}

/**
 * A validated Kubernetes-style resource: `apiVersion`, `kind`, `metadata`, and the kind's body
 * (usually `spec`). Resources in snapshots are deeply frozen.
 */
export interface Resource<K extends string = string, S = unknown> {
  readonly apiVersion: string;
  readonly kind: K;
  readonly metadata: ObjectMeta;
  readonly spec: S;
  readonly [field: string]: unknown;
}

/** Identity of a resource: kind plus namespace and name (namespace `""` when cluster-scoped). */
export interface ResourceKey {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** `Kind/namespace/name`, or `Kind/name` for cluster-scoped resources: how diagnostics name them. */
export function formatResourceKey(key: ResourceKey): string {
  return key.namespace === "" ? `${key.kind}/${key.name}` : `${key.kind}/${key.namespace}/${key.name}`;
}

/** The key of a resource. */
export function resourceKeyOf(resource: Resource): ResourceKey {
  return { kind: resource.kind, namespace: resource.metadata.namespace, name: resource.metadata.name };
}

/** Splits `group/version` (or core `v1`) into its group (empty for core) and version. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf("/");
  return slash < 0
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Freezes a plain JSON value in place, all the way down, and returns it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}
