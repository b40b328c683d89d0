import { type DestinationRule, labelsMatch, type ResourceKey, resourceKeyOf } from "@meshlet/config";
import { getOrCreate } from "../collections.js";
import { creationTime, type DestinationRuleSpec, type Subset } from "../config-access.js";
import { isWildcardHost, mostSpecificHostMatch, resolveShortname } from "../model/host.js";
import { PRIVATE, PUBLIC } from "./visibility.js";

/**
 * One or more DestinationRules for the same host in the same namespace, merged as Istio merges them
 * (istio/istio pilot/pkg/model/destination_rule.go `mergeDestinationRule`): subsets are concatenated
 * (the first of a name wins), the first top-level traffic policy wins. Rules with a workload
 * selector stay separate entries (they also see the catch-all rule's subsets when the catch-all
 * came later in Istio's order).
 */
export interface ConsolidatedDestinationRule {
  /** FQDN host (possibly a wildcard). */
  readonly host: string;
  /** Namespace of the rules. */
  readonly namespace: string;
  /** The merged spec (`host` resolved to the FQDN). */
  readonly spec: DestinationRuleSpec;
  /** `workloadSelector.matchLabels` of the rule, when it has one. */
  readonly workloadSelector?: Readonly<Record<string, string>>;
  /** Every DestinationRule merged into this one, first = the one whose policy applies. */
  readonly from: readonly ResourceKey[];
}

interface Entry {
  host: string;
  namespace: string;
  spec: DestinationRuleSpec;
  selector: Readonly<Record<string, string>> | undefined;
  from: ResourceKey[];
  exportTo: ReadonlySet<string>;
}

class Pool {
  readonly exact = new Map<string, Entry[]>();
  readonly wildcard = new Map<string, Entry[]>();

  merge(dr: ParsedRule): void {
    const map = isWildcardHost(dr.host) ? this.wildcard : this.exact;
    const list = map.get(dr.host);
    if (list === undefined) {
      map.set(dr.host, [newEntry(dr)]);
      return;
    }
    let addNew = true;
    for (const entry of list) {
      const bothWithSelector = entry.selector !== undefined && dr.selector !== undefined;
      const bothWithout = entry.selector === undefined && dr.selector === undefined;
      const selectorsMatch = sameLabels(entry.selector, dr.selector);
      if (bothWithSelector && !selectorsMatch) continue;
      if (bothWithout || (dr.selector !== undefined && selectorsMatch)) addNew = false;
      const names = new Set((entry.spec.subsets ?? []).map((s) => s.name));
      const added: Subset[] = (dr.spec.subsets ?? []).filter((s) => !names.has(s.name));
      entry.spec = {
        ...entry.spec,
        ...(added.length > 0 ? { subsets: [...(entry.spec.subsets ?? []), ...added] } : {}),
        ...(entry.spec.trafficPolicy === undefined && dr.spec.trafficPolicy !== undefined
          ? { trafficPolicy: dr.spec.trafficPolicy }
          : {}),
      };
      entry.from.push(dr.key);
      if (entry.exportTo.size === 0 && dr.exportTo.size > 0) entry.exportTo = dr.exportTo;
    }
    if (addNew) list.push(newEntry(dr));
  }

  lookup(host: string): Entry[] | undefined {
    return mostSpecificHostMatch(host, this.exact, this.wildcard)?.value;
  }
}

interface ParsedRule {
  host: string;
  namespace: string;
  name: string;
  key: ResourceKey;
  spec: DestinationRuleSpec;
  selector: Readonly<Record<string, string>> | undefined;
  exportTo: ReadonlySet<string>;
  creationTime?: number;
}

function newEntry(dr: ParsedRule): Entry {
  return {
    host: dr.host,
    namespace: dr.namespace,
    spec: dr.spec,
    selector: dr.selector,
    from: [dr.key],
    exportTo: dr.exportTo,
  };
}

/**
 * DestinationRules indexed the way istiod's `setDestinationRules` indexes them: per namespace the
 * rules visible there, per namespace the rules exported elsewhere, and the root namespace's
 * private ones; lookups follow Istio's order (proxy namespace → service namespace → root).
 */
export class DestinationRuleIndex {
  readonly #namespaceLocal = new Map<string, Pool>();
  readonly #exported = new Map<string, Pool>();
  readonly #rootLocal = new Pool();
  readonly #rootNamespace: string;
  /** One view per entry, so a rule is the same object in every lookup (caches key on it). */
  readonly #views = new WeakMap<Entry, ConsolidatedDestinationRule>();

  constructor(
    rules: readonly DestinationRule[],
    options: { domainSuffix: string; rootNamespace: string; defaultExportTo: readonly string[] },
  ) {
    this.#rootNamespace = options.rootNamespace;
    const parsed: ParsedRule[] = rules.map((dr) => {
      const selectorLabels = dr.spec.workloadSelector?.matchLabels;
      const host = resolveShortname(dr.spec.host, dr.metadata.namespace, options.domainSuffix);
      const created = creationTime(dr);
      return {
        host,
        namespace: dr.metadata.namespace,
        name: dr.metadata.name,
        key: resourceKeyOf(dr),
        spec: { ...dr.spec, host },
        selector: dr.spec.workloadSelector === undefined ? undefined : (selectorLabels ?? {}),
        // A rule with a workload selector is never exported (Istio setDestinationRules).
        exportTo:
          dr.spec.workloadSelector !== undefined ? new Set([PRIVATE]) : new Set(dr.spec.exportTo ?? []),
        ...(created !== undefined ? { creationTime: created } : {}),
      };
    });
    // Istio sortConfigBySelectorAndCreationTime: rules with a selector first, then oldest first,
    // then by name and namespace.
    parsed.sort(
      (a, b) =>
        Number(b.selector !== undefined) - Number(a.selector !== undefined) ||
        (a.creationTime ?? 0) - (b.creationTime ?? 0) ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
        (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0),
    );
    for (const dr of parsed) {
      const ex = dr.exportTo;
      if (ex.size === 0 || ex.has(PUBLIC) || ex.has(PRIVATE) || ex.has(dr.namespace)) {
        pool(this.#namespaceLocal, dr.namespace).merge(dr);
      }
      const privateOnly =
        (ex.size === 0 && options.defaultExportTo.includes(PRIVATE)) ||
        (ex.size === 1 && (ex.has(PRIVATE) || ex.has(dr.namespace)));
      if (!privateOnly) pool(this.#exported, dr.namespace).merge(dr);
      else if (dr.namespace === options.rootNamespace) this.#rootLocal.merge(dr);
    }
  }

  /**
   * The DestinationRules that apply to `service` for a client in `proxyNamespace` (Istio
   * `PushContext.destinationRule`): the client namespace's rules (the root namespace's private ones
   * for clients in the root namespace), else the rules the service's namespace exports to the
   * client, else those the root namespace exports to it. Several entries when rules with workload
   * selectors exist; pick one with {@link selectDestinationRule}.
   */
  lookup(
    proxyNamespace: string,
    service: { readonly hostname: string; readonly namespace: string },
  ): ConsolidatedDestinationRule[] | undefined {
    const local =
      proxyNamespace !== this.#rootNamespace
        ? this.#namespaceLocal.get(proxyNamespace)?.lookup(service.hostname)
        : this.#rootLocal.lookup(service.hostname);
    const view = (e: Entry) => getOrCreate(this.#views, e, () => viewOf(e));
    if (local?.some((e) => e.selector === undefined)) return local.map(view);
    // Rules with workload selectors alone do not end the search: the catch-all rule still comes
    // from the service's or the root namespace (istio/istio push_context_test.go
    // TestSetDestinationRuleWithWorkloadSelector, "DR without workloadselector in dst NS applied if
    // src NS only contains DRs with selectors").
    const carried = (local ?? []).map(view);
    for (const ns of [service.namespace, this.#rootNamespace]) {
      if (ns === "") continue;
      const found = this.#exported.get(ns)?.lookup(service.hostname);
      if (found === undefined) continue;
      const visible = found.filter(
        (e) => e.exportTo.size === 0 || e.exportTo.has(PUBLIC) || e.exportTo.has(proxyNamespace),
      );
      if (visible.length > 0) return [...carried, ...visible.map(view)];
    }
    return carried.length > 0 ? carried : undefined;
  }
}

/**
 * Picks the rule for an outbound client (Istio `SidecarScope.DestinationRule`): a rule with a
 * workload selector in the client's own namespace whose selector matches the client's labels wins;
 * otherwise the rule without a selector.
 */
export function selectDestinationRule(
  rules: readonly ConsolidatedDestinationRule[] | undefined,
  client: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> },
): ConsolidatedDestinationRule | undefined {
  let catchAll: ConsolidatedDestinationRule | undefined;
  for (const rule of rules ?? []) {
    if (rule.workloadSelector === undefined) {
      catchAll = rule;
      continue;
    }
    if (rule.namespace === client.namespace && labelsMatch(rule.workloadSelector, client.labels)) return rule;
  }
  return catchAll;
}

/** The labels of subset `name` of a rule; undefined when the rule has no such subset. */
export function subsetLabels(
  rule: ConsolidatedDestinationRule | undefined,
  name: string,
): Readonly<Record<string, string>> | undefined {
  const subset = rule?.spec.subsets?.find((s) => s.name === name);
  return subset === undefined ? undefined : (subset.labels ?? {});
}

function viewOf(e: Entry): ConsolidatedDestinationRule {
  return {
    host: e.host,
    namespace: e.namespace,
    spec: e.spec,
    ...(e.selector !== undefined ? { workloadSelector: e.selector } : {}),
    from: e.from,
  };
}

function pool(m: Map<string, Pool>, ns: string): Pool {
  return getOrCreate(m, ns, () => new Pool());
}

function sameLabels(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  const ae = Object.entries(a ?? {});
  if (ae.length !== Object.keys(b ?? {}).length) return false;
  return ae.every(([k, v]) => b?.[k] === v);
}
