import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { ConfigSnapshot, type Resource } from "@meshlet/config";
import { SnapshotCache, TypeUrl, type XdsEvent } from "@meshlet/xds";
import { Subject } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { describe, expect, it } from "vitest";
import { envoyGenerators } from "../envoy/controller-generator.js";
import { bookinfoSnapshot } from "../testing/bookinfo.js";
import { snapshotOf } from "../testing/config.js";
import { type ProxyGenerator, type ProxyGenerators, proxylessGenerator } from "./generator.js";
import { MeshController, type PushEvent } from "./mesh-controller.js";

// One endpoint change through MeshController (virtual time): which proxies are pushed and what
// their EDS holds afterwards. The expectations follow Istio:
// - a push for a service's endpoints goes to the proxies whose SidecarScope holds the service
//   (istio/istio pilot/pkg/xds/proxy_dependencies.go: a service change affects a proxy only when
//   its scope depends on the service), so a proxy whose Sidecar limits egress to its own namespace
//   is not pushed;
// - a not-ready pod's endpoint leaves EDS (istio/istio pilot/pkg/xds/endpoints/endpoint_builder.go:
//   UnHealthy endpoints are filtered out unless the service publishes not-ready addresses).
// Bookinfo (src/envoy/testdata/bookinfo): reviews has v1 10.244.1.13, v2 10.244.1.14, v3 10.244.1.15.

const REVIEWS = "reviews.default.svc.cluster.local";
const ISOLATED_YAML = `
apiVersion: v1
kind: Service
metadata: { name: solo, namespace: isolated }
spec: { clusterIP: 10.96.30.30, selector: { app: solo }, ports: [{ name: http, port: 8000 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: solo-0, namespace: isolated, labels: { app: solo } }
spec: { serviceAccountName: solo, containers: [{ name: app, ports: [{ containerPort: 8000 }] }] }
status: { podIP: 10.244.3.10, phase: Running }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: isolated }
spec: { egress: [{ hosts: ["./*"] }] }
`;
// reviews-v2-0 as Kubernetes reports it once its readiness probe fails.
const REVIEWS_V2_NOT_READY = `
apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2-0
  namespace: default
  labels: { app: reviews, version: v2, security.istio.io/tlsMode: istio }
spec:
  serviceAccountName: bookinfo-reviews
  containers: [{ name: reviews, ports: [{ containerPort: 9080 }] }]
status:
  phase: Running
  podIP: 10.244.1.14
  conditions: [{ type: Ready, status: "False" }]
`;

const envoyNode = (pod: string, ns: string, ip: string, labels: Record<string, string>, sa: string) => ({
  id: `sidecar~${ip}~${pod}.${ns}~${ns}.svc.cluster.local`,
  metadata: { NAMESPACE: ns, LABELS: labels, SERVICE_ACCOUNT: sa, INSTANCE_IPS: ip, ISTIO_VERSION: "1.27.0" },
});
const PRODUCTPAGE = envoyNode(
  "productpage-v1-0",
  "default",
  "10.244.1.10",
  { app: "productpage", version: "v1" },
  "bookinfo-productpage",
);
const RATINGS = envoyNode(
  "ratings-v1-0",
  "default",
  "10.244.1.12",
  { app: "ratings", version: "v1" },
  "bookinfo-ratings",
);
const REVIEWS_V2 = envoyNode(
  "reviews-v2-0",
  "default",
  "10.244.1.14",
  { app: "reviews", version: "v2" },
  "bookinfo-reviews",
);
const SOLO = envoyNode("solo-0", "isolated", "10.244.3.10", { app: "solo" }, "solo");
const GRPC_CLIENT = {
  id: "sidecar~10.244.1.30~client-0.default~default.svc.cluster.local",
  metadata: { GENERATOR: "grpc" },
  userAgentName: "gRPC Node Pure JS",
};

/** Records which proxies each generator path ran for. */
function counting(generator: ProxyGenerator, calls: { full: string[]; endpoints: string[] }): ProxyGenerator {
  const update = generator.updateEndpoints;
  return Object.assign(
    (request: Parameters<ProxyGenerator>[0]) => {
      calls.full.push(request.proxy.id);
      return generator(request);
    },
    update === undefined
      ? {}
      : {
          updateEndpoints: (...args: Parameters<NonNullable<ProxyGenerator["updateEndpoints"]>>) => {
            calls.endpoints.push(args[0].proxy.id);
            return update(...args);
          },
        },
  );
}

/** A controller on virtual time serving Envoy sidecars and proxyless clients, with every proxy above connected. */
function serve(first: ConfigSnapshot) {
  const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
  const config = new Subject<ConfigSnapshot>();
  const events = new Subject<XdsEvent>();
  const cache = new SnapshotCache();
  const calls = { full: [] as string[], endpoints: [] as string[] };
  const envoy = envoyGenerators();
  const generators: ProxyGenerators = {
    sidecar: counting(envoy.sidecar as ProxyGenerator, calls),
    proxyless: counting(proxylessGenerator, calls),
  };
  const controller = new MeshController({ config, cache, clock: scheduler, debounceMs: 100, generators });
  const pushes: PushEvent[] = [];
  controller.pushes$.subscribe((p) => pushes.push(p));
  controller.attach({ events$: events });
  controller.start();
  config.next(first);
  scheduler.flush();
  let streamId = 0;
  for (const [node, names] of [
    [PRODUCTPAGE, []],
    [RATINGS, []],
    [REVIEWS_V2, []],
    [SOLO, []],
    [GRPC_CLIENT, [`${REVIEWS}:9080`]],
  ] as const) {
    const base = { streamId: ++streamId, protocol: "sotw" as const, node: node as never };
    events.next({ ...base, type: "stream-open", service: "ads", peer: "127.0.0.1:1" });
    events.next({
      ...base,
      type: "request",
      typeUrl: TypeUrl.Listener,
      versionInfo: "",
      responseNonce: "",
      resourceNames: [...names],
      unsubscribe: [],
      stale: false,
    });
  }
  scheduler.flush();
  return {
    cache,
    calls,
    pushes,
    publish(snapshot: ConfigSnapshot) {
      config.next(snapshot);
      scheduler.flush();
    },
  };
}

/** Endpoint addresses of one cluster in a proxy's snapshot (`ip:port`, sorted). */
function edsOf(cache: SnapshotCache, nodeId: string, cluster: string): string[] | undefined {
  const r = cache.getSnapshot(nodeId)?.resources(TypeUrl.ClusterLoadAssignment).get(cluster);
  if (r === undefined) return undefined;
  const cla = r.message as ClusterLoadAssignment;
  const out: string[] = [];
  for (const locality of cla.endpoints) {
    for (const lb of locality.lbEndpoints) {
      if (lb.hostIdentifier.case !== "endpoint") continue;
      const socket = lb.hostIdentifier.value.address?.address;
      if (socket?.case === "socketAddress")
        out.push(`${socket.value.address}:${socket.value.portSpecifier.value}`);
    }
  }
  return out.sort();
}

describe("MeshController endpoint changes", () => {
  const first = bookinfoSnapshot(["destination-rule-all.yaml"], ISOLATED_YAML);
  // What a ConfigStore emits when one Pod changes: every other resource is the same object.
  const notReady = snapshotOf(REVIEWS_V2_NOT_READY).list("Pod")[0] as Resource;
  const resources: Resource[] = [];
  for (const kind of first.kinds())
    for (const r of first.list(kind))
      resources.push(kind === "Pod" && r.metadata.name === "reviews-v2-0" ? notReady : r);
  const second = ConfigSnapshot.create(resources, { version: "2" });

  it("pushes a not-ready pod to exactly the proxies that see its service, with its endpoint gone from EDS", () => {
    const t = serve(first);
    const ids = [PRODUCTPAGE, RATINGS, REVIEWS_V2, SOLO, GRPC_CLIENT].map((n) => n.id);
    for (const id of ids) expect(t.cache.getSnapshot(id), id).toBeDefined();
    expect(edsOf(t.cache, PRODUCTPAGE.id, `outbound|9080||${REVIEWS}`)).toEqual([
      "10.244.1.13:9080",
      "10.244.1.14:9080",
      "10.244.1.15:9080",
    ]);
    const soloBefore = t.cache.getSnapshot(SOLO.id);
    const mark = t.pushes.length;
    t.calls.full.length = 0;
    t.calls.endpoints.length = 0;

    t.publish(second);

    const pushes = t.pushes.slice(mark);
    expect(pushes.map((p) => [p.cause, p.configs])).toEqual([["config", ["Pod/default/reviews-v2-0"]]]);
    // Every proxy in `default` sees reviews; solo's Sidecar keeps it to `isolated`.
    expect([...(pushes[0]?.proxies ?? [])].sort()).toEqual(
      [PRODUCTPAGE.id, RATINGS.id, REVIEWS_V2.id, GRPC_CLIENT.id].sort(),
    );
    expect(t.cache.getSnapshot(SOLO.id)).toBe(soloBefore);
    // Only the pod's own proxy (its inbound may change) is generated in full; the others get their
    // load assignments rebuilt.
    expect(t.calls.full).toEqual([REVIEWS_V2.id]);
    expect([...t.calls.endpoints].sort()).toEqual([PRODUCTPAGE.id, RATINGS.id, GRPC_CLIENT.id].sort());

    for (const id of [PRODUCTPAGE.id, RATINGS.id, REVIEWS_V2.id]) {
      expect(edsOf(t.cache, id, `outbound|9080||${REVIEWS}`), id).toEqual([
        "10.244.1.13:9080",
        "10.244.1.15:9080",
      ]);
      expect(edsOf(t.cache, id, `outbound|9080|v2|${REVIEWS}`), id).toEqual([]);
      expect(edsOf(t.cache, id, `outbound|9080|v3|${REVIEWS}`), id).toEqual(["10.244.1.15:9080"]);
      // Other services' endpoints are untouched.
      expect(edsOf(t.cache, id, "outbound|9080||ratings.default.svc.cluster.local"), id).toEqual([
        "10.244.1.12:9080",
      ]);
    }
    // The proxyless client dials reviews (no subset): its one load assignment lost 10.244.1.14.
    expect(edsOf(t.cache, GRPC_CLIENT.id, `outbound|9080||${REVIEWS}`)).toEqual([
      "10.244.1.13:9080",
      "10.244.1.15:9080",
    ]);
  });

  it("leaves every proxy with the snapshot a full build of the new config gives", () => {
    const incremental = serve(first);
    incremental.publish(second);
    const full = serve(second);
    for (const node of [PRODUCTPAGE, RATINGS, REVIEWS_V2, SOLO, GRPC_CLIENT]) {
      const a = incremental.cache.getSnapshot(node.id);
      const b = full.cache.getSnapshot(node.id);
      for (const type of [
        TypeUrl.Listener,
        TypeUrl.RouteConfiguration,
        TypeUrl.Cluster,
        TypeUrl.ClusterLoadAssignment,
        TypeUrl.Secret,
      ]) {
        // Set versions are content hashes (ResourcePool): equal versions, equal bytes.
        expect(a?.resourceSet(type).version, `${node.id} ${type}`).toBe(b?.resourceSet(type).version);
      }
    }
  });
});
