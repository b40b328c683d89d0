import type { ConfigSnapshot, Resource, ResourceKey } from "@meshlet/config";
import { formatResourceKey, resourceKeyOf } from "@meshlet/config";

/**
 * The config objects that differ between two snapshots (added, removed or changed), by key. The
 * store keeps the object of an unchanged resource, so identity settles most; other pairs are
 * compared by content. Without a previous snapshot every object counts as changed.
 */
export function changedConfigKeys(previous: ConfigSnapshot | undefined, next: ConfigSnapshot): ResourceKey[] {
  const out = new Map<string, ResourceKey>();
  const index = (s: ConfigSnapshot | undefined) => {
    const m = new Map<string, Resource>();
    if (s === undefined) return m;
    for (const kind of s.kinds()) for (const r of s.list(kind)) m.set(formatResourceKey(resourceKeyOf(r)), r);
    return m;
  };
  const before = index(previous);
  const after = index(next);
  for (const [k, r] of after) {
    const old = before.get(k);
    if (old === r) continue;
    if (old !== undefined && JSON.stringify(old) === JSON.stringify(r)) continue;
    out.set(k, resourceKeyOf(r));
  }
  for (const [k, r] of before) if (!after.has(k)) out.set(k, resourceKeyOf(r));
  return [...out.values()];
}
