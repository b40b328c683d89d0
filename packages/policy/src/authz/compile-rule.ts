import { PolicyError } from "../policy-error.js";
import {
  type AttributeKind,
  BadValue,
  conditionKind,
  operationKind,
  type Pred,
  sourceKind,
} from "./attribute-matchers.js";
import type { AuthorizationAction, Condition, Operation, Rule, Source } from "./authorization-policy.js";

/** Where a rule is compiled: for messages, and for the values that depend on the policy. */
export interface RuleContext {
  /** `AuthorizationPolicy ns/name: spec.rules[i]`. */
  where: string;
  policyNamespace: string;
  action: AuthorizationAction;
}

/** A rule compiled for HTTP requests and (lazily) for TCP connections. */
export interface CompiledRule {
  readonly http: Pred;
  /** Envoy's network RBAC view: `undefined` when Istio drops the rule for TCP. */
  tcp(): Pred | undefined;
  /** Patterns every match needs, for the candidate index (see `rule-set.ts`). */
  readonly keys: IndexKeys | undefined;
}

/** What a rule requires of the principal or the path, when it requires one (exact or prefix). */
export interface IndexKeys {
  field: "principal" | "namespace" | "path";
  exact: string[];
  prefixes: string[];
}

const never: Pred = () => false;
const always: Pred = () => true;

function and(preds: Pred[]): Pred {
  if (preds.length === 0) return always;
  if (preds.length === 1) return preds[0] as Pred;
  if (preds.length === 2) {
    const [a, b] = preds as [Pred, Pred];
    return (f) => a(f) && b(f);
  }
  return (f) => {
    for (const p of preds) if (!p(f)) return false;
    return true;
  };
}

function or(preds: Pred[]): Pred {
  if (preds.length === 1) return preds[0] as Pred;
  return (f) => {
    for (const p of preds) if (p(f)) return true;
    return false;
  };
}

const SKIP = Symbol("skip-rule");

/**
 * One field's `values` and `notValues` as Istio generates them: any value matches, no not-value
 * matches. For TCP, an HTTP-only field cannot be generated: Istio drops the whole rule of an ALLOW
 * policy (a smaller allow) and only that field of other actions (a wider deny/audit).
 */
function field(
  kind: AttributeKind,
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  paths: { values: string; notValues: string },
  ctx: RuleContext,
  forTcp: boolean,
): Pred[] | typeof SKIP {
  const out: Pred[] = [];
  const compile = (list: readonly string[], p: string) =>
    list.map((v, i) => {
      try {
        return kind.value(v);
      } catch (e) {
        if (e instanceof BadValue) {
          throw new PolicyError("invalid-policy", `${ctx.where}${p}[${i}]: ${e.message}`, { cause: e });
        }
        throw e;
      }
    });
  const pos = values && values.length > 0 ? compile(values, paths.values) : [];
  const neg = notValues && notValues.length > 0 ? compile(notValues, paths.notValues) : [];
  if (forTcp && kind.httpOnly && (pos.length > 0 || neg.length > 0)) {
    return ctx.action === "ALLOW" ? SKIP : out;
  }
  if (pos.length > 0) out.push(or(pos));
  if (neg.length > 0) {
    const n = or(neg);
    out.push((f) => !n(f));
  }
  return out;
}

const SOURCE_FIELDS = [
  "principals",
  "requestPrincipals",
  "serviceAccounts",
  "namespaces",
  "remoteIpBlocks",
  "ipBlocks",
] as const;
const OPERATION_FIELDS = ["hosts", "methods", "paths", "ports"] as const;

function notOf(name: string): string {
  return `not${name[0]?.toUpperCase()}${name.slice(1)}`;
}

function conditionPreds(when: readonly Condition[], ctx: RuleContext, forTcp: boolean): Pred[] | typeof SKIP {
  const out: Pred[] = [];
  for (let i = 0; i < when.length; i++) {
    const c = when[i] as Condition;
    const path = `.when[${i}]`;
    let kind: AttributeKind;
    try {
      kind = conditionKind(c.key, ctx.policyNamespace);
    } catch (e) {
      if (e instanceof BadValue) {
        throw new PolicyError("invalid-policy", `${ctx.where}${path}.key: ${e.message}`, { cause: e });
      }
      throw e;
    }
    const preds = field(
      kind,
      c.values,
      c.notValues,
      { values: `${path}.values`, notValues: `${path}.notValues` },
      ctx,
      forTcp,
    );
    if (preds === SKIP) return SKIP;
    out.push(...preds);
  }
  return out;
}

function entryPreds<K extends string>(
  entry: Partial<Record<K, readonly string[]>>,
  fields: readonly K[],
  kindOf: (f: K) => AttributeKind | undefined,
  path: string,
  ctx: RuleContext,
  forTcp: boolean,
): Pred[] | typeof SKIP {
  const out: Pred[] = [];
  for (const name of fields) {
    const kind = kindOf(name) as AttributeKind;
    const not = notOf(name);
    const preds = field(
      kind,
      entry[name],
      entry[not as K],
      { values: `${path}.${name}`, notValues: `${path}.${not}` },
      ctx,
      forTcp,
    );
    if (preds === SKIP) return SKIP;
    out.push(...preds);
  }
  return out;
}

function compile(rule: Rule, ctx: RuleContext, forTcp: boolean): Pred | undefined {
  const when = conditionPreds(rule.when ?? [], ctx, forTcp);
  if (when === SKIP) return undefined;
  const from: Pred[] = [];
  for (const [i, f] of (rule.from ?? []).entries()) {
    const preds = entryPreds(
      (f.source ?? {}) as Source as Partial<Record<(typeof SOURCE_FIELDS)[number], readonly string[]>>,
      SOURCE_FIELDS,
      (n) => sourceKind(n, ctx.policyNamespace),
      `.from[${i}].source`,
      ctx,
      forTcp,
    );
    if (preds === SKIP) return undefined;
    from.push(and(preds));
  }
  const to: Pred[] = [];
  for (const [i, t] of (rule.to ?? []).entries()) {
    const preds = entryPreds(
      (t.operation ?? {}) as Operation as Partial<
        Record<(typeof OPERATION_FIELDS)[number], readonly string[]>
      >,
      OPERATION_FIELDS,
      operationKind,
      `.to[${i}].operation`,
      ctx,
      forTcp,
    );
    if (preds === SKIP) return undefined;
    to.push(and(preds));
  }
  const parts: Pred[] = [];
  if (from.length > 0) parts.push(or(from));
  if (to.length > 0) parts.push(or(to));
  parts.push(...when);
  return and(parts);
}

function plainPatterns(
  values: readonly string[] | undefined,
): { exact: string[]; prefixes: string[] } | undefined {
  if (!values || values.length === 0) return undefined;
  const exact: string[] = [];
  const prefixes: string[] = [];
  for (const v of values) {
    if (v.startsWith("*")) return undefined; // suffix or presence: not indexable
    const brace = v.indexOf("{");
    if (brace >= 0) prefixes.push(v.slice(0, brace));
    else if (v.endsWith("*")) prefixes.push(v.slice(0, -1));
    else exact.push(v);
  }
  return { exact, prefixes };
}

/**
 * The index keys of a rule: when every `from` requires one of a set of exact or prefix
 * principals (or namespaces), or else every `to` one of a set of exact, prefix or templated (by
 * its literal head) paths, only requests whose principal, namespace or path has one of them can
 * match.
 */
function indexKeys(rule: Rule): IndexKeys | undefined {
  const collect = (
    entries: readonly (readonly string[] | undefined)[],
    field: IndexKeys["field"],
  ): IndexKeys | undefined => {
    if (entries.length === 0) return undefined;
    const keys: IndexKeys = { field, exact: [], prefixes: [] };
    for (const e of entries) {
      const p = plainPatterns(e);
      if (!p) return undefined;
      keys.exact.push(...p.exact);
      keys.prefixes.push(...p.prefixes);
    }
    return keys;
  };
  return (
    collect(
      (rule.from ?? []).map((f) => f.source?.principals),
      "principal",
    ) ??
    collect(
      (rule.from ?? []).map((f) => f.source?.namespaces),
      "namespace",
    ) ??
    collect(
      (rule.to ?? []).map((t) => t.operation?.paths),
      "path",
    )
  );
}

/**
 * Compiles one Istio rule: any `from`, any `to`, all `when` (an absent list matches everything).
 * Every value is compiled now, so a bad one is reported when the policy loads.
 * @throws PolicyError `invalid-policy` naming the policy and field path.
 */
export function compileRule(rule: Rule, ctx: RuleContext): CompiledRule {
  const http = compile(rule, ctx, false) ?? never;
  let tcp: Pred | undefined | null = null;
  return {
    http,
    tcp() {
      if (tcp === null) tcp = compile(rule, ctx, true);
      return tcp;
    },
    keys: indexKeys(rule),
  };
}
