import { describe, expect, it } from "vitest";
import { analyze } from "./analyze.js";
import { ConfigSnapshot } from "./config-snapshot.js";
import type { Origin } from "./diagnostic.js";
import { KindRegistry } from "./kind-registry.js";
import { parseDocuments } from "./parse-documents.js";
import type { Resource } from "./resource.js";
import { validateResource } from "./validate-resource.js";

const registry = new KindRegistry();

function snapshotOf(yaml: string): { snapshot: ConfigSnapshot; origins: Map<Resource, Origin> } {
  const origins = new Map<Resource, Origin>();
  for (const doc of parseDocuments(yaml, { source: "test", file: "mesh.yaml" }).documents) {
    const { resource, diagnostics } = validateResource(doc.object, doc.origin, { registry });
    expect(diagnostics).toEqual([]);
    origins.set(resource!, doc.origin);
  }
  return { snapshot: ConfigSnapshot.create(origins.keys(), { origins }), origins };
}

const vs = (name: string, body: string) => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
${body}`;

const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews.default.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}]
`;

describe("analyze", () => {
  it("reports a subset its DestinationRule does not define as IST0101 ReferencedResourceNotFound, an error as in Istio", () => {
    const { snapshot } = snapshotOf(
      dr +
        vs(
          "reviews",
          `  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
`,
        ),
    );
    const warnings = analyze(snapshot);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      severity: "error",
      code: "IST0101",
      file: "mesh.yaml",
      line: 18,
      resource: "VirtualService/default/reviews",
      path: "spec.http[0].route[1].destination.subset",
    });
    expect(warnings[0]?.message).toContain('"reviews+v3"');
  });

  it("checks mirrors[] destinations like route[] ones", () => {
    const { snapshot } = snapshotOf(
      dr +
        vs(
          "reviews",
          `  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
    mirrors:
    - destination: {host: reviews, subset: v1}
    - destination: {host: reviews, subset: v2}
      percentage: {value: 50}
`,
        ),
    );
    expect(analyze(snapshot).map((d) => [d.code, d.path])).toEqual([
      ["IST0101", "spec.http[0].mirrors[1].destination.subset"],
    ]);
  });

  it("reports a subset when no DestinationRule exists for the host", () => {
    const { snapshot } = snapshotOf(
      vs("r", "  hosts: [ratings]\n  tcp:\n  - route: [{destination: {host: ratings, subset: v1}}]\n"),
    );
    expect(analyze(snapshot).map((w) => w.code)).toEqual(["IST0101"]);
  });

  it("warns when two VirtualServices claim one host on the mesh gateway (IST0109, an error), not on a gateway", () => {
    const route = "  http: [{route: [{destination: {host: reviews}}]}]\n";
    const meshConflict = snapshotOf(
      vs("a", `  hosts: [reviews]\n${route}`) +
        vs("b", `  hosts: [reviews.default.svc.cluster.local]\n${route}`),
    );
    const warnings = analyze(meshConflict.snapshot);
    expect(warnings.map((w) => [w.code, w.resource])).toEqual([
      ["IST0109", "VirtualService/default/a"],
      ["IST0109", "VirtualService/default/b"],
    ]);
    const gateway = `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw}
spec: {servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
`;
    const onGateway = snapshotOf(
      gateway +
        vs("a", `  hosts: [reviews]\n  gateways: [gw]\n${route}`) +
        vs("b", `  hosts: [reviews]\n  gateways: [gw]\n${route}`),
    );
    expect(analyze(onGateway.snapshot)).toEqual([]);
  });

  it("warns when a VirtualService names a Gateway that does not exist (IST0101)", () => {
    const { snapshot } = snapshotOf(
      vs(
        "a",
        "  hosts: [a.example.com]\n  gateways: [istio-system/missing]\n  http: [{route: [{destination: {host: a}}]}]\n",
      ),
    );
    expect(analyze(snapshot)[0]).toMatchObject({
      code: "IST0101",
      severity: "error",
      path: "spec.gateways[0]",
    });
  });

  it("warns when a Gateway selector matches no workload, once workloads are known (IST0101)", () => {
    const gateway = `---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`;
    const pod = (labels: string) => `---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: istio-system, labels: {${labels}}}
spec: {containers: [{name: c}]}
`;
    expect(analyze(snapshotOf(gateway).snapshot)).toEqual([]);
    const none = analyze(snapshotOf(gateway + pod("istio: egressgateway")).snapshot);
    expect(none).toHaveLength(1);
    expect(none[0]).toMatchObject({
      code: "IST0101",
      resource: "Gateway/istio-system/gw",
      path: "spec.selector",
      line: 6,
    });
    expect(analyze(snapshotOf(gateway + pod("istio: ingressgateway")).snapshot)).toEqual([]);
  });

  it("warns when PeerAuthentications at the same scope ask for different modes (MC1004)", () => {
    const pa = (name: string, mode: string, selector = "") => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${name}, namespace: prod}
spec:
${selector}  mtls: {mode: ${mode}}
`;
    const conflict = analyze(snapshotOf(pa("a", "STRICT") + pa("b", "PERMISSIVE")).snapshot);
    expect(conflict.map((w) => w.code)).toEqual(["MC1004", "MC1004"]);
    expect(conflict[0]?.message).toContain("a=STRICT");
    // Different scopes (namespace-wide vs one workload) refine each other: no conflict.
    expect(
      analyze(
        snapshotOf(pa("a", "STRICT") + pa("b", "PERMISSIVE", "  selector: {matchLabels: {app: x}}\n"))
          .snapshot,
      ),
    ).toEqual([]);
  });
});
