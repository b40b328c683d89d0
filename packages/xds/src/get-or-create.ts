/**
 * The value of `key`, created and stored on first use. The one memo shape behind the caches that
 * make a push cost one computation, not one per stream (shared diffs, scoped arrays, responses).
 */
export function getOrCreate<K, V>(
  map: { get(key: K): V | undefined; set(key: K, value: V): unknown },
  key: K,
  create: () => V,
): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}
