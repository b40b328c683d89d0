import { describe, expect, it } from "vitest";
import { z } from "zod";
import { KindRegistry } from "./kind-registry.js";
import { parseDocuments } from "./parse-documents.js";
import { validateResource } from "./validate-resource.js";

const registry = new KindRegistry();

function check(yaml: string, reg = registry) {
  const parsed = parseDocuments(yaml, { source: "test", file: "cfg.yaml" });
  expect(parsed.diagnostics).toEqual([]);
  expect(parsed.documents).toHaveLength(1);
  const doc = parsed.documents[0]!;
  return validateResource(doc.object, doc.origin, { registry: reg });
}

interface KindCase {
  kind: string;
  valid: string;
  invalid: string;
  /** Field path and line:column of the first error in `invalid`. */
  path: string;
  line: number;
  column: number;
}

// One valid and one invalid example per kind. Line/column point at the offending key.
const cases: KindCase[] = [
  {
    kind: "VirtualService",
    valid: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /v2}}]
    route: [{destination: {host: reviews, subset: v2}, weight: 100}]
    timeout: 5s
  - route: [{destination: {host: reviews, port: {number: 9080}}}]
`,
    invalid: `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subet: v1
`,
    path: "spec.http[0].route[0].destination.subet",
    line: 10,
    column: 9,
  },
  {
    kind: "DestinationRule",
    valid: `apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}, loadBalancer: {simple: LEAST_REQUEST}}
  subsets: [{name: v1, labels: {version: v1}}]
`,
    invalid: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    tls:
      mode: MUTUL
`,
    path: "spec.trafficPolicy.tls.mode",
    line: 8,
    column: 7,
  },
  {
    kind: "Gateway",
    valid: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*.example.com"]
    tls: {mode: SIMPLE, credentialName: example-cert}
`,
    invalid: `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public}
spec:
  servers:
  - port: {number: 70000, name: http, protocol: HTTP}
    hosts: ["*"]
`,
    path: "spec.servers[0].port.number",
    line: 6,
    column: 12,
  },
  {
    kind: "ServiceEntry",
    valid: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-api}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: DNS
`,
    invalid: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external-api}
spec:
  hosts: [api.example.com]
  resolution: MAGIC
`,
    path: "spec.resolution",
    line: 6,
    column: 3,
  },
  {
    kind: "Sidecar",
    valid: `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: prod}
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`,
    invalid: `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress:
  - hosts: ["reviews"]
`,
    path: "spec.egress[0].hosts[0]",
    line: 6,
    column: 13,
  },
  {
    kind: "WorkloadEntry",
    valid: `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec:
  address: 10.0.0.7
  labels: {app: legacy}
  ports: {http: 8080}
  serviceAccount: legacy
`,
    invalid: `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec:
  address: 10.0.0.7
  ports: {http: "eighty"}
`,
    path: "spec.ports.http",
    line: 6,
    column: 11,
  },
  {
    kind: "WorkloadGroup",
    valid: `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: legacy}
spec:
  metadata: {labels: {app: legacy}}
  template: {serviceAccount: legacy, ports: {http: 8080}}
`,
    invalid: `apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: legacy}
spec:
  metadata: {labels: {app: legacy}}
`,
    path: "spec.template",
    line: 4,
    column: 1,
  },
  {
    kind: "EnvoyFilter",
    valid: `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua}
spec:
  workloadSelector: {labels: {app: reviews}}
  configPatches:
  - applyTo: HTTP_FILTER
    match: {context: SIDECAR_INBOUND}
    patch: {operation: INSERT_BEFORE, value: {name: envoy.lua}}
`,
    invalid: `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch: {operation: PREPEND}
`,
    path: "spec.configPatches[0].patch.operation",
    line: 7,
    column: 13,
  },
  {
    kind: "PeerAuthentication",
    valid: `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  mtls: {mode: STRICT}
  portLevelMtls: {"8080": {mode: PERMISSIVE}}
`,
    invalid: `apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default}
spec:
  mtls:
    mode: strict
`,
    path: "spec.mtls.mode",
    line: 6,
    column: 5,
  },
  {
    kind: "AuthorizationPolicy",
    valid: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
    to: [{operation: {methods: [GET]}}]
    when: [{key: "request.headers[version]", values: [v1]}]
`,
    invalid: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get}
spec:
  rules:
  - to:
    - operation: {method: [GET]}
`,
    path: "spec.rules[0].to[0].operation.method",
    line: 7,
    column: 19,
  },
  {
    kind: "RequestAuthentication",
    valid: `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  selector: {matchLabels: {app: httpbin}}
  jwtRules:
  - issuer: https://issuer.example.com
    jwksUri: https://issuer.example.com/jwks.json
    forwardOriginalToken: true
`,
    // Istio needs an issuer or a jwksUri (validation.go validateJwtRule), and a jwksUri of http(s).
    invalid: `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt}
spec:
  jwtRules:
  - issuer: https://issuer.example.com
    jwksUri: ftp://issuer.example.com/jwks.json
`,
    path: "spec.jwtRules[0].jwksUri",
    line: 7,
    column: 5,
  },
  {
    kind: "Telemetry",
    valid: `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing: [{providers: [{name: otel}], randomSamplingPercentage: 10}]
  accessLogging: [{providers: [{name: envoy}]}]
`,
    invalid: `apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: mesh-default}
spec:
  tracing:
  - randomSamplingPercentage: 250
`,
    path: "spec.tracing[0].randomSamplingPercentage",
    line: 6,
    column: 5,
  },
  {
    kind: "Service",
    valid: `apiVersion: v1
kind: Service
metadata: {name: reviews, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
`,
    invalid: `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  ports:
  - name: http
    protocol: HTTP
    port: 9080
`,
    path: "spec.ports[0].protocol",
    line: 7,
    column: 5,
  },
  {
    kind: "EndpointSlice",
    valid: `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-abc, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
endpoints: [{addresses: [10.1.0.5], conditions: {ready: true}}]
ports: [{name: http, port: 9080, protocol: TCP}]
`,
    invalid: `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: reviews-abc}
addressType: IPv4
endpoints:
- addresses: []
`,
    path: "endpoints[0].addresses",
    line: 6,
    column: 3,
  },
  {
    kind: "Pod",
    valid: `apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-abc, labels: {app: reviews, version: v1}}
spec:
  containers: [{name: reviews, image: reviews:1}]
status: {podIP: 10.1.0.5, phase: Running}
`,
    invalid: `apiVersion: v1
kind: Pod
metadata: {name: reviews-v1-abc}
spec:
  containers: []
`,
    path: "spec.containers",
    line: 5,
    column: 3,
  },
  {
    kind: "Namespace",
    valid: `apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
`,
    invalid: `apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, namespace: default}
`,
    path: "metadata.namespace",
    line: 3,
    column: 28,
  },
  {
    kind: "ProxyConfig",
    // Istio docs, reference/config/networking/proxy-config: per-workload concurrency.
    valid: `apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: per-workload-proxyconfig, namespace: example}
spec:
  selector: {matchLabels: {app: ratings}}
  concurrency: 0
  image: {imageType: debug}
`,
    invalid: `apiVersion: networking.istio.io/v1beta1
kind: ProxyConfig
metadata: {name: p}
spec:
  image: {imageType: debug}
  concurency: 2
`,
    path: "spec.concurency",
    line: 6,
    column: 3,
  },
  {
    kind: "WasmPlugin",
    // Istio docs, reference/config/proxy_extensions/wasm-plugin: the openid-connect example.
    valid: `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: openid-connect, namespace: istio-ingress}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  url: file:///opt/filters/openid.wasm
  sha256: 1ef0c9a92b0420cf25f7fe5d481b231464bc88f486ca3b9c83ed5cc21d2f6210
  phase: AUTHN
  pluginConfig:
    openid_server: authn
    openid_realm: ingress
`,
    invalid: `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: openid-connect}
spec:
  url: file:///opt/filters/openid.wasm
  phase: AUTHZN
`,
    path: "spec.phase",
    line: 6,
    column: 3,
  },
  {
    kind: "ServiceAccount",
    valid: `apiVersion: v1
kind: ServiceAccount
metadata: {name: bookinfo-reviews, labels: {account: reviews}}
`,
    invalid: `apiVersion: v1
kind: ServiceAccount
metadata: {name: bookinfo-reviews}
automountServiceAccountToken: "yes"
`,
    path: "automountServiceAccountToken",
    line: 4,
    column: 1,
  },
  {
    kind: "Secret",
    valid: `apiVersion: v1
kind: Secret
metadata: {name: cacerts, namespace: istio-system}
type: Opaque
data: {ca-cert.pem: LS0tLS1CRUdJTg==}
`,
    invalid: `apiVersion: v1
kind: Secret
metadata: {name: cacerts}
stringdata: {a: b}
`,
    path: "stringdata",
    line: 4,
    column: 1,
  },
  {
    kind: "ConfigMap",
    valid: `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data: {mesh: "trustDomain: cluster.local"}
`,
    invalid: `apiVersion: v1
kind: ConfigMap
metadata: {name: istio}
data: {mesh: {trustDomain: cluster.local}}
`,
    path: "data.mesh",
    line: 4,
    column: 8,
  },
  ...(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] as const).map((kind) => ({
    kind,
    valid: `apiVersion: apps/v1
kind: ${kind}
metadata: {name: reviews-v1, labels: {app: reviews, version: v1}}
spec:
  selector: {matchLabels: {app: reviews, version: v1}}
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec:
      serviceAccountName: bookinfo-reviews
      containers:
      - name: reviews
        image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.3
        imagePullPolicy: IfNotPresent
        ports: [{containerPort: 9080}]
`,
    invalid: `apiVersion: apps/v1
kind: ${kind}
metadata: {name: reviews-v1}
spec:
  selector: {matchLabels: {app: reviews}}
  template:
    spec:
      containers:
      - name: reviews
        imagePullPolcy: IfNotPresent
`,
    path: "spec.template.spec.containers[0].imagePullPolcy",
    line: 10,
    column: 9,
  })),
  {
    kind: "Job",
    valid: `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: migrate:1}]
`,
    invalid: `apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      containers: []
`,
    path: "spec.template.spec.containers",
    line: 7,
    column: 7,
  },
  {
    kind: "CronJob",
    valid: `apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: report:1}]
`,
    invalid: `apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: report, image: report:1}]
`,
    path: "spec.schedule",
    line: 4,
    column: 1,
  },
];

describe("validateResource", () => {
  it("covers every built-in kind", () => {
    expect(cases.map((c) => c.kind).sort()).toEqual(
      registry
        .list()
        .map((d) => d.kind)
        .sort(),
    );
  });

  it("freezes a copy: the caller's object stays theirs, unfrozen and unchanged", () => {
    const object = {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "p", namespace: "foo", labels: { app: "x" } },
      spec: { rules: [{ from: [{ source: { principals: ["cluster.local/ns/a/sa/b"] } }] }] },
    };
    const before = structuredClone(object);
    const { resource } = validateResource(object, { source: "test" }, { registry });
    expect(resource).toBeDefined();
    expect(Object.isFrozen(resource?.spec)).toBe(true);
    expect(Object.isFrozen(object)).toBe(false);
    expect(Object.isFrozen(object.spec)).toBe(false);
    expect(Object.isFrozen(object.spec.rules[0])).toBe(false);
    expect(Object.isFrozen(object.metadata.labels)).toBe(false);
    // The caller may edit and validate again (as a policy engine's caller does).
    object.spec.rules[0]?.from[0]?.source.principals.push("cluster.local/ns/c/sa/d");
    expect(object).not.toEqual(before);
    expect(resource?.spec).toEqual(before.spec);
  });

  describe.each(cases)("$kind", (c) => {
    it("accepts a valid example and returns a frozen, typed resource", () => {
      const { resource, diagnostics } = check(c.valid);
      expect(diagnostics).toEqual([]);
      expect(resource?.kind).toBe(c.kind);
      expect(Object.isFrozen(resource)).toBe(true);
    });

    it("rejects an invalid example naming file, line, column, resource and field path", () => {
      const { resource, diagnostics } = check(c.invalid);
      expect(resource).toBeUndefined();
      const first = diagnostics[0]!;
      expect(first).toMatchObject({
        severity: "error",
        source: "test",
        file: "cfg.yaml",
        path: c.path,
        line: c.line,
        column: c.column,
      });
      expect(first.resource).toMatch(new RegExp(`^${c.kind}/`));
      expect(first.message.length).toBeGreaterThan(5);
    });
  });

  it("defaults the namespace of namespaced kinds and leaves cluster-scoped ones empty", () => {
    expect(check(cases[0]!.invalid.replace("subet", "subset")).resource?.metadata.namespace).toBe("default");
    expect(check(cases.find((c) => c.kind === "Namespace")!.valid).resource?.metadata.namespace).toBe("");
  });

  it("says which apiVersions a kind is served at", () => {
    const { diagnostics } = check(`apiVersion: networking.istio.io/v2
kind: Gateway
metadata: {name: g}
spec: {servers: []}
`);
    expect(diagnostics[0]).toMatchObject({ code: "MC0002", path: "apiVersion", line: 1, column: 1 });
    expect(diagnostics[0]?.expected).toContain("networking.istio.io/v1alpha3");
  });

  it("reports an unknown kind of an Istio group as an error and suggests registering it", () => {
    const { resource, diagnostics } = check(`apiVersion: networking.istio.io/v1
kind: VirtualServce
metadata: {name: w}
`);
    expect(resource).toBeUndefined();
    expect(diagnostics[0]).toMatchObject({ code: "MC0002", severity: "error", path: "kind", line: 2 });
    expect(diagnostics[0]?.message).toContain("register");
    expect(diagnostics[0]?.expected).toContain("VirtualService");
  });

  it("skips kinds the mesh does not read with an info note, never an error (as istioctl analyze does)", () => {
    for (const doc of [
      "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
      "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec: {anything: goes}\n",
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {}\n",
    ]) {
      const { resource, diagnostics } = check(doc);
      expect(resource).toBeUndefined();
      expect(diagnostics).toHaveLength(1);
      expect(diagnostics[0]).toMatchObject({ code: "MC0008", severity: "info" });
    }
  });

  it("reports bad metadata: missing name, upper-case name, non-string labels", () => {
    expect(
      check(`apiVersion: v1\nkind: Namespace\nmetadata: {labels: {a: b}}\n`).diagnostics[0],
    ).toMatchObject({
      code: "MC0003",
      path: "metadata.name",
    });
    expect(
      check(`apiVersion: v1\nkind: Namespace\nmetadata: {name: Prod}\n`).diagnostics[0]?.message,
    ).toContain('invalid name "Prod"');
    expect(
      check(`apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    tier: 3\n`)
        .diagnostics[0],
    ).toMatchObject({
      code: "MC0003",
      path: "metadata.labels.tier",
      line: 6,
      column: 5,
    });
  });

  it("says what was expected", () => {
    const { diagnostics } = check(cases.find((c) => c.kind === "ServiceEntry")!.invalid);
    expect(diagnostics[0]?.expected).toContain('"DNS"');
    const missing = check(cases.find((c) => c.kind === "WorkloadGroup")!.invalid).diagnostics[0];
    expect(missing?.message).toBe("missing required field template");
  });

  it("validates user-registered kinds with their own schema", () => {
    const reg = new KindRegistry().register({
      kind: "QuotaRule",
      group: "policy.example.com",
      versions: ["v1"],
      plural: "quotarules",
      namespaced: true,
      schema: z.looseObject({ spec: z.strictObject({ limit: z.int().positive() }) }),
    });
    const doc = (limit: string) =>
      `apiVersion: policy.example.com/v1\nkind: QuotaRule\nmetadata: {name: q}\nspec:\n  limit: ${limit}\n`;
    expect(check(doc("10"), reg).resource?.spec).toEqual({ limit: 10 });
    expect(check(doc("-1"), reg).diagnostics[0]).toMatchObject({ path: "spec.limit", line: 5, column: 3 });
    expect(check(doc("1"), registry).diagnostics[0]).toMatchObject({ code: "MC0008", severity: "info" });
  });

  it("refuses a second kind with the same name in another group", () => {
    const def = registry.get("Gateway")!;
    expect(() => new KindRegistry().register({ ...def, group: "gateway.networking.k8s.io" })).toThrow(
      /KIND_CONFLICT/,
    );
  });
});

describe("objects read from a cluster", () => {
  it("accepts server-written metadata and status (managedFields, Istio's validationMessages)", () => {
    const { resource, diagnostics } = validateResource(
      {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: {
          name: "reviews",
          namespace: "default",
          uid: "1b2c",
          resourceVersion: "123",
          generation: 2,
          creationTimestamp: "2024-01-01T00:00:00Z",
          managedFields: [
            { manager: "kubectl", operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} } },
          ],
        },
        spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews" } }] }] },
        status: {
          observedGeneration: 2,
          validationMessages: [
            { level: "ERROR", type: { code: "IST0101" }, description: "written by istiod" },
          ],
        },
      },
      { source: "kubernetes" },
      { registry },
    );
    expect(diagnostics).toEqual([]);
    expect(resource?.metadata.uid).toBe("1b2c");
  });
});
