import { formatDiagnostic } from "@meshlet/config";
import { describe, expect, it } from "vitest";
import { PushContext } from "../push/push-context.js";
import { snapshotOf } from "../testing/config.js";
import { analyzeMesh } from "./analyze-mesh.js";

// Messages follow the templates of istio/istio pkg/config/analysis/msg/messages.yaml.
const config = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { selector: { app: ratings }, ports: [{ name: http, port: 9080 }, { name: grpc, port: 9090 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1, namespace: default, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: reviews }] }
status: { podIP: 10.0.0.1 }
---
apiVersion: v1
kind: Pod
metadata: { name: ingress, namespace: istio-system, labels: { istio: ingressgateway } }
spec: { containers: [{ name: istio-proxy }] }
status: { podIP: 10.0.0.9 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v3, labels: { version: v3 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ghost, namespace: default }
spec: { host: ghost }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 50 }
    - { destination: { host: reviews, subset: v4 }, weight: 50 }
    mirror: { host: reviews, subset: v9 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-dup, namespace: team-2 }
spec:
  hosts: [reviews.default.svc.cluster.local]
  http: [{ route: [{ destination: { host: ratings.default.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-private, namespace: team-3 }
spec:
  hosts: [reviews.default.svc.cluster.local]
  exportTo: ["."]
  gateways: [mesh, missing-gw]
  http: [{ route: [{ destination: { host: nonexistent.example.com } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: x, namespace: team-5 }
spec:
  hosts: [other.example.com]
  exportTo: ["."]
  http: [{ route: [{ destination: { host: reviews.default.svc.cluster.local } }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: y, namespace: team-6 }
spec:
  hosts: [other.example.com]
  exportTo: ["."]
  http: [{ route: [{ destination: { host: reviews.default.svc.cluster.local } }] }]
---
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
metadata: { name: orphan, namespace: default }
spec:
  selector: { istio: nothing }
  servers: [{ port: { number: 80, name: http, protocol: HTTP }, hosts: ["*"] }]
`;

describe("analyzeMesh", () => {
  const push = PushContext.create({ snapshot: snapshotOf(config) });
  const findings = analyzeMesh(push);
  const summary = findings.map((f) => `${f.code} ${f.resource} ${f.path}: ${f.message}`);

  it("reports missing subsets, hosts and gateways referenced by VirtualServices as IST0101", () => {
    expect(summary).toContain(
      'IST0101 VirtualService/default/reviews spec.http[0].route[1].destination.subset: Referenced host+subset in destinationrule not found: "reviews+v4"',
    );
    expect(summary).toContain(
      'IST0101 VirtualService/default/reviews spec.http[0].mirror.subset: Referenced mirror+subset in destinationrule not found: "reviews+v9"',
    );
    expect(summary).toContain(
      'IST0101 VirtualService/team-3/reviews-private spec.http[0].route[0].destination.host: Referenced host not found: "nonexistent.example.com"',
    );
    expect(summary).toContain(
      'IST0101 VirtualService/team-3/reviews-private spec.gateways[1]: Referenced gateway not found: "missing-gw"',
    );
    // The existing subset v1 is not reported.
    expect(summary.filter((s) => s.includes("reviews+v1"))).toEqual([]);
  });

  it("reports VirtualServices for one host on the mesh gateway that a namespace sees together (IST0109)", () => {
    // istio/istio pkg/config/analysis/analyzers/virtualservice/conflictingmeshgatewayhosts.go: a
    // VirtualService exported to "." conflicts with the public ones for its host; two exported to
    // different namespaces only (team-5/x, team-6/y) do not.
    const conflicts = findings.filter((f) => f.code === "IST0109");
    expect(conflicts.map((f) => f.resource)).toEqual([
      "VirtualService/default/reviews",
      "VirtualService/team-2/reviews-dup",
      "VirtualService/team-3/reviews-private",
    ]);
    expect(conflicts[0]?.message).toBe(
      "The VirtualServices default/reviews,team-2/reviews-dup,team-3/reviews-private associated with mesh gateway define the same host reviews.default.svc.cluster.local which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.",
    );
    expect(conflicts[0]?.level).toBe("Error");
  });

  it("asks for a port when a route targets a multi-port service (IST0112)", () => {
    expect(summary).toContain(
      'IST0112 VirtualService/team-2/reviews-dup spec.http[0].route[0].destination: This VirtualService routes to a service "ratings.default.svc.cluster.local" that exposes multiple ports [9080 9090]. Specifying a port in the destination is required to disambiguate.',
    );
  });

  it("reports DestinationRules for unknown hosts (IST0174) and subsets without endpoints (IST0173)", () => {
    const ghost = findings.find((f) => f.code === "IST0174");
    expect(ghost).toMatchObject({
      level: "Warning",
      resource: "DestinationRule/default/ghost",
      message:
        "The host ghost.default.svc.cluster.local defined in the DestinationRule does not match any services in the mesh.",
    });
    expect(summary).toContain(
      "IST0173 DestinationRule/default/reviews spec.subsets[1]: The Subset v3 defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).",
    );
    expect(summary.filter((s) => s.includes("Subset v1"))).toEqual([]);
  });

  it("reports a Gateway without its secret, looked up in the gateway workload's namespace", () => {
    // istio/istio pkg/config/analysis/analyzers/gateway/secret.go.
    expect(summary).toContain(
      'IST0101 Gateway/default/bookinfo-gateway spec.servers[0].tls.credentialName: Referenced credentialName not found: "bookinfo-cert"',
    );
    const asked: string[] = [];
    const withSecret = analyzeMesh(push, {
      secretExists: (ns, name) => {
        asked.push(`${ns}/${name}`);
        return true;
      },
    });
    expect(asked).toEqual(["istio-system/bookinfo-cert"]);
    expect(withSecret.filter((f) => f.message.includes("credentialName"))).toEqual([]);
    expect(summary).toContain(
      'IST0101 Gateway/default/orphan spec.selector: Referenced selector not found: "istio=nothing"',
    );
  });

  it("points at the file and document of each finding", () => {
    const ghost = findings.find((f) => f.code === "IST0174")!;
    expect(ghost.file).toBe("test.yaml");
    expect(formatDiagnostic(ghost)).toMatch(/^test\.yaml:\d+:\d+ IST0174 warning: The host ghost/);
    const lines = config.split("\n");
    expect(lines[(ghost.line ?? 0) - 1]).toBe("apiVersion: networking.istio.io/v1");
    expect(lines[ghost.line ?? 0]).toBe("kind: DestinationRule");
  });

  it("finds nothing in consistent config", () => {
    const clean = PushContext.create({
      snapshot: snapshotOf(`
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default }
spec: { selector: { app: reviews }, ports: [{ name: http, port: 9080 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v1, namespace: default, labels: { app: reviews, version: v1 } }
spec: { containers: [{ name: reviews }] }
status: { podIP: 10.0.0.1 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec: { host: reviews, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews, subset: v1 } }] }] }
`),
    });
    expect(analyzeMesh(clean)).toEqual([]);
  });
});
