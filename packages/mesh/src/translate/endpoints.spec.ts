import { ClusterLoadAssignmentSchema } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { PushContext } from "../push/push-context.js";
import { snapshotOf } from "../testing/config.js";
import { xdsJson } from "../testing/xds-json.js";
import { buildLoadAssignment, localityMatch } from "./endpoints.js";

// Expectations from Istio's EDS builder and locality load balancing (istio/istio
// pilot/pkg/xds/endpoints/endpoint_builder.go, pilot/pkg/networking/core/loadbalancer/loadbalancer.go
// and loadbalancer_test.go: priorities 0 same subzone, 1 same zone, 2 same region, 3 elsewhere).

const pod = (name: string, ip: string, version: string, locality: string, ready = true) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ns, labels: { app: svc, version: ${version}, istio-locality: ${locality} } }
spec: { serviceAccountName: svc, containers: [{ name: app, ports: [{ containerPort: 8080 }] }] }
status: { podIP: ${ip}, phase: Running, conditions: [{ type: Ready, status: "${ready ? "True" : "False"}" }] }
---`;

const base = `
apiVersion: v1
kind: Service
metadata: { name: svc, namespace: ns }
spec: { selector: { app: svc }, ports: [{ name: grpc, port: 80, targetPort: 8080 }] }
---
${pod("a", "10.0.0.1", "v1", "region1.zone1.sub1")}
${pod("b", "10.0.0.2", "v1", "region1.zone1.sub2")}
${pod("c", "10.0.0.3", "v2", "region1.zone2.sub1")}
${pod("d", "10.0.0.4", "v2", "region2.zone1.sub1")}
${pod("e", "10.0.0.5", "v2", "region1.zone1.sub1", false)}
`;

const client = parseProxy({
  id: "sidecar~10.1.0.1~client.ns~ns.svc.cluster.local",
  metadata: { GENERATOR: "grpc" },
  locality: { region: "region1", zone: "zone1", subZone: "sub1" },
});

function assignment(extra: string, subset = "") {
  const push = PushContext.create({ snapshot: snapshotOf(base + extra) });
  const service = push.registry.service("svc.ns.svc.cluster.local", "ns");
  if (service === undefined) throw new Error("no service");
  return xdsJson(
    ClusterLoadAssignmentSchema,
    buildLoadAssignment({ push, proxy: client, service, port: 80, subset }),
  ) as {
    cluster_name: string;
    endpoints: Array<{
      locality: Record<string, string>;
      priority?: number;
      load_balancing_weight: number;
      lb_endpoints: unknown[];
    }>;
  };
}

const dr = (trafficPolicy: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: svc, namespace: ns }
spec:
  host: svc
  trafficPolicy: ${trafficPolicy}
  subsets: [{ name: v2, labels: { version: v2 } }]
---`;

describe("buildLoadAssignment", () => {
  it("groups healthy endpoints by locality with the sum of their weights, on the target port", () => {
    const cla = assignment("");
    expect(cla.cluster_name).toBe("outbound|80||svc.ns.svc.cluster.local");
    expect(cla.endpoints.map((e) => [e.locality, e.load_balancing_weight, e.lb_endpoints.length])).toEqual([
      [{ region: "region1", zone: "zone1", sub_zone: "sub1" }, 1, 1],
      [{ region: "region1", zone: "zone1", sub_zone: "sub2" }, 1, 1],
      [{ region: "region1", zone: "zone2", sub_zone: "sub1" }, 1, 1],
      [{ region: "region2", zone: "zone1", sub_zone: "sub1" }, 1, 1],
    ]);
    expect(JSON.stringify(cla)).toContain('"port_value":8080');
    // The not-ready pod e is left out (SEND_UNHEALTHY_ENDPOINTS is off by default).
    expect(JSON.stringify(cla)).not.toContain("10.0.0.5");
  });

  it("keeps only a subset's endpoints", () => {
    const cla = assignment(dr("{ loadBalancer: { simple: ROUND_ROBIN } }"), "v2");
    expect(cla.cluster_name).toBe("outbound|80|v2|svc.ns.svc.cluster.local");
    expect(JSON.stringify(cla)).toMatch(/10\.0\.0\.3.*10\.0\.0\.4/);
    expect(JSON.stringify(cla)).not.toContain("10.0.0.1");
  });

  it("prioritises localities by what they share with the proxy when outlier detection is on", () => {
    const cla = assignment(dr("{ outlierDetection: { consecutive5xxErrors: 5 } }"));
    expect(cla.endpoints.map((e) => e.priority ?? 0)).toEqual([0, 1, 2, 3]);
    const failover = assignment(
      dr(
        "{ outlierDetection: { consecutive5xxErrors: 5 }, loadBalancer: { localityLbSetting: { failover: [{ from: region1, to: region3 }] } } }",
      ),
    );
    // region2 is not the failover target of region1: priority 4, renumbered to 3.
    expect(failover.endpoints.map((e) => e.priority ?? 0)).toEqual([0, 1, 2, 3]);
    expect(
      assignment(dr("{ loadBalancer: { simple: ROUND_ROBIN } }")).endpoints.every(
        (e) => e.priority === undefined,
      ),
    ).toBe(true);
  });

  it("distributes by locality: the `to` weights, localities not named dropped", () => {
    const cla = assignment(
      dr(
        `{ loadBalancer: { localityLbSetting: { distribute: [{ from: "region1/zone1/*", to: { "region1/zone1/*": 80, "region2/*": 20 } }] } } }`,
      ),
    );
    expect(cla.endpoints.map((e) => [e.locality.region, e.locality.zone, e.load_balancing_weight])).toEqual([
      ["region1", "zone1", 40],
      ["region1", "zone1", 40],
      ["region2", "zone1", 20],
    ]);
  });

  it("matches localities as Istio's LocalityMatch does", () => {
    expect(localityMatch("region1/zone1/sub1", "region1")).toBe(true);
    expect(localityMatch("region1/zone1/sub1", "region1/*/sub1")).toBe(true);
    expect(localityMatch("region1/zone1/sub1", "region1/zone2")).toBe(false);
  });
});
