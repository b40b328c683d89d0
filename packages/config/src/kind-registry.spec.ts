import { describe, expect, it } from "vitest";
import { KindRegistry } from "./kind-registry.js";
import { parseDocuments } from "./parse-documents.js";
import { validateResource } from "./validate-resource.js";

// The pluggable rule hook: a package that gives a kind meaning beyond Istio's (e.g.
// @meshlet/policy's condition annotation) adds its rules to the registry, and every validation
// through that registry (meshlet validate, a ConfigStore) runs them with file:line:column.
const yaml = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: p
  namespace: foo
  annotations:
    example.com/rule: "no"
spec:
  rules: [{}]
`;

function validate(registry: KindRegistry) {
  const { documents } = parseDocuments(yaml, { source: "test", file: "p.yaml" });
  const doc = documents[0]!;
  return validateResource(doc.object, doc.origin, { registry });
}

describe("KindRegistry.addRules", () => {
  it("runs added rules after the kind's own, located at file:line:column of their path", () => {
    const registry = new KindRegistry().addRules("AuthorizationPolicy", (resource) =>
      resource.metadata.annotations?.["example.com/rule"] === "no"
        ? [
            {
              severity: "error",
              message: "refused by the added rule",
              path: ["metadata", "annotations", "example.com/rule"],
            },
          ]
        : [],
    );
    const { resource, diagnostics } = validate(registry);
    expect(resource).toBeUndefined();
    expect(diagnostics).toMatchObject([
      {
        severity: "error",
        code: "MC0007",
        message: "refused by the added rule",
        file: "p.yaml",
        line: 7,
        column: 5,
        path: 'metadata.annotations["example.com/rule"]',
        resource: "AuthorizationPolicy/foo/p",
      },
    ]);
  });

  it("keeps the kind's own rules, and a warning keeps the resource", () => {
    const registry = new KindRegistry().addRules("AuthorizationPolicy", () => [
      { severity: "warning", message: "a note", path: ["spec"] },
    ]);
    const { resource, diagnostics } = validate(registry);
    expect(resource).toBeDefined();
    expect(diagnostics.map((d) => d.message)).toEqual(["a note"]);
    // Istio's own rule still runs: a DENY policy without rules is refused.
    const { documents } = parseDocuments(yaml.replace("rules: [{}]", "action: DENY"), { source: "t" });
    const doc = documents[0]!;
    expect(validateResource(doc.object, doc.origin, { registry }).resource).toBeUndefined();
  });

  it("does not change other registries, and refuses an unknown kind", () => {
    const plain = new KindRegistry();
    new KindRegistry().addRules("AuthorizationPolicy", () => [{ severity: "error", message: "x", path: [] }]);
    expect(validate(plain).resource).toBeDefined();
    expect(() => plain.addRules("NoSuchKind", () => [])).toThrow(/NoSuchKind/);
  });
});
