import type { CachedResource } from "./cached-resource.js";
import { XdsError } from "./errors.js";
import { SetVersion } from "./hash.js";

/** The resources of one type, as a cache hands them to the server. Immutable. */
export interface ResourceSet {
  readonly typeUrl: string;
  /** The type's version (`version_info` / `system_version_info`). */
  readonly version: string;
  readonly resources: ReadonlyMap<string, CachedResource>;
}

/**
 * A ResourceSet made by a ResourcePool: it knows its content version (a multiset hash, see
 * SetVersion), and computes the version string only when asked for it. A union
 * (Snapshot.merge) also knows its parts, so that a diff between two unions that differ in one
 * part is that part's diff, shared by every proxy whose union has it.
 */
export class ContentSet implements ResourceSet {
  private versionString: string | undefined;

  constructor(
    readonly typeUrl: string,
    readonly resources: ReadonlyMap<string, CachedResource>,
    /** @internal */
    readonly content: SetVersion,
    explicitVersion?: string,
    /** @internal The disjoint sets this one is the union of (Snapshot.merge). */
    readonly parts?: readonly ResourceSet[],
  ) {
    this.versionString = explicitVersion;
  }

  get version(): string {
    this.versionString ??= this.content.toString();
    return this.versionString;
  }
}

/** The content version of any set: kept by the pool's sets, computed for others. */
export function contentOf(set: ResourceSet): SetVersion {
  return set instanceof ContentSet ? set.content : SetVersion.of(set.resources.values());
}

/** The parts of a set: a union's, or the set itself. */
export function partsOf(set: ResourceSet): readonly ResourceSet[] {
  return set instanceof ContentSet && set.parts ? set.parts : [set];
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
    private readonly maps: readonly ReadonlyMap<string, CachedResource>[],
  ) {
    let size = 0;
    for (const m of maps) size += m.size;
    this.size = size;
    // Names must be unique per type, as in one snapshot: look up the smaller maps' names in the
    // others (a proxy's own resources against the shared ones).
    const bySize = [...maps].sort((a, b) => a.size - b.size);
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
    for (const m of this.maps) {
      const r = m.get(name);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  has(name: string): boolean {
    for (const m of this.maps) if (m.has(name)) return true;
    return false;
  }

  *entries(): MapIterator<[string, CachedResource]> {
    for (const m of this.maps) yield* m.entries();
  }

  *keys(): MapIterator<string> {
    for (const m of this.maps) yield* m.keys();
  }

  *values(): MapIterator<CachedResource> {
    for (const m of this.maps) yield* m.values();
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
