import { toJson } from "@bufbuild/protobuf";
import { registry } from "@meshlet/api";
import { RBAC_Action } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import { RBACSchema as HttpRBACSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import { RBACSchema as NetworkRBACSchema } from "@meshlet/api/envoy/extensions/filters/network/rbac/v3/rbac_pb";
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy } from "../authz/authorization-policy.js";
import { PolicyError } from "../policy-error.js";
import { parseRbacPolicyName, rbacPolicyName, toEnvoyRbac } from "./to-envoy-rbac.js";

const p = (
  name: string,
  spec: AuthorizationPolicy["spec"],
  annotations?: Record<string, string>,
): AuthorizationPolicy => ({
  metadata: { name, namespace: "foo", ...(annotations && { annotations }) },
  spec,
});

describe("toEnvoyRbac", () => {
  it("generates filters in evaluation order with Istio's policy names", () => {
    const out = toEnvoyRbac([
      p("allow", { rules: [{}] }),
      p("deny", { action: "DENY", rules: [{ to: [{ operation: { methods: ["DELETE"] } }] }] }),
      p("audit", { action: "AUDIT", rules: [{}] }),
      p("ext", { action: "CUSTOM", provider: { name: "opa" }, rules: [{}] }),
    ]);
    expect(out.http.map((f) => [f.name, f.action])).toEqual([
      ["envoy.filters.http.rbac", "AUDIT"],
      ["envoy.filters.http.rbac", "CUSTOM"],
      ["envoy.filters.http.rbac", "DENY"],
      ["envoy.filters.http.rbac", "ALLOW"],
    ]);
    expect(out.http.map((f) => f.config.rules?.action)).toEqual([
      RBAC_Action.LOG,
      undefined,
      RBAC_Action.DENY,
      RBAC_Action.ALLOW,
    ]);
    expect(Object.keys(out.http[2]?.config.rules?.policies ?? {})).toEqual(["ns[foo]-policy[deny]-rule[0]"]);
    expect(out.http[1]?.config.shadowRulesStatPrefix).toBe("istio_ext_authz_");
    expect(out.network.map((f) => f.name)).toEqual(Array(4).fill("envoy.filters.network.rbac"));
    expect(parseRbacPolicyName(rbacPolicyName(p("x", {}), 3))).toEqual({ policy: "foo/x", rule: 3 });
  });

  it("translates allow-nothing to an ALLOW filter with no policies, and no ALLOW policy to no filter", () => {
    const nothing = toEnvoyRbac([p("nothing", {})]);
    expect(nothing.http).toHaveLength(1);
    expect(nothing.http[0]?.config.rules?.policies).toEqual({});
    expect(toEnvoyRbac([p("d", { action: "DENY", rules: [{}] })]).http.map((f) => f.action)).toEqual([
      "DENY",
    ]);
  });

  it("puts dry-run policies in shadow rules only", () => {
    const out = toEnvoyRbac([p("dry", { rules: [{}] }, { "istio.io/dry-run": "true" })]);
    expect(out.http[0]?.config.rules).toBeUndefined();
    expect(out.http[0]?.config.shadowRulesStatPrefix).toBe("istio_dry_run_allow_");
    expect(Object.keys(out.http[0]?.config.shadowRules?.policies ?? {})).toEqual([
      "ns[foo]-policy[dry]-rule[0]",
    ]);
  });

  it("matches principals as spiffe:// URIs and request principals through istio_authn metadata", () => {
    const out = toEnvoyRbac([
      p("a", {
        rules: [
          {
            from: [
              {
                source: {
                  principals: ["cluster.local/ns/default/sa/sleep"],
                  requestPrincipals: ["https://i/*"],
                },
              },
            ],
          },
        ],
      }),
    ]);
    const json = JSON.stringify(toJson(HttpRBACSchema, out.http[0]?.config as never, { registry }));
    expect(json).toContain('"principalName":{"exact":"spiffe://cluster.local/ns/default/sa/sleep"}');
    expect(json).toContain('"filter":"istio_authn"');
    expect(json).toContain('"prefix":"https://i/"');
  });

  it("translates path templates to Envoy uri_template", () => {
    const out = toEnvoyRbac([
      p("t", { rules: [{ to: [{ operation: { paths: ["/users/{*}/files/{**}"] } }] }] }),
    ]);
    const json = JSON.stringify(toJson(HttpRBACSchema, out.http[0]?.config as never, { registry }));
    expect(json).toContain('"pathTemplate":"/users/*/files/**"');
  });

  it("drops ALLOW rules with HTTP-only fields for TCP and strips those fields from DENY rules", () => {
    const out = toEnvoyRbac([
      p("allow-http", { rules: [{ to: [{ operation: { methods: ["GET"] } }] }] }),
      p("deny-mixed", {
        action: "DENY",
        rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/8"] } }], to: [{ operation: { paths: ["/x"] } }] }],
      }),
    ]);
    const allow = out.network.find((f) => f.action === "ALLOW");
    expect(allow?.config.rules?.policies).toEqual({});
    const deny = out.network.find((f) => f.action === "DENY");
    const json = JSON.stringify(toJson(NetworkRBACSchema, deny?.config as never, { registry }));
    expect(json).toContain("10.0.0.0");
    expect(json).not.toContain('"/x"');
  });

  it("scopes to a workload", () => {
    const other = { metadata: { name: "o", namespace: "bar" }, spec: { rules: [{}] } } as AuthorizationPolicy;
    expect(toEnvoyRbac([other], { workload: { namespace: "foo", labels: {} } }).http).toEqual([]);
  });

  it("refuses CEL conditions with an unsupported error naming the rule", () => {
    expect(() => toEnvoyRbac([p("cel", { rules: [{ when: [{ cel: "true" }] }] })])).toThrow(PolicyError);
    expect(() => toEnvoyRbac([p("cel", { rules: [{ when: [{ cel: "true" }] }] })])).toThrow(
      /foo\/cel: spec\.rules\[0\]\.when\[0\]/,
    );
  });
});
