/**
 * A map whose values are held weakly: an entry lives as long as something else uses its value,
 * and is forgotten after the garbage collector frees it. The content-addressed tables of the pool
 * and the response cache are built on it: they find what exists without keeping it alive.
 *
 * Dead entries are swept when the map has doubled since the last sweep (amortised O(1) per
 * insert), not by a FinalizationRegistry: a registry entry per value costs a cell on the heap
 * and a callback per collected value, which at a hundred thousand per-proxy resources is most of
 * what the table itself costs.
 */
export class WeakValues<K, V extends object> {
  private readonly map = new Map<K, WeakRef<V>>();
  private sweepAt = 64;

  /** The live value of `key`, if any. */
  get(key: K): V | undefined {
    return this.map.get(key)?.deref();
  }

  set(key: K, value: V): void {
    this.map.set(key, new WeakRef(value));
    if (this.map.size >= this.sweepAt) this.sweep();
  }

  /** Entries held: live ones, and dead ones not swept yet. */
  get size(): number {
    return this.map.size;
  }

  /** Drops the entries whose value was collected. */
  sweep(): void {
    for (const [key, ref] of this.map) if (ref.deref() === undefined) this.map.delete(key);
    this.sweepAt = Math.max(64, this.map.size * 2);
  }
}
