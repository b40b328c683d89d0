import type { RBAC } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Attributes,
  type AuthorizationPolicy,
  type Condition,
  type Operation,
  PolicyEngine,
  type Rule,
  type Source,
  toEnvoyRbac,
} from "../src/index.js";
import { type EnvoyRequest, engineDecision, matchingPolicies } from "./oracle/envoy-rbac.js";

// The differential test: for a random corpus of policies and requests, the engine's decision and
// Envoy's — the RBAC config toEnvoyRbac generates, evaluated by an oracle written from Envoy's RBAC
// semantics (test/oracle/envoy-rbac.ts, which shares no code with the engine or the generator) —
// must agree on every request, HTTP and TCP: allow/deny, the deciding action, AUDIT, and what the
// dry-run policies would have done.

const WORKLOAD = { namespace: "foo", labels: { app: "httpbin" } };

const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);
const someOf = <T>(values: readonly T[]) => fc.uniqueArray(pick(values), { minLength: 1, maxLength: 2 });

const PRINCIPALS = ["cluster.local/ns/default/sa/alice", "cluster.local/ns/default/*", "*/sa/bob", "*"];
const REQUEST_PRINCIPALS = ["https://issuer/alice", "https://issuer/*", "*/alice", "https://issuer", "*"];
const NAMESPACES = ["default", "prod-*", "*-eu", "*"];
const SERVICE_ACCOUNTS = ["default/alice", "prod-eu/bob", "carol"];
const CIDRS = ["10.0.0.0/8", "10.1.2.3", "192.168.0.0/16", "203.0.113.0/24"];
const HOSTS = ["httpbin.foo.svc", "*.svc", "HTTPBIN.FOO.SVC", "api.*", "httpbin.foo.svc:*", "*"];
const PORTS = ["8080", "9090"];
const METHODS = ["GET", "POST", "*"];
const PATHS = ["/info", "/info*", "*.png", "/users/{*}/profile", "/files/{**}", "/{**}/b.txt", "*"];
const CONDITIONS: [string, string[]][] = [
  ["request.headers[x-env]", ["prod", "stag*", "*"]],
  ["source.ip", ["10.0.0.0/8"]],
  ["remote.ip", ["203.0.113.0/24"]],
  ["source.namespace", ["default", "prod-*"]],
  ["source.principal", ["cluster.local/ns/default/sa/alice"]],
  ["source.serviceAccount", ["default/alice", "carol"]],
  ["request.experimental.inline.headers[x-tags]", ["green", "re*", "*"]],
  ["destination.ip", ["10.1.0.0/16", "10.2.0.1"]],
  ["destination.port", ["8080"]],
  ["connection.sni", ["*.svc", "httpbin.foo.svc"]],
  ["request.auth.principal", ["https://issuer/alice", "https://issuer/*"]],
  ["request.auth.audiences", ["api", "*"]],
  ["request.auth.presenter", ["cli"]],
  ["request.auth.claims[groups]", ["admin", "dev*"]],
  ["request.auth.claims[iss]", ["https://issuer"]],
  ["request.auth.claims[nested][level]", ["gold"]],
];

/** One field (or its not* twin) with one or two values from a pool. */
function fields(defs: [string, readonly string[]][]) {
  return fc
    .uniqueArray(
      fc
        .tuple(pick(defs), fc.boolean())
        .chain(([[name, pool], negate]) =>
          someOf(pool).map(
            (values) => [negate ? `not${name[0]?.toUpperCase()}${name.slice(1)}` : name, values] as const,
          ),
        ),
      { minLength: 1, maxLength: 2, selector: ([name]) => name },
    )
    .map((entries) => Object.fromEntries(entries));
}

const IDENTITY_FIELDS: [string, readonly string[]][] = [
  ["principals", PRINCIPALS],
  ["requestPrincipals", REQUEST_PRINCIPALS],
  ["namespaces", NAMESPACES],
];
const source = (custom: boolean): fc.Arbitrary<Source> =>
  fields([
    // Istio refuses principals, requestPrincipals, namespaces and serviceAccounts in a CUSTOM policy.
    ...(custom ? [] : IDENTITY_FIELDS),
    ["ipBlocks", CIDRS],
    ["remoteIpBlocks", CIDRS],
    ...(custom ? [] : ([["serviceAccounts", SERVICE_ACCOUNTS]] as [string, readonly string[]][])),
  ]).map((src: Record<string, string[]>) => {
    // Istio forbids serviceAccounts together with principals or namespaces.
    if (src.serviceAccounts || src.notServiceAccounts) {
      for (const k of ["principals", "notPrincipals", "namespaces", "notNamespaces"]) delete src[k];
    }
    return src as Source;
  });

const operation: fc.Arbitrary<Operation> = fields([
  ["hosts", HOSTS],
  ["ports", PORTS],
  ["methods", METHODS],
  ["paths", PATHS],
]) as fc.Arbitrary<Operation>;

const condition: fc.Arbitrary<Condition> = fc
  .tuple(pick(CONDITIONS), fc.boolean(), fc.boolean())
  .map(([[key, pool], useValues, useNot]) => ({
    key,
    ...(useValues || !useNot ? { values: [pool[0] as string] } : {}),
    ...(useNot ? { notValues: [pool[pool.length - 1] as string] } : {}),
  }));

// Istio refuses these `when` keys in a CUSTOM policy.
const notForCustom = (c: Condition) =>
  c.key === "source.namespace" ||
  c.key === "source.serviceAccount" ||
  c.key === "source.principal" ||
  !!c.key?.startsWith("request.auth.");

// `from` and `to`, when present, are not empty (Istio's validation).
const rule = (custom: boolean): fc.Arbitrary<Rule> =>
  fc.record(
    {
      from: fc.array(
        source(custom).map((s) => ({ source: s })),
        { minLength: 1, maxLength: 2 },
      ),
      to: fc.array(
        operation.map((o) => ({ operation: o })),
        { minLength: 1, maxLength: 2 },
      ),
      when: fc.array(custom ? condition.filter((c) => !notForCustom(c)) : condition, { maxLength: 2 }),
    },
    { requiredKeys: [] },
  );

const policy = (i: number): fc.Arbitrary<AuthorizationPolicy> =>
  fc
    .record({
      action: pick(["ALLOW", "ALLOW", "DENY", "DENY", "AUDIT", "CUSTOM"] as const),
      dryRun: fc.boolean(),
      namespace: pick(["foo", "foo", "istio-system", "bar"]),
      selector: pick([undefined, { app: "httpbin" }, { app: "other" }]),
    })
    .chain((p) => fc.array(rule(p.action === "CUSTOM"), { maxLength: 3 }).map((rules) => ({ ...p, rules })))
    .map(({ action, dryRun, rules, namespace, selector }) => ({
      metadata: {
        name: `p${i}`,
        namespace,
        ...(dryRun &&
          (action === "ALLOW" || action === "DENY") && { annotations: { "istio.io/dry-run": "true" } }),
      },
      spec: {
        action,
        rules,
        ...(selector && { selector: { matchLabels: selector } }),
        ...(action === "CUSTOM" && { provider: { name: "ext" } }),
      },
    }));

const policies = fc
  .integer({ min: 0, max: 5 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => policy(i))));

const request: fc.Arbitrary<Attributes> = fc
  .record({
    tcp: fc.boolean(),
    principal: fc.option(
      pick([
        "cluster.local/ns/default/sa/alice",
        "cluster.local/ns/prod-eu/sa/bob",
        "cluster.local/ns/other/sa/carol",
        "td/ns/foo/sa/carol",
      ]),
      { nil: undefined },
    ),
    ip: pick(["10.1.2.3", "10.9.9.9", "192.168.1.1", "172.16.0.1"]),
    remote: fc.option(pick(["203.0.113.9", "198.51.100.1"]), { nil: undefined }),
    method: pick(["GET", "POST", "DELETE"]),
    path: pick([
      "/info",
      "/info/x",
      "/img/a.png",
      "/users/alice/profile",
      "/users/a/b/profile",
      "/files/a/b.txt",
      "/b.txt",
      "/",
    ]),
    query: fc.option(pick(["a=1"]), { nil: undefined }),
    host: pick(["httpbin.foo.svc", "httpbin.foo.svc:8080", "api.example.com", "HTTPBIN.foo.svc"]),
    port: pick([8080, 9090]),
    destIp: pick(["10.1.0.1", "10.2.0.1"]),
    env: fc.option(pick(["prod", "staging", "dev", ""]), { nil: undefined }),
    tags: fc.option(pick(["blue", "red,green", "green,blue"]), { nil: undefined }),
    ext: pick(["allow", "deny"]),
    sni: fc.option(pick(["httpbin.foo.svc", "x.svc", "other"]), { nil: undefined }),
    auth: fc.option(
      fc.record({
        iss: pick(["https://issuer", "https://other"]),
        sub: pick(["alice", "bob"]),
        audiences: fc.subarray(["api", "web"]),
        presenter: fc.option(pick(["cli", "web"]), { nil: undefined }),
        groups: fc.subarray(["admin", "developers"]),
        level: fc.option(pick(["gold", "silver"]), { nil: undefined }),
      }),
      { nil: undefined },
    ),
  })
  .map((r) => ({
    source: { ...(r.principal !== undefined && { principal: r.principal }), ip: r.ip },
    ...(r.remote !== undefined && { remote: { ip: r.remote } }),
    destination: { ...WORKLOAD, port: r.port, ip: r.destIp },
    ...(!r.tcp && {
      request: {
        method: r.method,
        path: r.path,
        ...(r.query !== undefined && { query: r.query }),
        host: r.host,
        headers: {
          ...(r.env !== undefined && { "x-env": r.env }),
          ...(r.tags !== undefined && { "x-tags": r.tags }),
          "x-ext": r.ext,
        },
        ...(r.auth && {
          auth: {
            principal: `${r.auth.iss}/${r.auth.sub}`,
            audiences: r.auth.audiences,
            ...(r.auth.presenter !== undefined && { presenter: r.auth.presenter }),
            claims: {
              iss: r.auth.iss,
              sub: r.auth.sub,
              aud: r.auth.audiences.length === 1 ? r.auth.audiences[0] : r.auth.audiences,
              ...(r.auth.presenter !== undefined && { azp: r.auth.presenter }),
              groups: r.auth.groups,
              ...(r.auth.level !== undefined && { nested: { level: r.auth.level } }),
            },
          },
        }),
      },
    }),
    ...(r.sni !== undefined && { connection: { sni: r.sni } }),
  }));

/** The request as Envoy's filters would see it (the jwt_authn filter put the verified payload in metadata). */
function envoyView(a: Attributes): EnvoyRequest {
  const r = a.request;
  return {
    ...(a.source?.principal !== undefined && { peerUriSan: `spiffe://${a.source.principal}` }),
    ...(a.source?.ip !== undefined && { directRemoteIp: a.source.ip }),
    ...((a.remote?.ip ?? a.source?.ip) !== undefined && { remoteIp: a.remote?.ip ?? a.source?.ip }),
    ...(a.destination?.ip !== undefined && { destinationIp: a.destination.ip }),
    ...(a.destination?.port !== undefined && { destinationPort: a.destination.port }),
    ...(a.connection?.sni !== undefined && { sni: a.connection.sni }),
    ...(r && {
      headers: {
        ...r.headers,
        ...(r.host !== undefined && { ":authority": r.host }),
        ...(r.method !== undefined && { ":method": r.method }),
        ...(r.path !== undefined && { ":path": r.query ? `${r.path}?${r.query}` : r.path }),
      },
    }),
    metadata: r?.auth ? { "envoy.filters.http.jwt_authn": { payload: r.auth.claims } } : {},
  };
}

interface ChainResult {
  allowed: boolean;
  deniedBy?: string;
  logged: boolean;
  shadow: { prefix: string; allowed: boolean }[];
}

/**
 * Runs the generated filters in order as Envoy does: a CUSTOM filter's shadow match enables the
 * provider's ext_authz (which then decides), an enforcing engine that denies ends the chain, LOG
 * only records, shadow rules only report.
 */
function runChain(
  filters: readonly {
    action: string;
    config: { rules?: RBAC; shadowRules?: RBAC; shadowRulesStatPrefix: string };
  }[],
  req: EnvoyRequest,
  extAuthz: () => boolean,
): ChainResult {
  const out: ChainResult = { allowed: true, logged: false, shadow: [] };
  for (const f of filters) {
    const { rules, shadowRules } = f.config;
    if (f.action === "CUSTOM") {
      if (shadowRules && matchingPolicies(shadowRules, req).length > 0 && !extAuthz()) {
        return { ...out, allowed: false, deniedBy: "CUSTOM" };
      }
      continue;
    }
    if (shadowRules) {
      out.shadow.push({
        prefix: f.config.shadowRulesStatPrefix,
        allowed: engineDecision(shadowRules, req).allowed,
      });
    }
    if (!rules) continue;
    const d = engineDecision(rules, req);
    if (f.action === "AUDIT") out.logged ||= d.policy !== undefined;
    else if (!d.allowed) return { ...out, allowed: false, deniedBy: f.action };
  }
  return out;
}

describe("toEnvoyRbac differential test", () => {
  it("agrees with the engine on every request of a random corpus, HTTP and TCP", async () => {
    const outcomes = { allowed: 0, denied: 0, audited: 0, dryRun: 0, custom: 0, tcp: 0 };
    const extAuthzAllows = (a: Attributes) => a.request?.headers?.["x-ext"] !== "deny";
    await fc.assert(
      fc.asyncProperty(policies, fc.array(request, { minLength: 1, maxLength: 25 }), async (ps, reqs) => {
        const engine = new PolicyEngine({ authorizationPolicies: ps });
        expect(engine.diagnostics).toEqual([]);
        await engine.registerAdapter({
          name: "ext",
          kind: "check",
          check: async (a) => ({ allowed: extAuthzAllows(a) }),
        });
        const rbac = toEnvoyRbac(ps, { workload: WORKLOAD });
        for (const attrs of reqs) {
          const d = await engine.check(attrs);
          const tcp = attrs.request === undefined;
          const e = runChain(tcp ? rbac.network : rbac.http, envoyView(attrs), () => extAuthzAllows(attrs));
          const context = JSON.stringify({
            policies: ps,
            attrs,
            engine: { ...d, attributes: undefined },
            envoy: e,
          });
          expect(e.allowed, context).toBe(d.allowed);
          if (!d.allowed) {
            const expected = {
              "custom-denied": "CUSTOM",
              "deny-policy": "DENY",
              "no-matching-allow": "ALLOW",
            }[d.reason as string];
            expect(e.deniedBy, context).toBe(expected);
          }
          expect(e.logged, context).toBe(d.audited);
          for (const s of e.shadow) {
            const mine = d.dryRun.find((r) => `istio_dry_run_${r.action.toLowerCase()}_` === s.prefix);
            expect(mine?.wouldAllow, context).toBe(s.allowed);
            outcomes.dryRun++;
          }
          if (d.allowed) expect(e.shadow.length, context).toBe(d.dryRun.length);
          outcomes[d.allowed ? "allowed" : "denied"]++;
          if (d.audited) outcomes.audited++;
          if (d.reason === "custom-denied") outcomes.custom++;
          if (tcp) outcomes.tcp++;
        }
        await engine.close();
      }),
      { numRuns: 300, seed: 20261127 },
    );
    // The corpus exercises every outcome (it would prove little if everything were allowed).
    expect(outcomes.allowed).toBeGreaterThan(100);
    expect(outcomes.denied).toBeGreaterThan(100);
    expect(outcomes.audited).toBeGreaterThan(10);
    expect(outcomes.dryRun).toBeGreaterThan(10);
    expect(outcomes.custom).toBeGreaterThan(10);
    expect(outcomes.tcp).toBeGreaterThan(100);
  });
});
