import { describe, expect, it } from "vitest";
import { KindRegistry } from "../kind-registry.js";
import { validateResource } from "../validate-resource.js";

// Cases of istio/istio pkg/config/validation/virtualservice_test.go (TestValidateChainingVirtualService,
// TestValidateDelegateHTTPRoute) and validation_test.go (TestValidateServiceEntries), restated as
// objects; the case names are Istio's. Cases of older Istio releases that current Istio no longer
// makes (weights had to add up to 100) are left out: current Istio accepts any non-zero total.

const registry = new KindRegistry();

function check(kind: string, spec: unknown) {
  return validateResource(
    { apiVersion: "networking.istio.io/v1", kind, metadata: { name: "test", namespace: "default" }, spec },
    { source: "test" },
    { registry },
  );
}

const dest = (host: string) => ({ destination: { host } });
const delegateVs = (http: unknown) => ({ hosts: [], http: [http] });

const virtualServices: Array<[string, unknown, string | undefined]> = [
  [
    "root simple",
    {
      hosts: ["foo.bar"],
      gateways: ["test-gateway"],
      http: [{ delegate: { name: "test", namespace: "test" } }],
    },
    undefined,
  ],
  [
    "root with delegate and destination in one route",
    {
      hosts: ["foo.bar"],
      gateways: ["test-gateway"],
      http: [{ delegate: { name: "test", namespace: "test" }, route: [dest("foo.baz")] }],
    },
    "spec.http[0].route",
  ],
  ["delegate with no destination", { hosts: [], http: [{}] }, "spec.http[0]"],
  [
    "delegate with delegate",
    delegateVs({ delegate: { name: "test", namespace: "test" } }),
    "spec.http[0].delegate",
  ],
  ["delegate with TCP route", { hosts: [], tcp: [{ route: [dest("foo.baz")] }] }, "spec.tcp"],
  [
    "delegate with gateway",
    { hosts: [], gateways: ["test"], http: [{ route: [dest("foo.baz")] }] },
    "spec.gateways",
  ],
  ["simple", delegateVs({ route: [dest("foo.baz")] }), undefined],
  [
    "weighted",
    delegateVs({
      route: [
        { ...dest("foo.baz.south"), weight: 25 },
        { ...dest("foo.baz.east"), weight: 75 },
      ],
    }),
    undefined,
  ],
  ["simple redirect", delegateVs({ redirect: { uri: "/lerp", authority: "foo.biz" } }), undefined],
  [
    "conflicting redirect and route",
    delegateVs({ route: [dest("foo.baz")], redirect: { uri: "/lerp", authority: "foo.biz" } }),
    "spec.http[0]",
  ],
  [
    "valid headers",
    delegateVs({
      route: [
        {
          ...dest("foo.baz"),
          headers: {
            request: { add: { name: "" }, set: { name: "" }, remove: ["name"] },
            response: { add: { name: "" }, set: { name: "" }, remove: ["name"] },
          },
        },
      ],
    }),
    undefined,
  ],
  [
    "empty header name - request remove",
    delegateVs({ route: [{ ...dest("foo.baz"), headers: { request: { remove: [""] } } }] }),
    "spec.http[0].route[0].headers.request.remove[0]",
  ],
  [
    "empty header name - response add",
    delegateVs({ route: [{ ...dest("foo.baz"), headers: { response: { add: { "": "value" } } } }] }),
    "spec.http[0].route[0].headers.response.add",
  ],
  [
    "null header match",
    delegateVs({ route: [dest("foo.bar")], match: [{ headers: { header: null } }] }),
    "spec.http[0].match[0].headers.header",
  ],
  [
    "invalid mirror percentage",
    delegateVs({ mirrorPercentage: { value: 101 }, route: [dest("foo.bar")] }),
    "spec.http[0].mirrorPercentage.value",
  ],
  [
    "valid mirror percentage",
    delegateVs({ mirrorPercentage: { value: 1 }, route: [dest("foo.bar")] }),
    undefined,
  ],
  [
    "JWT claim routing on the mesh gateway (validation_test.go, ValidateVirtualService)",
    {
      hosts: ["r"],
      http: [
        { match: [{ headers: { "@request.auth.claims.group": { exact: "admin" } } }], route: [dest("r")] },
      ],
    },
    'spec.http[0].match[0].headers["@request.auth.claims.group"]',
  ],
  [
    "JWT claim routing on a gateway",
    {
      hosts: ["r.example.com"],
      gateways: ["gw"],
      http: [
        { match: [{ headers: { "@request.auth.claims.group": { exact: "admin" } } }], route: [dest("r")] },
      ],
    },
    undefined,
  ],
  [
    "authority rewritten twice (validateAuthorityRewrite)",
    {
      hosts: ["r"],
      http: [
        {
          rewrite: { authority: "a.example.com" },
          headers: { request: { set: { host: "b.example.com" } } },
          route: [dest("r")],
        },
      ],
    },
    "spec.http[0].headers.request.set.host",
  ],
  [
    "regex uri match (in a delegate)",
    delegateVs({ match: [{ uri: { regex: "test" } }], route: [dest("foo.bar")] }),
    "spec.http[0].match[0].uri.regex",
  ],
];

const serviceEntries: Array<[string, unknown, string | undefined]> = [
  [
    "selector and endpoints",
    {
      hosts: ["google.com"],
      workloadSelector: { labels: { foo: "bar" } },
      ports: [{ number: 80, protocol: "http", name: "http-valid1" }],
      endpoints: [{ address: "1.1.1.1" }],
    },
    "spec",
  ],
  [
    "bad selector key",
    {
      hosts: ["google.com"],
      workloadSelector: { labels: { "": "bar" } },
      ports: [{ number: 80, protocol: "http", name: "http-valid1" }],
    },
    'spec.workloadSelector.labels[""]',
  ],
  [
    "repeat target port",
    {
      hosts: ["google.com"],
      workloadSelector: { labels: { key: "bar" } },
      ports: [
        { number: 80, protocol: "http", name: "http-valid1", targetPort: 80 },
        { number: 81, protocol: "http", name: "http-valid2", targetPort: 80 },
      ],
    },
    undefined,
  ],
  [
    "invalid target port",
    {
      hosts: ["google.com"],
      workloadSelector: { labels: { key: "bar" } },
      ports: [{ number: 80, protocol: "http", name: "http-valid1", targetPort: 65536 }],
    },
    "spec.ports[0].targetPort",
  ],
];

/** Valid when `errorAt` is undefined; otherwise refused with an error at that field path. */
function expectOutcome(kind: string, spec: unknown, errorAt: string | undefined): void {
  const { resource, diagnostics } = check(kind, spec);
  if (errorAt === undefined) {
    expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(resource).toBeDefined();
  } else {
    expect(resource).toBeUndefined();
    expect(diagnostics.map((d) => d.path)).toContain(errorAt);
  }
}

describe("VirtualService rules (istio/istio virtualservice_test.go)", () => {
  it.each(virtualServices)("%s", (_name, spec, errorAt) => expectOutcome("VirtualService", spec, errorAt));
});

describe("ServiceEntry rules (istio/istio validation_test.go TestValidateServiceEntries)", () => {
  it.each(serviceEntries)("%s", (_name, spec, errorAt) => expectOutcome("ServiceEntry", spec, errorAt));
});

describe("values Istio checks", () => {
  it("compiles regexes with RE2: what RE2 refuses is refused, what it accepts is kept", () => {
    const vs = (regex: string) => ({
      hosts: ["r"],
      http: [{ match: [{ uri: { regex } }], route: [dest("r")] }],
    });
    for (const ok of ["^/api/v[0-9]+/.*$", "(?i)/Reviews", "\\d{3}"])
      expect(check("VirtualService", vs(ok)).resource, ok).toBeDefined();
    for (const bad of ["(?=x)", "(a", "a{1001}", "\\1"]) {
      const { diagnostics } = check("VirtualService", vs(bad));
      expect(diagnostics[0]?.path, bad).toBe("spec.http[0].match[0].uri.regex");
      expect(diagnostics[0]?.message).toContain("RE2");
    }
  });

  it("checks Maglev table sizes as Envoy does: set, prime, below 5000011", () => {
    const dr = (tableSize: number) => ({
      host: "r",
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: "x", maglev: { tableSize } } } },
    });
    expect(check("DestinationRule", dr(65537)).resource).toBeDefined();
    expect(check("DestinationRule", dr(65536)).diagnostics[0]?.message).toContain("prime");
  });
});

describe("findings Istio reports under analysis codes", () => {
  it("reports an unreachable rule as IST0130 (warning) and a duplicate match as IST0131 (info)", () => {
    // istio/istio samples/bookinfo/networking/fault-injection-details-v1.yaml has two match-less rules.
    const { resource, diagnostics } = check("VirtualService", {
      hosts: ["details"],
      http: [
        { match: [{ uri: { prefix: "/a" } }], route: [dest("details")] },
        { match: [{ uri: { prefix: "/a" } }, { uri: { prefix: "/b" } }], route: [dest("details")] },
        { route: [dest("details")] },
        { route: [dest("details")] },
      ],
    });
    expect(resource).toBeDefined();
    expect(diagnostics.map((d) => [d.code, d.severity, d.path])).toEqual([
      ["IST0131", "info", "spec.http[1].match[0]"],
      ["IST0130", "warning", "spec.http[3]"],
    ]);
  });
});
