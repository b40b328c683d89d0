import { describe, expect, it } from "vitest";
import { PolicyEngine } from "../policy-engine.js";
import { PolicyError } from "../policy-error.js";
import type { AuthorizationPolicy } from "./authorization-policy.js";
import { validateAuthorizationPolicy } from "./validate-authorization-policy.js";

const p = (spec: unknown, meta: Record<string, unknown> = {}) =>
  ({ metadata: { name: "httpbin", namespace: "foo", ...meta }, spec }) as AuthorizationPolicy;

function problem(policy: AuthorizationPolicy): string {
  try {
    validateAuthorizationPolicy(policy);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    expect((e as PolicyError).code).toBe("invalid-policy");
    return (e as PolicyError).message;
  }
  throw new Error("expected a validation error");
}

describe("validateAuthorizationPolicy", () => {
  it("accepts Istio's documented example", () => {
    const ok = p({
      action: "ALLOW",
      selector: { matchLabels: { app: "httpbin" } },
      rules: [
        {
          from: [
            { source: { principals: ["cluster.local/ns/default/sa/sleep"] } },
            { source: { namespaces: ["test"] } },
          ],
          to: [
            { operation: { methods: ["GET"], paths: ["/info*"] } },
            { operation: { methods: ["POST"], paths: ["/data"] } },
          ],
          when: [{ key: "request.auth.claims[iss]", values: ["https://accounts.google.com"] }],
        },
      ],
    });
    expect(validateAuthorizationPolicy(ok)).toBe(ok);
  });

  it.each([
    ['spec.action: "REJECT" is not one of', p({ action: "REJECT" })],
    ["spec.provider.name: is required when action is CUSTOM", p({ action: "CUSTOM" })],
    ["spec.provider: is only allowed with action CUSTOM", p({ action: "DENY", provider: { name: "x" } })],
    ["spec.rules[0].from[0].source: must set at least one field", p({ rules: [{ from: [{ source: {} }] }] })],
    [
      'spec.rules[0].from[0].source.ipBlocks[0]: "10.0.0.0/33" is not an IP',
      p({ rules: [{ from: [{ source: { ipBlocks: ["10.0.0.0/33"] } }] }] }),
    ],
    ["source.principal: is not a Source field", p({ rules: [{ from: [{ source: { principal: ["x"] } }] }] })],
    [
      "must be <namespace>/<service account>",
      p({ rules: [{ from: [{ source: { serviceAccounts: ["nope"] } }] }] }),
    ],
    ['ports[0]: "http" is not a port number', p({ rules: [{ to: [{ operation: { ports: ["http"] } }] }] })],
    ["{**} must be the last segment", p({ rules: [{ to: [{ operation: { paths: ["/a/{**}/b"] } }] }] })],
    ["must be exactly {*} or {**}", p({ rules: [{ to: [{ operation: { paths: ["/a/x{*}"] } }] }] })],
    [
      "methods: must be a non-empty list of strings",
      p({ rules: [{ to: [{ operation: { methods: [] } }] }] }),
    ],
    [
      '"request.foo" is not a supported condition key',
      p({ rules: [{ when: [{ key: "request.foo", values: ["x"] }] }] }),
    ],
    ["spec.rules[0].when[0]: needs values or notValues", p({ rules: [{ when: [{ key: "source.ip" }] }] })],
    ["spec.rules[0].when[0].cel: does not parse", p({ rules: [{ when: [{ cel: "a ==" }] }] })],
    ["metadata.name: is required", p({}, { name: "" })],
    [
      "dry-run is only supported for ALLOW and DENY",
      p({ action: "AUDIT" }, { annotations: { "istio.io/dry-run": "true" } }),
    ],
  ])("rejects a policy whose error says: %s", (message, policy) => {
    const m = problem(policy);
    expect(m).toContain(message);
    if (policy.metadata.name) expect(m).toContain("AuthorizationPolicy foo/httpbin");
  });

  it("keeps the previous policies when a new set is invalid", async () => {
    const engine = new PolicyEngine({ authorizationPolicies: [p({})] });
    expect(() =>
      engine.setAuthorizationPolicies([p({ rules: [{}] }, { name: "ok" }), p({ action: "NOPE" })]),
    ).toThrow(PolicyError);
    expect((await engine.check({ destination: { namespace: "foo" } })).reason).toBe("no-matching-allow");
  });

  it("rejects two policies with the same namespace/name", () => {
    const engine = new PolicyEngine();
    expect(() => engine.setAuthorizationPolicies([p({}), p({})])).toThrow(/given twice/);
  });
});
