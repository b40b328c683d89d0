import { GATEWAY_NAME_LABEL, type PolicyScope, scopeCovers, type Workload } from "./scope.js";

interface Scoped {
  readonly scope: PolicyScope;
  readonly order: number;
}

interface Bucket<T> {
  /** No selector: every workload of the namespace (of the mesh, in the root namespace). */
  all: T[];
  /** Keyed by the selector's first `label=value` pair; the rest is checked on lookup. */
  byLabel: Map<string, T[]>;
  /** `targetRefs` Gateways, keyed by Gateway name. */
  byGateway: Map<string, T[]>;
}

const labelKey = (k: string, v: string) => `${k}\u0000${v}`;

/**
 * Policies indexed by namespace and selector, so finding the ones that apply to a workload looks
 * at the workload's namespace, the root namespace, and the selectors its labels could satisfy,
 * never at every policy of the mesh.
 */
export class ScopeIndex<T extends Scoped> {
  readonly #byNamespace = new Map<string, Bucket<T>>();

  constructor(
    items: readonly T[],
    private readonly rootNamespace: string,
  ) {
    for (const item of items) {
      const s = item.scope;
      let b = this.#byNamespace.get(s.namespace);
      if (!b) {
        b = { all: [], byLabel: new Map(), byGateway: new Map() };
        this.#byNamespace.set(s.namespace, b);
      }
      if (s.gateways) {
        for (const gw of new Set(s.gateways)) add(b.byGateway, gw, item);
      } else if (s.selector && s.selector.length > 0) {
        const [k, v] = s.selector[0] as readonly [string, string];
        add(b.byLabel, labelKey(k, v), item);
      } else b.all.push(item);
    }
  }

  /** The items that apply to a workload, in their original order. */
  lookup(workload: Workload): T[] {
    const out: T[] = [];
    const visit = (b: Bucket<T> | undefined, gateways: boolean) => {
      if (!b) return;
      out.push(...b.all);
      for (const [k, v] of Object.entries(workload.labels)) {
        const hit = b.byLabel.get(labelKey(k, v));
        if (hit)
          for (const item of hit) if (scopeCovers(item.scope, workload, this.rootNamespace)) out.push(item);
      }
      const gw = workload.labels[GATEWAY_NAME_LABEL];
      if (gateways && gw !== undefined) out.push(...(b.byGateway.get(gw) ?? []));
    };
    visit(this.#byNamespace.get(workload.namespace), true);
    // Root-namespace policies apply mesh-wide (their targetRefs only in the root namespace itself).
    if (workload.namespace !== this.rootNamespace) visit(this.#byNamespace.get(this.rootNamespace), false);
    out.sort((a, b) => a.order - b.order);
    return out;
  }
}

function add<T>(map: Map<string, T[]>, key: string, item: T): void {
  const list = map.get(key);
  if (list) list.push(item);
  else map.set(key, [item]);
}
