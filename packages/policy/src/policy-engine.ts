import { Subject } from "rxjs";
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
import { type AuthorizationPolicy, isDryRun, policyId } from "./authz/authorization-policy.js";
import { matchRule, type RequestView, requestView } from "./authz/rule-match.js";
import { appliesTo, type Workload } from "./authz/scope.js";
import { validateAuthorizationPolicy } from "./authz/validate-authorization-policy.js";
import { type Clock, systemClock } from "./clock.js";
import type { Decision, DryRunResult, PolicyRef } from "./decision.js";
import { type FetchLike, JwksCache } from "./jwt/jwks-cache.js";
import { JwtAuthenticator } from "./jwt/jwt-authenticator.js";
import { type RequestAuthentication, validateRequestAuthentication } from "./jwt/request-authentication.js";
import { type Logger, silentLogger } from "./logger.js";
import { PolicyError } from "./policy-error.js";
import { createMemoryQuotaAdapter } from "./ratelimit/memory-quota-adapter.js";
import type { RateLimitConfig } from "./ratelimit/rate-limit-config.js";
import { RateLimiter } from "./ratelimit/rate-limiter.js";

/** Options of {@link PolicyEngine}. */
export interface PolicyEngineOptions {
  /** Istio's root namespace: its policies without selector apply mesh-wide. Default `istio-system`. */
  rootNamespace?: string;
  authorizationPolicies?: AuthorizationPolicy[];
  requestAuthentications?: RequestAuthentication[];
  rateLimits?: RateLimitConfig[];
  clock?: Clock;
  logger?: Logger;
  /** Used to fetch JWKS URIs (default: global `fetch`). */
  fetch?: FetchLike;
  /** JWKS refresh interval, ms (default 20 min). */
  jwksRefreshIntervalMs?: number;
}

/** What the evaluation steps decide; `finish` adds the rest of a {@link Decision}. */
type Outcome = Pick<Decision, "allowed" | "reason" | "matched" | "custom"> &
  Partial<Pick<Decision, "status" | "body">>;

interface Buckets {
  custom: AuthorizationPolicy[];
  deny: AuthorizationPolicy[];
  allow: AuthorizationPolicy[];
  audit: AuthorizationPolicy[];
  dryDeny: AuthorizationPolicy[];
  dryAllow: AuthorizationPolicy[];
  jwtRules: NonNullable<RequestAuthentication["spec"]["jwtRules"]>;
}

function firstMatch(
  policies: AuthorizationPolicy[],
  attrs: Attributes,
  view: RequestView,
): PolicyRef | undefined {
  for (const p of policies) {
    const rules = p.spec.rules ?? [];
    for (let i = 0; i < rules.length; i++) {
      if (matchRule(rules[i]!, attrs, view))
        return { policy: policyId(p), action: p.spec.action ?? "ALLOW", rule: i };
    }
  }
  return undefined;
}

/**
 * The policy engine: Istio's AuthorizationPolicy (CUSTOM → DENY → ALLOW, AUDIT, dry-run) and
 * RequestAuthentication (JWT) semantics over an attribute bag, Envoy's rate-limit model, and
 * Mixer-style adapters. Use it in-process with {@link PolicyEngine.check}, or behind Envoy with
 * `ExtAuthzServer` and `RateLimitServer`.
 */
export class PolicyEngine {
  readonly #rootNamespace: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #adapters = new AdapterRegistry();
  readonly #jwt: JwtAuthenticator;
  readonly #decisions = new Subject<Decision>();
  #policies: AuthorizationPolicy[] = [];
  #requestAuthns: RequestAuthentication[] = [];
  #byWorkload = new Map<string, Buckets>();
  #quotaAdapter: RegisteredAdapter<QuotaAdapter>;

  /** Every authorization decision, naming the policy and rule that made it. */
  readonly decisions$ = this.#decisions.asObservable();
  /** Every adapter error and timeout. */
  readonly adapterFailures$ = this.#adapters.failures$;
  /** Rate limits and quota over the registered quota adapter. */
  readonly rateLimiter: RateLimiter;

  constructor(options: PolicyEngineOptions = {}) {
    this.#rootNamespace = options.rootNamespace ?? "istio-system";
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
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
    };
    this.rateLimiter = new RateLimiter(this.#adapters, () => this.#quotaAdapter, this.#clock);
    if (options.authorizationPolicies) this.setAuthorizationPolicies(options.authorizationPolicies);
    if (options.requestAuthentications) this.setRequestAuthentications(options.requestAuthentications);
    if (options.rateLimits) this.rateLimiter.setConfig(options.rateLimits);
  }

  /**
   * Replaces all AuthorizationPolicies. Every policy is validated first: on error nothing changes.
   * @throws PolicyError `invalid-policy`.
   */
  setAuthorizationPolicies(policies: readonly AuthorizationPolicy[]): void {
    const seen = new Set<string>();
    for (const p of policies) {
      validateAuthorizationPolicy(p);
      const id = policyId(p);
      if (seen.has(id)) throw new PolicyError("invalid-policy", `AuthorizationPolicy ${id} is given twice`);
      seen.add(id);
    }
    this.#policies = [...policies];
    this.#byWorkload.clear();
  }

  /**
   * Replaces all RequestAuthentications (validated first; on error nothing changes).
   * @throws PolicyError `invalid-policy`.
   */
  setRequestAuthentications(resources: readonly RequestAuthentication[]): void {
    for (const r of resources) validateRequestAuthentication(r);
    this.#requestAuthns = [...resources];
    this.#byWorkload.clear();
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

  #buckets(attrs: Attributes): Buckets {
    const workload: Workload = {
      namespace: attrs.destination?.namespace ?? "default",
      labels: attrs.destination?.labels ?? {},
    };
    const key = `${workload.namespace}\u0000${JSON.stringify(workload.labels)}`;
    const cached = this.#byWorkload.get(key);
    if (cached) return cached;
    const b: Buckets = {
      custom: [],
      deny: [],
      allow: [],
      audit: [],
      dryDeny: [],
      dryAllow: [],
      jwtRules: [],
    };
    for (const p of this.#policies) {
      if (!appliesTo(p, workload, this.#rootNamespace)) continue;
      const action = p.spec.action ?? "ALLOW";
      if (isDryRun(p)) (action === "DENY" ? b.dryDeny : b.dryAllow).push(p);
      else if (action === "CUSTOM") b.custom.push(p);
      else if (action === "DENY") b.deny.push(p);
      else if (action === "AUDIT") b.audit.push(p);
      else b.allow.push(p);
    }
    for (const ra of this.#requestAuthns) {
      if (appliesTo(ra, workload, this.#rootNamespace)) b.jwtRules.push(...(ra.spec.jwtRules ?? []));
    }
    if (this.#byWorkload.size > 10_000) this.#byWorkload.clear();
    this.#byWorkload.set(key, b);
    return b;
  }

  /**
   * Decides one request. Order (Istio): JWT verification (an invalid token denies with 401), then
   * CUSTOM, DENY, ALLOW; AUDIT and dry-run policies are evaluated alongside and reported without
   * affecting the outcome. Never throws for a request: adapter errors follow their failure policy
   * and are listed in the decision.
   */
  async check(attributes: Attributes): Promise<Decision> {
    const started = performance.now();
    const b = this.#buckets(attributes);
    let attrs = attributes;
    // Derived once per check (after JWT verification has set request.auth).
    let view = requestView(attrs);
    const requestHeaders: Record<string, string> = {};
    const responseHeaders: Record<string, string> = {};
    let removeRequestHeaders: string[] = [];
    const failures: AdapterFailure[] = [];
    let jwt: Decision["jwt"] = { status: "none" };
    const finish = (d: Outcome, withShadow = true): Decision => {
      const audit = withShadow ? firstMatch(b.audit, attrs, view) : undefined;
      const decision: Decision = {
        status: d.allowed ? 200 : 403,
        body: d.allowed ? "" : "RBAC: access denied",
        ...d,
        audited: audit !== undefined,
        ...(audit && { audit }),
        dryRun: withShadow ? this.#dryRun(b, attrs, view) : [],
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

    if (b.jwtRules.length > 0) {
      const { auth: _untrusted, ...request } = attrs.request ?? {};
      attrs = { ...attrs, request };
      view = requestView(attrs);
      const result = await this.#jwt.authenticate(b.jwtRules, attrs);
      if (result.status === "invalid") {
        jwt = { status: "invalid", reason: result.reason };
        return finish(
          { allowed: false, reason: "jwt-invalid", status: 401, body: "Jwt verification fails" },
          false,
        );
      }
      if (result.status === "valid") {
        jwt = { status: "valid" };
        attrs = { ...attrs, request: { ...request, auth: result.auth } };
        view = requestView(attrs);
        Object.assign(requestHeaders, result.addHeaders);
        removeRequestHeaders = result.removeHeaders;
      }
    }

    let custom: Decision["custom"];
    const calledProviders = new Set<string>();
    for (const p of b.custom) {
      const ref = firstMatch([p], attrs, view);
      if (!ref) continue;
      const provider = p.spec.provider?.name as string;
      if (calledProviders.has(provider)) continue;
      calledProviders.add(provider);
      const reg = this.#adapters.get(provider, "check");
      if (!reg) {
        this.#logger.error(
          `AuthorizationPolicy ${ref.policy}: CUSTOM provider "${provider}" is not registered`,
        );
        return finish({ allowed: false, reason: "custom-provider-missing", matched: ref });
      }
      const result = await this.#adapters.call(reg, (signal) =>
        (reg.adapter as CheckAdapter).check(attrs, { signal }),
      );
      if (!result.ok) {
        failures.push(result.failure);
        if (result.failure.failurePolicy === "fail-closed") {
          return finish({ allowed: false, reason: "custom-provider-failed", matched: ref });
        }
        continue;
      }
      custom = { provider, result: result.value };
      if (!result.value.allowed) {
        Object.assign(responseHeaders, result.value.responseHeaders);
        return finish({
          allowed: false,
          reason: "custom-denied",
          matched: ref,
          custom,
          status: result.value.status ?? 403,
          body: result.value.body ?? "",
        });
      }
      Object.assign(requestHeaders, result.value.requestHeaders);
      Object.assign(responseHeaders, result.value.responseHeaders);
      removeRequestHeaders = [...removeRequestHeaders, ...(result.value.removeRequestHeaders ?? [])];
    }
    const withCustom = custom ? { custom } : {};

    const denied = firstMatch(b.deny, attrs, view);
    if (denied) return finish({ allowed: false, reason: "deny-policy", matched: denied, ...withCustom });
    if (b.allow.length === 0) return finish({ allowed: true, reason: "no-allow-policies", ...withCustom });
    const allowed = firstMatch(b.allow, attrs, view);
    if (allowed) return finish({ allowed: true, reason: "allow-policy", matched: allowed, ...withCustom });
    return finish({ allowed: false, reason: "no-matching-allow", ...withCustom });
  }

  /** Envoy's shadow rules: what the dry-run DENY and ALLOW policies would have decided. */
  #dryRun(b: Buckets, attrs: Attributes, view: RequestView): DryRunResult[] {
    const out: DryRunResult[] = [];
    if (b.dryDeny.length > 0) {
      const m = firstMatch(b.dryDeny, attrs, view);
      out.push({ action: "DENY", wouldAllow: m === undefined, ...(m && { matched: m }) });
    }
    if (b.dryAllow.length > 0) {
      const m = firstMatch(b.dryAllow, attrs, view);
      out.push({ action: "ALLOW", wouldAllow: m !== undefined, ...(m && { matched: m }) });
    }
    return out;
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
    this.rateLimiter.close();
    await this.#adapters.close();
    await this.#quotaAdapter.adapter.close?.();
  }
}
