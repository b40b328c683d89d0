import type { Resource } from "@meshlet/config";
import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { snapshotOf } from "../testing/config.js";
import { PushContext } from "./push-context.js";

const sidecar = (ns: string, ip = "10.0.0.1", labels: Record<string, string> = {}) =>
  parseProxy({ id: `sidecar~${ip}~pod.${ns}~${ns}.svc.cluster.local`, metadata: { LABELS: labels } });

const svc = (name: string, ns: string, extra = "") => `
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${ns}${extra} }
spec: { ports: [{ name: http, port: 9080 }] }
---`;

describe("PushContext: service visibility", () => {
  // istio/istio pilot/pkg/model/push_context_test.go TestServiceIndex: svc-public (exportTo *),
  // svc-private (exportTo . in test1), svc-none (exportTo ~), svc-namespace (exportTo namespace),
  // svc-unset (none, mesh default *).
  const push = PushContext.create({
    snapshot: snapshotOf(
      [
        svc("svc-public", "test1", ', annotations: { networking.istio.io/exportTo: "*" }'),
        svc("svc-private", "test1", ', annotations: { networking.istio.io/exportTo: "." }'),
        svc("svc-none", "test1", ', annotations: { networking.istio.io/exportTo: "~" }'),
        svc("svc-namespace", "test1", ", annotations: { networking.istio.io/exportTo: namespace }"),
        svc("svc-unset", "test1"),
      ].join("\n"),
    ),
  });
  const names = (ns: string) => push.servicesExportedTo(ns).map((s) => s.name);

  it("files services as Istio's ServiceIndex does", () => {
    expect(names("test1")).toEqual(["svc-private", "svc-public", "svc-unset"]);
    expect(names("namespace")).toEqual(["svc-namespace", "svc-public", "svc-unset"]);
    expect(names("other")).toEqual(["svc-public", "svc-unset"]);
  });

  it("honours defaultServiceExportTo, of which only . and * count (TestIsServiceVisible)", () => {
    const priv = PushContext.create({
      snapshot: snapshotOf(svc("a", "foo") + svc("b", "bar")),
      mesh: { defaultServiceExportTo: ["."] },
    });
    const [a, b] = [
      priv.registry.service("a.foo.svc.cluster.local", "foo")!,
      priv.registry.service("b.bar.svc.cluster.local", "bar")!,
    ];
    expect(priv.isServiceVisible(a, "foo")).toBe(true);
    expect(priv.isServiceVisible(b, "foo")).toBe(false);
    expect(priv.servicesForProxy(sidecar("foo")).map((s) => s.name)).toEqual(["a"]);
  });
});

describe("PushContext: VirtualServices", () => {
  it("resolves short names and lets the proxy namespace's private VirtualService win for a host", () => {
    // istio/istio push_context.go VirtualServicesForGateway: private to the namespace, then exported
    // to it, then public; a sidecar uses one VirtualService per host (istioctl IST0109).
    const push = PushContext.create({
      snapshot: snapshotOf(`
${svc("reviews", "default")}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: public-old, namespace: other, creationTimestamp: "2020-01-01T00:00:00Z" }
spec:
  hosts: [reviews.default.svc.cluster.local]
  http: [{ route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v1 } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: mine, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z" }
spec:
  hosts: [reviews]
  exportTo: ["."]
  http: [{ route: [{ destination: { host: reviews, subset: v2 } }] }]
`),
    });
    const proxy = sidecar("default");
    const vs = push.virtualServiceForHost(proxy, "reviews.default.svc.cluster.local");
    expect(vs?.name).toBe("mine");
    expect(vs?.hosts).toEqual(["reviews.default.svc.cluster.local"]);
    expect(vs?.http[0]?.route?.[0]?.destination).toEqual({
      host: "reviews.default.svc.cluster.local",
      subset: "v2",
    });
    // From another namespace the private one is invisible: the public one applies.
    expect(push.virtualServiceForHost(sidecar("x"), "reviews.default.svc.cluster.local")?.name).toBe(
      "public-old",
    );
  });

  it("prefers an exact host, then the most specific wildcard", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: any-com, namespace: default }
spec: { hosts: ["*.com"], http: [{ route: [{ destination: { host: a.com } }] }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: any-example, namespace: default }
spec: { hosts: ["*.example.com"], http: [{ route: [{ destination: { host: a.com } }] }] }
`),
    });
    expect(push.virtualServiceForHost(sidecar("default"), "api.example.com")?.name).toBe("any-example");
    expect(push.virtualServiceForHost(sidecar("default"), "other.com")?.name).toBe("any-com");
    expect(push.virtualServiceForHost(sidecar("default"), "example.org")).toBeUndefined();
  });

  it("merges delegate VirtualServices into the root, dropping missing delegates", () => {
    // istio.io docs/reference/config/networking/virtual-service/ ("delegate" example) and
    // istio/istio pilot/pkg/model/virtualservice.go mergeVirtualServicesIfNeeded / mergeHTTPRoute.
    const push = PushContext.create({
      snapshot: snapshotOf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bookinfo, namespace: default }
spec:
  hosts: [bookinfo.com]
  gateways: [mygateway]
  http:
  - match: [{ uri: { prefix: /productpage } }]
    timeout: 5s
    delegate: { name: productpage, namespace: nsa }
  - match: [{ uri: { prefix: /reviews } }]
    delegate: { name: reviews, namespace: nsb }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: productpage, namespace: nsa }
spec:
  http:
  - match: [{ uri: { prefix: /productpage/v1/ } }]
    route: [{ destination: { host: productpage-v1.nsa.svc.cluster.local } }]
  - match: [{ uri: { prefix: /other } }]
    route: [{ destination: { host: nope } }]
  - route: [{ destination: { host: productpage } }]
`),
    });
    const [root] = push.virtualServicesForGateway("default", "default/mygateway");
    expect(root?.name).toBe("bookinfo");
    expect(root?.gateways).toEqual(["default/mygateway"]);
    expect(root?.delegates).toEqual([
      { kind: "VirtualService", namespace: "nsa", name: "productpage" },
      { kind: "VirtualService", namespace: "nsb", name: "reviews" },
    ]);
    // /other conflicts with the root's /productpage prefix and is dropped; the catch-all route
    // inherits the root's match and timeout; the missing "reviews" delegate drops that route.
    expect(root?.http).toEqual([
      {
        match: [{ uri: { prefix: "/productpage/v1/" } }],
        route: [{ destination: { host: "productpage-v1.nsa.svc.cluster.local" } }],
        timeout: "5s",
      },
      {
        match: [{ uri: { prefix: "/productpage" } }],
        route: [{ destination: { host: "productpage.nsa.svc.cluster.local" } }],
        timeout: "5s",
      },
    ]);
    // Delegates are not VirtualServices of their own.
    expect(push.virtualServices().map((v) => v.name)).toEqual(["bookinfo"]);
  });
});

describe("PushContext: DestinationRules", () => {
  // istio/istio pilot/pkg/model/push_context_test.go TestSetDestinationRuleWithWorkloadSelector (rule
  // names lower-cased: Kubernetes names are DNS-1123 labels; Istio's test gives the selector rules
  // exportTo [test2, .], which Istio's validation refuses — a selector rule is private anyway).
  const rule = (name: string, ns: string, created: string, extra: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns}, creationTimestamp: "${created}" }
spec:
  host: httpbin.org
${extra}
---`;
  const app1 = rule(
    "nsrule1",
    "test",
    "2024-01-01T00:00:10Z",
    '  exportTo: ["."]\n  workloadSelector: { matchLabels: { app: app1 } }\n  subsets: [{ name: s1 }]',
  );
  const app2 = rule(
    "nsrule2",
    "test",
    "2024-01-01T00:00:11Z",
    '  exportTo: ["."]\n  workloadSelector: { matchLabels: { app: app2 } }\n  subsets: [{ name: s2 }]',
  );
  const app3 = rule(
    "nsrule3",
    "test",
    "2024-01-01T00:00:11Z",
    '  exportTo: ["."]\n  workloadSelector: { matchLabels: { app: app2 } }\n  subsets: [{ name: s3 }]',
  );
  const app4 = rule(
    "nsrule4",
    "test2",
    "2024-01-01T00:00:11Z",
    '  exportTo: ["."]\n  workloadSelector: { matchLabels: { app: app2 } }',
  );
  const ns5 = rule(
    "nsrule5",
    "test",
    "2024-01-01T00:00:09Z",
    '  exportTo: [".", test2]\n  trafficPolicy: { tls: { mode: SIMPLE } }\n  subsets: [{ name: s5 }]',
  );
  const root6 = rule("nsrule6", "istio-system", "2024-01-01T00:00:09Z", '  exportTo: ["*"]');
  const lookup = (rules: string[], proxyNs: string) => {
    const push = PushContext.create({ snapshot: snapshotOf(rules.join("\n")) });
    return push.destinationRules(proxyNs, { hostname: "httpbin.org", namespace: "test" } as never) ?? [];
  };
  const names = (rules: ReturnType<typeof lookup>) => rules.map((r) => r.from[0]?.name);

  it("returns the per-selector rules and merges the catch-all into them (case: return list of DRs)", () => {
    const rules = lookup([app1, app2, app3, ns5, root6], "test");
    expect(names(rules)).toEqual(["nsrule1", "nsrule2", "nsrule5"]);
    expect(rules.map((r) => r.from.map((k) => k.name))).toEqual([
      ["nsrule1", "nsrule5"],
      ["nsrule2", "nsrule3", "nsrule5"],
      ["nsrule5"],
    ]);
    // Subsets are concatenated in merge order; the first traffic policy wins.
    expect(rules[1]?.spec.subsets?.map((s) => s.name)).toEqual(["s2", "s3", "s5"]);
    expect(rules[1]?.spec.trafficPolicy).toEqual({ tls: { mode: "SIMPLE" } });
  });

  it("never exports a rule with a workload selector", () => {
    expect(names(lookup([app1, app2, app3, ns5, root6], "test2"))).toEqual(["nsrule5"]);
  });

  it("adds the catch-all of the service or root namespace to selector-only local rules", () => {
    expect(names(lookup([app4, ns5, root6], "test2"))).toEqual(["nsrule4", "nsrule5"]);
    expect(names(lookup([app4, root6], "test2"))).toEqual(["nsrule4", "nsrule6"]);
    expect(names(lookup([app1, app2, app3, app4, root6], "test2"))).toEqual(["nsrule4", "nsrule6"]);
    expect(names(lookup([app1, app2, app3, app4], "test"))).toEqual(["nsrule1", "nsrule2"]);
  });

  it("picks the rule whose selector matches the client, else the catch-all", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(`${app1}\n${ns5}\n${svc("httpbin", "test")}`),
    });
    const target = { hostname: "httpbin.org", namespace: "test" } as never;
    expect(push.destinationRule({ namespace: "test", labels: { app: "app1" } }, target)?.from[0]?.name).toBe(
      "nsrule1",
    );
    expect(push.destinationRule({ namespace: "test", labels: { app: "other" } }, target)?.from[0]?.name).toBe(
      "nsrule5",
    );
  });

  it("resolves short hosts and prefers the most specific wildcard", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(`
${svc("reviews", "default")}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: all-local, namespace: istio-system }
spec: { host: "*.local", trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: all-svc, namespace: istio-system }
spec: { host: "*.svc.cluster.local", trafficPolicy: { tls: { mode: DISABLE } } }
`),
    });
    const reviews = push.registry.service("reviews.default.svc.cluster.local", "default")!;
    expect(push.destinationRule(sidecar("default"), reviews)?.spec.host).toBe(
      "reviews.default.svc.cluster.local",
    );
    // A client namespace without rules gets the service namespace's rule; a host without a rule of
    // its own gets the root namespace's most specific wildcard (push_context.go destinationRule).
    expect(push.destinationRule(sidecar("elsewhere"), reviews)?.from[0]?.name).toBe("reviews");
    const ratings = { ...reviews, hostname: "ratings.default.svc.cluster.local" };
    expect(push.destinationRule(sidecar("elsewhere"), ratings)?.from[0]?.name).toBe("all-svc");
  });
});

describe("PushContext: Sidecar scoping", () => {
  const base = [
    svc("a", "prod-us1"),
    svc("b", "prod-apis"),
    svc("c", "istio-system"),
    svc("d", "other"),
  ].join("\n");

  it("imports everything (*/*) without a Sidecar", () => {
    const push = PushContext.create({ snapshot: snapshotOf(base) });
    expect(
      push
        .servicesForProxy(sidecar("prod-us1"))
        .map((s) => s.name)
        .sort(),
    ).toEqual(["a", "b", "c", "d"]);
    expect(push.sidecarScope(sidecar("prod-us1")).outboundTrafficPolicy).toBe("ALLOW_ANY");
  });

  it("restricts egress to the Sidecar's hosts (istio.io Sidecar reference, namespace-wide example)", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(`${base}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: prod-us1 }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
  egress: [{ hosts: [prod-us1/*, prod-apis/*, istio-system/*] }]
`),
    });
    const scope = push.sidecarScope(sidecar("prod-us1"));
    expect(scope.services.map((s) => s.name).sort()).toEqual(["a", "b", "c"]);
    expect(scope.outboundTrafficPolicy).toBe("REGISTRY_ONLY");
    expect(scope.sidecar?.metadata.name).toBe("default");
    expect(scope.configDependencies.has("Sidecar/prod-us1/default")).toBe(true);
    // Another namespace still sees everything.
    expect(push.servicesForProxy(sidecar("other"))).toHaveLength(4);
  });

  it("applies the root namespace's Sidecar mesh-wide and selects by workload labels first", () => {
    // Istio spells the Sidecar selector workloadSelector.labels (raw until the config schema does).
    const selected: Resource = {
      apiVersion: "networking.istio.io/v1",
      kind: "Sidecar",
      metadata: { name: "ratings", namespace: "prod-us1" },
      spec: {
        workloadSelector: { labels: { app: "ratings" } },
        egress: [{ port: { number: 9080, protocol: "HTTP", name: "egresshttp" }, hosts: ["prod-apis/*"] }],
      },
    };
    const push = PushContext.create({
      snapshot: snapshotOf(
        `${base}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec: { egress: [{ hosts: ["./*", istio-system/*] }] }
`,
        { raw: [selected] },
      ),
    });
    expect(
      push
        .servicesForProxy(sidecar("other"))
        .map((s) => s.name)
        .sort(),
    ).toEqual(["c", "d"]);
    const ratings = sidecar("prod-us1", "10.0.0.2", { app: "ratings" });
    expect(push.sidecarFor(ratings)?.metadata.name).toBe("ratings");
    expect(push.servicesForProxy(ratings).map((s) => s.name)).toEqual(["b"]);
    expect(push.sidecarScope(ratings).egressListeners[0]?.listener?.port?.number).toBe(9080);
  });

  it("imports the services a VirtualService in scope routes to", () => {
    // istio/istio pilot/pkg/model/sidecar.go collectImportedServices: "Infer more possible
    // destinations from virtual services".
    const push = PushContext.create({
      snapshot: snapshotOf(`${base}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: prod-us1 }
spec: { egress: [{ hosts: ["./*"] }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a-to-d, namespace: prod-us1 }
spec:
  hosts: [a]
  http: [{ route: [{ destination: { host: d.other.svc.cluster.local } }] }]
`),
    });
    const scope = push.sidecarScope(sidecar("prod-us1"));
    expect(scope.services.map((s) => s.name).sort()).toEqual(["a", "d"]);
    expect(scope.configDependencies.has("VirtualService/prod-us1/a-to-d")).toBe(true);
  });

  it("gives gateways every exported service and no Sidecar", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(`${base}
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec: { egress: [{ hosts: ["./*"] }] }
`),
    });
    const gw = parseProxy({ id: "router~10.0.0.9~ingress.istio-system~istio-system.svc.cluster.local" });
    expect(push.sidecarFor(gw)).toBeUndefined();
    expect(push.servicesForProxy(gw)).toHaveLength(4);
  });
});

describe("PushContext: security policies", () => {
  const pa = (name: string, ns: string, body: string, created = "2024-01-01T00:00:00Z") => `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns}, creationTimestamp: "${created}" }
spec: ${body}
---`;

  it.each([
    // istio/istio pilot/pkg/security/authn/policy_applier_test.go TestComposePeerAuthentication.
    ["no config", [], "PERMISSIVE"],
    ["mesh only", [pa("default", "istio-system", "{ mtls: { mode: STRICT } }")], "STRICT"],
    [
      "mesh vs namespace",
      [
        pa("default", "istio-system", "{ selector: { matchLabels: {} }, mtls: { mode: STRICT } }"),
        pa("default", "my-ns", "{ mtls: { mode: PERMISSIVE } }"),
      ],
      "PERMISSIVE",
    ],
    [
      "ignore non-empty selector in root namespace",
      [pa("default", "istio-system", "{ selector: { matchLabels: { app: foo } }, mtls: { mode: STRICT } }")],
      "PERMISSIVE",
    ],
    [
      "workload vs namespace config",
      [pa("default", "my-ns", "{}"), pa("foo", "my-ns", "{ selector: { matchLabels: { app: foo } } }")],
      "PERMISSIVE",
    ],
    [
      "workload vs mesh config",
      [
        pa("default", "my-ns", "{ mtls: { mode: PERMISSIVE } }"),
        pa("default", "istio-system", "{ mtls: { mode: DISABLE } }"),
      ],
      "PERMISSIVE",
    ],
    [
      "multiple mesh policy: the oldest wins",
      [
        pa("now", "istio-system", "{ mtls: { mode: DISABLE } }", "2024-01-01T00:00:01Z"),
        pa("second-ago", "istio-system", "{ mtls: { mode: PERMISSIVE } }", "2024-01-01T00:00:00Z"),
        pa("second-later", "istio-system", "{ mtls: { mode: STRICT } }", "2024-01-01T00:00:00Z"),
      ],
      "PERMISSIVE",
    ],
    ["inheritance: default mesh", [pa("default", "istio-system", "{ mtls: { mode: UNSET } }")], "PERMISSIVE"],
    [
      "inheritance: mesh to workload",
      [
        pa("default", "istio-system", "{ mtls: { mode: STRICT } }"),
        pa("foo", "my-ns", "{ selector: { matchLabels: { app: foo } } }"),
      ],
      "STRICT",
    ],
    [
      "inheritance: mesh to namespace to workload",
      [
        pa("default", "istio-system", "{ mtls: { mode: STRICT } }"),
        pa("default", "my-ns", "{ mtls: { mode: UNSET } }"),
        pa("foo", "my-ns", "{ selector: { matchLabels: { app: foo } } }"),
      ],
      "STRICT",
    ],
  ] as const)("%s", (_name, docs, mode) => {
    const push = PushContext.create({ snapshot: snapshotOf(docs.join("\n")) });
    expect(push.peerAuthentication({ namespace: "my-ns", labels: { app: "foo" } }).mode).toBe(mode);
  });

  it("applies portLevelMtls, UNSET inheriting the workload mode (case: port level)", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(
        `${pa("default", "istio-system", "{ mtls: { mode: STRICT } }")}
${pa("foo", "my-ns", '{ selector: { matchLabels: { app: foo } }, portLevelMtls: { "80": { mode: DISABLE }, "90": { mode: UNSET } } }')}`,
      ),
    });
    const workload = { namespace: "my-ns", labels: { app: "foo" } };
    const effective = push.peerAuthentication(workload);
    expect(effective.mode).toBe("STRICT");
    expect([...effective.perPort]).toEqual([
      [80, "DISABLE"],
      [90, "STRICT"],
    ]);
    expect(push.mtlsMode(workload, 80)).toBe("DISABLE");
    expect(push.mtlsMode(workload, 8080)).toBe("STRICT");
    expect(effective.from.map((k) => `${k.namespace}/${k.name}`)).toEqual([
      "istio-system/default",
      "my-ns/foo",
    ]);
  });

  it("selects AuthorizationPolicies from the root namespace first, by selector, grouped by action", () => {
    // istio/istio pilot/pkg/model/authorization.go ListAuthorizationPolicies.
    const push = PushContext.create({
      snapshot: snapshotOf(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ns-deny, namespace: foo }
spec: { action: DENY, rules: [{ to: [{ operation: { paths: [/admin] } }] }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: mesh-allow, namespace: istio-system }
spec: { rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: other-app, namespace: foo }
spec: { selector: { matchLabels: { app: other } }, rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: foo }
spec: { selector: { matchLabels: { app: httpbin } }, action: CUSTOM, provider: { name: my-ext-authz }, rules: [{}] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: for-gateway, namespace: foo }
spec: { targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: gw }], rules: [{}] }
`),
    });
    const policies = push.authorizationPolicies({ namespace: "foo", labels: { app: "httpbin" } });
    expect(policies.allow.map((p) => p.metadata.name)).toEqual(["mesh-allow"]);
    expect(policies.deny.map((p) => p.metadata.name)).toEqual(["ns-deny"]);
    expect(policies.custom.map((p) => p.metadata.name)).toEqual(["ext"]);
    expect(policies.audit).toEqual([]);
  });

  it("uses the registry's pod labels for a proxy, not only what the node claims", () => {
    const push = PushContext.create({
      snapshot: snapshotOf(`
apiVersion: v1
kind: Pod
metadata: { name: httpbin-0, namespace: foo, labels: { app: httpbin } }
spec: { containers: [{ name: httpbin }] }
status: { podIP: 10.1.2.3 }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: httpbin, namespace: foo }
spec: { selector: { matchLabels: { app: httpbin } }, mtls: { mode: STRICT } }
`),
    });
    // The node claims another app; the registry knows the pod at 10.1.2.3.
    const proxy = sidecar("foo", "10.1.2.3", { app: "not-httpbin" });
    expect(push.proxyLabels(proxy)).toEqual({ app: "httpbin" });
    expect(push.peerAuthentication(proxy).mode).toBe("STRICT");
  });
});

describe("PushContext: gateways and dependencies", () => {
  const config = `
${svc("reviews", "default")}
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: bookinfo-gateway, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers:
  - port: { number: 443, name: https, protocol: HTTPS }
    hosts: ["*"]
    tls: { mode: SIMPLE, credentialName: bookinfo-cert }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: egress, namespace: default }
spec:
  selector: { istio: egressgateway }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bookinfo, namespace: default }
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http: [{ route: [{ destination: { host: reviews } }] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec: { host: reviews }
`;
  const push = PushContext.create({ snapshot: snapshotOf(config) });
  const ingress = parseProxy({
    id: "router~10.0.0.9~ingress-0.istio-system~istio-system.svc.cluster.local",
    metadata: { LABELS: { istio: "ingressgateway" } },
  });

  it("selects Gateways by the gateway proxy's labels (bookinfo-gateway.yaml)", () => {
    expect(push.gatewaysForProxy(ingress).map((g) => g.metadata.name)).toEqual(["bookinfo-gateway"]);
    expect(push.gatewaysForProxy(sidecar("default"))).toEqual([]);
  });

  it("tracks what a gateway's config depends on", () => {
    const deps = push.dependencies(ingress);
    expect(deps.dependsOn({ kind: "Gateway", namespace: "default", name: "bookinfo-gateway" })).toBe(true);
    expect(deps.dependsOn({ kind: "Gateway", namespace: "default", name: "egress" })).toBe(false);
    expect(deps.dependsOn({ kind: "VirtualService", namespace: "default", name: "bookinfo" })).toBe(true);
    // credentialName secrets are read from the gateway workload's namespace.
    expect(deps.dependsOn({ kind: "Secret", namespace: "istio-system", name: "bookinfo-cert" })).toBe(true);
    expect(deps.dependsOnService("default/reviews.default.svc.cluster.local")).toBe(true);
  });

  it("tracks what a sidecar's config depends on, with Istio's namespace rule for policies", () => {
    // istio/istio pilot/pkg/model/sidecar.go DependsOnConfig.
    const deps = push.dependencies(sidecar("default"));
    expect(deps.dependsOn({ kind: "DestinationRule", namespace: "default", name: "reviews" })).toBe(true);
    expect(deps.dependsOn({ kind: "DestinationRule", namespace: "default", name: "unrelated" })).toBe(false);
    expect(deps.dependsOn({ kind: "VirtualService", namespace: "default", name: "bookinfo" })).toBe(false); // gateway-bound
    expect(deps.dependsOn({ kind: "AuthorizationPolicy", namespace: "default", name: "any" })).toBe(true);
    expect(deps.dependsOn({ kind: "AuthorizationPolicy", namespace: "istio-system", name: "any" })).toBe(
      true,
    );
    expect(deps.dependsOn({ kind: "AuthorizationPolicy", namespace: "other", name: "any" })).toBe(false);
    expect(deps.dependsOn({ kind: "EndpointSlice", namespace: "default", name: "x" })).toBe(false);
    expect(deps.dependsOn({ kind: "SomethingNew", namespace: "default", name: "x" })).toBe(true);
    expect(deps.dependsOnService("default/reviews.default.svc.cluster.local")).toBe(true);
    expect(deps.dependsOnService("default/ratings.default.svc.cluster.local")).toBe(false);
  });
});
