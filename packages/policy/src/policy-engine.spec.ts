import { describe, expect, it } from "vitest";
import type { Attributes } from "./attributes.js";
import type { AuthorizationPolicy } from "./authz/authorization-policy.js";
import { PolicyEngine } from "./policy-engine.js";
import { PolicyError } from "./policy-error.js";

const ap = (name: string, spec: AuthorizationPolicy["spec"], namespace = "foo"): AuthorizationPolicy => ({
  metadata: { name, namespace },
  spec,
});
const httpbin = { namespace: "foo", labels: { app: "httpbin" } };
const req = (
  o: Partial<{
    path: string;
    principal: string;
    headers: Record<string, string>;
    labels: Record<string, string>;
  }> = {},
): Attributes => ({
  source: { ip: "10.0.0.1", ...(o.principal !== undefined && { principal: o.principal }) },
  destination: { ...httpbin, ...(o.labels && { labels: o.labels }) },
  request: { method: "GET", path: o.path ?? "/", host: "httpbin.foo.svc", headers: o.headers ?? {} },
});

describe("setAuthorizationPolicies never freezes policy updates", () => {
  // The case of issue 15: `meshlet validate` accepted these and setAuthorizationPolicies threw,
  // so no later update could apply.
  const badCidr = ap("bad-cidr", {
    action: "DENY",
    rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }],
  });
  const badWhen = {
    metadata: { name: "bad-when", namespace: "bar" },
    spec: { rules: [{ wehn: [{ key: "request.headers[x]", values: ["1"] }] }] },
  } as unknown as AuthorizationPolicy;
  const good = ap("allow-info", { rules: [{ to: [{ operation: { paths: ["/info"] } }] }] }, "baz");

  it("applies the good policies and reports each bad one, naming it", async () => {
    const engine = new PolicyEngine();
    const diagnostics = engine.setAuthorizationPolicies([badCidr, badWhen, good]);
    expect(diagnostics.map((d) => [d.policy, d.error.code])).toEqual([
      ["foo/bad-cidr", "invalid-policy"],
      ["bar/bad-when", "invalid-policy"],
    ]);
    expect(diagnostics[0]?.message).toContain(
      "AuthorizationPolicy foo/bad-cidr: spec.rules[0].from[0].source.ipBlocks[0]",
    );
    expect(diagnostics[0]?.message).toContain("10.0.0.0/33");
    expect(diagnostics[1]?.message).toMatch(/AuthorizationPolicy bar\/bad-when: spec\.rules\[0\]/);
    expect(diagnostics[1]?.message).toContain("wehn");
    expect(diagnostics[0]?.error).toBeInstanceOf(PolicyError);
    expect(engine.diagnostics).toEqual(diagnostics);
    // The good policy applies.
    const baz = { ...req({ path: "/info" }), destination: { namespace: "baz", labels: {} } };
    expect((await engine.check(baz)).reason).toBe("allow-policy");
    // A later update with only good policies replaces everything and clears the diagnostics.
    expect(engine.setAuthorizationPolicies([good])).toEqual([]);
    expect((await engine.check(req({ path: "/x" }))).allowed).toBe(true);
  });

  it("fails closed where a refused policy applies: a DENY denies everything, an ALLOW allows nothing", async () => {
    const engine = new PolicyEngine();
    const [deny, allow] = engine.setAuthorizationPolicies([badCidr, badWhen]);
    expect(deny).toMatchObject({ effect: "deny-all" });
    expect(allow).toMatchObject({ effect: "allow-nothing" });
    expect(await engine.check(req())).toMatchObject({
      allowed: false,
      reason: "policy-refused",
      matched: { policy: "foo/bad-cidr", action: "DENY", rule: -1 },
    });
    const bar = { ...req(), destination: { namespace: "bar", labels: {} } };
    expect(await engine.check(bar)).toMatchObject({
      allowed: false,
      reason: "policy-refused",
      matched: { policy: "bar/bad-when" },
    });
    // Elsewhere nothing changes.
    expect((await engine.check({ ...req(), destination: { namespace: "qux", labels: {} } })).allowed).toBe(
      true,
    );
  });

  it("reports a second policy with the same namespace/name and applies the first", async () => {
    const engine = new PolicyEngine();
    const d = engine.setAuthorizationPolicies([ap("p", { rules: [{}] }), ap("p", {})]);
    expect(d).toMatchObject([{ policy: "foo/p", effect: "not-applied" }]);
    expect((await engine.check(req())).reason).toBe("allow-policy");
  });

  it("reports them on diagnostics$ and in the logger", () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
    const engine = new PolicyEngine({ logger });
    const seen: number[] = [];
    engine.diagnostics$.subscribe((d) => seen.push(d.length));
    engine.setAuthorizationPolicies([badCidr]);
    engine.setAuthorizationPolicies([]);
    expect(seen).toEqual([1, 0]);
    expect(warnings[0]).toMatch(/AuthorizationPolicy foo\/bad-cidr refused \(deny-all\)/);
  });
});

describe("the engine decides on the workload it is told, never a default", () => {
  it("denies a request without a destination namespace", async () => {
    const engine = new PolicyEngine();
    const d = await engine.check({ request: { path: "/" } });
    expect(d).toMatchObject({ allowed: false, reason: "missing-workload" });
  });
});

describe("targetRefs as Istio binds them", () => {
  const gwLabels = { "gateway.networking.k8s.io/gateway-name": "edge" };
  const gateway = (kind: string, group?: string, name = "edge") =>
    ap("target", {
      targetRefs: [{ kind, name, ...(group !== undefined && { group }) }],
      rules: [{ to: [{ operation: { paths: ["/ok"] } }] }],
    });

  it("applies a Gateway-targeted policy to that Gateway's workloads only, never namespace-wide", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [gateway("Gateway", "gateway.networking.k8s.io")],
    });
    expect(engine.diagnostics).toEqual([]);
    expect((await engine.check(req({ labels: gwLabels, path: "/no" }))).reason).toBe("no-matching-allow");
    expect((await engine.check(req({ labels: gwLabels, path: "/ok" }))).reason).toBe("allow-policy");
    // Another gateway and an ordinary workload of the namespace are untouched.
    expect(
      (await engine.check(req({ labels: { "gateway.networking.k8s.io/gateway-name": "other" } }))).reason,
    ).toBe("no-allow-policies");
    expect((await engine.check(req({ path: "/no" }))).reason).toBe("no-allow-policies");
  });

  // Service and ServiceEntry targets are valid Istio (waypoints bind them; meshlet cannot):
  // `unsupported`. GatewayClass and Deployment targets Istio's validation refuses
  // (@meshlet/config): `invalid-policy`. Neither is applied, let alone namespace-wide.
  it.each([
    ["Service", "", "unsupported"],
    ["ServiceEntry", "networking.istio.io", "unsupported"],
    ["GatewayClass", "gateway.networking.k8s.io", "invalid-policy"],
    ["Deployment", "apps", "invalid-policy"],
  ])(
    "refuses a %s target meshlet cannot bind, and does not apply the policy namespace-wide",
    async (kind, group, code) => {
      const engine = new PolicyEngine();
      const [d] = engine.setAuthorizationPolicies([gateway(kind, group)]);
      expect(d).toMatchObject({ policy: "foo/target", effect: "not-applied" });
      expect(d?.error.code).toBe(code);
      expect(d?.message).toContain("targetRefs[0]");
      expect((await engine.check(req({ path: "/no" }))).allowed).toBe(true);
    },
  );

  it("refuses targetRefs combined with a selector, and a Gateway of another namespace", () => {
    const engine = new PolicyEngine();
    const both = ap("both", {
      selector: { matchLabels: { app: "x" } },
      targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "edge" }],
    });
    const cross = ap("cross", {
      targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "edge", namespace: "other" }],
    });
    const d = engine.setAuthorizationPolicies([both, cross]);
    expect(d.map((x) => x.policy)).toEqual(["foo/both", "foo/cross"]);
    expect(d[0]?.message).toMatch(/selector|targetRefs/);
  });
});

describe("CEL conditions: type-checked when policies load, fail closed when they cannot be decided", () => {
  it.each([
    ['request.hedaers["x-tier"] == "gold"', "undefined field 'hedaers'"],
    ['requset.path == "/"', "undeclared reference to 'requset'"],
    ['request.path.startWith("/a")', "undeclared reference to method 'startWith'"],
    ['destination.port == "8080"', "no matching overload for '=='"],
    ["request.path", "must be a bool"],
  ])("refuses %s at load (%s)", async (cel, why) => {
    const engine = new PolicyEngine();
    const [d] = engine.setAuthorizationPolicies([ap("cel", { rules: [{ when: [{ cel }] }] })]);
    expect(d?.error.code).toBe("invalid-cel");
    expect(d?.message).toContain("AuthorizationPolicy foo/cel: spec.rules[0].when[0].cel");
    expect(d?.message).toContain(why);
  });

  it("a DENY condition that errors at run time denies; an ALLOW one does not allow", async () => {
    // request.headers["x-tier"] is an error when the header is absent (CEL: no such key).
    const cel = 'request.headers["x-tier"] == "banned"';
    const deny = new PolicyEngine({
      authorizationPolicies: [ap("deny", { action: "DENY", rules: [{ when: [{ cel }] }] })],
    });
    expect(deny.diagnostics).toEqual([]);
    expect(await deny.check(req())).toMatchObject({ allowed: false, reason: "deny-policy" });
    expect((await deny.check(req({ headers: { "x-tier": "gold" } }))).allowed).toBe(true);
    expect((await deny.check(req({ headers: { "x-tier": "banned" } }))).allowed).toBe(false);
    const allow = new PolicyEngine({
      authorizationPolicies: [
        ap("allow", { rules: [{ when: [{ cel: 'request.headers["x-tier"] == "gold"' }] }] }),
      ],
    });
    expect((await allow.check(req())).reason).toBe("no-matching-allow");
    expect((await allow.check(req({ headers: { "x-tier": "gold" } }))).allowed).toBe(true);
  });

  it("type-checks macros, the strings extension and claims", () => {
    const engine = new PolicyEngine();
    const ok = [
      'request.auth.claims["groups"].exists(g, g == "admin")',
      'request.path.lowerAscii().startsWith("/api") && size(request.headers) > 0',
      '"x" in request.headers && destination.port >= 8000 && source.namespace != "dev"',
      'has(request.headers.foo) || request.auth.audiences.all(a, a.endsWith(".svc"))',
    ];
    expect(
      engine.setAuthorizationPolicies(ok.map((cel, i) => ap(`c${i}`, { rules: [{ when: [{ cel }] }] }))),
    ).toEqual([]);
  });
});

describe("path templates and service accounts as Istio accepts them", () => {
  it("accepts {**} before other segments (/foo/{**}/bar) and matches across segments", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [ap("t", { rules: [{ to: [{ operation: { paths: ["/foo/{**}/bar"] } }] }] })],
    });
    expect(engine.diagnostics).toEqual([]);
    expect((await engine.check(req({ path: "/foo/a/b/bar" }))).allowed).toBe(true);
    expect((await engine.check(req({ path: "/foo/bar" }))).allowed).toBe(false);
  });

  it("accepts <serviceAccount> alone (the policy's namespace) and <namespace>/<serviceAccount>", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [
        ap("sa", { rules: [{ from: [{ source: { serviceAccounts: ["sleep", "other/bob"] } }] }] }),
      ],
    });
    expect(engine.diagnostics).toEqual([]);
    const allowed = async (principal: string) => (await engine.check(req({ principal }))).allowed;
    expect(await allowed("cluster.local/ns/foo/sa/sleep")).toBe(true);
    expect(await allowed("cluster.local/ns/other/sa/bob")).toBe(true);
    expect(await allowed("cluster.local/ns/bar/sa/sleep")).toBe(false);
    // Istio's regex: no `<sa>-suffix` matches, trailing key/value pairs do.
    expect(await allowed("cluster.local/ns/foo/sa/sleep-2")).toBe(false);
    expect(await allowed("cluster.local/ns/foo/sa/sleep/x/y")).toBe(true);
  });
});
