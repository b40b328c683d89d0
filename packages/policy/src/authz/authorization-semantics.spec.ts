import { describe, expect, it } from "vitest";
import type { Attributes } from "../attributes.js";
import type { Decision } from "../decision.js";
import { PolicyEngine } from "../policy-engine.js";
import type { AuthorizationPolicy, Operation, Rule, Source } from "./authorization-policy.js";
import { createCelCheckAdapter } from "./cel-check-adapter.js";

const WORKLOAD = { namespace: "foo", labels: { app: "httpbin", version: "v1" } };

function req(overrides: {
  principal?: string;
  ip?: string;
  remoteIp?: string;
  method?: string;
  path?: string;
  host?: string;
  port?: number;
  headers?: Record<string, string>;
  auth?: { principal: string; claims?: Record<string, unknown>; audiences?: string[]; presenter?: string };
  sni?: string;
  namespace?: string;
  labels?: Record<string, string>;
  sourceNamespace?: string;
}): Attributes {
  return {
    source: {
      ...(overrides.principal !== undefined && { principal: overrides.principal }),
      ...(overrides.sourceNamespace !== undefined && { namespace: overrides.sourceNamespace }),
      ip: overrides.ip ?? "10.0.0.1",
    },
    ...(overrides.remoteIp !== undefined && { remote: { ip: overrides.remoteIp } }),
    destination: {
      namespace: overrides.namespace ?? WORKLOAD.namespace,
      labels: overrides.labels ?? WORKLOAD.labels,
      port: overrides.port ?? 8080,
      ip: "10.1.0.1",
    },
    request: {
      method: overrides.method ?? "GET",
      path: overrides.path ?? "/",
      host: overrides.host ?? "httpbin.foo.svc",
      headers: overrides.headers ?? {},
      ...(overrides.auth && {
        auth: {
          principal: overrides.auth.principal,
          audiences: overrides.auth.audiences ?? [],
          claims: overrides.auth.claims ?? {},
          ...(overrides.auth.presenter !== undefined && { presenter: overrides.auth.presenter }),
        },
      }),
    },
    ...(overrides.sni !== undefined && { connection: { sni: overrides.sni } }),
  };
}

function policy(
  name: string,
  spec: AuthorizationPolicy["spec"],
  meta: Partial<AuthorizationPolicy["metadata"]> = {},
): AuthorizationPolicy {
  return { metadata: { name, namespace: "foo", ...meta }, spec };
}

async function decide(policies: AuthorizationPolicy[], attrs: Attributes): Promise<Decision> {
  const engine = new PolicyEngine({ authorizationPolicies: policies });
  return engine.check(attrs);
}

/** An ALLOW policy with one rule; the request is allowed iff the rule matches. */
async function ruleMatches(rule: Rule, attrs: Attributes): Promise<boolean> {
  return (await decide([policy("p", { action: "ALLOW", rules: [rule] })], attrs)).allowed;
}
const from = (source: Source): Rule => ({ from: [{ source }] });
const to = (operation: Operation): Rule => ({ to: [{ operation }] });

describe("AuthorizationPolicy actions and order", () => {
  it("allows everything when no policy applies to the workload", async () => {
    const d = await decide([], req({}));
    expect(d).toMatchObject({ allowed: true, reason: "no-allow-policies" });
  });

  it("treats an ALLOW policy without rules as allow-nothing", async () => {
    const d = await decide([policy("allow-nothing", {})], req({}));
    expect(d).toMatchObject({ allowed: false, reason: "no-matching-allow", status: 403 });
  });

  it("treats a rule with no fields as matching every request", async () => {
    const d = await decide([policy("allow-all", { rules: [{}] })], req({}));
    expect(d).toMatchObject({
      allowed: true,
      reason: "allow-policy",
      matched: { policy: "foo/allow-all", rule: 0 },
    });
  });

  it("refuses a DENY policy without rules, as Istio's validation does, and fails closed", async () => {
    // Istio: "DENY action without `rules` is meaningless"; a refused DENY policy denies.
    const engine = new PolicyEngine();
    const [d] = engine.setAuthorizationPolicies([policy("deny-none", { action: "DENY" })]);
    expect(d).toMatchObject({ policy: "foo/deny-none", effect: "deny-all" });
    expect(d?.message).toContain("DENY action without `rules`");
    expect(await engine.check(req({}))).toMatchObject({ allowed: false, reason: "policy-refused" });
  });

  it("evaluates DENY before ALLOW", async () => {
    const d = await decide(
      [
        policy("allow-all", { action: "ALLOW", rules: [{}] }),
        policy("deny-post", { action: "DENY", rules: [to({ methods: ["POST"] })] }),
      ],
      req({ method: "POST" }),
    );
    expect(d).toMatchObject({
      allowed: false,
      reason: "deny-policy",
      matched: { policy: "foo/deny-post", action: "DENY", rule: 0 },
    });
  });

  it("denies when ALLOW policies exist and none matches", async () => {
    const d = await decide(
      [policy("allow-get", { rules: [to({ methods: ["GET"] })] })],
      req({ method: "DELETE" }),
    );
    expect(d).toMatchObject({ allowed: false, reason: "no-matching-allow" });
  });

  it("names the first matching rule of the first matching policy", async () => {
    const d = await decide(
      [policy("p", { rules: [to({ methods: ["PUT"] }), to({ paths: ["/a"] }), {}] })],
      req({ path: "/a" }),
    );
    expect(d.matched).toEqual({ policy: "foo/p", action: "ALLOW", rule: 1 });
  });

  it("evaluates CUSTOM before DENY: a denying provider wins over an ALLOW", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [
        policy("ext", { action: "CUSTOM", provider: { name: "opa" }, rules: [to({ paths: ["/admin*"] })] }),
        policy("allow-all", { rules: [{}] }),
      ],
    });
    const seen: string[] = [];
    await engine.registerAdapter({
      name: "opa",
      kind: "check",
      async check(a) {
        seen.push(a.request?.path ?? "");
        return { allowed: false, status: 418, body: "no", responseHeaders: { "x-why": "opa" } };
      },
    });
    const denied = await engine.check(req({ path: "/admin/x" }));
    expect(denied).toMatchObject({
      allowed: false,
      reason: "custom-denied",
      status: 418,
      body: "no",
      matched: { policy: "foo/ext", action: "CUSTOM" },
    });
    expect(denied.responseHeaders).toEqual({ "x-why": "opa" });
    const other = await engine.check(req({ path: "/public" }));
    expect(other).toMatchObject({ allowed: true, reason: "allow-policy" });
    expect(seen).toEqual(["/admin/x"]);
  });

  it("continues to DENY and ALLOW after a CUSTOM provider allows, keeping its header mutations", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [
        policy("ext", { action: "CUSTOM", provider: { name: "authz" }, rules: [{}] }),
        policy("deny-delete", { action: "DENY", rules: [to({ methods: ["DELETE"] })] }),
      ],
    });
    await engine.registerAdapter({
      name: "authz",
      kind: "check",
      check: async () => ({
        allowed: true,
        requestHeaders: { "x-user": "alice" },
        removeRequestHeaders: ["cookie"],
      }),
    });
    const ok = await engine.check(req({}));
    expect(ok).toMatchObject({
      allowed: true,
      requestHeaders: { "x-user": "alice" },
      removeRequestHeaders: ["cookie"],
    });
    expect(ok.custom?.provider).toBe("authz");
    expect((await engine.check(req({ method: "DELETE" }))).reason).toBe("deny-policy");
  });

  it("denies when a CUSTOM policy names an unregistered provider", async () => {
    const d = await decide(
      [policy("ext", { action: "CUSTOM", provider: { name: "missing" }, rules: [{}] })],
      req({}),
    );
    expect(d).toMatchObject({ allowed: false, reason: "custom-provider-missing" });
  });

  it("marks requests matched by AUDIT policies without changing the outcome", async () => {
    const policies = [policy("audit-admin", { action: "AUDIT", rules: [to({ paths: ["/admin"] })] })];
    const audited = await decide(policies, req({ path: "/admin" }));
    expect(audited).toMatchObject({
      allowed: true,
      audited: true,
      audit: { policy: "foo/audit-admin", action: "AUDIT", rule: 0 },
    });
    expect((await decide(policies, req({ path: "/x" }))).audited).toBe(false);
  });

  it("evaluates dry-run DENY policies without enforcing them", async () => {
    const dry = policy(
      "dry-deny",
      { action: "DENY", rules: [to({ methods: ["GET"] })] },
      {
        annotations: { "istio.io/dry-run": "true" },
      },
    );
    const d = await decide([dry], req({}));
    expect(d.allowed).toBe(true);
    expect(d.dryRun).toEqual([
      { action: "DENY", wouldAllow: false, matched: { policy: "foo/dry-deny", action: "DENY", rule: 0 } },
    ]);
  });

  it("evaluates dry-run ALLOW policies without making the workload deny-by-default", async () => {
    const dry = policy(
      "dry-allow",
      { rules: [to({ methods: ["POST"] })] },
      { annotations: { "istio.io/dry-run": "true" } },
    );
    const d = await decide([dry], req({ method: "GET" }));
    expect(d).toMatchObject({ allowed: true, reason: "no-allow-policies" });
    expect(d.dryRun).toEqual([{ action: "ALLOW", wouldAllow: false }]);
    const post = await decide([dry], req({ method: "POST" }));
    expect(post.dryRun[0]).toMatchObject({ wouldAllow: true, matched: { policy: "foo/dry-allow" } });
  });

  it("emits every decision on decisions$ with the policy and rule", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [policy("deny-x", { action: "DENY", rules: [to({ paths: ["/x"] })] })],
    });
    const seen: Decision[] = [];
    const sub = engine.decisions$.subscribe((d) => seen.push(d));
    await engine.check(req({ path: "/x" }));
    await engine.check(req({ path: "/y" }));
    sub.unsubscribe();
    expect(seen.map((d) => [d.allowed, d.matched?.policy, d.matched?.rule])).toEqual([
      [false, "foo/deny-x", 0],
      [true, undefined, undefined],
    ]);
  });
});

describe("AuthorizationPolicy scoping", () => {
  const allowNothing = (meta: Partial<AuthorizationPolicy["metadata"]>, selector?: Record<string, string>) =>
    policy("allow-nothing", { ...(selector && { selector: { matchLabels: selector } }) }, meta);

  it("applies a namespace policy without selector to every workload of that namespace only", async () => {
    const p = [allowNothing({ namespace: "foo" })];
    expect((await decide(p, req({ namespace: "foo" }))).allowed).toBe(false);
    expect((await decide(p, req({ namespace: "bar" }))).allowed).toBe(true);
  });

  it("applies a selector policy only to workloads with all its labels", async () => {
    const p = [allowNothing({ namespace: "foo" }, { app: "httpbin", version: "v2" })];
    expect((await decide(p, req({ labels: { app: "httpbin", version: "v2", x: "y" } }))).allowed).toBe(false);
    expect((await decide(p, req({ labels: { app: "httpbin", version: "v1" } }))).allowed).toBe(true);
  });

  it("applies a root-namespace policy without selector mesh-wide", async () => {
    const p = [allowNothing({ namespace: "istio-system" })];
    expect((await decide(p, req({ namespace: "anything" }))).allowed).toBe(false);
  });

  it("applies a root-namespace selector policy to matching workloads in every namespace", async () => {
    const p = [allowNothing({ namespace: "istio-system" }, { app: "httpbin" })];
    expect((await decide(p, req({ namespace: "bar", labels: { app: "httpbin" } }))).allowed).toBe(false);
    expect((await decide(p, req({ namespace: "bar", labels: { app: "other" } }))).allowed).toBe(true);
  });

  it("honours a custom root namespace", async () => {
    const engine = new PolicyEngine({
      rootNamespace: "mesh-root",
      authorizationPolicies: [allowNothing({ namespace: "mesh-root" })],
    });
    expect((await engine.check(req({ namespace: "x" }))).allowed).toBe(false);
  });
});

describe("Source fields", () => {
  const alice = "cluster.local/ns/default/sa/alice";

  it("principals: exact, prefix, suffix and presence; spiffe:// is not part of the name", async () => {
    expect(await ruleMatches(from({ principals: [alice] }), req({ principal: alice }))).toBe(true);
    expect(
      await ruleMatches(from({ principals: ["cluster.local/ns/default/*"] }), req({ principal: alice })),
    ).toBe(true);
    expect(await ruleMatches(from({ principals: ["*/sa/alice"] }), req({ principal: alice }))).toBe(true);
    expect(await ruleMatches(from({ principals: ["*"] }), req({ principal: alice }))).toBe(true);
    expect(await ruleMatches(from({ principals: ["*"] }), req({}))).toBe(false);
    expect(
      await ruleMatches(from({ principals: ["cluster.local/ns/default/sa/bob"] }), req({ principal: alice })),
    ).toBe(false);
    expect(await ruleMatches(from({ principals: [alice] }), req({ principal: `spiffe://${alice}` }))).toBe(
      true,
    );
  });

  it("notPrincipals matches when the principal matches none (including no principal)", async () => {
    expect(await ruleMatches(from({ notPrincipals: [alice] }), req({ principal: alice }))).toBe(false);
    expect(
      await ruleMatches(from({ notPrincipals: [alice] }), req({ principal: "cluster.local/ns/x/sa/bob" })),
    ).toBe(true);
    expect(await ruleMatches(from({ notPrincipals: ["*"] }), req({}))).toBe(true);
  });

  it("requestPrincipals and notRequestPrincipals match <iss>/<sub> of the JWT", async () => {
    const auth = { principal: "https://issuer.example/alice" };
    expect(await ruleMatches(from({ requestPrincipals: ["https://issuer.example/*"] }), req({ auth }))).toBe(
      true,
    );
    expect(await ruleMatches(from({ requestPrincipals: ["*"] }), req({}))).toBe(false);
    expect(await ruleMatches(from({ notRequestPrincipals: ["*"] }), req({}))).toBe(true);
    expect(
      await ruleMatches(from({ notRequestPrincipals: ["https://issuer.example/alice"] }), req({ auth })),
    ).toBe(false);
  });

  it("namespaces and notNamespaces use the namespace of the source principal", async () => {
    expect(await ruleMatches(from({ namespaces: ["default"] }), req({ principal: alice }))).toBe(true);
    expect(
      await ruleMatches(from({ namespaces: ["prod-*"] }), req({ principal: "td/ns/prod-eu/sa/x" })),
    ).toBe(true);
    expect(await ruleMatches(from({ namespaces: ["default"] }), req({}))).toBe(false);
    expect(await ruleMatches(from({ notNamespaces: ["default"] }), req({ principal: alice }))).toBe(false);
    expect(
      await ruleMatches(from({ notNamespaces: ["default"] }), req({ principal: "td/ns/other/sa/x" })),
    ).toBe(true);
  });

  it("serviceAccounts and notServiceAccounts match <namespace>/<sa> exactly", async () => {
    expect(await ruleMatches(from({ serviceAccounts: ["default/alice"] }), req({ principal: alice }))).toBe(
      true,
    );
    expect(await ruleMatches(from({ serviceAccounts: ["default/bob"] }), req({ principal: alice }))).toBe(
      false,
    );
    expect(
      await ruleMatches(from({ notServiceAccounts: ["default/alice"] }), req({ principal: alice })),
    ).toBe(false);
  });

  it("ipBlocks and notIpBlocks match the direct peer address by IP or CIDR (v4 and v6)", async () => {
    expect(await ruleMatches(from({ ipBlocks: ["10.0.0.0/8"] }), req({ ip: "10.2.3.4" }))).toBe(true);
    expect(await ruleMatches(from({ ipBlocks: ["10.2.3.4"] }), req({ ip: "10.2.3.5" }))).toBe(false);
    expect(await ruleMatches(from({ ipBlocks: ["2001:db8::/32"] }), req({ ip: "2001:db8::1" }))).toBe(true);
    expect(await ruleMatches(from({ notIpBlocks: ["10.0.0.0/8"] }), req({ ip: "192.168.1.1" }))).toBe(true);
    expect(await ruleMatches(from({ notIpBlocks: ["10.0.0.0/8"] }), req({ ip: "10.9.9.9" }))).toBe(false);
  });

  it("remoteIpBlocks and notRemoteIpBlocks match the original client, not the peer", async () => {
    const r = req({ ip: "10.0.0.1", remoteIp: "203.0.113.7" });
    expect(await ruleMatches(from({ remoteIpBlocks: ["203.0.113.0/24"] }), r)).toBe(true);
    expect(await ruleMatches(from({ remoteIpBlocks: ["10.0.0.0/8"] }), r)).toBe(false);
    expect(await ruleMatches(from({ notRemoteIpBlocks: ["203.0.113.0/24"] }), r)).toBe(false);
  });

  it("ANDs fields of one source and ORs the sources of a rule", async () => {
    const both = from({ principals: [alice], ipBlocks: ["10.0.0.0/8"] });
    expect(await ruleMatches(both, req({ principal: alice, ip: "10.1.1.1" }))).toBe(true);
    expect(await ruleMatches(both, req({ principal: alice, ip: "11.1.1.1" }))).toBe(false);
    const either: Rule = {
      from: [{ source: { principals: [alice] } }, { source: { ipBlocks: ["11.0.0.0/8"] } }],
    };
    expect(await ruleMatches(either, req({ ip: "11.1.1.1" }))).toBe(true);
  });
});

describe("Operation fields", () => {
  // Istio's HostMatcher (istio/istio pilot/pkg/security/authz/matcher/header.go) is a
  // case-insensitive match on :authority, port included: an exact host does not match host:port.
  it("hosts and notHosts: case-insensitive on :authority, the port part of the value", async () => {
    expect(await ruleMatches(to({ hosts: ["HTTPBIN.foo.svc"] }), req({ host: "httpbin.foo.svc" }))).toBe(
      true,
    );
    expect(await ruleMatches(to({ hosts: ["httpbin.foo.svc"] }), req({ host: "httpbin.foo.svc:8000" }))).toBe(
      false,
    );
    expect(
      await ruleMatches(to({ hosts: ["httpbin.foo.svc:*"] }), req({ host: "httpbin.foo.svc:8000" })),
    ).toBe(true);
    expect(await ruleMatches(to({ hosts: ["*.example.com"] }), req({ host: "a.example.com" }))).toBe(true);
    expect(await ruleMatches(to({ hosts: ["other"] }), req({}))).toBe(false);
    expect(await ruleMatches(to({ notHosts: ["httpbin.foo.svc"] }), req({}))).toBe(false);
  });

  it("ports and notPorts match the destination port", async () => {
    expect(await ruleMatches(to({ ports: ["8080"] }), req({ port: 8080 }))).toBe(true);
    expect(await ruleMatches(to({ ports: ["9090"] }), req({ port: 8080 }))).toBe(false);
    expect(await ruleMatches(to({ notPorts: ["8080"] }), req({ port: 8080 }))).toBe(false);
  });

  it("methods and notMethods", async () => {
    expect(await ruleMatches(to({ methods: ["GET", "HEAD"] }), req({ method: "HEAD" }))).toBe(true);
    expect(await ruleMatches(to({ methods: ["POST"] }), req({ method: "GET" }))).toBe(false);
    expect(await ruleMatches(to({ notMethods: ["GET"] }), req({ method: "GET" }))).toBe(false);
  });

  it("paths: exact, prefix, suffix, presence", async () => {
    expect(await ruleMatches(to({ paths: ["/info"] }), req({ path: "/info" }))).toBe(true);
    expect(await ruleMatches(to({ paths: ["/info"] }), req({ path: "/info/x" }))).toBe(false);
    expect(await ruleMatches(to({ paths: ["/info*"] }), req({ path: "/info/x" }))).toBe(true);
    expect(await ruleMatches(to({ paths: ["*.png"] }), req({ path: "/img/a.png" }))).toBe(true);
    expect(await ruleMatches(to({ paths: ["*"] }), req({ path: "/anything" }))).toBe(true);
  });

  it("paths: {*} matches exactly one segment, {**} the rest", async () => {
    const one = to({ paths: ["/users/{*}/profile"] });
    expect(await ruleMatches(one, req({ path: "/users/alice/profile" }))).toBe(true);
    expect(await ruleMatches(one, req({ path: "/users/a/b/profile" }))).toBe(false);
    expect(await ruleMatches(one, req({ path: "/users//profile" }))).toBe(false);
    const rest = to({ paths: ["/files/{**}"] });
    expect(await ruleMatches(rest, req({ path: "/files/a/b/c.txt" }))).toBe(true);
    expect(await ruleMatches(rest, req({ path: "/other/a" }))).toBe(false);
  });

  it("notPaths excludes matching paths", async () => {
    expect(await ruleMatches(to({ notPaths: ["/healthz"] }), req({ path: "/healthz" }))).toBe(false);
    expect(await ruleMatches(to({ notPaths: ["/healthz"] }), req({ path: "/api" }))).toBe(true);
  });

  it("ANDs fields of one operation and ORs the operations of a rule", async () => {
    const both = to({ methods: ["GET"], paths: ["/a"] });
    expect(await ruleMatches(both, req({ method: "GET", path: "/b" }))).toBe(false);
    const either: Rule = { to: [{ operation: { methods: ["POST"] } }, { operation: { paths: ["/b"] } }] };
    expect(await ruleMatches(either, req({ method: "GET", path: "/b" }))).toBe(true);
  });

  it("requires from, to and when to all match", async () => {
    const rule: Rule = {
      from: [{ source: { namespaces: ["default"] } }],
      to: [{ operation: { methods: ["GET"] } }],
      when: [{ key: "request.headers[x-env]", values: ["prod"] }],
    };
    const base = { principal: "td/ns/default/sa/a", headers: { "x-env": "prod" } };
    expect(await ruleMatches(rule, req(base))).toBe(true);
    expect(await ruleMatches(rule, req({ ...base, method: "POST" }))).toBe(false);
    expect(await ruleMatches(rule, req({ ...base, headers: {} }))).toBe(false);
    expect(await ruleMatches(rule, req({ ...base, principal: "td/ns/other/sa/a" }))).toBe(false);
  });
});

describe("when conditions", () => {
  const when = (key: string, values?: string[], notValues?: string[]): Rule => ({
    when: [{ key, ...(values && { values }), ...(notValues && { notValues }) }],
  });
  const claims = { groups: ["admin", "dev"], nested: { level: "gold" }, iss: "https://i" };
  const auth = { principal: "https://i/alice", claims, audiences: ["api", "web"], presenter: "cli" };

  it.each([
    ["request.headers[X-Env]", ["prod"], req({ headers: { "x-env": "prod" } }), true],
    ["request.headers[x-env]", ["prod*"], req({ headers: { "x-env": "staging" } }), false],
    ["source.ip", ["10.0.0.0/24"], req({ ip: "10.0.0.9" }), true],
    ["remote.ip", ["203.0.113.1"], req({ remoteIp: "203.0.113.1" }), true],
    ["source.namespace", ["default"], req({ principal: "td/ns/default/sa/a" }), true],
    ["source.principal", ["td/ns/default/*"], req({ principal: "td/ns/default/sa/a" }), true],
    ["destination.ip", ["10.1.0.0/16"], req({}), true],
    ["destination.port", ["8080"], req({ port: 8080 }), true],
    ["destination.port", ["9090"], req({ port: 8080 }), false],
    ["connection.sni", ["*.svc"], req({ sni: "httpbin.svc" }), true],
    ["request.auth.principal", ["https://i/alice"], req({ auth }), true],
    ["request.auth.audiences", ["web"], req({ auth }), true],
    ["request.auth.presenter", ["cli"], req({ auth }), true],
    ["request.auth.claims[groups]", ["admin"], req({ auth }), true],
    ["request.auth.claims[groups]", ["ops"], req({ auth }), false],
    ["request.auth.claims[nested][level]", ["gold"], req({ auth }), true],
    ["request.auth.claims[iss]", ["https://i"], req({}), false],
  ] as const)("%s in %j", async (key, values, attrs, expected) => {
    expect(await ruleMatches(when(key, [...values]), attrs)).toBe(expected);
  });

  it("notValues matches when the attribute has none of them (or is absent)", async () => {
    expect(
      await ruleMatches(
        when("request.headers[x-env]", undefined, ["prod"]),
        req({ headers: { "x-env": "prod" } }),
      ),
    ).toBe(false);
    expect(await ruleMatches(when("request.headers[x-env]", undefined, ["prod"]), req({}))).toBe(true);
  });

  it("ANDs every condition of a rule", async () => {
    const rule: Rule = {
      when: [
        { key: "request.headers[a]", values: ["1"] },
        { key: "request.headers[b]", values: ["2"] },
      ],
    };
    expect(await ruleMatches(rule, req({ headers: { a: "1", b: "2" } }))).toBe(true);
    expect(await ruleMatches(rule, req({ headers: { a: "1" } }))).toBe(false);
  });

  it("ANDs the policy's CEL condition (authz.meshlet.io/condition) with each rule", async () => {
    const conditioned = policy(
      "p",
      { action: "ALLOW", rules: [to({ paths: ["/a"] }), to({ paths: ["/b"] })] },
      {
        annotations: {
          "authz.meshlet.io/condition":
            'request.headers["x-tier"] == "gold" && request.method in ["GET", "HEAD"]',
        },
      },
    );
    const allowed = async (a: Attributes) => (await decide([conditioned], a)).allowed;
    expect(await allowed(req({ path: "/a", headers: { "x-tier": "gold" } }))).toBe(true);
    expect(await allowed(req({ path: "/b", headers: { "x-tier": "gold" } }))).toBe(true);
    expect(await allowed(req({ path: "/c", headers: { "x-tier": "gold" } }))).toBe(false);
    expect(await allowed(req({ path: "/a", headers: { "x-tier": "gold" }, method: "POST" }))).toBe(false);
    // A missing header is an evaluation error: an ALLOW condition does not match rather than throw.
    expect(await allowed(req({ path: "/a" }))).toBe(false);
  });
});

describe("CEL custom rules", () => {
  it("decides CUSTOM policies with a CEL expression", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [
        policy("cel", { action: "CUSTOM", provider: { name: "business-hours" }, rules: [{}] }),
      ],
    });
    await engine.registerAdapter(
      createCelCheckAdapter({
        name: "business-hours",
        allowIf: 'int(request.headers["x-hour"]) >= 9 && int(request.headers["x-hour"]) < 17',
        denyStatus: 429,
      }),
    );
    expect((await engine.check(req({ headers: { "x-hour": "10" } }))).allowed).toBe(true);
    expect(await engine.check(req({ headers: { "x-hour": "20" } }))).toMatchObject({
      allowed: false,
      status: 429,
    });
    expect((await engine.check(req({}))).allowed).toBe(false);
  });
});

describe("policy updates", () => {
  it("re-evaluates a policy object edited in place and set again", async () => {
    const p = policy("edit", { rules: [to({ paths: ["/a"] })] });
    const engine = new PolicyEngine({ authorizationPolicies: [p] });
    expect((await engine.check(req({ path: "/a" }))).allowed).toBe(true);
    (p.spec.rules?.[0]?.to?.[0]?.operation as Operation).paths = ["/b"];
    engine.setAuthorizationPolicies([p]);
    expect((await engine.check(req({ path: "/a" }))).allowed).toBe(false);
    expect((await engine.check(req({ path: "/b" }))).allowed).toBe(true);
  });
});
