import type { KindRegistry } from "@meshlet/config";
import { type Observable, Subject } from "rxjs";
import type {
  Adapter,
  AdapterFailure,
  AdapterOptions,
  CheckAdapter,
  QuotaAdapter,
  RequestReport,
} from "./adapters/adapter.js";
import { AdapterRegistry, type RegisteredAdapter } from "./adapters/adapter-registry.js";
import type { Attributes } from "./attributes.js";
import type { AuthorizationPolicy } from "./authz/authorization-policy.js";
import { type CompiledPolicy, compileAuthorizationPolicy } from "./authz/compile-policy.js";
import { RequestFacts } from "./authz/request-facts.js";
import { RuleSet } from "./authz/rule-set.js";
import type { Workload } from "./authz/scope.js";
import { ScopeIndex } from "./authz/scope-index.js";
import { type Clock, systemClock } from "./clock.js";
import { securityKindRegistry } from "./config-validation.js";
import type { Decision, DryRunResult, PolicyRef } from "./decision.js";
import { type FetchLike, JwksCache } from "./jwt/jwks-cache.js";
import { carriesToken, headersToSanitize, JwtAuthenticator } from "./jwt/jwt-authenticator.js";
import {
  type CompiledRequestAuthentication,
  compileRequestAuthentication,
  type JwtRule,
  type RequestAuthentication,
} from "./jwt/request-authentication.js";
import { type Logger, silentLogger } from "./logger.js";
import { locateDiagnostic, type PolicyDiagnostic, type SetPoliciesOptions } from "./policy-diagnostic.js";
import { PolicyError } from "./policy-error.js";
import { createMemoryQuotaAdapter } from "./ratelimit/memory-quota-adapter.js";
import type { RateLimitConfig } from "./ratelimit/rate-limit-config.js";
import { RateLimiter } from "./ratelimit/rate-limiter.js";

/** Options of {@link PolicyEngine}. */
export interface PolicyEngineOptions {
  /** Istio's root namespace: its policies without selector apply mesh-wide. Default `istio-system`. */
  rootNamespace?: string;
  authorizationPolicies?: readonly AuthorizationPolicy[];
  requestAuthentications?: readonly RequestAuthentication[];
  rateLimits?: readonly RateLimitConfig[];
  clock?: Clock;
  logger?: Logger;
  /** Used to fetch JWKS URIs (default: global `fetch`). */
  fetch?: FetchLike;
  /** JWKS refresh interval, ms (default 20 min). */
  jwksRefreshIntervalMs?: number;
  /** Distinct workloads whose policy sets are kept compiled (default 10,000). */
  workloadCacheSize?: number;
}

/** What the evaluation steps decide; `finish` adds the rest of a {@link Decision}. */
type Outcome = Pick<Decision, "allowed" | "reason" | "matched" | "custom"> &
  Partial<Pick<Decision, "status" | "body">>;

/** Everything that applies to one workload, resolved once and cached. */
interface WorkloadPolicies {
  custom: { policy: CompiledPolicy; rules: RuleSet }[];
  deny: RuleSet;
  allow: RuleSet;
  audit: RuleSet;
  dryDeny: RuleSet;
  dryAllow: RuleSet;
  jwtRules: JwtRule[];
  /** Refused RequestAuthentications: every token is rejected. */
  jwtRefused: CompiledRequestAuthentication[];
}

const refRule = (p: CompiledPolicy): PolicyRef => ({ policy: p.id, action: p.action, rule: -1 });

/**
 * The policy engine: Istio's AuthorizationPolicy (CUSTOM → DENY → ALLOW, AUDIT, dry-run) and
 * RequestAuthentication (JWT) semantics over an attribute bag, Envoy's rate-limit model, and
 * Mixer-style adapters. Use it in-process with {@link PolicyEngine.check}, or behind Envoy with
 * `ExtAuthzServer` and `RateLimitServer`.
 *
 * Policies are validated by `@meshlet/config` (the one model of Istio's kinds) and compiled once
 * when they are set; they are indexed by namespace and selector, and each workload's set is
 * compiled into per-action rule indexes on first use, so a check looks only at rules that can
 * match. A policy that cannot be used is reported, never thrown: the others apply, and the refused
 * one fails closed where its workloads are known (see {@link PolicyDiagnostic}).
 */
export class PolicyEngine {
  readonly #rootNamespace: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #registry: KindRegistry = securityKindRegistry();
  readonly #adapters = new AdapterRegistry();
  readonly #jwt: JwtAuthenticator;
  readonly #decisions = new Subject<Decision>();
  readonly #diagnostics$ = new Subject<readonly PolicyDiagnostic[]>();
  readonly #cacheSize: number;
  #authz = new ScopeIndex<CompiledPolicy>([], "istio-system");
  #authn = new ScopeIndex<CompiledRequestAuthentication>([], "istio-system");
  #authzDiagnostics: PolicyDiagnostic[] = [];
  #authnDiagnostics: PolicyDiagnostic[] = [];
  #byWorkload = new Map<string, WorkloadPolicies>();
  #quotaAdapter: RegisteredAdapter<QuotaAdapter>;

  /** Every authorization decision, naming the policy and rule that made it. */
  readonly decisions$ = this.#decisions.asObservable();
  /** Every adapter error and timeout. */
  readonly adapterFailures$ = this.#adapters.failures$;
  /** The refused policies after every `setAuthorizationPolicies`/`setRequestAuthentications` (all of them, both kinds). */
  readonly diagnostics$: Observable<readonly PolicyDiagnostic[]> = this.#diagnostics$.asObservable();
  /** Rate limits and quota over the registered quota adapter. */
  readonly rateLimiter: RateLimiter;

  constructor(options: PolicyEngineOptions = {}) {
    this.#rootNamespace = options.rootNamespace ?? "istio-system";
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#cacheSize = options.workloadCacheSize ?? 10_000;
    this.#authz = new ScopeIndex<CompiledPolicy>([], this.#rootNamespace);
    this.#authn = new ScopeIndex<CompiledRequestAuthentication>([], this.#rootNamespace);
    this.#jwt = new JwtAuthenticator(
      new JwksCache({
        clock: this.#clock,
        logger: this.#logger,
        ...(options.fetch && { fetch: options.fetch }),
        ...(options.jwksRefreshIntervalMs !== undefined && {
          refreshIntervalMs: options.jwksRefreshIntervalMs,
        }),
      }),
      this.#clock,
    );
    this.#quotaAdapter = {
      adapter: createMemoryQuotaAdapter({ clock: this.#clock }),
      timeoutMs: 1000,
      failurePolicy: "fail-open",
      inProcess: true,
    };
    this.rateLimiter = new RateLimiter(this.#adapters, () => this.#quotaAdapter, this.#clock);
    if (options.authorizationPolicies) this.setAuthorizationPolicies(options.authorizationPolicies);
    if (options.requestAuthentications) this.setRequestAuthentications(options.requestAuthentications);
    if (options.rateLimits) this.rateLimiter.setConfig(options.rateLimits);
  }

  /** The policies refused by the last `set…` calls (AuthorizationPolicies, then RequestAuthentications). */
  get diagnostics(): readonly PolicyDiagnostic[] {
    return [...this.#authzDiagnostics, ...this.#authnDiagnostics];
  }

  /**
   * Replaces all AuthorizationPolicies. Each is validated (`@meshlet/config`) and compiled on its
   * own: the good ones apply, the bad ones are returned (and logged, and emitted on
   * `diagnostics$`) with what they do meanwhile: a refused DENY or CUSTOM policy denies every
   * request to its workloads, a refused ALLOW policy allows none. A second policy with the same
   * namespace/name is refused and not applied.
   * With `options.origins` (a `ConfigSnapshot`, say) each diagnostic names the policy's file:line.
   * @returns The refused policies (empty when all apply).
   * @throws PolicyError `invalid-policy` only when `policies` is not an array (nothing changes).
   */
  setAuthorizationPolicies(
    policies: readonly AuthorizationPolicy[],
    options: SetPoliciesOptions = {},
  ): PolicyDiagnostic[] {
    if (!Array.isArray(policies)) {
      throw new PolicyError(
        "invalid-policy",
        "setAuthorizationPolicies takes an array of AuthorizationPolicies",
      );
    }
    const compiled: CompiledPolicy[] = [];
    const diagnostics: PolicyDiagnostic[] = [];
    const seen = new Set<string>();
    policies.forEach((p, i) => {
      const r = compileAuthorizationPolicy(p, i, this.#registry);
      const id = r.compiled?.id ?? r.diagnostic?.policy ?? "<unnamed>";
      if (r.compiled && seen.has(id)) {
        const error = new PolicyError(
          "invalid-policy",
          `AuthorizationPolicy ${id} is given twice; the first one applies, rename or merge the second`,
        );
        diagnostics.push(
          locateDiagnostic(
            {
              kind: "AuthorizationPolicy",
              policy: id,
              message: error.rawMessage,
              effect: "not-applied",
              error,
            },
            p,
            options.origins,
          ),
        );
        return;
      }
      if (r.compiled) {
        seen.add(id);
        compiled.push(r.compiled);
      }
      if (r.diagnostic) diagnostics.push(locateDiagnostic(r.diagnostic, p, options.origins));
    });
    this.#authz = new ScopeIndex(compiled, this.#rootNamespace);
    this.#authzDiagnostics = diagnostics;
    this.#byWorkload.clear();
    this.#report(diagnostics);
    return diagnostics;
  }

  /**
   * Replaces all RequestAuthentications, validated and compiled one by one like
   * {@link setAuthorizationPolicies}; a refused one makes its workloads reject every token (401).
   * @returns The refused ones (empty when all apply).
   */
  setRequestAuthentications(
    resources: readonly RequestAuthentication[],
    options: SetPoliciesOptions = {},
  ): PolicyDiagnostic[] {
    if (!Array.isArray(resources)) {
      throw new PolicyError(
        "invalid-policy",
        "setRequestAuthentications takes an array of RequestAuthentications",
      );
    }
    const compiled: CompiledRequestAuthentication[] = [];
    const diagnostics: PolicyDiagnostic[] = [];
    resources.forEach((ra, i) => {
      const r = compileRequestAuthentication(ra, i, this.#registry);
      if (r.compiled) compiled.push(r.compiled);
      if (r.diagnostic) diagnostics.push(locateDiagnostic(r.diagnostic, ra, options.origins));
    });
    this.#authn = new ScopeIndex(compiled, this.#rootNamespace);
    this.#authnDiagnostics = diagnostics;
    this.#byWorkload.clear();
    this.#report(diagnostics);
    return diagnostics;
  }

  #report(latest: PolicyDiagnostic[]): void {
    for (const d of latest) this.#logger.warn(`${d.kind} ${d.policy} refused (${d.effect}): ${d.message}`);
    this.#diagnostics$.next(this.diagnostics);
  }

  /** Replaces the rate-limit configuration (validated first). */
  setRateLimits(configs: readonly RateLimitConfig[]): void {
    this.rateLimiter.setConfig(configs);
  }

  /**
   * Registers an adapter. Check adapters are called by CUSTOM policies naming them; a quota adapter
   * replaces the in-memory counters; report adapters receive {@link PolicyEngine.report}.
   * @throws PolicyError `invalid-adapter-config`.
   */
  async registerAdapter<A extends Adapter>(adapter: A, options: AdapterOptions = {}): Promise<void> {
    await this.#adapters.register(adapter, options);
    if (adapter.kind === "quota") {
      const reg = this.#adapters.get(adapter.name, "quota");
      if (reg) this.#quotaAdapter = reg;
    }
  }

  #forWorkload(workload: Workload): WorkloadPolicies {
    let key = workload.namespace;
    for (const k in workload.labels) key += `\u0000${k}\u0000${workload.labels[k]}`;
    const cached = this.#byWorkload.get(key);
    if (cached) return cached;
    const custom: CompiledPolicy[] = [];
    const deny: CompiledPolicy[] = [];
    const allow: CompiledPolicy[] = [];
    const audit: CompiledPolicy[] = [];
    const dryDeny: CompiledPolicy[] = [];
    const dryAllow: CompiledPolicy[] = [];
    for (const p of this.#authz.lookup(workload)) {
      if (p.dryRun) (p.action === "DENY" ? dryDeny : dryAllow).push(p);
      else if (p.action === "CUSTOM") custom.push(p);
      else if (p.action === "DENY") deny.push(p);
      else if (p.action === "AUDIT") audit.push(p);
      else allow.push(p);
    }
    const jwtRules: JwtRule[] = [];
    const jwtRefused: CompiledRequestAuthentication[] = [];
    for (const ra of this.#authn.lookup(workload)) {
      if (ra.refused) jwtRefused.push(ra);
      else jwtRules.push(...ra.rules);
    }
    const b: WorkloadPolicies = {
      custom: custom.map((policy) => ({ policy, rules: new RuleSet([policy]) })),
      deny: new RuleSet(deny),
      allow: new RuleSet(allow),
      audit: new RuleSet(audit),
      dryDeny: new RuleSet(dryDeny),
      dryAllow: new RuleSet(dryAllow),
      jwtRules,
      jwtRefused,
    };
    if (this.#byWorkload.size >= this.#cacheSize) this.#byWorkload.clear();
    this.#byWorkload.set(key, b);
    return b;
  }

  /**
   * Decides one request in the order of Istio's filter chain: CUSTOM (the provider decides the
   * requests its policies match), then JWT verification (an invalid token denies with 401), then
   * AUDIT, DENY, ALLOW; dry-run policies are evaluated alongside and reported without affecting the
   * outcome. The workload is `destination.namespace` and `destination.labels`: a
   * request without a destination namespace is denied (`missing-workload`), never assumed to be
   * for `default`. Never throws for a request: adapter errors follow their failure policy and are
   * listed in the decision.
   */
  async check(attributes: Attributes): Promise<Decision> {
    const started = performance.now();
    let attrs = attributes;
    const namespace = attrs.destination?.namespace;
    const requestHeaders: Record<string, string> = {};
    const responseHeaders: Record<string, string> = {};
    let removeRequestHeaders: string[] = [];
    const failures: AdapterFailure[] = [];
    let jwt: Decision["jwt"] = { status: "none" };
    let b: WorkloadPolicies | undefined;
    let facts: RequestFacts | undefined;
    const finish = (d: Outcome, withShadow = true): Decision => {
      const audit = withShadow && b && facts ? b.audit.firstRef(facts) : undefined;
      const decision: Decision = {
        status: d.allowed ? 200 : 403,
        body: d.allowed ? "" : "RBAC: access denied",
        ...d,
        audited: audit !== undefined,
        ...(audit && { audit }),
        dryRun: withShadow && b && facts ? dryRun(b, facts) : [],
        adapterFailures: failures,
        jwt,
        requestHeaders,
        removeRequestHeaders,
        responseHeaders,
        attributes: attrs,
        time: this.#clock.now(),
        durationMs: performance.now() - started,
      };
      this.#decisions.next(decision);
      return decision;
    };
    if (typeof namespace !== "string" || namespace === "") {
      return finish(
        { allowed: false, reason: "missing-workload", body: "RBAC: access denied (no workload)" },
        false,
      );
    }
    b = this.#forWorkload({ namespace, labels: attrs.destination?.labels ?? {} });
    const hasJwt = b.jwtRules.length > 0 || b.jwtRefused.length > 0;
    // request.auth is set from verified tokens only: where a RequestAuthentication applies, a
    // caller's value is never trusted.
    if (hasJwt && attrs.request?.auth) {
      const { auth: _untrusted, ...request } = attrs.request;
      attrs = { ...attrs, request };
    }

    // Istio's filter chain: CUSTOM (ext_authz) runs first, before JWT authentication; then AUDIT,
    // DENY, ALLOW (istio/istio pilot/pkg/networking/core/listener_builder.go).
    let custom: Decision["custom"];
    if (b.custom.length > 0) {
      const customFacts = new RequestFacts(attrs);
      const calledProviders = new Set<string>();
      for (const { policy: p, rules } of b.custom) {
        if (p.refused)
          return finish({ allowed: false, reason: "policy-refused", matched: refRule(p) }, false);
        const m = rules.firstRef(customFacts);
        if (!m) continue;
        const provider = p.provider as string;
        if (calledProviders.has(provider)) continue;
        calledProviders.add(provider);
        const reg = this.#adapters.get(provider, "check");
        if (!reg) {
          this.#logger.error(
            `AuthorizationPolicy ${m.policy}: CUSTOM provider "${provider}" is not registered`,
          );
          return finish({ allowed: false, reason: "custom-provider-missing", matched: m }, false);
        }
        const checked = attrs;
        const result = await this.#adapters.call(reg, (signal) =>
          (reg.adapter as CheckAdapter).check(checked, { signal }),
        );
        if (!result.ok) {
          failures.push(result.failure);
          if (result.failure.failurePolicy === "fail-closed") {
            return finish({ allowed: false, reason: "custom-provider-failed", matched: m }, false);
          }
          continue;
        }
        custom = { provider, result: result.value };
        if (!result.value.allowed) {
          Object.assign(responseHeaders, result.value.responseHeaders);
          return finish(
            {
              allowed: false,
              reason: "custom-denied",
              matched: m,
              custom,
              status: result.value.status ?? 403,
              body: result.value.body ?? "",
            },
            false,
          );
        }
        Object.assign(requestHeaders, result.value.requestHeaders);
        Object.assign(responseHeaders, result.value.responseHeaders);
        removeRequestHeaders = [...removeRequestHeaders, ...(result.value.removeRequestHeaders ?? [])];
      }
    }

    if (hasJwt) {
      const refused = b.jwtRefused[0];
      if (refused && carriesToken(attrs)) {
        jwt = {
          status: "invalid",
          reason: `RequestAuthentication ${refused.id} was refused: ${refused.refused?.message}`,
        };
        return finish(
          { allowed: false, reason: "jwt-invalid", status: 401, body: "Jwt verification fails" },
          false,
        );
      }
      const result = await this.#jwt.authenticate(b.jwtRules, attrs);
      // Headers the rules fill from tokens are never the client's (Envoy's sanitizeHeaders).
      const filled = result.status === "valid" ? result.addHeaders : {};
      const sanitize = headersToSanitize(b.jwtRules).filter((h) => !(h in filled));
      if (result.status === "invalid") {
        jwt = { status: "invalid", reason: result.reason };
        return finish(
          { allowed: false, reason: "jwt-invalid", status: 401, body: "Jwt verification fails" },
          false,
        );
      }
      if (result.status === "valid") {
        jwt = { status: "valid" };
        attrs = { ...attrs, request: { ...attrs.request, auth: result.auth } };
        Object.assign(requestHeaders, result.addHeaders);
        removeRequestHeaders = [...removeRequestHeaders, ...result.removeHeaders];
      }
      if (sanitize.length > 0) removeRequestHeaders = [...removeRequestHeaders, ...sanitize];
    }
    facts = new RequestFacts(attrs);

    const withCustom = custom ? { custom } : {};

    const denied = b.deny.firstRef(facts);
    if (denied) {
      const reason = denied.rule < 0 ? "policy-refused" : "deny-policy";
      return finish({ allowed: false, reason, matched: denied, ...withCustom });
    }
    if (b.allow.policies.length === 0)
      return finish({ allowed: true, reason: "no-allow-policies", ...withCustom });
    const allowed = b.allow.firstRef(facts);
    if (allowed) return finish({ allowed: true, reason: "allow-policy", matched: allowed, ...withCustom });
    const refused = b.allow.policies.find((p) => p.refused);
    if (refused)
      return finish({ allowed: false, reason: "policy-refused", matched: refRule(refused), ...withCustom });
    return finish({ allowed: false, reason: "no-matching-allow", ...withCustom });
  }

  /**
   * Sends request reports to every report adapter (each under its timeout). Failures are
   * returned and emitted on `adapterFailures$`, never thrown.
   */
  async report(reports: readonly RequestReport[]): Promise<AdapterFailure[]> {
    const regs = this.#adapters.ofKind("report");
    const results = await Promise.all(
      regs.map((reg) => this.#adapters.call(reg, (signal) => reg.adapter.report(reports, { signal }))),
    );
    return results.flatMap((r) => (r.ok ? [] : [r.failure]));
  }

  /** Closes adapters and completes the observables. */
  async close(): Promise<void> {
    this.#decisions.complete();
    this.#diagnostics$.complete();
    this.rateLimiter.close();
    await this.#adapters.close();
    await this.#quotaAdapter.adapter.close?.();
  }
}

/** Envoy's shadow rules: what the dry-run DENY and ALLOW policies would have decided. */
function dryRun(b: WorkloadPolicies, f: RequestFacts): DryRunResult[] {
  const out: DryRunResult[] = [];
  if (b.dryDeny.policies.length > 0) {
    const m = b.dryDeny.firstRef(f);
    out.push({ action: "DENY", wouldAllow: m === undefined, ...(m && { matched: m }) });
  }
  if (b.dryAllow.policies.length > 0) {
    const m = b.dryAllow.firstRef(f);
    out.push({ action: "ALLOW", wouldAllow: m !== undefined, ...(m && { matched: m }) });
  }
  return out;
}
