import { type AckEvent, type NackEvent, resources, Snapshot, TypeUrl, type XdsEvent } from "@meshlet/xds";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Backend, startBackends } from "./backends.js";
import type { RpcResult, XdsClientProcess } from "./client-process.js";
import { tally } from "./client-process.js";
import type { ClientTarget } from "./clients.js";
import { type ControlPlane, startControlPlane } from "./control-plane.js";
import { describeEvent } from "./event-recorder.js";
import { eventually } from "./eventually.js";

/** What differs between the real clients; everything else is one shared set of scenarios. */
export interface RealClientSuiteOptions {
  /** Suite title, e.g. "grpc-js-xds 1.14.1". */
  title: string;
  start(target: ClientTarget): Promise<XdsClientProcess>;
  /** The client's own NACK text for a cluster with `lb_policy: LEAST_REQUEST`. */
  leastRequestNack: RegExp;
  /** The gRPC status code the client puts in that NACK's error_detail. */
  leastRequestNackCode: number;
  /**
   * Whether closing the client's last channel sends SotW requests with empty resource_names
   * (unsubscribe) before the stream ends (grpc-js-xds does; C-core 1.51 just ends the stream).
   */
  unsubscribesOnClose: boolean;
  /**
   * Whether the client advertises the `xds.config.resource-in-sotw` client feature and so accepts
   * resources wrapped in `envoy.service.discovery.v3.Resource` (what a TTL needs) in SotW
   * responses. C-core 1.51 does; grpc-js-xds 1.14.1 does not, and NACKs them.
   */
  resourceInSotw: boolean;
}

const TARGET = "xds:///echo";
const ADS_TYPES = [
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
];

type Weighted = readonly { name: string; weight: number }[];

/**
 * The resources a proxyless client needs for `xds:///echo`: LDS → RDS → CDS → EDS, plus a second,
 * unrelated service ("other") the client never asks for, as in a real mesh where one snapshot
 * holds more than any one client uses. The server must send only what is subscribed.
 */
function meshSnapshot(options: {
  route: { cluster: string } | { weightedClusters: Weighted };
  clusters: Record<string, readonly Backend[]>;
  lbPolicy?: Partial<Record<string, "ROUND_ROBIN" | "LEAST_REQUEST">>;
  /** Gives the routed clusters a TTL (they travel wrapped in a `Resource`). */
  clusterTtlMs?: number;
}): Snapshot {
  const names = Object.keys(options.clusters);
  const route = (name: string, r: { cluster: string } | { weightedClusters: Weighted }) =>
    resources.routeConfiguration({
      name: `${name}-route`,
      virtualHosts: [{ name, domains: ["*"], routes: [{ prefix: "", ...r }] }],
    });
  return Snapshot.create({
    listeners: ["echo", "other"].map((name) =>
      resources.apiListener({ name, routeConfigName: `${name}-route` }),
    ),
    routes: [route("echo", options.route), route("other", { cluster: "other" })],
    clusters: [
      ...names.map((name) => {
        const cluster = resources.cluster({ name, lbPolicy: options.lbPolicy?.[name] ?? "ROUND_ROBIN" });
        return options.clusterTtlMs === undefined
          ? cluster
          : resources.withTtl(cluster, options.clusterTtlMs);
      }),
      resources.cluster({ name: "other" }),
    ],
    endpoints: [
      ...names.map((name) =>
        resources.loadAssignment({
          clusterName: name,
          endpoints: options.clusters[name]!.map((b) => ({ address: "127.0.0.1", port: b.port })),
        }),
      ),
      resources.loadAssignment({ clusterName: "other", endpoints: [{ address: "127.0.0.1", port: 9 }] }),
    ],
  });
}

function okBackends(results: RpcResult[]): string[] {
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0)
    throw new Error(`${failed.length}/${results.length} RPCs failed: ${JSON.stringify(failed[0])}`);
  return results.map((r) => (r as { backend: string }).backend);
}

function forNode(nodeId: string, typeUrl?: string) {
  return (e: XdsEvent) =>
    e.node?.id === nodeId && (typeUrl === undefined || ("typeUrl" in e && e.typeUrl === typeUrl));
}

/**
 * The integration scenarios every real xDS client must pass against `XdsServer`. Each test gets a
 * fresh control plane, backends and client process, and closes them even when it fails.
 */
export function describeRealClient(options: RealClientSuiteOptions): void {
  describe(options.title, () => {
    let plane: ControlPlane;
    /** Further control planes or clients a test starts; closed after it like the others. */
    let extras: { close(): Promise<void> }[] = [];
    let client: XdsClientProcess | undefined;
    let backends: Backend[] = [];
    let nodeSeq = 0;
    let nodeId: string;

    beforeEach(async () => {
      nodeId = `node-${process.pid}-${++nodeSeq}`;
      plane = await startControlPlane();
    });

    afterEach(async () => {
      await Promise.allSettled([
        client?.close(),
        ...extras.map((x) => x.close()),
        ...backends.map((b) => b.close()),
      ]);
      if (plane) await plane.close();
      client = undefined;
      extras = [];
      backends = [];
    });

    async function startClient(): Promise<XdsClientProcess> {
      client = await options.start({ serverPort: plane.port, nodeId });
      return client;
    }

    /** RPCs until every one of `count` succeeds on the expected backends only. */
    async function untilAllReach(ids: readonly string[], count = 20): Promise<Record<string, number>> {
      return eventually(async () => {
        const seen = okBackends(await client!.call(TARGET, count, { timeoutMs: 5000 }));
        const counts = tally(seen.map((backend) => ({ ok: true, backend })));
        expect(Object.keys(counts).sort()).toEqual([...ids].sort());
        return counts;
      });
    }

    it("routes an RPC through LDS → RDS → CDS → EDS to the backend", async () => {
      backends = await startBackends("b1");
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: backends } }));
      await startClient();

      await untilAllReach(["b1"], 5);

      // The client accepted every type, each on the version the cache holds, and rejected nothing.
      const snapshot = plane.cache.getSnapshot(nodeId)!;
      for (const typeUrl of ADS_TYPES) {
        const ack = await plane.recorder.waitFor<AckEvent>(
          (e) => e.type === "ack" && forNode(nodeId, typeUrl)(e),
          {
            what: `ACK of ${typeUrl}`,
          },
        );
        expect(ack.version).toBe(snapshot.version(typeUrl));
      }
      expect(plane.recorder.since(0, (e) => e.type === "nack" && forNode(nodeId)(e))).toEqual([]);
      // Only the subscribed names travel, never the unrelated "other" service.
      const sent = plane.recorder
        .since(0, (e) => e.type === "response" && forNode(nodeId)(e))
        .flatMap((e) => (e.type === "response" ? e.resources : []));
      expect([...new Set(sent)].sort()).toEqual(["c1", "echo", "echo-route"]);
      expect(backends[0]!.served()).toBeGreaterThanOrEqual(5);
    });

    it("serves each node its own snapshot", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      const otherNode = `${nodeId}-other`;
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1] } }));
      plane.cache.setSnapshot(otherNode, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b2] } }));
      await startClient();
      const other = await options.start({ serverPort: plane.port, nodeId: otherNode });
      extras.push(other);

      await untilAllReach(["b1"]);
      await eventually(async () => {
        expect(tally(await other.call(TARGET, 20, { timeoutMs: 5000 }))).toEqual({ b2: 20 });
      });
    });

    it("moves traffic between two backends when a snapshot changes the cluster weights", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      const weighted = (w1: number, w2: number) =>
        meshSnapshot({
          route: {
            weightedClusters: [
              { name: "c1", weight: w1 },
              { name: "c2", weight: w2 },
            ],
          },
          clusters: { c1: [b1], c2: [b2] },
        });
      plane.cache.setSnapshot(nodeId, weighted(100, 0));
      await startClient();
      await untilAllReach(["b1"]);

      plane.cache.setSnapshot(nodeId, weighted(0, 100));
      await untilAllReach(["b2"]);

      // 50/50: with 60 RPCs each side gets at least 10 unless something is badly wrong
      // (the binomial tail below 10 of 60 at p = 0.5 is about 1e-7).
      plane.cache.setSnapshot(nodeId, weighted(50, 50));
      await eventually(async () => {
        const counts = tally(await client!.call(TARGET, 60, { timeoutMs: 5000 }));
        expect(counts.error ?? 0).toBe(0);
        expect(counts.b1 ?? 0).toBeGreaterThanOrEqual(10);
        expect(counts.b2 ?? 0).toBeGreaterThanOrEqual(10);
      });
    });

    it("reports the client's NACK of a LEAST_REQUEST cluster and re-sends nothing until the snapshot changes", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      const good = meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1] } });
      plane.cache.setSnapshot(nodeId, good);
      await startClient();
      await untilAllReach(["b1"], 5);
      await plane.recorder.waitFor((e) => e.type === "ack" && forNode(nodeId, TypeUrl.Cluster)(e), {
        what: "CDS ACK",
      });

      const beforeBad = plane.recorder.mark();
      const bad = meshSnapshot({
        route: { cluster: "c1" },
        clusters: { c1: [b1] },
        lbPolicy: { c1: "LEAST_REQUEST" },
      });
      plane.cache.setSnapshot(nodeId, bad);
      const nack = await plane.recorder.waitFor<NackEvent>(
        (e) => e.type === "nack" && forNode(nodeId, TypeUrl.Cluster)(e),
        {
          from: beforeBad,
          what: "CDS NACK",
        },
      );
      // The event carries the client's own words, and the version it still runs (the good one).
      expect(nack.errorDetail.message).toMatch(options.leastRequestNack);
      expect(nack.errorDetail.code).toBe(options.leastRequestNackCode);
      expect(nack.version).toBe(good.version(TypeUrl.Cluster));
      expect(nack.rejectedVersion).toBe(bad.version(TypeUrl.Cluster));
      // Only CDS changed: once the client answered (a NACK answers too), nothing counts against
      // the server's write budget any more.
      expect(plane.xds.writes.bytesInFlight).toBe(0);
      // A client that rejects an update keeps serving with the last good config.
      await untilAllReach(["b1"], 5);

      // Barrier: change only EDS and wait for its ACK. Any CDS re-send provoked by the NACK would
      // have been written to the stream before this EDS response, so it would be counted below.
      const afterNack = plane.recorder.mark();
      const moved = meshSnapshot({
        route: { cluster: "c1" },
        clusters: { c1: [b2] },
        lbPolicy: { c1: "LEAST_REQUEST" },
      });
      expect(moved.version(TypeUrl.Cluster)).toBe(bad.version(TypeUrl.Cluster));
      plane.cache.setSnapshot(nodeId, moved);
      await plane.recorder.waitFor(
        (e) =>
          e.type === "ack" &&
          forNode(nodeId, TypeUrl.ClusterLoadAssignment)(e) &&
          e.version === moved.version(TypeUrl.ClusterLoadAssignment),
        { from: afterNack, what: "ACK of the new EDS version" },
      );
      await untilAllReach(["b2"], 5);
      const cdsAfterNack = plane.recorder.since(
        beforeBad,
        (e) => (e.type === "response" || e.type === "nack") && forNode(nodeId, TypeUrl.Cluster)(e),
      );
      const count = (type: string) => cdsAfterNack.filter((e) => e.type === type).length;
      expect({ responses: count("response"), nacks: count("nack") }).toEqual({ responses: 1, nacks: 1 });

      // The next snapshot with a valid cluster is sent and accepted.
      const fixed = plane.recorder.mark();
      const repaired = meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b2] } });
      plane.cache.setSnapshot(nodeId, repaired);
      await plane.recorder.waitFor(
        (e) =>
          e.type === "ack" &&
          forNode(nodeId, TypeUrl.Cluster)(e) &&
          e.version === repaired.version(TypeUrl.Cluster),
        { from: fixed, what: "ACK of the repaired cluster" },
      );
    });

    it("re-routes to a new cluster and drops the old one in one snapshot without failing an RPC", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1] } }));
      await startClient();
      await untilAllReach(["b1"], 5);

      // RPCs are in flight (b1 is serving this batch) when c1 disappears and the route moves to c2.
      const servedBefore = b1.served();
      const inFlight = client!.call(TARGET, 300, { timeoutMs: 5000 });
      await eventually(() => expect(b1.served()).toBeGreaterThan(servedBefore), { intervalMs: 5 });
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c2" }, clusters: { c2: [b2] } }));
      const results = [...(await inFlight)];
      // Then keep calling until a whole batch lands on b2; no RPC of the switch-over may fail.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const batch = await client!.call(TARGET, 20, { timeoutMs: 5000 });
        results.push(...batch);
        if (batch.every((r) => r.ok && r.backend === "b2")) break;
        if (Date.now() > deadline)
          throw new Error(`traffic never settled on b2: ${JSON.stringify(tally(batch))}`);
      }
      expect(results.filter((r) => !r.ok)).toEqual([]);
    });

    it("ends on the last snapshot of a burst, every type ACKed at its final version", async () => {
      backends = await startBackends("b1", "b2", "b3");
      const [b1, b2, b3] = backends as [Backend, Backend, Backend];
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1] } }));
      await startClient();
      await untilAllReach(["b1"], 5);

      // 30 snapshots, each changing routes, clusters and endpoints, the next one set as soon as the
      // server has written a response for the previous one (not waiting for the client's ACK): the
      // server must drop ACKs of superseded nonces and converge on what the cache holds last.
      let last = plane.cache.getSnapshot(nodeId)!;
      for (let i = 0; i < 30; i++) {
        const cluster = `c${i % 3}`;
        last = meshSnapshot({
          route: { cluster },
          clusters: { [cluster]: [[b1, b2, b3][i % 3]!, [b1, b2, b3][(i + 1) % 3]!] },
        });
        const mark = plane.recorder.mark();
        plane.cache.setSnapshot(nodeId, last);
        await plane.recorder.waitFor((e) => e.type === "response" && forNode(nodeId)(e), {
          from: mark,
          what: `a response to snapshot ${i}`,
        });
      }
      last = meshSnapshot({ route: { cluster: "final" }, clusters: { final: [b2] } });
      plane.cache.setSnapshot(nodeId, last);

      await untilAllReach(["b2"]);
      for (const typeUrl of ADS_TYPES) {
        await plane.recorder.waitFor(
          (e) => e.type === "ack" && forNode(nodeId, typeUrl)(e) && e.version === last.version(typeUrl),
          { what: `ACK of the final ${typeUrl}` },
        );
      }
      expect(
        plane.recorder.since(0, (e) => e.type === "nack" && forNode(nodeId)(e)).map(describeEvent),
      ).toEqual([]);
      // The client's answers released every response of the burst from the write budget, those
      // of superseded nonces included.
      expect(plane.xds.writes.bytesInFlight).toBe(0);
    });

    if (options.resourceInSotw) {
      it("accepts a cluster with a TTL, wrapped in a Resource in the SotW response", async () => {
        backends = await startBackends("b1");
        const snapshot = meshSnapshot({
          route: { cluster: "c1" },
          clusters: { c1: backends },
          clusterTtlMs: 600_000,
        });
        plane.cache.setSnapshot(nodeId, snapshot);
        await startClient();
        await untilAllReach(["b1"], 5);
        const ack = await plane.recorder.waitFor<AckEvent>(
          (e) => e.type === "ack" && forNode(nodeId, TypeUrl.Cluster)(e),
          { what: "CDS ACK" },
        );
        expect(ack.version).toBe(snapshot.version(TypeUrl.Cluster));
      });
    }

    it("stops sending traffic to an endpoint removed from the load assignment", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1, b2] } }));
      await startClient();
      await untilAllReach(["b1", "b2"]);

      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b2] } }));
      await untilAllReach(["b2"]);
      const servedByRemoved = b1.served();
      okBackends(await client!.call(TARGET, 20, { timeoutMs: 5000 }));
      expect(b1.served()).toBe(servedByRemoved);
    });

    it("reconnects after the control plane restarts on the same port and takes the new config", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1] } }));
      await startClient();
      await untilAllReach(["b1"], 5);
      const firstStream = await plane.recorder.waitFor((e) => e.type === "request" && forNode(nodeId)(e), {
        what: "the client's stream",
      });

      const down = plane.recorder.mark();
      await plane.stop();
      await plane.recorder.waitFor((e) => e.type === "stream-close" && e.streamId === firstStream.streamId, {
        from: down,
        what: "the stream to close",
      });
      // Without a control plane the client keeps its last config: RPCs still work.
      okBackends(await client!.call(TARGET, 5, { timeoutMs: 5000 }));

      plane.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b2] } }));
      await plane.restart();
      await plane.recorder.waitFor(
        (e) => e.type === "request" && forNode(nodeId)(e) && e.streamId !== firstStream.streamId,
        {
          from: down,
          what: "a request on a new stream",
        },
      );
      await untilAllReach(["b2"]);
    });

    it("fails over to another replica with the same content and is re-sent each type once, at the same version", async () => {
      backends = await startBackends("b1", "b2");
      const [b1, b2] = backends as [Backend, Backend];
      const same = () => meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b1] } });
      plane.cache.setSnapshot(nodeId, same());
      await startClient();
      await untilAllReach(["b1"], 5);

      // Replica 1 goes away; replica 2, with its own cache holding the same content, takes its port.
      await plane.stop();
      const replica = await startControlPlane({ port: plane.port });
      extras.push(replica);
      replica.cache.setSnapshot(nodeId, same());
      // The client re-subscribes every type, saying which version it has (content hashes, equal on
      // both replicas). gRPC names every resource it wants, and a type's version cannot prove
      // which names a client got (it may have asked for one more just before its stream broke:
      // envoyproxy/envoy api/xds_protocol.rst, "ACK/NACK and resource type instance version"), so
      // each type is sent once more, at the version the client already runs, and nothing else.
      const snapshot = replica.cache.getSnapshot(nodeId)!;
      for (const typeUrl of ADS_TYPES) {
        const request = await replica.recorder.waitFor(
          (e) => e.type === "request" && forNode(nodeId, typeUrl)(e),
          { what: `re-subscription to ${typeUrl}` },
        );
        expect(request.type === "request" && request.versionInfo).toBe(snapshot.version(typeUrl));
        await replica.recorder.waitFor((e) => e.type === "ack" && forNode(nodeId, typeUrl)(e), {
          what: `ACK of ${typeUrl} on the replica`,
        });
      }
      await untilAllReach(["b1"], 5);
      const resent = replica.recorder.since(0, (e) => e.type === "response");
      expect(resent.map((e) => e.type === "response" && [e.typeUrl, e.version]).sort()).toEqual(
        ADS_TYPES.map((t) => [t, snapshot.version(t)]).sort(),
      );

      // The new stream is live: a change on replica 2 reaches the client.
      replica.cache.setSnapshot(nodeId, meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: [b2] } }));
      await untilAllReach(["b2"]);
    });

    it(
      options.unsubscribesOnClose
        ? "unsubscribes every type with empty resource_names when the client closes, and gets no response"
        : "ends its stream when the client closes, and gets no response",
      async () => {
        backends = await startBackends("b1");
        plane.cache.setSnapshot(
          nodeId,
          meshSnapshot({ route: { cluster: "c1" }, clusters: { c1: backends } }),
        );
        const running = await startClient();
        await untilAllReach(["b1"], 3);
        for (const typeUrl of ADS_TYPES) {
          await plane.recorder.waitFor((e) => e.type === "ack" && forNode(nodeId, typeUrl)(e), {
            what: `ACK of ${typeUrl}`,
          });
        }

        const closing = plane.recorder.mark();
        await running.close();
        await plane.recorder.waitFor((e) => e.type === "stream-close" && forNode(nodeId)(e), {
          from: closing,
          what: "stream-close",
        });
        const after = plane.recorder.since(closing, forNode(nodeId));
        const unsubscribed = after
          .filter((e) => e.type === "request" && e.resourceNames.length === 0)
          .map((e) => (e as { typeUrl: string }).typeUrl);
        if (options.unsubscribesOnClose) expect(unsubscribed.sort()).toEqual([...ADS_TYPES].sort());
        else expect(unsubscribed).toEqual([]);
        // An empty resource_names after a subscription is an unsubscribe, never a wildcard.
        expect(after.filter((e) => e.type === "response").map(describeEvent)).toEqual([]);
      },
    );
  });
}
