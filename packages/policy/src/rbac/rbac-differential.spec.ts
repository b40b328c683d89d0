import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Attributes } from "../attributes.js";
import type {
  AuthorizationPolicy,
  Condition,
  Operation,
  Rule,
  Source,
} from "../authz/authorization-policy.js";
import { PolicyEngine } from "../policy-engine.js";
import { evaluateRbac } from "./evaluate-rbac.js";
import { toEnvoyRbac } from "./to-envoy-rbac.js";

// The differential test: for a random corpus of policies and requests, the engine's decision and
// an evaluation of the Envoy RBAC config generated for the same policies must agree on every
// request (allow/deny, the deciding action, AUDIT, and what dry-run policies would have done).
const WORKLOAD = { namespace: "foo", labels: { app: "httpbin" } };

const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);
const someOf = <T>(values: readonly T[]) => fc.uniqueArray(pick(values), { minLength: 1, maxLength: 2 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const PRINCIPALS = ["cluster.local/ns/default/sa/alice", "cluster.local/ns/default/*", "*/sa/bob", "*"];
const REQUEST_PRINCIPALS = ["https://issuer/alice", "https://issuer/*", "*"];
const NAMESPACES = ["default", "prod-*", "*-eu", "*"];
const SERVICE_ACCOUNTS = ["default/alice", "prod-eu/bob"];
const CIDRS = ["10.0.0.0/8", "10.1.2.3", "192.168.0.0/16", "203.0.113.0/24"];
const HOSTS = ["httpbin.foo.svc", "*.svc", "HTTPBIN.FOO.SVC", "api.*"];
const PORTS = ["8080", "9090"];
const METHODS = ["GET", "POST", "*"];
const PATHS = ["/info", "/info*", "*.png", "/users/{*}/profile", "/files/{**}", "*"];
const CONDITIONS: [string, string[]][] = [
  ["request.headers[x-env]", ["prod", "stag*"]],
  ["source.ip", ["10.0.0.0/8"]],
  ["remote.ip", ["203.0.113.0/24"]],
  ["source.namespace", ["default", "prod-*"]],
  ["source.principal", ["cluster.local/ns/default/sa/alice"]],
  ["destination.ip", ["10.1.0.0/16", "10.2.0.1"]],
  ["destination.port", ["8080"]],
  ["connection.sni", ["*.svc", "httpbin.foo.svc"]],
  ["request.auth.principal", ["https://issuer/alice"]],
  ["request.auth.audiences", ["api"]],
  ["request.auth.presenter", ["cli"]],
  ["request.auth.claims[groups]", ["admin"]],
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

const source: fc.Arbitrary<Source> = fields([
  ["principals", PRINCIPALS],
  ["requestPrincipals", REQUEST_PRINCIPALS],
  ["namespaces", NAMESPACES],
  ["ipBlocks", CIDRS],
  ["remoteIpBlocks", CIDRS],
  ["serviceAccounts", SERVICE_ACCOUNTS],
]).map((src: Record<string, string[]>) => {
  // Istio forbids serviceAccounts together with principals.
  if (src.serviceAccounts || src.notServiceAccounts) {
    delete src.principals;
    delete src.notPrincipals;
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

const rule: fc.Arbitrary<Rule> = fc.record(
  {
    from: fc.array(
      source.map((s) => ({ source: s })),
      { maxLength: 2 },
    ),
    to: fc.array(
      operation.map((o) => ({ operation: o })),
      { maxLength: 2 },
    ),
    when: fc.array(condition, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const policy = (i: number): fc.Arbitrary<AuthorizationPolicy> =>
  fc
    .record({
      action: pick(["ALLOW", "ALLOW", "DENY", "DENY", "AUDIT", "CUSTOM"] as const),
      dryRun: fc.boolean(),
      rules: fc.array(rule, { maxLength: 3 }),
      namespace: pick(["foo", "foo", "istio-system", "bar"]),
      selector: pick([undefined, { app: "httpbin" }, { app: "other" }]),
    })
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
    principal: opt(
      pick([
        "cluster.local/ns/default/sa/alice",
        "cluster.local/ns/prod-eu/sa/bob",
        "cluster.local/ns/other/sa/carol",
      ]),
    ),
    ip: pick(["10.1.2.3", "10.9.9.9", "192.168.1.1", "172.16.0.1"]),
    remote: opt(pick(["203.0.113.9", "198.51.100.1"])),
    method: pick(["GET", "POST", "DELETE"]),
    path: pick([
      "/info",
      "/info/x",
      "/img/a.png",
      "/users/alice/profile",
      "/users/a/b/profile",
      "/files/a/b.txt",
      "/",
    ]),
    host: pick(["httpbin.foo.svc", "httpbin.foo.svc:8080", "api.example.com", "HTTPBIN.foo.svc"]),
    port: pick([8080, 9090]),
    destIp: pick(["10.1.0.1", "10.2.0.1"]),
    env: opt(pick(["prod", "staging", "dev"])),
    ext: pick(["allow", "deny"]),
    sni: opt(pick(["httpbin.foo.svc", "x.svc", "other"])),
    auth: opt(
      fc.record({
        principal: pick(["https://issuer/alice", "https://issuer/bob", "https://other/alice"]),
        audiences: fc.subarray(["api", "web"]),
        presenter: opt(pick(["cli", "web"])),
        groups: fc.subarray(["admin", "dev"]),
        level: opt(pick(["gold", "silver"])),
      }),
    ),
  })
  .map((r) => ({
    source: { ...(r.principal !== undefined && { principal: r.principal }), ip: r.ip },
    ...(r.remote !== undefined && { remote: { ip: r.remote } }),
    destination: { ...WORKLOAD, port: r.port, ip: r.destIp },
    request: {
      method: r.method,
      path: r.path,
      host: r.host,
      headers: { ...(r.env !== undefined && { "x-env": r.env }), "x-ext": r.ext },
      ...(r.auth && {
        auth: {
          principal: r.auth.principal,
          audiences: r.auth.audiences,
          ...(r.auth.presenter !== undefined && { presenter: r.auth.presenter }),
          claims: {
            iss: r.auth.principal.replace(/\/[^/]+$/, ""),
            groups: r.auth.groups,
            ...(r.auth.level !== undefined && { nested: { level: r.auth.level } }),
          },
        },
      }),
    },
    ...(r.sni !== undefined && { connection: { sni: r.sni } }),
  }));

describe("toEnvoyRbac differential test", () => {
  it("agrees with the engine on every request of a random corpus", async () => {
    const outcomes = { allowed: 0, denied: 0, audited: 0, dryRun: 0, custom: 0 };
    const extAuthz = (a: Attributes) => a.request?.headers?.["x-ext"] !== "deny";
    await fc.assert(
      fc.asyncProperty(policies, fc.array(request, { minLength: 1, maxLength: 25 }), async (ps, reqs) => {
        const engine = new PolicyEngine({ authorizationPolicies: ps });
        await engine.registerAdapter({
          name: "ext",
          kind: "check",
          check: async (a) => ({ allowed: extAuthz(a) }),
        });
        const rbac = toEnvoyRbac(ps, { workload: WORKLOAD });
        for (const attrs of reqs) {
          const d = await engine.check(attrs);
          const e = evaluateRbac(rbac.http, attrs, extAuthz);
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
            expect(e.deniedBy?.action, context).toBe(expected);
          }
          expect(e.logged !== undefined, context).toBe(d.audited);
          for (const s of e.shadow.filter((x) => x.prefix.startsWith("istio_dry_run_"))) {
            const mine = d.dryRun.find((r) => r.action === s.action);
            expect(mine?.wouldAllow, context).toBe(s.allowed);
            outcomes.dryRun++;
          }
          if (d.allowed)
            expect(e.shadow.filter((x) => x.prefix.startsWith("istio_dry_run_")).length).toBe(
              d.dryRun.length,
            );
          outcomes[d.allowed ? "allowed" : "denied"]++;
          if (d.audited) outcomes.audited++;
          if (d.reason === "custom-denied") outcomes.custom++;
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
  });
});
