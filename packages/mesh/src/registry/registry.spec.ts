import type { Resource } from "@meshlet/config";
import { firstValueFrom, of } from "rxjs";
import { describe, expect, it } from "vitest";
import { parseProxy } from "../proxy/proxy.js";
import { snapshotOf } from "../testing/config.js";
import { Registry, registry$ } from "./registry.js";
import { workloadEntryFromGroup } from "./workload-group.js";

// A bookinfo-shaped namespace (istio/istio samples/bookinfo/platform/kube/bookinfo.yaml: Service
// `reviews` port 9080 named `http`, ServiceAccount `bookinfo-reviews`, pods labelled app/version).
const bookinfo = `
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default, labels: { app: reviews, service: reviews } }
spec:
  clusterIP: 10.96.0.20
  selector: { app: reviews }
  ports: [{ name: http, port: 9080 }]
---
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v1-5b8b8d8b9f-abcde
  namespace: default
  labels: { app: reviews, version: v1, pod-template-hash: 5b8b8d8b9f, security.istio.io/tlsMode: istio, istio-locality: us-east1.us-east1-b }
  ownerReferences: [{ kind: ReplicaSet, name: reviews-v1-5b8b8d8b9f, apiVersion: apps/v1, uid: x }]
spec:
  serviceAccountName: bookinfo-reviews
  containers: [{ name: reviews, ports: [{ containerPort: 9080 }] }]
status: { podIP: 10.244.1.10, phase: Running }
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v2-0, namespace: default, labels: { app: reviews, version: v2 } }
spec:
  serviceAccountName: bookinfo-reviews
  containers: [{ name: reviews, ports: [{ containerPort: 9080 }] }]
status:
  podIP: 10.244.1.11
  phase: Running
  conditions: [{ type: Ready, status: "False" }]
---
apiVersion: v1
kind: Pod
metadata: { name: reviews-v3-0, namespace: default, labels: { app: reviews, version: v3 } }
spec: { containers: [{ name: reviews }] }
status: { phase: Pending }
`;

describe("Registry: Kubernetes services", () => {
  const registry = Registry.fromSnapshot(snapshotOf(bookinfo));
  const reviews = registry.service("reviews.default.svc.cluster.local", "default");

  it("converts a Service as Istio's ConvertService does", () => {
    // istio/istio pilot/pkg/serviceregistry/kube/conversion.go ConvertService / ServiceHostname.
    expect(reviews).toMatchObject({
      hostname: "reviews.default.svc.cluster.local",
      name: "reviews",
      namespace: "default",
      registry: "Kubernetes",
      defaultAddress: "10.96.0.20",
      addresses: ["10.96.0.20"],
      resolution: "ClientSide",
      meshExternal: false,
      ports: [{ name: "http", port: 9080, protocol: "HTTP" }],
      selector: { app: "reviews" },
      source: { kind: "Service", namespace: "default", name: "reviews" },
    });
  });

  it("derives endpoints from the selected pods when there are no EndpointSlices", () => {
    const eps = registry.endpoints(reviews!, 9080);
    expect(eps.map((e) => [e.addresses[0], e.port, e.health])).toEqual([
      ["10.244.1.10", 9080, "HEALTHY"],
      ["10.244.1.11", 9080, "UNHEALTHY"], // Ready condition False
    ]); // reviews-v3 has no IP: no endpoint
    expect(eps[0]).toMatchObject({
      servicePortName: "http",
      labels: { app: "reviews", version: "v1" },
      // istio/istio kube/conversion.go SecureNamingSAN: spiffe://<td>/ns/<ns>/sa/<pod service account>.
      serviceAccount: "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
      tlsMode: "istio",
      // controller.go getPodLocality: the istio-locality label, "." read as "/".
      locality: "us-east1/us-east1-b",
      clusterId: "Kubernetes",
      namespace: "default",
      workloadName: "reviews-v1",
      workload: { kind: "Pod", namespace: "default", name: "reviews-v1-5b8b8d8b9f-abcde" },
    });
    // istio/istio service.go GetTLSModeFromEndpointLabels: no label → "disabled".
    expect(eps[1]?.tlsMode).toBe("disabled");
  });

  it("uses EndpointSlices when the Service has them, with Istio's health rules", () => {
    const registry2 = Registry.fromSnapshot(
      snapshotOf(`${bookinfo}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: reviews-abc, namespace: default, labels: { kubernetes.io/service-name: reviews } }
addressType: IPv4
ports: [{ name: http, port: 9080, protocol: TCP }]
endpoints:
- addresses: [10.244.1.10]
  conditions: { ready: true }
  targetRef: { kind: Pod, name: reviews-v1-5b8b8d8b9f-abcde, namespace: default }
- addresses: [10.244.1.11]
  conditions: { ready: false, serving: true, terminating: true }
  targetRef: { kind: Pod, name: reviews-v2-0, namespace: default }
- addresses: [10.244.9.9]
  conditions: { ready: false }
  zone: zone-a
- addresses: [10.244.9.10]
  targetRef: { kind: Pod, name: not-synced-yet, namespace: default }
`),
    );
    const svc = registry2.service("reviews.default.svc.cluster.local", "default")!;
    // istio/istio kube/controller/endpointslice.go endpointHealthStatus; a targetRef to an unknown
    // Pod is skipped (getPod: expectedPod && pod == nil).
    expect(registry2.endpoints(svc, 9080).map((e) => [e.addresses[0], e.health, e.locality])).toEqual([
      ["10.244.1.10", "HEALTHY", "us-east1/us-east1-b"],
      ["10.244.1.11", "TERMINATING", ""],
      ["10.244.9.9", "UNHEALTHY", "/zone-a/"],
    ]);
  });

  it("resolves a named targetPort against the pod's container ports", () => {
    const r = Registry.fromSnapshot(
      snapshotOf(`
apiVersion: v1
kind: Service
metadata: { name: web, namespace: ns1 }
spec: { selector: { app: web }, ports: [{ name: http-web, port: 80, targetPort: web-port }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-0, namespace: ns1, labels: { app: web } }
spec: { containers: [{ name: web, ports: [{ containerPort: 8080, name: web-port }] }] }
status: { podIP: 10.0.0.7 }
`),
    );
    const web = r.service("web.ns1.svc.cluster.local", "ns1")!;
    expect(web.ports[0]).toEqual({ name: "http-web", port: 80, protocol: "HTTP", targetPort: "web-port" });
    expect(r.endpoints(web, 80).map((e) => `${e.addresses[0]}:${e.port}`)).toEqual(["10.0.0.7:8080"]);
    // Kubernetes admission defaults the service account to "default".
    expect(r.endpoints(web, 80)[0]?.serviceAccount).toBe("spiffe://cluster.local/ns/ns1/sa/default");
  });

  it("maps headless, ExternalName, exportTo and port protocols as Istio does", () => {
    const r = Registry.fromSnapshot(
      snapshotOf(`
apiVersion: v1
kind: Service
metadata: { name: db, namespace: ns1, annotations: { networking.istio.io/exportTo: ". , other" } }
spec:
  clusterIP: None
  ports:
  - { port: 3306 }
  - { name: http-something, port: 8080, appProtocol: https }
  - { name: grpc-web-x, port: 8081 }
  - { name: grpcweb-x, port: 8082 }
  - { name: dns, port: 53, protocol: UDP }
---
apiVersion: v1
kind: Service
metadata: { name: google, namespace: ns1 }
spec: { type: ExternalName, externalName: www.google.com, ports: [{ name: https, port: 443 }] }
`),
    );
    const db = r.service("db.ns1.svc.cluster.local", "ns1")!;
    expect(db.resolution).toBe("Passthrough");
    expect(db.defaultAddress).toBe("0.0.0.0");
    expect([...(db.exportTo ?? [])]).toEqual([".", "other"]);
    // istio/istio pkg/config/kube/conversion_test.go TestConvertProtocol: a well-known port
    // (3306) is TCP; appProtocol wins over the name; "grpc-web-x" is GRPC-Web but "grpcweb-x" is
    // not a protocol; UDP is UDP.
    expect(db.ports.map((p) => p.protocol)).toEqual([
      "TCP",
      "HTTPS",
      "GRPC-Web",
      "UnsupportedProtocol",
      "UDP",
    ]);
    const google = r.service("google.ns1.svc.cluster.local", "ns1")!;
    expect(google).toMatchObject({ resolution: "Alias", meshExternal: true, externalName: "www.google.com" });
  });
});

describe("Registry: ServiceEntry and WorkloadEntry", () => {
  // Examples from istio.io docs/reference/config/networking/service-entry/ and
  // docs/tasks/traffic-management/egress/egress-control/.
  const yaml = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: httpbin-ext, namespace: default }
spec:
  hosts: [httpbin.org]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-svc-mongocluster, namespace: default }
spec:
  hosts: [mymongodb.somedomain]
  addresses: [192.192.192.192/24]
  ports: [{ number: 27018, name: mongodb, protocol: MONGO }]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{ address: 2.2.2.2 }, { address: 3.3.3.3, ports: { mongodb: 27019 }, serviceAccount: mongo, locality: us-west1.a }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: details-svc, namespace: default }
spec:
  serviceAccount: details-legacy
  address: 2.2.2.2
  labels: { app: details-legacy, instance-id: vm1 }
`;
  // istio.io service-entry reference "details-svc": Istio spells the ServiceEntry selector
  // `workloadSelector.labels`; passed as a raw resource until the config schema accepts it.
  const detailsSe: Resource = {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name: "details-svc", namespace: "default" },
    spec: {
      hosts: ["details.bookinfo.com"],
      location: "MESH_INTERNAL",
      ports: [{ number: 80, name: "http", protocol: "HTTP", targetPort: 8080 }],
      resolution: "STATIC",
      workloadSelector: { labels: { app: "details-legacy" } },
    },
  };
  const registry = Registry.fromSnapshot(snapshotOf(yaml, { raw: [detailsSe] }));

  it("gives a DNS ServiceEntry without endpoints its host as endpoint", () => {
    // istio/istio serviceentry/conversion.go convertServiceEntryToInstances.
    const httpbin = registry.service("httpbin.org", "default")!;
    expect(httpbin).toMatchObject({
      resolution: "DNS",
      meshExternal: true,
      registry: "External",
      name: "httpbin.org",
    });
    expect(httpbin.ports).toEqual([{ name: "http", port: 80, protocol: "HTTP" }]);
    expect(registry.endpoints(httpbin, 80).map((e) => [e.addresses[0], e.port, e.tlsMode])).toEqual([
      ["httpbin.org", 80, "disabled"],
    ]);
  });

  it("converts STATIC inline endpoints with Istio's port priority and TLS mode", () => {
    const mongo = registry.service("mymongodb.somedomain", "default")!;
    expect(mongo).toMatchObject({
      resolution: "ClientSide",
      meshExternal: false,
      addresses: ["192.192.192.192/24"],
    });
    expect(mongo.ports[0]?.protocol).toBe("Mongo");
    // conversion.go convertEndpoint: endpoint ports[name] > targetPort > number; a service account
    // means tlsMode istio (getTLSModeFromWorkloadEntry).
    expect(
      registry
        .endpoints(mongo, 27018)
        .map((e) => [e.addresses[0], e.port, e.tlsMode, e.serviceAccount, e.locality]),
    ).toEqual([
      ["2.2.2.2", 27018, "disabled", "", ""],
      ["3.3.3.3", 27019, "istio", "spiffe://cluster.local/ns/default/sa/mongo", "us-west1/a"],
    ]);
  });

  it("selects WorkloadEntries with workloadSelector onto the targetPort", () => {
    const details = registry.service("details.bookinfo.com", "default")!;
    expect(registry.endpoints(details, 80)).toMatchObject([
      {
        addresses: ["2.2.2.2"],
        port: 8080,
        labels: { app: "details-legacy", "instance-id": "vm1" },
        tlsMode: "istio",
        serviceAccount: "spiffe://cluster.local/ns/default/sa/details-legacy",
        workload: { kind: "WorkloadEntry", name: "details-svc" },
      },
    ]);
    expect(
      registry
        .serviceTargets({ ipAddresses: ["2.2.2.2"], namespace: "default" })
        .map((t) => [t.service.hostname, t.targetPort]),
    ).toEqual([
      ["details.bookinfo.com", 8080],
      ["mymongodb.somedomain", 27018],
    ]);
  });

  it("lets a Kubernetes Service win over a ServiceEntry with its host", () => {
    // istio/istio pilot/pkg/model/push_context.go initServiceRegistry: no "domain squatting".
    const r = Registry.fromSnapshot(
      snapshotOf(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: squat, namespace: default, creationTimestamp: "2020-01-01T00:00:00Z" }
spec: { hosts: [reviews.default.svc.cluster.local], ports: [{ number: 9080, name: http, protocol: HTTP }], resolution: STATIC }
---
apiVersion: v1
kind: Service
metadata: { name: reviews, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z" }
spec: { ports: [{ name: http, port: 9080 }] }
`),
    );
    expect(r.servicesForHostname("reviews.default.svc.cluster.local").map((s) => s.registry)).toEqual([
      "External",
      "Kubernetes",
    ]);
    expect(r.service("reviews.default.svc.cluster.local", "default")?.registry).toBe("Kubernetes");
  });
});

describe("Registry: change detection and observables", () => {
  it("reports only the services whose definition or endpoints changed", () => {
    const before = Registry.fromSnapshot(snapshotOf(bookinfo));
    const after = Registry.fromSnapshot(
      snapshotOf(
        `${bookinfo.replace("10.244.1.10", "10.244.1.99")}
---
apiVersion: v1
kind: Service
metadata: { name: ratings, namespace: default }
spec: { ports: [{ name: http, port: 9080 }] }
`,
      ),
    );
    expect([...after.changedServices(before)].sort()).toEqual([
      "default/ratings.default.svc.cluster.local",
      "default/reviews.default.svc.cluster.local",
    ]);
    expect(after.changedServices(after).size).toBe(0);
  });

  it("builds a registry per snapshot", async () => {
    const r = await firstValueFrom(registry$(of(snapshotOf(bookinfo, { version: "7" }))));
    expect(r.version).toBe("7");
    expect(r.services()).toHaveLength(1);
  });
});

describe("workloadEntryFromGroup", () => {
  it("registers a VM the way Istio's auto-registration does", () => {
    // istio/istio pilot/pkg/autoregistration/controller.go workloadEntryFromGroup and
    // GenerateWorkloadEntryName; labels: node metadata > group metadata > template.
    const group = snapshotOf(`
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: ratings-vm, namespace: vm }
spec:
  metadata: { labels: { app: ratings, class: vm }, annotations: { owner: team-a } }
  template: { serviceAccount: bookinfo-ratings, network: vm-network, labels: { class: template, tier: db } }
`).list("WorkloadGroup")[0]!;
    const proxy = parseProxy({
      id: "sidecar~10.128.0.5~ratings-vm.vm~vm.svc.cluster.local",
      metadata: {
        LABELS: { app: "ratings", version: "v1", "istio-locality": "us.east" },
        AUTO_REGISTER_GROUP: "ratings-vm",
      },
      locality: { region: "us", zone: "east", subZone: "" },
    });
    const entry = workloadEntryFromGroup(group, proxy);
    expect(entry.metadata).toMatchObject({
      name: "ratings-vm-10.128.0.5",
      namespace: "vm",
      annotations: { "istio.io/autoRegistrationGroup": "ratings-vm", owner: "team-a" },
    });
    expect(entry.spec).toEqual({
      address: "10.128.0.5",
      serviceAccount: "bookinfo-ratings",
      network: "vm-network",
      locality: "us/east/",
      labels: { app: "ratings", class: "vm", tier: "db", version: "v1" },
    });
  });
});
