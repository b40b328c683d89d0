import {
  ConfigSnapshot,
  KindRegistry,
  type Origin,
  parseDocuments,
  type Resource,
  validateResource,
} from "@meshlet/config";
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

describe("CEL conditions (authz.meshlet.io/condition): type-checked at load, fail closed at run time", () => {
  const CONDITION = "authz.meshlet.io/condition";
  const PATH = `metadata.annotations["${CONDITION}"]`;
  const withCondition = (
    name: string,
    spec: AuthorizationPolicy["spec"],
    condition: string,
    namespace = "foo",
  ): AuthorizationPolicy => ({
    metadata: { name, namespace, annotations: { [CONDITION]: condition } },
    spec,
  });

  it.each([
    ['request.hedaers["x-tier"] == "gold"', "undefined field 'hedaers'"],
    ['requset.path == "/"', "undeclared reference to 'requset'"],
    ['request.path.startWith("/a")', "undeclared reference to method 'startWith'"],
    ['destination.port == "8080"', "no matching overload for '=='"],
    ["request.path", "must be a bool"],
    ["", "does not parse"],
  ])("refuses %j at load (%s), naming the annotation", async (cel, why) => {
    const engine = new PolicyEngine();
    const [d] = engine.setAuthorizationPolicies([withCondition("cel", { rules: [{}] }, cel)]);
    expect(d?.error.code).toBe("invalid-cel");
    expect(d?.path).toBe(PATH);
    expect(d?.message).toContain(`AuthorizationPolicy foo/cel: ${PATH}`);
    expect(d?.message).toContain(why);
  });

  it("names the policy's file:line when the caller gives its origins (a ConfigSnapshot)", async () => {
    const { documents } = parseDocuments(
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ok, namespace: foo }
spec: { rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: typo
  namespace: foo
  annotations:
    ${CONDITION}: 'request.hedaers["x"] == "1"'
spec:
  action: DENY
  rules: [{}]
`,
      { source: "files", file: "policies.yaml" },
    );
    const registry = new KindRegistry();
    const resources: Resource[] = [];
    const origins = new Map<Resource, Origin>();
    for (const doc of documents) {
      const { resource } = validateResource(doc.object, doc.origin, { registry });
      if (resource) {
        resources.push(resource);
        origins.set(resource, doc.origin);
      }
    }
    const snapshot = ConfigSnapshot.create(resources, { origins });
    const engine = new PolicyEngine();
    const diagnostics = engine.setAuthorizationPolicies(snapshot.list("AuthorizationPolicy"), {
      origins: snapshot,
    });
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ policy: "foo/typo", file: "policies.yaml", line: 6, path: PATH });
    expect(diagnostics[0]?.message).toMatch(/^policies\.yaml:6: AuthorizationPolicy foo\/typo: /);
    // The refused DENY policy fails closed on its workloads.
    expect(await engine.check(req())).toMatchObject({ allowed: false, reason: "policy-refused" });
  });

  it("ANDs the condition with every rule; a DENY condition that errors at run time denies", async () => {
    // request.headers["x-tier"] is an error when the header is absent (CEL: no such key).
    const deny = new PolicyEngine({
      authorizationPolicies: [
        withCondition(
          "deny",
          { action: "DENY", rules: [{ to: [{ operation: { paths: ["/admin"] } }] }] },
          'request.headers["x-tier"] == "banned"',
        ),
      ],
    });
    expect(deny.diagnostics).toEqual([]);
    const denied = async (o: Parameters<typeof req>[0]) => !(await deny.check(req(o))).allowed;
    expect(await denied({ path: "/admin" })).toBe(true); // error → matched
    expect(await denied({ path: "/admin", headers: { "x-tier": "gold" } })).toBe(false);
    expect(await denied({ path: "/admin", headers: { "x-tier": "banned" } })).toBe(true);
    expect(await denied({ path: "/info", headers: { "x-tier": "banned" } })).toBe(false); // rule false
    expect(await deny.check(req({ path: "/admin" }))).toMatchObject({
      reason: "deny-policy",
      matched: { policy: "foo/deny", rule: 0 },
    });
  });

  it("an ALLOW condition that errors at run time does not allow", async () => {
    const allow = new PolicyEngine({
      authorizationPolicies: [withCondition("allow", { rules: [{}] }, 'request.headers["x-tier"] == "gold"')],
    });
    expect((await allow.check(req())).reason).toBe("no-matching-allow");
    expect((await allow.check(req({ headers: { "x-tier": "gold" } }))).allowed).toBe(true);
    expect((await allow.check(req({ headers: { "x-tier": "silver" } }))).allowed).toBe(false);
  });

  it("on TCP the condition is HTTP-only: ALLOW rules never match, DENY rules apply without it", async () => {
    const tcp: Attributes = { source: { ip: "10.0.0.1" }, destination: { ...httpbin, port: 9000 } };
    const allow = new PolicyEngine({
      authorizationPolicies: [withCondition("allow", { rules: [{}] }, 'source.namespace != "dev"')],
    });
    expect((await allow.check(tcp)).allowed).toBe(false);
    const deny = new PolicyEngine({
      authorizationPolicies: [
        withCondition("deny", { action: "DENY", rules: [{}] }, 'request.method == "DELETE"'),
      ],
    });
    expect((await deny.check(tcp)).allowed).toBe(false);
    expect((await deny.check(req())).allowed).toBe(true);
  });

  it("decides whether a CUSTOM provider is asked (asked when the condition errors)", async () => {
    const engine = new PolicyEngine({
      authorizationPolicies: [
        withCondition(
          "ext",
          { action: "CUSTOM", provider: { name: "ext" }, rules: [{}] },
          'request.headers["x-check"] == "yes"',
        ),
      ],
    });
    const asked: string[] = [];
    await engine.registerAdapter({
      name: "ext",
      kind: "check",
      check: async (a) => {
        asked.push(a.request?.headers?.["x-check"] ?? "<none>");
        return { allowed: false };
      },
    });
    expect((await engine.check(req({ headers: { "x-check": "no" } }))).allowed).toBe(true);
    expect((await engine.check(req({ headers: { "x-check": "yes" } }))).allowed).toBe(false);
    expect((await engine.check(req())).allowed).toBe(false);
    expect(asked).toEqual(["yes", "<none>"]);
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
      engine.setAuthorizationPolicies(ok.map((cel, i) => withCondition(`c${i}`, { rules: [{}] }, cel))),
    ).toEqual([]);
  });

  it("refuses a CEL condition written as a `when` field: not Istio's schema (an API server would prune it)", () => {
    const engine = new PolicyEngine();
    const inWhen = ap("in-when", {
      action: "DENY",
      rules: [{ when: [{ cel: "true" }] }],
    } as unknown as AuthorizationPolicy["spec"]);
    const [d] = engine.setAuthorizationPolicies([inWhen]);
    expect(d?.error.code).toBe("invalid-policy");
    expect(d?.message).toContain("spec.rules[0].when[0]");
    expect(d?.effect).toBe("deny-all");
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
