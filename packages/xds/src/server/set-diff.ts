import type { CachedResource } from "../cached-resource.js";
import type { ResourceSet } from "../snapshot.js";

/** What changed from one resource set to the next. */
export interface SetDiff {
  /** Resources of the newer set that are new or have another version. */
  readonly changed: readonly CachedResource[];
  /** Names of the older set that the newer one no longer has. */
  readonly removed: readonly string[];
}

const diffs = new WeakMap<ResourceSet, WeakMap<ResourceSet, SetDiff>>();
const lists = new WeakMap<ResourceSet, readonly CachedResource[]>();

/**
 * The diff between two sets, computed once and shared: every stream that held `from` and now
 * gets `to` needs the same diff, so a push to N streams costs one diff, not N.
 */
export function diffSets(from: ResourceSet, to: ResourceSet): SetDiff {
  let byFrom = diffs.get(to);
  if (!byFrom) {
    byFrom = new WeakMap();
    diffs.set(to, byFrom);
  }
  let diff = byFrom.get(from);
  if (!diff) {
    const changed: CachedResource[] = [];
    for (const r of to.resources.values())
      if (from.resources.get(r.name)?.version !== r.version) changed.push(r);
    const removed: string[] = [];
    for (const name of from.resources.keys()) if (!to.resources.has(name)) removed.push(name);
    diff = { changed, removed };
    byFrom.set(from, diff);
  }
  return diff;
}

/** Every resource of a set as one shared array (same array for every caller). */
export function resourceList(set: ResourceSet): readonly CachedResource[] {
  let list = lists.get(set);
  if (!list) {
    list = [...set.resources.values()];
    lists.set(set, list);
  }
  return list;
}
