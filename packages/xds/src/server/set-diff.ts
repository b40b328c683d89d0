import type { CachedResource } from "../cached-resource.js";
import { getOrCreate } from "../get-or-create.js";
import { partsOf } from "../resource-set.js";
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
 * gets `to` needs the same diff, so a push to N streams costs one diff, not N. Two unions
 * (Snapshot.merge) that differ in one part differ by that part's diff: per-proxy snapshots that
 * share a changed part and keep their own get the same diff object, computed once for all.
 */
export function diffSets(from: ResourceSet, to: ResourceSet): SetDiff {
  return getOrCreate(
    getOrCreate(diffs, to, () => new WeakMap()),
    from,
    () => {
      const changedPart = onlyChangedPart(from, to);
      if (changedPart) return diffSets(changedPart[0], changedPart[1]);
      const changed: CachedResource[] = [];
      for (const r of to.resources.values())
        if (from.resources.get(r.name)?.version !== r.version) changed.push(r);
      const removed: string[] = [];
      for (const name of from.resources.keys()) if (!to.resources.has(name)) removed.push(name);
      return { changed, removed };
    },
  );
}

/**
 * The one part in which two unions differ, when they have the same parts but that one (their
 * parts are disjoint, so what changed in the union is what changed in that part).
 */
function onlyChangedPart(from: ResourceSet, to: ResourceSet): [ResourceSet, ResourceSet] | undefined {
  const a = partsOf(from);
  const b = partsOf(to);
  if (a.length < 2 || a.length !== b.length) return undefined;
  let changed: number | undefined;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (changed !== undefined) return undefined;
    changed = i;
  }
  return changed === undefined ? undefined : [a[changed]!, b[changed]!];
}

/** Every resource of a set as one shared array (same array for every caller). */
export function resourceList(set: ResourceSet): readonly CachedResource[] {
  return getOrCreate(lists, set, () => {
    // Exactly sized: a per-proxy set's list lives as long as the set.
    const out: CachedResource[] = new Array(set.resources.size);
    let i = 0;
    for (const r of set.resources.values()) out[i++] = r;
    return out;
  });
}

const scoped = new WeakMap<readonly unknown[], WeakMap<ReadonlySet<string>, readonly unknown[]>>();

/**
 * The items of a shared list (a diff, a set's list) whose name is in a shared subscription set
 * (from NameSets), computed once per (list, set) pair and shared: streams with the same
 * subscription then get the same array, so their response is assembled once (ResponseCache keys
 * on array identity). When every item is in the set, the list itself is returned.
 */
export function within<T extends string | { readonly name: string }>(
  list: readonly T[],
  names: ReadonlySet<string>,
): readonly T[] {
  const nameOf = (x: T) => (typeof x === "string" ? x : x.name);
  if (list.length === 0) return list;
  const bySet = getOrCreate(scoped, list, () => new WeakMap());
  return getOrCreate(bySet, names, () =>
    list.every((x) => names.has(nameOf(x))) ? list : list.filter((x) => names.has(nameOf(x))),
  ) as readonly T[];
}

/**
 * The resources of a set that a (shared) name set subscribes to. When the subscription covers a
 * good part of the set — Envoy asking for every cluster's endpoints — the array is computed once
 * and shared by every stream with that subscription (see within()), so thousands of streams
 * connecting at once share one first response instead of assembling one each. A few names out of
 * a large set are simply looked up.
 */
export function subscribed(set: ResourceSet, names: ReadonlySet<string>): CachedResource[] {
  if (names.size * 4 >= set.resources.size) return within(resourceList(set), names) as CachedResource[];
  const out: CachedResource[] = [];
  for (const name of names) {
    const r = set.resources.get(name);
    if (r) out.push(r);
  }
  return out;
}
