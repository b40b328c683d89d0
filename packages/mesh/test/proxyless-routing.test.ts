import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MeshControlPlane, startControlPlane } from "./support/control-plane.js";
import {
  type Backend,
  type CallOptions,
  eventually,
  type MeshClient,
  type RpcResult,
  startBackend,
  startClient,
  tally,
} from "./support/mesh-fixture.js";

// End to end: MeshController + XdsServer serve two real proxyless clients — @grpc/grpc-js-xds 1.14
// and gRPC C-core (Debian python3-grpcio 1.51) — that resolve `xds:///…` through LDS → RDS → CDS →
// EDS and call two grpc-js backends (v1, v2). The scenarios are the proxyless ones of Istio's
// integration tests (tests/integration/pilot/common/routing.go: shifting, fault abort gRPC,
// consistent hashing on a header) and of grpcecho_test.go. One control plane, one pair of clients
// and one pair of backends serve the whole file; each test changes the config and waits for both
// clients to follow. CI needs `apt-get install -y python3-grpcio`.

const FQDN = "echo.test.svc.cluster.local";
// grpc-js dials the FQDN; C-core dials the short name, which Istio resolves in the client's namespace.
const TARGETS: Record<MeshClient["kind"], string> = {
  "grpc-js": `xds:///${FQDN}:7070`,
  "c-core": "xds:///echo:7070",
};

let plane: MeshControlPlane;
let backends: Backend[] = [];
let clients: MeshClient[] = [];

const registry = (v1: number, v2: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: test }
spec:
  hosts: [${FQDN}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: grpc, protocol: GRPC }]
  endpoints:
    - { address: 127.0.0.1, ports: { grpc: ${v1} }, labels: { app: echo, version: v1 } }
    - { address: 127.0.0.1, ports: { grpc: ${v2} }, labels: { app: echo, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: test }
spec:
  host: ${FQDN}
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
`;

const virtualService = (http: string) => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: test }
spec:
  hosts: [${FQDN}]
  http:
${http}
`;

beforeAll(async () => {
  backends = await Promise.all([startBackend("v1"), startBackend("v2")]);
  plane = await startControlPlane(registry(backends[0]!.port, backends[1]!.port));
  const bootstrap = (pod: string) => ({
    serverUri: `127.0.0.1:${plane.port}`,
    podName: pod,
    namespace: "test",
    ip: "127.0.0.1",
    labels: { app: "client" },
  });
  clients = await Promise.all([
    startClient("grpc-js", bootstrap("client-js")),
    startClient("c-core", bootstrap("client-c")),
  ]);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await plane?.close();
  await Promise.allSettled(backends.map((b) => b.close()));
});

/** Runs `check` on both clients at once, each retried until it holds (the push takes a moment to land). */
function onBothClients(
  check: (client: MeshClient, call: (o?: CallOptions) => Promise<RpcResult[]>) => Promise<void>,
) {
  return Promise.all(
    clients.map((client) =>
      eventually(async () => {
        try {
          await check(client, (o) => client.call(TARGETS[client.kind], o));
        } catch (error) {
          const rejected = nacks()
            .filter((e) => e.node?.id === client.nodeId)
            .map((e) => (e.type === "nack" ? e.errorDetail.message : ""));
          const detail = rejected.length > 0 ? ` (its NACKs: ${rejected.join(" | ")})` : "";
          throw new Error(
            `${client.kind}: ${error instanceof Error ? error.message : String(error)}${detail}\n${client.stderr().slice(-2000)}`,
            {
              cause: error,
            },
          );
        }
      }),
    ),
  );
}

const nacks = () => plane.events.filter((e) => e.type === "nack");

describe("proxyless gRPC end to end (grpc-js-xds and C-core through MeshController)", () => {
  it("round-robins over the service's endpoints without a VirtualService", async () => {
    await onBothClients(async (_c, call) => {
      const counts = tally(await call({ count: 20 }));
      // ROUND_ROBIN over two endpoints alternates: 10 each.
      expect(counts).toEqual({ v1: 10, v2: 10 });
    });
  });

  it("routes to a subset", async () => {
    await plane.apply(virtualService(`    - route: [{ destination: { host: ${FQDN}, subset: v2 } }]`));
    await onBothClients(async (_c, call) => expect(tally(await call({ count: 10 }))).toEqual({ v2: 10 }));
  });

  it("routes on a request header", async () => {
    await plane.apply(
      virtualService(`    - match: [{ headers: { x-user: { exact: jason } } }]
      route: [{ destination: { host: ${FQDN}, subset: v1 } }]
    - route: [{ destination: { host: ${FQDN}, subset: v2 } }]`),
    );
    await onBothClients(async (_c, call) => {
      expect(tally(await call({ count: 5, metadata: { "x-user": "jason" } }))).toEqual({ v1: 5 });
      expect(tally(await call({ count: 5, metadata: { "x-user": "someone" } }))).toEqual({ v2: 5 });
      expect(tally(await call({ count: 5 }))).toEqual({ v2: 5 });
    });
  });

  it("routes on the gRPC method (the URI path)", async () => {
    await plane.apply(
      virtualService(`    - match: [{ uri: { exact: /meshlet.test.Echo/Other } }]
      route: [{ destination: { host: ${FQDN}, subset: v1 } }]
    - route: [{ destination: { host: ${FQDN}, subset: v2 } }]`),
    );
    await onBothClients(async (_c, call) => {
      expect(tally(await call({ count: 5, method: "/meshlet.test.Echo/Other" }))).toEqual({ v1: 5 });
      expect(tally(await call({ count: 5 }))).toEqual({ v2: 5 });
    });
  });

  it("splits 20/80 between subsets within ±10 points over 200 RPCs", async () => {
    await plane.apply(
      virtualService(`    - route:
        - { destination: { host: ${FQDN}, subset: v1 }, weight: 20 }
        - { destination: { host: ${FQDN}, subset: v2 }, weight: 80 }`),
    );
    await onBothClients(async (_c, call) => {
      const counts = tally(await call({ count: 200 }));
      expect((counts.v1 ?? 0) + (counts.v2 ?? 0)).toBe(200);
      // 20% ± 10 points: between 20 and 60 of 200 (the binomial tail outside is below 1e-6).
      expect(counts.v1).toBeGreaterThanOrEqual(20);
      expect(counts.v1).toBeLessThanOrEqual(60);
    });
  });

  it("delays by a fixed-delay fault and aborts with a gRPC status", async () => {
    await plane.apply(
      virtualService(`    - match: [{ headers: { x-fault: { exact: delay } } }]
      fault: { delay: { percentage: { value: 100 }, fixedDelay: 400ms } }
      route: [{ destination: { host: ${FQDN}, subset: v1 } }]
    - match: [{ headers: { x-fault: { exact: abort } } }]
      fault: { abort: { percentage: { value: 100 }, grpcStatus: UNAVAILABLE } }
      route: [{ destination: { host: ${FQDN}, subset: v1 } }]
    - route: [{ destination: { host: ${FQDN}, subset: v2 } }]`),
    );
    await onBothClients(async (_c, call) => {
      const delayed = await call({ count: 3, metadata: { "x-fault": "delay" } });
      expect(tally(delayed)).toEqual({ v1: 3 });
      for (const r of delayed) expect(r.ms).toBeGreaterThanOrEqual(380);
      const aborted = await call({ count: 3, metadata: { "x-fault": "abort" } });
      expect(aborted.map((r) => (r.ok ? "ok" : r.code))).toEqual([14, 14, 14]);
      expect(tally(await call({ count: 3 }))).toEqual({ v2: 3 });
    });
  });

  it("enforces a route timeout as max_stream_duration (DEADLINE_EXCEEDED); C-core 29 gets none", async () => {
    await plane.apply(
      virtualService(`    - timeout: 2s
      route: [{ destination: { host: ${FQDN}, subset: v1 } }]`),
    );
    await onBothClients(async (client, call) => {
      // Slow answers after 4 s.
      const [slow] = await call({ method: "/meshlet.test.Echo/Slow", timeoutMs: 20_000 });
      if (client.kind === "c-core") {
        // C-core 29 (python3-grpcio 1.51) ends RPCs ~1.7 s before a route timeout, so meshlet
        // leaves route timeouts out for it (ProxyCapabilities.routeTimeouts): the RPC completes.
        expect(slow).toMatchObject({ ok: true, backend: "v1" });
      } else {
        expect(slow).toMatchObject({ ok: false, code: 4 });
        expect(slow?.ms).toBeGreaterThanOrEqual(1900);
        expect(slow?.ms).toBeLessThan(3800);
      }
      expect(tally(await call({ count: 3 }))).toEqual({ v1: 3 });
    });
    const cCore = plane.status().proxies.find((p) => p.client === "grpc-c-core");
    expect(cCore?.warnings.map((w) => w.path)).toContain("spec.http[0].timeout");
  });

  it("hashes on a header to one endpoint (RING_HASH), and keeps C-core 29 on ROUND_ROBIN", async () => {
    await plane.remove(["VirtualService", "test", "echo"]);
    await plane.apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: test }
spec:
  host: ${FQDN}
  trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: x-user } } }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`);
    await onBothClients(async (client, call) => {
      if (client.kind === "c-core") {
        // C-core 28/29 crash in the RING_HASH picker (grpc/grpc#31766): the cluster stays ROUND_ROBIN.
        const counts = tally(await call({ count: 10, metadata: { "x-user": "alice" } }));
        expect(counts.v1).toBeGreaterThanOrEqual(3);
        expect(counts.v2).toBeGreaterThanOrEqual(3);
        return;
      }
      for (const user of ["alice", "bob", "carol", "dave", "erin", "frank"]) {
        const counts = tally(await call({ count: 6, metadata: { "x-user": user } }));
        // Every RPC of one user lands on the same endpoint.
        expect(Object.values(counts)).toEqual([6]);
      }
    });
    const cCore = plane.status().proxies.find((p) => p.client === "grpc-c-core");
    expect(cCore?.warnings.map((w) => w.path)).toContain("spec.trafficPolicy.loadBalancer");
    expect(nacks()).toEqual([]);
  });

  it("leaves out what the clients would NACK (LEAST_REQUEST, CORS), warns, and keeps serving", async () => {
    await plane.apply(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: test }
spec:
  host: ${FQDN}
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
${virtualService(`    - corsPolicy: { allowOrigins: [{ exact: "https://example.com" }] }
      route: [{ destination: { host: ${FQDN}, subset: v1 } }]`)}`);
    await onBothClients(async (_c, call) => expect(tally(await call({ count: 4 }))).toEqual({ v1: 4 }));
    expect(nacks()).toEqual([]);
    const warnings = plane.status().proxies.flatMap((p) => p.warnings.map((w) => `${p.client}: ${w.path}`));
    expect(warnings).toEqual(
      expect.arrayContaining([
        "grpc-js: spec.trafficPolicy.loadBalancer",
        "grpc-js: spec.http[0].corsPolicy",
        "grpc-c-core: spec.trafficPolicy.loadBalancer",
        "grpc-c-core: spec.http[0].corsPolicy",
      ]),
    );
  });

  it("fails RPCs to an undefined subset with UNAVAILABLE and reports the VirtualService", async () => {
    await plane.apply(virtualService(`    - route: [{ destination: { host: ${FQDN}, subset: v9 } }]`));
    await onBothClients(async (_c, call) => {
      const [r] = await call({ timeoutMs: 3000 });
      expect(r).toMatchObject({ ok: false, code: 14 });
    });
    expect(plane.status().findings.map((f) => [f.code, f.resource])).toContainEqual([
      "IST0101",
      "VirtualService/test/echo",
    ]);
    expect(nacks()).toEqual([]);
  });

  it("refuses a node without a usable identity with INVALID_ARGUMENT, through the xDS authorize hook", async () => {
    // An id whose IP part is no IP, and no INSTANCE_IPS that is: nothing identifies the workload.
    const bad = await startClient("grpc-js", {
      serverUri: `127.0.0.1:${plane.port}`,
      podName: "bad",
      namespace: "test",
      ip: "not-an-ip",
    });
    try {
      const [r] = await bad.call(TARGETS["grpc-js"], { timeoutMs: 1000 });
      expect(r?.ok).toBe(false);
      await eventually(() =>
        expect(plane.status().refused).toContainEqual(
          expect.objectContaining({
            nodeId: bad.nodeId,
            code: 3,
            reason: expect.stringContaining("no valid IP address"),
          }),
        ),
      );
      expect(plane.status().proxies.map((p) => p.id)).not.toContain(bad.nodeId);
    } finally {
      await bad.close();
    }
  });
});
