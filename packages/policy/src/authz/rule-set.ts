import type { PolicyRef } from "../decision.js";
import type { Pred } from "./attribute-matchers.js";
import type { CompiledPolicy } from "./compile-policy.js";
import type { RequestFacts } from "./request-facts.js";

interface Entry {
  policy: CompiledPolicy;
  /** Index into `spec.rules`; -1 for a refused policy's fail-closed match. */
  rule: number;
  http: Pred;
  tcp: () => Pred | undefined;
}

const ALWAYS: Pred = () => true;
const noTcp = () => ALWAYS;

/** Keys of one kind (principal or path): exact values, and prefixes grouped by length. */
class KeyIndex {
  readonly exact = new Map<string, number[]>();
  readonly prefixes = new Map<number, Map<string, number[]>>();
  /** Every entry indexed here, for requests the index cannot narrow. */
  readonly all: number[] = [];

  add(entry: number, exact: readonly string[], prefixes: readonly string[]): void {
    this.all.push(entry);
    for (const e of exact) push(this.exact, e, entry);
    for (const p of prefixes) {
      let byPrefix = this.prefixes.get(p.length);
      if (!byPrefix) {
        byPrefix = new Map();
        this.prefixes.set(p.length, byPrefix);
      }
      push(byPrefix, p, entry);
    }
  }

  collect(value: string | undefined, out: number[]): void {
    if (value === undefined) return;
    const hit = this.exact.get(value);
    if (hit) out.push(...hit);
    for (const [len, byPrefix] of this.prefixes) {
      if (len > value.length) continue;
      const h = byPrefix.get(len === value.length ? value : value.slice(0, len));
      if (h) out.push(...h);
    }
  }
}

/**
 * Namespace candidates: Istio matches a namespace as `.*\/ns/<v>/.*` on the peer's URI, so every
 * `/ns/` of the URI is looked up (the segment after it exactly, the text after it by prefix).
 * Without a principal, the in-process `source.namespace` is the key.
 */
function collectNamespaces(index: KeyIndex, f: RequestFacts, out: number[]): void {
  const uri = f.spiffeUri;
  if (uri === undefined) {
    const ns = f.attrs.source?.namespace;
    if (ns !== undefined) index.collect(ns, out);
    return;
  }
  for (let i = uri.indexOf("/ns/"); i >= 0; i = uri.indexOf("/ns/", i + 1)) {
    const tail = uri.slice(i + 4);
    const slash = tail.indexOf("/");
    if (slash >= 0) {
      const hit = index.exact.get(tail.slice(0, slash));
      if (hit) out.push(...hit);
    }
    for (const [len, byPrefix] of index.prefixes) {
      if (len > tail.length) continue;
      const h = byPrefix.get(tail.slice(0, len));
      if (h) out.push(...h);
    }
  }
}

function push(map: Map<string, number[]>, key: string, entry: number): void {
  const list = map.get(key);
  if (list) {
    if (list[list.length - 1] !== entry) list.push(entry);
  } else map.set(key, [entry]);
}

/**
 * The rules of one action's policies for one workload, in evaluation order, with an index so a
 * check evaluates only the rules that can match: a rule whose every `from` names exact or prefix
 * principals is only a candidate for requests with such a principal (likewise paths). Istio's
 * order is kept: candidates are evaluated in policy order, rule order.
 */
export class RuleSet {
  readonly policies: readonly CompiledPolicy[];
  readonly #entries: Entry[] = [];
  readonly #unindexed: number[] = [];
  readonly #principals = new KeyIndex();
  readonly #namespaces = new KeyIndex();
  readonly #paths = new KeyIndex();

  constructor(policies: readonly CompiledPolicy[]) {
    this.policies = policies;
    for (const p of policies) {
      if (p.refused) {
        // A refused policy fails closed: DENY-like ones match every request (ALLOW ones none).
        if (p.refused.effect === "deny-all") {
          this.#unindexed.push(this.#entries.length);
          this.#entries.push({ policy: p, rule: -1, http: ALWAYS, tcp: noTcp });
        }
        continue;
      }
      p.rules.forEach((r, i) => {
        const n = this.#entries.length;
        this.#entries.push({ policy: p, rule: i, http: r.http, tcp: () => r.tcp() });
        const k = r.keys;
        if (k?.field === "principal") this.#principals.add(n, k.exact, k.prefixes);
        else if (k?.field === "namespace") this.#namespaces.add(n, k.exact, k.prefixes);
        else if (k?.field === "path") this.#paths.add(n, k.exact, k.prefixes);
        else this.#unindexed.push(n);
      });
    }
  }

  /** The first rule (in policy order) that matches, or undefined. */
  firstMatch(f: RequestFacts): { policy: CompiledPolicy; rule: number } | undefined {
    const entries = this.#entries;
    if (entries.length === 0) return undefined;
    let candidates: number[];
    if (
      this.#principals.all.length === 0 &&
      this.#namespaces.all.length === 0 &&
      this.#paths.all.length === 0
    ) {
      candidates = this.#unindexed;
    } else {
      const found: number[] = [];
      this.#principals.collect(f.principal, found);
      if (this.#namespaces.all.length > 0) collectNamespaces(this.#namespaces, f, found);
      // Paths are HTTP-only: for TCP, Istio drops them from DENY rules, so no narrowing.
      if (f.tcp) found.push(...this.#paths.all);
      else this.#paths.collect(f.attrs.request?.path, found);
      if (found.length === 0) candidates = this.#unindexed;
      else {
        found.push(...this.#unindexed);
        found.sort((a, b) => a - b);
        candidates = found;
      }
    }
    let last = -1;
    for (const i of candidates) {
      if (i === last) continue;
      last = i;
      const e = entries[i] as Entry;
      const pred = f.tcp ? e.tcp() : e.http;
      if (pred?.(f)) return { policy: e.policy, rule: e.rule };
    }
    return undefined;
  }

  /** {@link firstMatch} as a decision's {@link PolicyRef}. */
  firstRef(f: RequestFacts): PolicyRef | undefined {
    const m = this.firstMatch(f);
    return m && { policy: m.policy.id, action: m.policy.action, rule: m.rule };
  }
}
