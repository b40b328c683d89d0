import type { ConfigSnapshot, Resource, ResourceKey } from "@meshlet/config";
import { formatResourceKey, resourceKeyOf } from "@meshlet/config";
import { sameElements } from "../collections.js";

/**
 * The config objects that differ between two snapshots (added, removed or changed), by key. The
 * store keeps the object of an unchanged resource, so identity settles most: a kind whose list
 * holds the same objects in both snapshots is skipped without looking at keys; in other kinds,
 * pairs that are not the same object are compared by content. Without a previous snapshot every
 * object counts as changed.
 */
export function changedConfigKeys(previous: ConfigSnapshot | undefined, next: ConfigSnapshot): ResourceKey[] {
  const out = new Map<string, ResourceKey>();
  const removed = new Map<string, ResourceKey>();
  const kinds = new Set([...next.kinds(), ...(previous?.kinds() ?? [])]);
  for (const kind of kinds) {
    const before = previous?.list(kind) ?? [];
    const after = next.list(kind);
    if (sameElements(before, after)) continue;
    const index = (list: readonly Resource[]) => {
      const m = new Map<string, Resource>();
      for (const r of list) m.set(formatResourceKey(resourceKeyOf(r)), r);
      return m;
    };
    const was = index(before);
    const is = index(after);
    for (const [k, r] of is) {
      const old = was.get(k);
      if (old === r) continue;
      if (old !== undefined && JSON.stringify(old) === JSON.stringify(r)) continue;
      out.set(k, resourceKeyOf(r));
    }
    for (const [k, r] of was) if (!is.has(k)) removed.set(k, resourceKeyOf(r));
  }
  for (const [k, key] of removed) out.set(k, key);
  return [...out.values()];
}
