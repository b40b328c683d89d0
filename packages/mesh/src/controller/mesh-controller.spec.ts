import type { JsonObject } from "@bufbuild/protobuf";
import type { ConfigSnapshot } from "@meshlet/config";
import { SnapshotCache, TypeUrl, type XdsEvent } from "@meshlet/xds";
import { Subject } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { describe, expect, it } from "vitest";
import { snapshotOf } from "../testing/config.js";
import { GRPC_ECHO_CLIENT_ID, GRPC_ECHO_SUBSETS, GRPC_ECHO_YAML } from "../testing/grpc-echo.js";
import { MeshController, type MeshStatus, type PushEvent } from "./mesh-controller.js";

// The controller on virtual time (RxJS TestScheduler): nothing here waits on the wall clock.

const FQDN = "echo.echo-grpc.svc.cluster.local";
const OTHER_YAML = `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: web }
spec: { clusterIP: 10.96.20.20, selector: { app: web }, ports: [{ name: grpc, port: 8080 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: web-0, namespace: web, labels: { app: web } }
spec: { containers: [{ name: app, ports: [{ containerPort: 8080 }] }] }
status: { podIP: 10.244.2.10, phase: Running }
---
`;
const vsTo = (subset: string, ns = "echo-grpc") => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: ${ns} }
spec:
  hosts: [${FQDN}]
  exportTo: ["."]
  http: [{ route: [{ destination: { host: ${FQDN}, subset: ${subset} } }] }]
---
`;

const grpcNode = (id: string) => ({
  id,
  metadata: { GENERATOR: "grpc" },
  userAgentName: "gRPC Node Pure JS",
});
const WEB_CLIENT_ID = "sidecar~10.244.2.30~c-0.web~web.svc.cluster.local";

function setup(first: string, options: { maxResourceNamesPerType?: number } = {}) {
  const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
  const config = new Subject<ConfigSnapshot>();
  const events = new Subject<XdsEvent>();
  const cache = new SnapshotCache();
  const controller = new MeshController({ config, cache, clock: scheduler, debounceMs: 100, ...options });
  const pushes: PushEvent[] = [];
  let status: MeshStatus | undefined;
  controller.pushes$.subscribe((p) => pushes.push(p));
  controller.status$.subscribe((s) => {
    status = s;
  });
  controller.attach({ events$: events });
  controller.start();
  let version = 0;
  const publish = (yaml: string) => config.next(snapshotOf(yaml, { version: String(++version) }));
  publish(first);
  scheduler.flush();
  let streamId = 0;
  const subscribe = (nodeId: string, names: string[], typeUrl: string = TypeUrl.Listener) => {
    const id = ++streamId;
    const base = { streamId: id, protocol: "sotw" as const, node: grpcNode(nodeId) as never };
    events.next({ ...base, type: "stream-open", service: "ads", peer: "127.0.0.1:1" });
    events.next({
      ...base,
      type: "request",
      typeUrl,
      versionInfo: "",
      responseNonce: "",
      resourceNames: names,
      unsubscribe: [],
      stale: false,
    });
    scheduler.flush();
    return id;
  };
  return {
    scheduler,
    publish,
    controller,
    cache,
    pushes,
    events,
    subscribe,
    status: () => status as MeshStatus,
  };
}

describe("MeshController", () => {
  it("builds a proxyless client's snapshot from the names it subscribes to", () => {
    const t = setup(GRPC_ECHO_YAML);
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    const snap = t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID);
    expect([...(snap?.resources(TypeUrl.Listener).keys() ?? [])]).toEqual(["echo:7070"]);
    expect([...(snap?.resources(TypeUrl.RouteConfiguration).keys() ?? [])]).toEqual([
      `outbound|7070||${FQDN}`,
    ]);
    // The first config is pushed to nobody; the client's first request connects it.
    expect(t.pushes.map((p) => [p.cause, p.proxies])).toEqual([
      ["config", []],
      ["connect", [GRPC_ECHO_CLIENT_ID]],
    ]);
    expect(t.status().proxies).toEqual([
      expect.objectContaining({
        id: GRPC_ECHO_CLIENT_ID,
        kind: "proxyless",
        client: "grpc-js",
        streams: 1,
        version: "1",
      }),
    ]);
  });

  it("hands explain() a connected proxy as its node made it (proxyless, with its client's capabilities)", () => {
    const t = setup(GRPC_ECHO_YAML);
    expect(t.controller.connectedProxy(GRPC_ECHO_CLIENT_ID)).toBeUndefined();
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    const connected = t.controller.connectedProxy(GRPC_ECHO_CLIENT_ID);
    expect(connected?.proxy.kind).toBe("proxyless");
    expect(connected?.capabilities.client).toBe("grpc-js");
  });

  it("holds no more names per type and stream than maxResourceNamesPerType, and lists the node as refused", () => {
    const t = setup(GRPC_ECHO_YAML, { maxResourceNamesPerType: 2 });
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070", "echo", "other:1"]);
    expect(t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID)).toBeUndefined();
    expect(t.status().refused).toEqual([
      expect.objectContaining({
        nodeId: GRPC_ECHO_CLIENT_ID,
        code: 8,
        reason: `node "${GRPC_ECHO_CLIENT_ID}" subscribed to 3 resource names of ${TypeUrl.Listener} on one stream; the limit is 2 per type and stream`,
      }),
    ]);
    // Within the cap, the same node is served.
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    expect([...(t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID)?.resources(TypeUrl.Listener).keys() ?? [])]).toEqual(
      ["echo:7070"],
    );
  });

  it("debounces a burst of config changes into one push", () => {
    const t = setup(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS);
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    const before = t.pushes.length;
    t.scheduler.schedule(() => t.publish(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS + vsTo("v1")), 10);
    t.scheduler.schedule(() => t.publish(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS + vsTo("v2")), 50);
    t.scheduler.flush();
    const pushes = t.pushes.slice(before);
    expect(pushes).toHaveLength(1);
    expect(pushes[0]).toMatchObject({
      cause: "config",
      version: "3",
      proxies: [GRPC_ECHO_CLIENT_ID],
      configs: ["VirtualService/echo-grpc/echo"],
    });
    // The last config wins: the route goes to subset v2.
    const clusters = [...(t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID)?.resources(TypeUrl.Cluster).keys() ?? [])];
    expect(clusters).toEqual([`outbound|7070|v2|${FQDN}`]);
  });

  it("pushes only the proxies a change affects", () => {
    const t = setup(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS + OTHER_YAML);
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    t.subscribe(WEB_CLIENT_ID, ["web:8080"]);
    const before = t.pushes.length;
    // A VirtualService exported only to echo-grpc affects echo-grpc's client alone.
    t.publish(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS + OTHER_YAML + vsTo("v1"));
    t.scheduler.flush();
    expect(t.pushes.slice(before).map((p) => p.proxies)).toEqual([[GRPC_ECHO_CLIENT_ID]]);
    // An endpoint change of web affects every proxy that sees web: both clients (web is exported
    // everywhere). Only the web client's ClusterLoadAssignment changes: the echo client does not dial web.
    const moved = OTHER_YAML.replace("10.244.2.10", "10.244.2.11");
    const mark = t.pushes.length;
    t.publish(GRPC_ECHO_YAML + GRPC_ECHO_SUBSETS + moved + vsTo("v1"));
    t.scheduler.flush();
    expect(
      t.pushes
        .slice(mark)
        .flatMap((p) => p.proxies)
        .sort(),
    ).toEqual([GRPC_ECHO_CLIENT_ID, WEB_CLIENT_ID].sort());
    expect(t.pushes.at(-1)?.resourcesChanged).toBe(1);
  });

  it("shares encoded resources between proxies with the same content", () => {
    const t = setup(GRPC_ECHO_YAML);
    t.subscribe(GRPC_ECHO_CLIENT_ID, [`${FQDN}:7070`]);
    const second = "sidecar~10.244.1.21~client-1.echo-grpc~echo-grpc.svc.cluster.local";
    t.subscribe(second, [`${FQDN}:7070`]);
    const a = t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID)?.resourceSet(TypeUrl.Cluster);
    const b = t.cache.getSnapshot(second)?.resourceSet(TypeUrl.Cluster);
    expect(a).toBeDefined();
    expect(b).toBe(a);
  });

  it("refuses a node without a usable identity with INVALID_ARGUMENT and reports it", () => {
    const t = setup(GRPC_ECHO_YAML);
    expect(t.controller.authorize({ node: { id: "not-an-istio-node" } })).toEqual({
      code: 3,
      message: expect.stringContaining('has 1 part(s) separated by "~"'),
    });
    t.subscribe("bad~node", ["echo:7070"]);
    expect(t.cache.getSnapshot("bad~node")).toBeUndefined();
    expect(t.status().refused.map((r) => [r.nodeId, r.code])).toEqual([
      ["not-an-istio-node", 3],
      ["bad~node", 3],
    ]);
    // A verified certificate for another namespace: PERMISSION_DENIED.
    expect(
      t.controller.authorize({
        node: grpcNode(GRPC_ECHO_CLIENT_ID),
        spiffeId: "spiffe://cluster.local/ns/other/sa/default",
      })?.code,
    ).toBe(7);
    expect(
      t.controller.authorize({
        node: grpcNode(GRPC_ECHO_CLIENT_ID),
        spiffeId: "spiffe://cluster.local/ns/echo-grpc/sa/x",
      }),
    ).toBeUndefined();
  });

  it("refuses a second stream that claims a connected node's id with other metadata (it would share or define that proxy's config)", () => {
    // istiod builds a model.Proxy per connection (pilot/pkg/xds/ads.go initConnection), so two
    // connections never share config through an id; here snapshots are keyed by node id.
    const t = setup(GRPC_ECHO_YAML);
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    const same = grpcNode(GRPC_ECHO_CLIENT_ID);
    const allowed = t.controller.authorize({
      node: same,
      spiffeId: "spiffe://cluster.local/ns/echo-grpc/sa/default",
    });
    expect(allowed).toBeUndefined();
    const others: JsonObject[] = [
      { GENERATOR: "grpc", SERVICE_ACCOUNT: "catalog" },
      { GENERATOR: "grpc", LABELS: { app: "other" } },
      { GENERATOR: "grpc", INSTANCE_IPS: "10.9.9.9" },
    ];
    for (const metadata of others) {
      const refused = t.controller.authorize({
        node: { ...same, metadata },
        spiffeId: "spiffe://cluster.local/ns/echo-grpc/sa/catalog",
      });
      expect(refused, JSON.stringify(metadata)).toEqual({
        code: 7,
        message: expect.stringContaining("already connected with other metadata"),
      });
    }
  });

  it("reports bad config on status$ and serves it as failing clusters, never failing the push", () => {
    const t = setup(GRPC_ECHO_YAML + vsTo("missing"));
    t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    expect(t.status().findings.map((f) => f.code)).toContain("IST0101");
    const snap = t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID);
    expect([...(snap?.resources(TypeUrl.ClusterLoadAssignment).values() ?? [])].map((r) => r.name)).toEqual([
      `outbound|7070|missing|${FQDN}`,
    ]);
    expect(t.status().proxies[0]?.warnings.map((w) => w.code)).toEqual(["INVALID_CONFIG"]);
  });

  it("clears a proxy's snapshot when its last stream closes", () => {
    const t = setup(GRPC_ECHO_YAML);
    const stream = t.subscribe(GRPC_ECHO_CLIENT_ID, ["echo:7070"]);
    expect(t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID)).toBeDefined();
    t.events.next({
      type: "stream-close",
      streamId: stream,
      protocol: "sotw",
      node: grpcNode(GRPC_ECHO_CLIENT_ID) as never,
    });
    expect(t.cache.getSnapshot(GRPC_ECHO_CLIENT_ID)).toBeUndefined();
    expect(t.status().proxies).toEqual([]);
  });
});
