import { toJson } from "@bufbuild/protobuf";
import { registry } from "@meshlet/api";
import { RBACSchema as HttpRBACSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import { RBACSchema as NetworkRBACSchema } from "@meshlet/api/envoy/extensions/filters/network/rbac/v3/rbac_pb";
import { describe, expect, it } from "vitest";
import type { AuthorizationPolicy } from "../authz/authorization-policy.js";
import { PolicyError } from "../policy-error.js";
import { parseRbacPolicyName, rbacPolicyName, toEnvoyRbac } from "./to-envoy-rbac.js";

// Golden cases ported from Istio's RBAC generator tests: istio/istio
// pilot/pkg/security/authz/builder/testdata/http/<case>-in.yaml (the policy) and -out.yaml (the
// Envoy filter Istio generates), as of the generator that emits serviceAccounts as SPIFFE regexes,
// `request.auth.*` as `envoy.filters.http.jwt_authn` payload metadata and regexes without the
// deprecated `google_re2` (the allow-full-rule pair at istio/istio commit 1e14a17c). Expected values
// are written out here as the JSON form of the Envoy proto; the helpers below only spell JSON.

const json = (c: unknown) => toJson(HttpRBACSchema, c as never, { registry });
const p = (
  spec: AuthorizationPolicy["spec"],
  name = "httpbin-1",
  annotations?: Record<string, string>,
): AuthorizationPolicy => ({
  apiVersion: "security.istio.io/v1",
  kind: "AuthorizationPolicy",
  metadata: { name, namespace: "foo", ...(annotations && { annotations }) },
  spec: { selector: { matchLabels: { app: "httpbin", version: "v1" } }, ...spec },
});
const workload = { namespace: "foo", labels: { app: "httpbin", version: "v1" } };

// JSON spelling of Envoy RBAC (no logic): permissions / principals.
const and = (...rules: unknown[]) => ({ andRules: { rules } });
const or = (...rules: unknown[]) => ({ orRules: { rules } });
const notR = (rule: unknown) => ({ notRule: rule });
const andIds = (...ids: unknown[]) => ({ andIds: { ids } });
const orIds = (...ids: unknown[]) => ({ orIds: { ids } });
const notId = (id: unknown) => ({ notId: id });
const any = { any: true };
const regex = (r: string) => ({ safeRegex: { regex: r } });
const authn = (principalName: unknown) => ({ authenticated: { principalName } });
const urlPath = (path: unknown) => ({ urlPath: { path } });
const template = (pathTemplate: string) => ({
  uriTemplate: {
    name: "uri-template",
    typedConfig: {
      "@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
      pathTemplate,
    },
  },
});
const jwt = (claim: string, stringMatch: unknown) => ({
  metadata: {
    filter: "envoy.filters.http.jwt_authn",
    path: [{ key: "payload" }, { key: claim }],
    value: { stringMatch },
  },
});
const header = (name: string, m: unknown) => ({ header: { name, ...(m as object) } });

describe("toEnvoyRbac reproduces Istio's generator (builder testdata)", () => {
  it("http/allow-empty-rule: a rule {} matches everything", () => {
    const out = toEnvoyRbac([p({ rules: [{}] }, "allow-all")], { workload });
    expect(out.http).toHaveLength(1);
    expect(json(out.http[0]?.config)).toEqual({
      rules: {
        policies: {
          "ns[foo]-policy[allow-all]-rule[0]": { permissions: [and(any)], principals: [andIds(any)] },
        },
      },
      shadowRulesStatPrefix: "istio_dry_run_allow_",
    });
  });

  it("http/allow-nil-rule: a policy without rules gets a policy that never matches", () => {
    const out = toEnvoyRbac([p({}, "allow-none")], { workload });
    expect(json(out.http[0]?.config)).toEqual({
      rules: {
        policies: {
          "ns[foo]-policy[allow-none]-rule[0]": { permissions: [notR(any)], principals: [notId(any)] },
        },
      },
      shadowRulesStatPrefix: "istio_dry_run_allow_",
    });
  });

  it("http/deny-empty-rule: DENY with a rule {}", () => {
    const out = toEnvoyRbac([p({ action: "DENY", rules: [{}] }, "deny-all")], { workload });
    expect(json(out.http[0]?.config)).toEqual({
      rules: {
        action: "DENY",
        policies: {
          "ns[foo]-policy[deny-all]-rule[0]": { permissions: [and(any)], principals: [andIds(any)] },
        },
      },
      shadowRulesStatPrefix: "istio_dry_run_allow_",
    });
  });

  it("http/allow-path: exact, prefix, suffix and presence paths, and their negation", () => {
    const out = toEnvoyRbac(
      [
        p({
          rules: [
            {
              to: [
                {
                  operation: {
                    paths: ["/exact", "/prefix/*", "*/suffix", "*"],
                    notPaths: ["/not-exact", "/not-prefix/*", "*/not-suffix", "*"],
                  },
                },
              ],
            },
          ],
        }),
      ],
      { workload },
    );
    const paths = (a: string, b: string, c: string) => [
      urlPath({ exact: a }),
      urlPath({ prefix: b }),
      urlPath({ suffix: c }),
      urlPath(regex(".+")),
    ];
    expect(json(out.http[0]?.config)).toEqual({
      rules: {
        policies: {
          "ns[foo]-policy[httpbin-1]-rule[0]": {
            permissions: [
              and(
                or(...paths("/exact", "/prefix/", "/suffix")),
                notR(or(...paths("/not-exact", "/not-prefix/", "/not-suffix"))),
              ),
            ],
            principals: [andIds(any)],
          },
        },
      },
      shadowRulesStatPrefix: "istio_dry_run_allow_",
    });
  });

  // http/allow-full-rule-in.yaml / -out.yaml (istio/istio commit 1e14a17c), the parts that were
  // wrong or missing before: service accounts, path templates, request principals, JWT claims.
  const full = p({
    rules: [
      {
        from: [
          {
            source: {
              serviceAccounts: ["my-ns/my-sa", "sa-only"],
              notServiceAccounts: ["my-ns/my-sa-not", "sa-not-only"],
            },
          },
        ],
      },
      {
        from: [
          {
            source: {
              principals: ["principal", "principal-prefix-*", "*-suffix-principal", "*"],
              requestPrincipals: [
                "requestPrincipals",
                "requestPrincipals-prefix-*",
                "*-suffix-requestPrincipals",
                "*",
              ],
              namespaces: ["ns", "ns-prefix-*", "*-ns-suffix", "*"],
            },
          },
        ],
        to: [
          {
            operation: {
              methods: ["method", "method-prefix-*", "*-suffix-method", "*"],
              hosts: ["exact.com", "*.suffix.com", "prefix.*", "*"],
              paths: ["/exact", "/prefix/*", "*/suffix", "*", "/path/template/{*}", "/{**}/path/template"],
            },
          },
        ],
        when: [
          { key: "request.headers[X-header]", values: ["header", "header-prefix-*", "*-suffix-header", "*"] },
          {
            key: "request.experimental.inline.headers[X-inline-header]",
            values: ["header", "header-prefix-*", "*-suffix-header", "*"],
          },
          { key: "request.auth.principal", values: ["https://example.com/*"] },
          { key: "request.auth.audiences", values: ["audiences", "*"] },
          { key: "request.auth.claims[nested1][nested2]", notValues: ["not-nested"] },
        ],
      },
    ],
  });
  const fullOut = () =>
    json(toEnvoyRbac([full], { workload }).http[0]?.config) as {
      rules: {
        policies: Record<string, { permissions: unknown[]; principals: { andIds: { ids: unknown[] } }[] }>;
      };
    };

  it("http/allow-full-rule: serviceAccounts become Istio's SPIFFE regex, <sa> alone in the policy's namespace", () => {
    expect(fullOut().rules.policies["ns[foo]-policy[httpbin-1]-rule[0]"]).toEqual({
      permissions: [and(any)],
      principals: [
        andIds(
          orIds(
            authn(regex("spiffe://.+/ns/my-ns/(.+/|)sa/my-sa(/.+)?")),
            authn(regex("spiffe://.+/ns/foo/(.+/|)sa/sa-only(/.+)?")),
          ),
          notId(
            orIds(
              authn(regex("spiffe://.+/ns/my-ns/(.+/|)sa/my-sa-not(/.+)?")),
              authn(regex("spiffe://.+/ns/foo/(.+/|)sa/sa-not-only(/.+)?")),
            ),
          ),
        ),
      ],
    });
  });

  it("http/allow-full-rule: hosts, methods and paths (templates as uri_template), `*` as presence", () => {
    const rule = fullOut().rules.policies["ns[foo]-policy[httpbin-1]-rule[1]"];
    expect(rule?.permissions).toEqual([
      and(
        or(
          header(":authority", { stringMatch: { exact: "exact.com", ignoreCase: true } }),
          header(":authority", { stringMatch: { ignoreCase: true, suffix: ".suffix.com" } }),
          header(":authority", { stringMatch: { ignoreCase: true, prefix: "prefix." } }),
          header(":authority", { presentMatch: true }),
        ),
        or(
          header(":method", { stringMatch: { exact: "method" } }),
          header(":method", { stringMatch: { prefix: "method-prefix-" } }),
          header(":method", { stringMatch: { suffix: "-suffix-method" } }),
          header(":method", { presentMatch: true }),
        ),
        or(
          urlPath({ exact: "/exact" }),
          urlPath({ prefix: "/prefix/" }),
          urlPath({ suffix: "/suffix" }),
          urlPath(regex(".+")),
          template("/path/template/*"),
          template("/**/path/template"),
        ),
      ),
    ]);
  });

  it("http/allow-full-rule: principals, request principals (iss/sub), namespaces, headers and JWT claims", () => {
    const ids = fullOut().rules.policies["ns[foo]-policy[httpbin-1]-rule[1]"]?.principals[0]?.andIds.ids;
    const claim = (name: string[], values: string[]) => {
      const orMatch = {
        orMatch: {
          valueMatchers: values.map((v) => ({ stringMatch: v === "*" ? regex(".+") : { exact: v } })),
        },
      };
      return {
        metadata: {
          filter: "envoy.filters.http.jwt_authn",
          path: [{ key: "payload" }, ...name.map((key) => ({ key }))],
          value: { orMatch: { valueMatchers: [{ listMatch: { oneOf: orMatch } }, orMatch] } },
        },
      };
    };
    expect(ids).toEqual([
      orIds(
        authn({ exact: "spiffe://principal" }),
        authn({ prefix: "spiffe://principal-prefix-" }),
        authn(regex("spiffe://.*-suffix-principal")),
        authn(regex(".+")),
      ),
      orIds(
        andIds(jwt("iss", { exact: "requestPrincipals" }), jwt("sub", { exact: "" })),
        andIds(jwt("iss", { prefix: "requestPrincipals-prefix-" }), jwt("sub", regex(".+"))),
        andIds(jwt("iss", regex(".+")), jwt("sub", { suffix: "-suffix-requestPrincipals" })),
        andIds(jwt("iss", regex(".+")), jwt("sub", regex(".+"))),
      ),
      orIds(
        authn(regex(".*/ns/ns/.*")),
        authn(regex(".*/ns/ns-prefix-.*/.*")),
        authn(regex(".*/ns/.*-ns-suffix/.*")),
        authn(regex(".*/ns/.*/.*")),
      ),
      orIds(
        header("X-header", { stringMatch: { exact: "header" } }),
        header("X-header", { stringMatch: { prefix: "header-prefix-" } }),
        header("X-header", { stringMatch: { suffix: "-suffix-header" } }),
        header("X-header", { presentMatch: true }),
      ),
      orIds(
        header("X-inline-header", {
          safeRegexMatch: { regex: "^header$|^header,.*|.*,header,.*|.*,header$" },
        }),
        header("X-inline-header", {
          safeRegexMatch: {
            regex: "^header-prefix-.*$|^header-prefix-.*,.*|.*,header-prefix-.*,.*|.*,header-prefix-.*$",
          },
        }),
        header("X-inline-header", {
          safeRegexMatch: {
            regex: "^.*-suffix-header$|^.*-suffix-header,.*|.*,.*-suffix-header,.*|.*,.*-suffix-header$",
          },
        }),
        header("X-inline-header", { presentMatch: true }),
      ),
      andIds(jwt("iss", { exact: "https://example.com" }), jwt("sub", regex(".+"))),
      claim(["aud"], ["audiences", "*"]),
      notId(claim(["nested1", "nested2"], ["not-nested"])),
    ]);
  });

  // http/single-policy-in.yaml / -out.yaml: one permission per `to`, one principal per `from`,
  // each with the rule's `when` conditions appended, and requestPrincipals without "/" as an issuer.
  it("http/single-policy: one permission per to, one principal per from, conditions in each", () => {
    const out = toEnvoyRbac(
      [
        p(
          {
            rules: [
              {
                from: [
                  {
                    source: {
                      principals: ["p1"],
                      requestPrincipals: ["rp1"],
                      namespaces: ["n1"],
                      ipBlocks: ["10.0.0.1"],
                      remoteIpBlocks: ["172.16.10.10"],
                    },
                  },
                  { source: { principals: ["p2"], ipBlocks: ["10.0.1.1"] } },
                ],
                to: [
                  { operation: { methods: ["m1"], hosts: ["h1"], ports: ["9001"], paths: ["/p1"] } },
                  { operation: { ports: ["9011"] } },
                ],
                when: [
                  { key: "request.headers[X-header]", values: ["header"] },
                  { key: "destination.ip", values: ["10.10.10.10", "192.168.10.0/24"] },
                  { key: "remote.ip", values: ["10.99.10.8"] },
                ],
              },
            ],
          },
          "httpbin",
        ),
      ],
      { workload },
    );
    const destIp = or(
      { destinationIp: { addressPrefix: "10.10.10.10", prefixLen: 32 } },
      { destinationIp: { addressPrefix: "192.168.10.0", prefixLen: 24 } },
    );
    const whenPrincipals = [
      orIds(header("X-header", { stringMatch: { exact: "header" } })),
      orIds({ remoteIp: { addressPrefix: "10.99.10.8", prefixLen: 32 } }),
    ];
    expect(json(out.http[0]?.config)).toEqual({
      rules: {
        policies: {
          "ns[foo]-policy[httpbin]-rule[0]": {
            permissions: [
              and(
                or(header(":authority", { stringMatch: { exact: "h1", ignoreCase: true } })),
                or(header(":method", { stringMatch: { exact: "m1" } })),
                or(urlPath({ exact: "/p1" })),
                or({ destinationPort: 9001 }),
                destIp,
              ),
              and(or({ destinationPort: 9011 }), destIp),
            ],
            principals: [
              andIds(
                orIds(authn({ exact: "spiffe://p1" })),
                // One request principal: Istio's generator returns its AND without an OR around it.
                andIds(jwt("iss", { exact: "rp1" }), jwt("sub", { exact: "" })),
                orIds(authn(regex(".*/ns/n1/.*"))),
                orIds({ remoteIp: { addressPrefix: "172.16.10.10", prefixLen: 32 } }),
                orIds({ directRemoteIp: { addressPrefix: "10.0.0.1", prefixLen: 32 } }),
                ...whenPrincipals,
              ),
              andIds(
                orIds(authn({ exact: "spiffe://p2" })),
                orIds({ directRemoteIp: { addressPrefix: "10.0.1.1", prefixLen: 32 } }),
                ...whenPrincipals,
              ),
            ],
          },
        },
      },
      shadowRulesStatPrefix: "istio_dry_run_allow_",
    });
  });

  // http/dry-run-allow-and-deny-in.yaml / -out1.yaml / -out2.yaml; stat prefixes from builder.go
  // (shadowRuleStatPrefix) and model.go (RBACShadowRulesDenyStatPrefix, …AllowStatPrefix).
  it("http/dry-run-allow-and-deny: dry-run policies go to shadow_rules only", () => {
    const dry = { "istio.io/dry-run": "true" };
    const out = toEnvoyRbac(
      [
        p({ action: "ALLOW", rules: [{ to: [{ operation: { paths: ["/allow"] } }] }] }, "httpbin-1", dry),
        p({ action: "DENY", rules: [{ to: [{ operation: { paths: ["/deny"] } }] }] }, "httpbin-2", dry),
      ],
      { workload },
    );
    expect(out.http.map((f) => json(f.config))).toEqual([
      {
        shadowRules: {
          action: "DENY",
          policies: {
            "ns[foo]-policy[httpbin-2]-rule[0]": {
              permissions: [and(or(urlPath({ exact: "/deny" })))],
              principals: [andIds(any)],
            },
          },
        },
        shadowRulesStatPrefix: "istio_dry_run_deny_",
      },
      {
        shadowRules: {
          policies: {
            "ns[foo]-policy[httpbin-1]-rule[0]": {
              permissions: [and(or(urlPath({ exact: "/allow" })))],
              principals: [andIds(any)],
            },
          },
        },
        shadowRulesStatPrefix: "istio_dry_run_allow_",
      },
    ]);
  });

  // http/custom-simple-http-in.yaml / custom-grpc-provider-out1.yaml.
  it("http/custom-grpc-provider: CUSTOM policies mark requests in shadow rules named istio-ext-authz-<provider>-…", () => {
    const custom = (name: string, path: string) =>
      p(
        {
          action: "CUSTOM",
          provider: { name: "default" },
          rules: [{ to: [{ operation: { paths: [path] } }] }],
        },
        name,
      );
    const out = toEnvoyRbac([custom("httpbin-1", "/httpbin1"), custom("httpbin-2", "/httpbin2")], {
      workload,
    });
    expect(out.http).toHaveLength(1);
    expect(out.http[0]).toMatchObject({ action: "CUSTOM", provider: "default" });
    const rule = (path: string) => ({
      permissions: [and(or(urlPath({ exact: path })))],
      principals: [andIds(any)],
    });
    expect(json(out.http[0]?.config)).toEqual({
      shadowRules: {
        action: "DENY",
        policies: {
          "istio-ext-authz-default-ns[foo]-policy[httpbin-1]-rule[0]": rule("/httpbin1"),
          "istio-ext-authz-default-ns[foo]-policy[httpbin-2]-rule[0]": rule("/httpbin2"),
        },
      },
      shadowRulesStatPrefix: "istio_ext_authz_",
    });
  });
});

describe("toEnvoyRbac", () => {
  it("orders filters as Istio's listener builder does: CUSTOM, then AUDIT, DENY, ALLOW", () => {
    // istio/istio pilot/pkg/networking/core/listener_builder.go: authzCustomBuilder before authzBuilder.
    const out = toEnvoyRbac([
      p({ rules: [{}] }, "allow"),
      p({ action: "DENY", rules: [{ to: [{ operation: { methods: ["DELETE"] } }] }] }, "deny"),
      p({ action: "AUDIT", rules: [{}] }, "audit"),
      p({ action: "CUSTOM", provider: { name: "opa" }, rules: [{}] }, "ext"),
    ]);
    expect(out.http.map((f) => f.action)).toEqual(["CUSTOM", "AUDIT", "DENY", "ALLOW"]);
    expect(out.network.map((f) => f.name)).toEqual(Array(4).fill("envoy.filters.network.rbac"));
    expect(parseRbacPolicyName(rbacPolicyName(p({}, "x"), 3))).toEqual({ policy: "foo/x", rule: 3 });
    expect(parseRbacPolicyName(rbacPolicyName(p({}, "x"), 0, "opa"))).toEqual({
      policy: "foo/x",
      rule: 0,
      provider: "opa",
    });
  });

  it("for TCP skips ALLOW rules with HTTP-only fields and drops those fields from DENY rules", () => {
    const out = toEnvoyRbac([
      p({ rules: [{ to: [{ operation: { methods: ["GET"] } }] }] }, "allow-http"),
      p(
        {
          action: "DENY",
          rules: [
            { from: [{ source: { ipBlocks: ["10.0.0.0/8"] } }], to: [{ operation: { paths: ["/x"] } }] },
          ],
        },
        "deny-mixed",
      ),
    ]);
    const allow = out.network.find((f) => f.action === "ALLOW");
    expect(allow?.config.rules?.policies).toEqual({});
    const deny = toJson(NetworkRBACSchema, out.network.find((f) => f.action === "DENY")?.config as never, {
      registry,
    });
    expect(deny).toMatchObject({
      statPrefix: "tcp.",
      rules: {
        action: "DENY",
        policies: {
          "ns[foo]-policy[deny-mixed]-rule[0]": {
            permissions: [and(any)],
            principals: [andIds(orIds({ directRemoteIp: { addressPrefix: "10.0.0.0", prefixLen: 8 } }))],
          },
        },
      },
    });
  });

  it("skips a rule with a key Istio does not know, as Istio's builder does", () => {
    const out = toEnvoyRbac([p({ rules: [{ when: [{ key: "request.nope", values: ["x"] }] }, {}] })]);
    expect(Object.keys(out.http[0]?.config.rules?.policies ?? {})).toEqual([
      "ns[foo]-policy[httpbin-1]-rule[1]",
    ]);
  });

  it("scopes to a workload, including targetRefs Gateways", () => {
    const other: AuthorizationPolicy = { metadata: { name: "o", namespace: "bar" }, spec: { rules: [{}] } };
    expect(toEnvoyRbac([other], { workload }).http).toEqual([]);
    const gw: AuthorizationPolicy = {
      metadata: { name: "gw", namespace: "foo" },
      spec: {
        targetRefs: [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "edge" }],
        rules: [{}],
      },
    };
    expect(toEnvoyRbac([gw], { workload }).http).toEqual([]);
    const gatewayWorkload = {
      namespace: "foo",
      labels: { "gateway.networking.k8s.io/gateway-name": "edge" },
    };
    expect(toEnvoyRbac([gw], { workload: gatewayWorkload }).http).toHaveLength(1);
  });

  it("refuses CEL conditions with an unsupported error naming the rule", () => {
    const cel = p({ rules: [{ when: [{ cel: "true" }] }] }, "cel");
    expect(() => toEnvoyRbac([cel])).toThrow(PolicyError);
    expect(() => toEnvoyRbac([cel])).toThrow(/foo\/cel: spec\.rules\[0\]\.when\[0\]/);
  });
});
