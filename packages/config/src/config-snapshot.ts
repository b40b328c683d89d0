import type { Diagnostic, Origin } from "./diagnostic.js";
import { hostMatches, labelsMatch, toFqdn } from "./host.js";
import type { KnownKinds, Pod, VirtualService, WorkloadEntry } from "./kinds.js";
import type { Resource } from "./resource.js";

/** A workload a selector can match: a Pod or a WorkloadEntry, with its effective labels. */
export interface Workload {
  readonly resource: Pod | WorkloadEntry;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Options for {@link ConfigSnapshot.create}. */
export interface ConfigSnapshotInit {
  /** Defaults to `"0"`. Stores number snapshots 1, 2, 3… */
  readonly version?: string;
  /**
   * Errors and warnings current when the snapshot was made; a function is called with the indexed
   * snapshot (before it is frozen), which is how stores attach semantic analysis.
   */
  readonly diagnostics?: readonly Diagnostic[] | ((snapshot: ConfigSnapshot) => readonly Diagnostic[]);
  /** Where each resource came from (keyed by resource), for diagnostics and tooling. */
  readonly origins?: ReadonlyMap<Resource, Origin>;
  /** Cluster domain used to resolve short host names (default `cluster.local`). */
  readonly domainSuffix?: string;
}

type ByName = Map<string, Resource>;

/**
 * An immutable, consistent view of the mesh config at one moment: only valid resources, indexed by
 * kind, namespace and name, with the lookups translation needs (VirtualServices by host, workloads by
 * label selector). Values are frozen; a new config means a new snapshot, never a mutation.
 */
export class ConfigSnapshot {
  /** Identifies this snapshot; increases with each snapshot a store emits. */
  readonly version: string;
  /** Errors (resources left out, sources failing) and warnings (semantic analysis). */
  readonly diagnostics: readonly Diagnostic[];
  /** Number of resources. */
  readonly size: number;
  readonly #byKind = new Map<string, Map<string, ByName>>();
  readonly #origins: ReadonlyMap<Resource, Origin>;
  readonly #domainSuffix: string;
  readonly #vsExact = new Map<string, VirtualService[]>();
  readonly #vsWildcard: Array<{ host: string; vs: VirtualService }> = [];
  readonly #lists = new Map<string, readonly Resource[]>();
  #workloads: Workload[] | undefined;
  #labelIndex: Map<string, Workload[]> | undefined;

  private constructor(resources: Iterable<Resource>, init: ConfigSnapshotInit) {
    this.version = init.version ?? "0";
    this.#origins = init.origins ?? new Map();
    this.#domainSuffix = init.domainSuffix ?? "cluster.local";
    let size = 0;
    for (const r of resources) {
      let byNs = this.#byKind.get(r.kind);
      if (byNs === undefined) {
        byNs = new Map();
        this.#byKind.set(r.kind, byNs);
      }
      let byName = byNs.get(r.metadata.namespace);
      if (byName === undefined) {
        byName = new Map();
        byNs.set(r.metadata.namespace, byName);
      }
      if (!byName.has(r.metadata.name)) size++;
      byName.set(r.metadata.name, r);
    }
    this.size = size;
    for (const vs of this.list("VirtualService")) {
      for (const host of new Set(
        (vs.spec.hosts ?? []).map((h) => toFqdn(h, vs.metadata.namespace, this.#domainSuffix)),
      )) {
        if (host === "*" || host.startsWith("*.")) this.#vsWildcard.push({ host, vs });
        else {
          const list = this.#vsExact.get(host);
          if (list === undefined) this.#vsExact.set(host, [vs]);
          else list.push(vs);
        }
      }
    }
    const diagnostics =
      typeof init.diagnostics === "function" ? init.diagnostics(this) : (init.diagnostics ?? []);
    this.diagnostics = Object.freeze([...diagnostics]);
    Object.freeze(this);
  }

  /** Builds a snapshot from validated resources (later duplicates of one key replace earlier ones). */
  static create(resources: Iterable<Resource>, init: ConfigSnapshotInit = {}): ConfigSnapshot {
    return new ConfigSnapshot(resources, init);
  }

  /** One resource by kind, namespace (`""` for cluster-scoped) and name. */
  get<K extends keyof KnownKinds>(kind: K, namespace: string, name: string): KnownKinds[K] | undefined;
  get(kind: string, namespace: string, name: string): Resource | undefined;
  get(kind: string, namespace: string, name: string): Resource | undefined {
    return this.#byKind.get(kind)?.get(namespace)?.get(name);
  }

  /** All resources of a kind, optionally in one namespace, sorted by namespace then name. */
  list<K extends keyof KnownKinds>(kind: K, namespace?: string): readonly KnownKinds[K][];
  list(kind: string, namespace?: string): readonly Resource[];
  list(kind: string, namespace?: string): readonly Resource[] {
    // Snapshots never change, so each sorted list is computed once and shared (frozen).
    const cacheKey = `${kind}\u0000${namespace ?? "\u0000"}`;
    const cached = this.#lists.get(cacheKey);
    if (cached !== undefined) return cached;
    const byNs = this.#byKind.get(kind);
    const out: Resource[] = [];
    if (byNs !== undefined) {
      const namespaces = namespace === undefined ? [...byNs.keys()].sort() : [namespace];
      for (const ns of namespaces) {
        const byName = byNs.get(ns);
        if (byName === undefined) continue;
        for (const name of [...byName.keys()].sort()) out.push(byName.get(name) as Resource);
      }
    }
    const frozen = Object.freeze(out);
    this.#lists.set(cacheKey, frozen);
    return frozen;
  }

  /** Kinds present in this snapshot. */
  kinds(): string[] {
    return [...this.#byKind.keys()].sort();
  }

  /** Every resource (grouped by kind, then namespace and name). */
  *resources(): IterableIterator<Resource> {
    for (const kind of this.kinds()) yield* this.list(kind);
  }

  /** Where a resource came from (source, file and line), when known. */
  originOf(resource: Resource): Origin | undefined {
    return this.#origins.get(resource);
  }

  /**
   * VirtualServices whose `hosts` match `host` (short names are resolved against `namespace`, default
   * `default`): exact matches first, then wildcard ones, most specific first.
   */
  virtualServicesForHost(host: string, namespace = "default"): VirtualService[] {
    const fqdn = toFqdn(host, namespace, this.#domainSuffix);
    const exact = this.#vsExact.get(fqdn) ?? [];
    const wild = this.#vsWildcard
      .filter((w) => hostMatches(w.host, fqdn))
      .sort((a, b) => b.host.length - a.host.length)
      .map((w) => w.vs);
    return [...new Set([...exact, ...wild])];
  }

  /** Pods and WorkloadEntries (in `namespace`, or everywhere) whose labels include all of `matchLabels`. */
  workloadsMatching(matchLabels: Readonly<Record<string, string>>, namespace?: string): Workload[] {
    this.#buildWorkloadIndex();
    const entries = Object.entries(matchLabels);
    let candidates: Workload[];
    if (entries.length === 0) candidates = this.#workloads ?? [];
    else {
      // Start from the rarest label, then check the rest.
      const lists = entries.map(([k, v]) => this.#labelIndex?.get(`${k}=${v}`) ?? []);
      candidates = lists.reduce((a, b) => (b.length < a.length ? b : a));
    }
    return candidates.filter(
      (w) => (namespace === undefined || w.namespace === namespace) && labelsMatch(matchLabels, w.labels),
    );
  }

  #buildWorkloadIndex(): void {
    if (this.#workloads !== undefined) return;
    const workloads: Workload[] = [];
    for (const pod of this.list("Pod")) {
      workloads.push({ resource: pod, namespace: pod.metadata.namespace, labels: pod.metadata.labels ?? {} });
    }
    for (const we of this.list("WorkloadEntry")) {
      workloads.push({
        resource: we,
        namespace: we.metadata.namespace,
        labels: { ...(we.metadata.labels ?? {}), ...(we.spec.labels ?? {}) },
      });
    }
    const index = new Map<string, Workload[]>();
    for (const w of workloads) {
      for (const [k, v] of Object.entries(w.labels)) {
        const key = `${k}=${v}`;
        const list = index.get(key);
        if (list === undefined) index.set(key, [w]);
        else list.push(w);
      }
    }
    // The index is computed lazily on first lookup; the snapshot's observable contents never change.
    this.#workloads = workloads;
    this.#labelIndex = index;
  }
}
