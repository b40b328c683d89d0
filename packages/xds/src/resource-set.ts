import type { CachedResource } from "./cached-resource.js";
import { XdsError } from "./errors.js";
import { mergeRuns, setVersion, sortedByDigest } from "./hash.js";

/** The resources of one type, as a cache hands them to the server. Immutable. */
export interface ResourceSet {
  readonly typeUrl: string;
  /** The type's version (`version_info` / `system_version_info`). */
  readonly version: string;
  readonly resources: ReadonlyMap<string, CachedResource>;
}

let setUids = 0;

/**
 * A ResourceSet made by a ResourcePool. A plain set has its version from the start and its
 * members in the order given; a large one also keeps them in canonical order (by digest, see
 * `setVersion`), a small one sorts its few when asked; a union (Snapshot.merge) knows
 * its parts instead, computes its version only when asked for it (by merging the parts' ordered
 * members: the version one set of the same resources has), and lets a diff between two unions
 * that differ in one part be that part's diff, shared by every proxy whose union has it.
 */
export class ContentSet implements ResourceSet {
  /** @internal Unique in the process: unions are interned by their parts' uids. */
  readonly uid = ++setUids;
  private versionString: string | undefined;

  constructor(
    readonly typeUrl: string,
    readonly resources: ReadonlyMap<string, CachedResource>,
    /** A large plain set's members in canonical order. */
    private readonly sorted: readonly CachedResource[] | undefined,
    version?: string,
    /** @internal The disjoint plain sets this one is the union of (Snapshot.merge). */
    readonly parts?: readonly ContentSet[],
  ) {
    this.versionString = version;
  }

  get version(): string {
    this.versionString ??= setVersion(runsOf(this));
    return this.versionString;
  }

  /** @internal A plain set's members in canonical order (a union's parts have theirs). */
  ordered(): readonly CachedResource[] {
    return this.sorted ?? sortedByDigest(this.resources.values());
  }
}

/** The members of a set in canonical order, as one or more sorted disjoint runs. */
export function runsOf(set: ResourceSet): readonly (readonly CachedResource[])[] {
  if (set instanceof ContentSet) return set.parts ? set.parts.map((p) => p.ordered()) : [set.ordered()];
  return [sortedByDigest(set.resources.values())];
}

/** The members of a set in canonical order, in one array. */
export function sortedMembersOf(set: ResourceSet): readonly CachedResource[] {
  const runs = runsOf(set);
  if (runs.length === 1) return runs[0]!;
  const out: CachedResource[] = [];
  mergeRuns(runs, (r) => out.push(r));
  return out;
}

/** The parts of a set: a union's, or the set itself. */
export function partsOf(set: ResourceSet): readonly ResourceSet[] {
  return set instanceof ContentSet && set.parts ? set.parts : [set];
}

/**
 * The resources of a small set (a proxy's handful of own resources) in one array, looked up by a
 * scan: a Map costs a hash table of a few hundred bytes however few it holds, and per-proxy
 * snapshots hold thousands of such sets.
 */
export class SmallMap implements ReadonlyMap<string, CachedResource> {
  /** Sets up to this size are held as a SmallMap. */
  static readonly maxSize = 8;

  constructor(private readonly items: readonly CachedResource[]) {}

  get size(): number {
    return this.items.length;
  }

  get(name: string): CachedResource | undefined {
    for (const r of this.items) if (r.name === name) return r;
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  *entries(): MapIterator<[string, CachedResource]> {
    for (const r of this.items) yield [r.name, r];
  }

  *keys(): MapIterator<string> {
    for (const r of this.items) yield r.name;
  }

  *values(): MapIterator<CachedResource> {
    yield* this.items;
  }

  [Symbol.iterator](): MapIterator<[string, CachedResource]> {
    return this.entries();
  }

  forEach(
    callback: (value: CachedResource, key: string, map: ReadonlyMap<string, CachedResource>) => void,
    thisArg?: unknown,
  ): void {
    for (const r of this.items) callback.call(thisArg, r, r.name, this);
  }
}

/**
 * The resources of disjoint sets seen as one map, without copying them: what a per-proxy
 * snapshot of shared and own resources costs is its own resources, not the shared ones again.
 */
export class UnionMap implements ReadonlyMap<string, CachedResource> {
  readonly size: number;

  /** @throws XdsError when two parts have a resource of the same name. */
  constructor(
    typeUrl: string,
    private readonly parts: readonly ResourceSet[],
  ) {
    let size = 0;
    for (const p of parts) size += p.resources.size;
    this.size = size;
    // Names must be unique per type, as in one snapshot: look up the smaller maps' names in the
    // others (a proxy's own resources against the shared ones).
    const bySize = parts.map((p) => p.resources).sort((a, b) => a.size - b.size);
    for (let i = 0; i < bySize.length - 1; i++) {
      for (const name of bySize[i]!.keys()) {
        for (let j = i + 1; j < bySize.length; j++) {
          if (bySize[j]!.has(name)) {
            throw new XdsError(
              "duplicate-resource",
              `two ${typeUrl} resources are named "${name}" in the snapshots merged; names must be unique per type`,
            );
          }
        }
      }
    }
  }

  get(name: string): CachedResource | undefined {
    for (const p of this.parts) {
      const r = p.resources.get(name);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  has(name: string): boolean {
    for (const p of this.parts) if (p.resources.has(name)) return true;
    return false;
  }

  *entries(): MapIterator<[string, CachedResource]> {
    for (const p of this.parts) yield* p.resources.entries();
  }

  *keys(): MapIterator<string> {
    for (const p of this.parts) yield* p.resources.keys();
  }

  *values(): MapIterator<CachedResource> {
    for (const p of this.parts) yield* p.resources.values();
  }

  [Symbol.iterator](): MapIterator<[string, CachedResource]> {
    return this.entries();
  }

  forEach(
    callback: (value: CachedResource, key: string, map: ReadonlyMap<string, CachedResource>) => void,
    thisArg?: unknown,
  ): void {
    for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
  }
}
