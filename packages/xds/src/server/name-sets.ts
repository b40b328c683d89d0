/**
 * Shares identical subscription sets between streams. Thousands of proxies of one service
 * subscribe to the same hundreds of names (Envoy asks for every cluster's endpoints by name);
 * holding one Set per stream would cost tens of kilobytes each. Sets are reference-counted and
 * dropped when the last stream lets go.
 */
export class NameSets {
  private readonly pool = new Map<string, { set: ReadonlySet<string>; refs: number }>();
  static readonly empty: ReadonlySet<string> = new Set<string>();

  /** Frozen (interned) name lists → their pool key: thousands of streams send the same list. */
  private readonly keys = new WeakMap<readonly string[], string>();
  /** Each shared set's pool key. */
  private readonly setKeys = new WeakMap<ReadonlySet<string>, string>();

  /** The shared set holding exactly `names`; pair every acquire with a release. */
  acquire(names: Iterable<string>): ReadonlySet<string> {
    const interned =
      Array.isArray(names) && Object.isFrozen(names) ? (names as readonly string[]) : undefined;
    let key = interned && this.keys.get(interned);
    let unique: string[] | undefined;
    if (key === undefined) {
      unique = [...new Set(names)].sort();
      // Names are whatever a client sends (NUL included): the key must not let one name spell
      // two, or one stream would get another's subscription. JSON quotes every name.
      key = JSON.stringify(unique);
      if (interned) this.keys.set(interned, key);
    }
    if (unique !== undefined ? unique.length === 0 : key === "[]") return NameSets.empty;
    let entry = this.pool.get(key);
    if (!entry) {
      unique ??= [...new Set(names)].sort();
      entry = { set: new Set(unique), refs: 0 };
      this.pool.set(key, entry);
      this.setKeys.set(entry.set, key);
    }
    entry.refs++;
    return entry.set;
  }

  release(set: ReadonlySet<string>): void {
    const key = this.setKeys.get(set);
    if (key === undefined) return;
    const entry = this.pool.get(key);
    if (entry && --entry.refs <= 0) this.pool.delete(key);
  }

  /** Number of distinct sets held (for tests and metrics). */
  get size(): number {
    return this.pool.size;
  }
}

/**
 * Whether a request's names equal a subscription set. Runs on every ACK of every stream, so it
 * allocates nothing in the common case: when the list is as long as the set and every name is a
 * member, it is taken as equal. (Only a list that repeats one name while leaving out another
 * could fool it; such a client keeps one stale subscription until its next change.)
 */
export function sameNames(set: ReadonlySet<string>, names: readonly string[]): boolean {
  if (names.length < set.size) return false;
  for (const n of names) if (!set.has(n)) return false;
  return names.length === set.size || new Set(names).size === set.size;
}
