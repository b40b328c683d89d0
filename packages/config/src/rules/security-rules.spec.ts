import { describe, expect, it } from "vitest";
import { KindRegistry } from "../kind-registry.js";
import { validateResource } from "../validate-resource.js";

// Cases of istio/istio pkg/config/validation/validation_test.go TestValidateAuthorizationPolicy,
// restated as YAML-shaped objects (the case name is Istio's): valid ones must be accepted, invalid
// ones refused, and meshlet says where.

const registry = new KindRegistry();
const origin = { source: "test" };

function check(spec: unknown, annotations?: Record<string, string>) {
  return validateResource(
    {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "test", namespace: "default", ...(annotations ? { annotations } : {}) },
      spec,
    },
    origin,
    { registry },
  );
}

const fromSource = (source: unknown) => ({ rules: [{ from: [{ source }] }] });
const toOperation = (operation: unknown) => ({ rules: [{ to: [{ operation }] }] });

const valid: Array<[string, unknown, Record<string, string>?]> = [
  [
    "good",
    {
      selector: { matchLabels: { app: "httpbin", version: "v1" } },
      rules: [
        {
          from: [{ source: { principals: ["sa1"] } }, { source: { principals: ["sa2"] } }],
          to: [{ operation: { methods: ["GET"] } }, { operation: { methods: ["POST"] } }],
          when: [
            { key: "source.ip", values: ["1.2.3.4", "5.6.7.0/24"] },
            { key: "request.headers[:authority]", values: ["v1", "v2"] },
          ],
        },
      ],
    },
  ],
  ["custom-good", { action: "CUSTOM", provider: { name: "my-custom-authz" }, rules: [{}] }],
  ["allow-rules-nil", { action: "ALLOW" }],
  ["dry-run-valid-allow", { action: "ALLOW" }, { "istio.io/dry-run": "true" }],
  ["dry-run-valid-deny", { action: "DENY", rules: [{}] }, { "istio.io/dry-run": "false" }],
  ["selector-empty-value", { selector: { matchLabels: { app: "", version: "v1" } } }],
];

const invalid: Array<[string, unknown, string, Record<string, string>?]> = [
  ["custom-empty-provider", { action: "CUSTOM", provider: { name: "" }, rules: [{}] }, "spec.provider.name"],
  ["custom-nil-provider", { action: "CUSTOM", rules: [{}] }, "spec.provider.name"],
  [
    "custom-invalid-rule",
    {
      action: "CUSTOM",
      provider: { name: "my-custom-authz" },
      rules: [
        {
          from: [{ source: { namespaces: ["ns"], principals: ["id"], requestPrincipals: ["req"] } }],
          when: [{ key: "request.auth.claims[a]", values: ["claims1"] }],
        },
      ],
    },
    "spec.rules[0].from[0].source.namespaces",
  ],
  ["provider-wrong-action", { action: "ALLOW", provider: { name: "" }, rules: [{}] }, "spec.provider"],
  [
    "dry-run-invalid-value",
    { action: "ALLOW" },
    'metadata.annotations["istio.io/dry-run"]',
    { "istio.io/dry-run": "foo" },
  ],
  [
    "dry-run-invalid-action-audit",
    { action: "AUDIT" },
    'metadata.annotations["istio.io/dry-run"]',
    { "istio.io/dry-run": "true" },
  ],
  ["deny-rules-nil", { action: "DENY" }, "spec.rules"],
  [
    "selector-empty-key",
    { selector: { matchLabels: { app: "httpbin", "": "v1" } } },
    "spec.selector.matchLabels",
  ],
  [
    "selector-wildcard-value",
    { selector: { matchLabels: { app: "httpbin-*" } } },
    "spec.selector.matchLabels.app",
  ],
  [
    "selector-wildcard-key",
    { selector: { matchLabels: { "app-*": "httpbin" } } },
    'spec.selector.matchLabels["app-*"]',
  ],
  ["from-empty", { rules: [{ from: [] }] }, "spec.rules[0].from"],
  ["source-nil", { rules: [{ from: [{}] }] }, "spec.rules[0].from[0].source"],
  ["source-empty", fromSource({}), "spec.rules[0].from[0].source"],
  ["to-empty", { rules: [{ to: [] }] }, "spec.rules[0].to"],
  ["operation-nil", { rules: [{ to: [{}] }] }, "spec.rules[0].to[0].operation"],
  ["operation-empty", toOperation({}), "spec.rules[0].to[0].operation"],
  ["Principals-empty", fromSource({ principals: ["p1", ""] }), "spec.rules[0].from[0].source.principals[1]"],
  ["Namespaces-empty", fromSource({ namespaces: ["ns", ""] }), "spec.rules[0].from[0].source.namespaces[1]"],
  ["IpBlocks-empty", fromSource({ ipBlocks: ["1.2.3.4", ""] }), "spec.rules[0].from[0].source.ipBlocks[1]"],
  ["Hosts-empty", toOperation({ hosts: ["host", ""] }), "spec.rules[0].to[0].operation.hosts[1]"],
  ["Ports-empty", toOperation({ ports: ["80", ""] }), "spec.rules[0].to[0].operation.ports[1]"],
  ["Methods-empty", toOperation({ methods: ["GET", ""] }), "spec.rules[0].to[0].operation.methods[1]"],
  ["Paths-empty", toOperation({ paths: ["/path", ""] }), "spec.rules[0].to[0].operation.paths[1]"],
];

describe("AuthorizationPolicy rules (istio/istio validation_test.go TestValidateAuthorizationPolicy)", () => {
  it.each(valid)("%s is valid", (_name, spec, annotations) => {
    const { resource, diagnostics } = check(spec, annotations);
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(resource).toBeDefined();
  });

  it.each(invalid)("%s is refused at %s", (_name, spec, path, annotations) => {
    const { resource, diagnostics } = check(spec, annotations);
    expect(resource).toBeUndefined();
    expect(diagnostics.map((d) => d.path)).toContain(path);
  });

  it("accepts a dry-run value Go's strconv.ParseBool accepts (1, T, FALSE)", () => {
    for (const value of ["1", "T", "FALSE"]) {
      expect(check({ action: "ALLOW" }, { "istio.io/dry-run": value }).resource).toBeDefined();
    }
  });

  it("warns that a DENY rule of HTTP attributes only also denies TCP traffic", () => {
    const { resource, diagnostics } = check({
      action: "DENY",
      rules: [{ to: [{ operation: { methods: ["GET"] } }] }],
    });
    expect(resource).toBeDefined();
    expect(diagnostics).toMatchObject([{ severity: "warning", code: "MC1006", path: "spec.rules[0]" }]);
  });

  it("checks each condition value: destination.port and IP keys", () => {
    const { diagnostics } = check({
      rules: [
        {
          when: [
            { key: "destination.port", values: ["80", "70000"] },
            { key: "source.ip", notValues: ["10.0.0.0/8", "10.1.2.3/40"] },
            { key: "destination.labels[app]", values: ["x"] },
          ],
        },
      ],
    });
    expect(diagnostics.map((d) => d.path)).toEqual([
      "spec.rules[0].when[0].values[1]",
      "spec.rules[0].when[1].notValues[1]",
      "spec.rules[0].when[2].key",
    ]);
  });

  // istio/istio pkg/config/security/security_test.go TestCheckValidPathTemplate (case names are
  // Istio's); security.go CheckValidPathTemplate is applied to `paths` and `notPaths`.
  const validPaths: Array<[string, string]> = [
    ["valid path template - matchOneTemplate", "/{*}/foo"],
    ["valid path template - matchOneTemplate with trailing slash", "/{*}/foo/"],
    ["valid path template - matchAnyTemplate", "/foo/{**}/bar"],
    ["valid path template - matchAnyTemplate at end", "/foo/bar/{**}"],
    // Not templates, and no braces: plain Istio string matches (authz-valid.yaml `full`).
    ["prefix match", "/prefix/*"],
    ["suffix match", "*/suffix"],
  ];
  const invalidPaths: Array<[string, string]> = [
    ["unsupported path template - matchAnyTemplate with additional chars", "/foo/{**}buzz/bar"],
    ["unsupported path template - empty curly braces", "/{*}/foo/{}/bar"],
    ["unsupported path template - matchOneTemplate with `*`", "/foo/{*}/bar/*"],
    ["unsupported path template - matchOneTemplate with `**`", "/foo/{*}/bar/**/buzz"],
    ["unsupported path/path template - named var: {buzz}", "/foo/{buzz}/bar"],
    ["unsupported path/path template - only named var: {buzz}", "/{buzz}"],
    ["unsupported path template - matchAnyTemplate with named var: {buzz}", "/foo/{buzz}/bar/{**}"],
    ["unsupported path template - matchAnyTemplate with named var: {buzz=*}", "/foo/{buzz=*}/bar/{**}"],
    ["unsupported path template - matchAnyTemplate with named var: {buzz=**}", "/{*}/foo/{buzz=**}/bar"],
    ["unsupported path template - matchAnyTemplate with additional chars at end", "/{*}/foo/{**}bar"],
    ["unsupported path template - matchOneTemplate with file extension", "/{*}/foo/{*}.txt"],
    ["unsupported path template - matchOneTemplate with unmatched open curly brace", "/{*}/foo/{temp"],
    ["unsupported path template - matchOneTemplate with unmatched closed curly brace", "/{*}/foo/temp}/bar"],
    [
      "unsupported path template - matchAnyTemplate is not the last operator in the template",
      "/{**}/foo/temp/{*}/bar",
    ],
    ["unsupported path template - simple multiple matchAnyTemplates", "/{**}/{**}"],
    ["unsupported path template - multiple matchAnyTemplates", "/{**}/foo/temp/{**}/bar"],
    ["unsupported path template - invalid literal in path template", "/{*}/foo/?abc"],
  ];

  it.each(validPaths)("accepts the path %s (%s)", (_name, path) => {
    const { resource, diagnostics } = check(toOperation({ paths: [path], notPaths: [path] }));
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(resource).toBeDefined();
  });

  it.each(invalidPaths)("refuses the path %s (%s) in paths and notPaths", (_name, path) => {
    for (const field of ["paths", "notPaths"]) {
      const { resource, diagnostics } = check(toOperation({ [field]: ["/ok", path] }));
      expect(resource, `${field}: ${path}`).toBeUndefined();
      expect(diagnostics.map((d) => d.path)).toEqual([`spec.rules[0].to[0].operation.${field}[1]`]);
      expect(diagnostics[0]?.message).toContain("invalid or unsupported path");
    }
  });

  // security_test.go TestValidateCondition: the `source.serviceAccount` cases, and security.go
  // CheckServiceAccount, which validation.go also applies to `serviceAccounts`/`notServiceAccounts`.
  const validServiceAccounts = ["ns/sa", "sa"];
  const invalidServiceAccounts: Array<[string, string]> = [
    ["too/many/slashes", "expected format 'serviceAccount' or 'namespace/serviceAccount'"],
    ["/emptyns", "empty namespace"],
    ["emptysa/", "empty serviceAccount"],
    ["sa-*", "wildcard not allowed"],
    ["*", "wildcard not allowed"],
  ];

  it("accepts the `when` keys source.serviceAccount and request.experimental.inline.headers[…]", () => {
    const { resource, diagnostics } = check({
      rules: [
        {
          when: [
            { key: "source.serviceAccount", values: validServiceAccounts, notValues: ["other"] },
            { key: "request.experimental.inline.headers[:authority]", values: ["productpage"] },
          ],
        },
      ],
    });
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(resource).toBeDefined();
  });

  it("refuses request.experimental.inline.headers[] and an empty value of it (TestValidateCondition)", () => {
    const bad = check({
      rules: [
        {
          when: [
            { key: "request.experimental.inline.headers[]", values: ["productpage"] },
            { key: "request.experimental.inline.headers[:authority]", values: ["productpage", ""] },
          ],
        },
      ],
    });
    expect(bad.resource).toBeUndefined();
    expect(bad.diagnostics.map((d) => d.path)).toEqual([
      "spec.rules[0].when[0].key",
      "spec.rules[0].when[1].values[1]",
    ]);
  });

  it.each(invalidServiceAccounts)(
    "refuses the service account %s in source.serviceAccount, serviceAccounts and notServiceAccounts",
    (value, why) => {
      const when = check({ rules: [{ when: [{ key: "source.serviceAccount", notValues: ["ok", value] }] }] });
      expect(when.resource).toBeUndefined();
      expect(when.diagnostics.map((d) => d.path)).toEqual(["spec.rules[0].when[0].notValues[1]"]);
      expect(when.diagnostics[0]?.message).toContain(why);
      for (const field of ["serviceAccounts", "notServiceAccounts"]) {
        const { resource, diagnostics } = check(fromSource({ [field]: ["ok", value] }));
        expect(resource, field).toBeUndefined();
        expect(diagnostics.map((d) => d.path)).toEqual([`spec.rules[0].from[0].source.${field}[1]`]);
        expect(diagnostics[0]?.message).toContain(why);
      }
    },
  );

  it("refuses serviceAccounts and source.serviceAccount in a CUSTOM policy (ValidateAuthorizationPolicy)", () => {
    const { resource, diagnostics } = check({
      action: "CUSTOM",
      provider: { name: "ext" },
      rules: [
        {
          from: [{ source: { serviceAccounts: ["sa"] } }, { source: { notServiceAccounts: ["ns/sa"] } }],
          when: [{ key: "source.serviceAccount", values: ["sa"] }],
        },
      ],
    });
    expect(resource).toBeUndefined();
    expect(diagnostics.map((d) => d.path)).toEqual([
      "spec.rules[0].from[0].source.serviceAccounts",
      "spec.rules[0].from[1].source.notServiceAccounts",
      "spec.rules[0].when[0].key",
    ]);
  });
});
