// xDS protocol conformance: one named test per rule of Envoy's "xDS REST and gRPC protocol"
// document that @meshlet/xds implements, driven by the exported testing client against a real
// XdsServer on loopback.
import { create } from "@bufbuild/protobuf";
import { ClusterSchema } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import { InconsistentSnapshotError, resources, Snapshot, SnapshotCache, TypeUrl } from "@meshlet/xds";
import { afterEach, describe, expect, it } from "vitest";
import { type Fixture, meshSnapshot, settle, startFixture } from "./support/fixture.js";

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

async function setup(
  snapshot = meshSnapshot(),
  options: { ads?: boolean; heartbeatIntervalMs?: number } = {},
) {
  const cache = new SnapshotCache({ ads: options.ads ?? false });
  cache.setSnapshot("node-a", snapshot);
  fx = await startFixture(
    cache,
    options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {},
  );
  return { cache, fx };
}

describe("xDS protocol conformance (SotW and Delta)", () => {
  it("rule 1: puts a nonce on every response, unique within the stream", async () => {
    const { fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    c.request({ typeUrl: TypeUrl.Listener });
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1", "c2"] });
    const responses = [await c.next(), await c.next(), await c.next()];
    const nonces = responses.map((r) => r.nonce);
    expect(nonces.every((n) => n !== "")).toBe(true);
    expect(new Set(nonces).size).toBe(3);
  });

  it("rule 2: an ACK echoes version and nonce; a NACK (error_detail) keeps the last good version", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    const first = await c.next(TypeUrl.Cluster);
    c.ack(first);
    const ack = await fx.waitFor("ack", (e) => e.typeUrl === TypeUrl.Cluster);
    expect(ack.version).toBe(first.versionInfo);
    expect(ack.nonce).toBe(first.nonce);

    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c2"] }));
    const second = await c.next(TypeUrl.Cluster);
    c.nack(second, "cluster c2: rejected by test", first.versionInfo);
    const nack = await fx.waitFor("nack");
    expect(nack.errorDetail.message).toBe("cluster c2: rejected by test");
    expect(nack.version).toBe(first.versionInfo);
    expect(nack.rejectedVersion).toBe(second.versionInfo);
    expect(cache.status("node-a")?.types[TypeUrl.Cluster]?.ackedVersion).toBe(first.versionInfo);
  });

  it("rule 3: never re-sends unchanged resources and never loops on a NACK; NACKs show in events$ and status()", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    const r1 = await c.next(TypeUrl.Cluster);
    c.ack(r1);
    // The same content again: same version, nothing sent.
    cache.setSnapshot("node-a", meshSnapshot());
    await fx.waitFor("ack");
    await settle();
    expect(fx.seen("response", (e) => e.typeUrl === TypeUrl.Cluster)).toHaveLength(1);

    const bad = Snapshot.create({ clusters: [resources.cluster({ name: "c1", lbPolicy: "LEAST_REQUEST" })] });
    cache.setSnapshot("node-a", bad);
    const r2 = await c.next(TypeUrl.Cluster);
    c.nack(r2, "LEAST_REQUEST is not supported", r1.versionInfo);
    await fx.waitFor("nack");
    await settle();
    expect(fx.seen("response", (e) => e.typeUrl === TypeUrl.Cluster)).toHaveLength(2);
    expect(cache.status("node-a")?.types[TypeUrl.Cluster]?.nack?.message).toBe(
      "LEAST_REQUEST is not supported",
    );

    // Only a new snapshot pushes again.
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1"] }));
    const r3 = await c.next(TypeUrl.Cluster);
    expect(r3.versionInfo).toBe(r1.versionInfo);
  });

  it("rule 2: reports one ACK or NACK per response, even when later requests repeat its nonce", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1"] });
    const r1 = await c.next();
    c.ack(r1);
    // A subscription change answers the same response again (same version and nonce).
    c.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: ["c1", "c2"],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    const r2 = await c.next();
    expect(r2.resources.map((r) => r.name)).toEqual(["c2"]);
    c.nack(r2, "bad endpoint", r1.versionInfo);
    // gRPC clients unsubscribe at shutdown with an empty list that repeats their last NACK.
    c.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: [],
      versionInfo: r1.versionInfo,
      responseNonce: r2.nonce,
      errorDetail: { message: "bad endpoint" },
    });
    await fx.waitFor("request", (e) => e.resourceNames.length === 0);
    await settle();
    expect(fx.seen("ack").map((e) => e.nonce)).toEqual([r1.nonce]);
    expect(fx.seen("nack").map((e) => e.nonce)).toEqual([r2.nonce]);
    expect(cache.status("node-a")?.types[TypeUrl.ClusterLoadAssignment]?.nack?.message).toBe("bad endpoint");
  });

  it("rule 4 (SotW): ignores a request carrying a stale nonce", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1"] });
    const r1 = await c.next();
    cache.setSnapshot("node-a", meshSnapshot({ port: 20000 }));
    const r2 = await c.next();
    // An answer to r1 arriving after r2 went out: stale, so its new subscription is ignored.
    c.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: ["c1", "c2"],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    const stale = await fx.waitFor("request", (e) => e.responseNonce === r1.nonce);
    expect(stale.stale).toBe(true);
    await settle();
    expect(fx.seen("response")).toHaveLength(2);
    expect(fx.seen("ack")).toHaveLength(0);
    c.ack(r2);
    await fx.waitFor("ack");
  });

  it("rule 4 (Delta): applies subscription changes even with a stale nonce", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client({ protocol: "delta" });
    c.requestDelta({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribe: ["c1"] });
    const r1 = await c.next();
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1", "c2"], port: 20000 }));
    await c.next();
    c.requestDelta({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribe: ["c2"], responseNonce: r1.nonce });
    const r3 = await c.next();
    expect(r3.resources.map((r) => r.name)).toEqual(["c2"]);
    expect(fx.seen("request", (e) => e.responseNonce === r1.nonce)[0]?.stale).toBe(true);
  });

  it("rule 5: keeps the node from the first request of a stream", async () => {
    const { cache, fx } = await setup();
    cache.setSnapshot("node-b", meshSnapshot({ clusters: ["other"] }));
    const c = fx.client({ node: { id: "node-a" } });
    c.request({ typeUrl: TypeUrl.Cluster });
    const r1 = await c.next();
    expect(r1.resources.map((r) => r.name)).toEqual(["c1"]);
    // Later requests carry no node (the client sends it once); the stream still serves node-a.
    c.request({ typeUrl: TypeUrl.Listener });
    await c.next();
    expect(fx.seen("response").every((e) => e.node?.id === "node-a")).toBe(true);
  });

  it("rule 6: versions are per type", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    c.request({ typeUrl: TypeUrl.Listener });
    const cds = await c.next(TypeUrl.Cluster);
    const lds = await c.next(TypeUrl.Listener);
    c.ack(cds);
    c.ack(lds);
    expect(cds.versionInfo).not.toBe(lds.versionInfo);
    // Changing only endpoints changes neither CDS nor LDS versions: nothing is pushed for them.
    cache.setSnapshot("node-a", meshSnapshot({ port: 30000 }));
    expect(cache.getSnapshot("node-a")?.version(TypeUrl.Cluster)).toBe(cds.versionInfo);
    expect(cache.getSnapshot("node-a")?.version(TypeUrl.Listener)).toBe(lds.versionInfo);
    await fx.waitFor("ack", (e) => e.typeUrl === TypeUrl.Listener);
    await settle();
    expect(fx.seen("response")).toHaveLength(2);
  });

  it("rule 7: sends newly requested names even when the version did not change", async () => {
    const { fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1"] });
    const r1 = await c.next();
    expect(r1.resources.map((r) => r.name)).toEqual(["c1"]);
    c.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: ["c1", "c2"],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    const r2 = await c.next();
    expect(r2.versionInfo).toBe(r1.versionInfo);
    // c1 is unchanged, so only c2 is sent (EDS is not a full-state type).
    expect(r2.resources.map((r) => r.name)).toEqual(["c2"]);
  });

  it("rule 8: an empty name list is a wildcard only on the first request; later it unsubscribes", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const wild = fx.client();
    wild.request({ typeUrl: TypeUrl.Cluster, resourceNames: [] });
    expect((await wild.next()).resources.map((r) => r.name).sort()).toEqual(["c1", "c2"]);

    const named = fx.client({ node: { id: "node-a" } });
    named.request({ typeUrl: TypeUrl.Cluster, resourceNames: ["c1"] });
    const r1 = await named.next();
    expect(r1.resources.map((r) => r.name)).toEqual(["c1"]);
    // gRPC clients unsubscribe with an empty list when they shut down: no wildcard, no push.
    named.request({
      typeUrl: TypeUrl.Cluster,
      resourceNames: [],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    await fx.waitFor("ack", (e) => e.nonce === r1.nonce);
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1", "c2", "c3"] }));
    const wild2 = await wild.next();
    expect(wild2.resources.map((r) => r.name).sort()).toEqual(["c1", "c2", "c3"]);
    await settle();
    expect(named.pending()).toHaveLength(0);
  });

  it("rule 8: after '*', an empty list unsubscribes (the legacy wildcard is only a stream's first, empty, lists)", async () => {
    // go-control-plane pkg/server/stream/v3/subscription.go (SetResourceSubscription): once a
    // request names anything, "*" included, the legacy wildcard no longer applies, and an empty
    // list means the client wants nothing (xds_protocol.rst, "How the client specifies what
    // resources to return": an empty list means "no longer interested").
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster, resourceNames: ["*"] });
    const r1 = await c.next();
    expect(r1.resources.map((r) => r.name).sort()).toEqual(["c1", "c2"]);
    c.request({
      typeUrl: TypeUrl.Cluster,
      resourceNames: [],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    await fx.waitFor("ack", (e) => e.nonce === r1.nonce);
    const witness = fx.client();
    witness.request({ typeUrl: TypeUrl.Cluster });
    await witness.next();
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1", "c2", "c3"] }));
    await witness.next();
    await settle();
    expect(c.pending()).toHaveLength(0);
  });

  it("rule 8: '*' plus names subscribes to everything, and delta '*' is a wildcard", async () => {
    const { fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["*", "c1"] });
    expect((await c.next()).resources.map((r) => r.name).sort()).toEqual(["c1", "c2"]);
    const d = fx.client({ protocol: "delta" });
    d.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["*"] });
    expect((await d.next()).resources.map((r) => r.name).sort()).toEqual(["c1", "c2"]);
  });

  it("rule 9: SotW LDS and CDS carry full state; other types only what was asked", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1", "c2"] });
    const cds1 = await c.next(TypeUrl.Cluster);
    const eds1 = await c.next(TypeUrl.ClusterLoadAssignment);
    c.ack(cds1);
    c.ack(eds1);
    await fx.waitFor("ack", (e) => e.nonce === eds1.nonce);
    // Change c2 only: CDS resends both clusters (full state); EDS sends only c2's endpoints.
    const next = Snapshot.create({
      clusters: [
        resources.cluster({ name: "c1" }),
        resources.cluster({ name: "c2", connectTimeoutMs: 1234 }),
      ],
      endpoints: [
        resources.loadAssignment({ clusterName: "c1", endpoints: [{ address: "127.0.0.1", port: 10000 }] }),
        resources.loadAssignment({ clusterName: "c2", endpoints: [{ address: "127.0.0.1", port: 9999 }] }),
      ],
    });
    cache.setSnapshot("node-a", next);
    const cds2 = await c.next(TypeUrl.Cluster);
    const eds2 = await c.next(TypeUrl.ClusterLoadAssignment);
    expect(cds2.resources.map((r) => r.name).sort()).toEqual(["c1", "c2"]);
    expect(eds2.resources.map((r) => r.name)).toEqual(["c2"]);
  });

  it("rule 10: never puts a resource twice in one response", async () => {
    const { fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1", "c1", "c2", "*"] });
    const r = await c.next();
    expect(r.resources.map((x) => x.name).sort()).toEqual(["c1", "c2"]);
    expect(() =>
      Snapshot.create({ clusters: [resources.cluster({ name: "dup" }), resources.cluster({ name: "dup" })] }),
    ).toThrow(/named "dup"/);
  });

  it("rule 11: sends names requested before they exist once they are created", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["later"] });
    await fx.waitFor("request");
    await settle();
    expect(c.pending()).toHaveLength(0);
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1", "later"] }));
    const r = await c.next();
    expect(r.resources.map((x) => x.name)).toEqual(["later"]);
  });

  it("rule 12: delta sends removed_resources, re-sends on explicit re-subscribe, and skips what initial_resource_versions already has", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const d = fx.client({ protocol: "delta" });
    d.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["c1", "c2"] });
    const r1 = await d.next();
    expect(r1.resources.map((r) => r.name).sort()).toEqual(["c1", "c2"]);
    d.ack(r1);
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1"] }));
    const r2 = await d.next();
    expect(r2.removed).toEqual(["c2"]);
    expect(r2.resources).toHaveLength(0);
    d.ack(r2);
    // Re-subscribing to c1 (which the client has) makes the server send it again.
    d.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["c1"] });
    const r3 = await d.next();
    expect(r3.resources.map((r) => r.name)).toEqual(["c1"]);

    // A reconnect that lists what it has gets only what changed since.
    const versions = Object.fromEntries(r3.resources.map((r) => [r.name, r.version ?? ""]));
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1", "c3"] }));
    const again = fx.client({ protocol: "delta" });
    again.requestDelta({
      typeUrl: TypeUrl.Cluster,
      subscribe: ["c1", "c3"],
      initialResourceVersions: versions,
    });
    const r4 = await again.next();
    expect(r4.resources.map((r) => r.name)).toEqual(["c3"]);
  });

  it("rule 13: ADS pushes in make-before-break order: CDS, EDS, LDS, RDS, removals of clusters last", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["old"] }));
    const c = fx.client({ autoAck: true });
    c.request({ typeUrl: TypeUrl.Listener });
    c.request({ typeUrl: TypeUrl.RouteConfiguration, resourceNames: ["echo-route"] });
    c.request({ typeUrl: TypeUrl.Cluster });
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["old"] });
    for (let i = 0; i < 4; i++) await c.next();
    const before = fx.seen("response").length;
    // Move the route from "old" to "new" and drop "old", in one snapshot.
    cache.setSnapshot(
      "node-a",
      Snapshot.create({
        listeners: [resources.apiListener({ name: "echo", routeConfigName: "echo-route" })],
        routes: [
          resources.routeConfiguration({
            name: "echo-route",
            virtualHosts: [{ name: "echo", domains: ["*"], routes: [{ prefix: "", cluster: "new" }] }],
          }),
        ],
        clusters: [resources.cluster({ name: "new" })],
        endpoints: [
          resources.loadAssignment({ clusterName: "new", endpoints: [{ address: "127.0.0.1", port: 1 }] }),
        ],
      }),
    );
    await fx.waitFor(
      "response",
      (e) => e.typeUrl === TypeUrl.Cluster && e.resources.length === 1 && e.resources[0] === "new",
    );
    const pushed = fx.seen("response").slice(before);
    const order = pushed.map((e) => `${e.typeUrl.split(".").pop()}:${e.resources.join("+")}`);
    // Clusters: first "new" is added while "old" is kept; the route moves; then "old" goes.
    expect(order).toEqual(["Cluster:new+old", "RouteConfiguration:echo-route", "Cluster:new"]);
  });

  it("rule 13 (Delta): cluster removals go out after the routes that stop using them", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["old"] }));
    const d = fx.client({ protocol: "delta", autoAck: true });
    d.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["*"] });
    d.requestDelta({ typeUrl: TypeUrl.RouteConfiguration, subscribe: ["echo-route"] });
    await d.next();
    await d.next();
    const before = fx.seen("response").length;
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["new"] }));
    await fx.waitFor("response", (e) => e.removed.includes("old"));
    const order = fx
      .seen("response")
      .slice(before)
      .map((e) => `${e.typeUrl.split(".").pop()}:+${e.resources.join("+")}-${e.removed.join("-")}`);
    expect(order).toEqual(["Cluster:+new-", "RouteConfiguration:+echo-route-", "Cluster:+-old"]);
  });

  it("rule 14: TTL resources carry their TTL and are refreshed by heartbeats without a body (SotW only for clients that accept the Resource wrapper)", async () => {
    const snapshot = Snapshot.create({
      clusters: [
        resources.withTtl(resources.cluster({ name: "ttl" }), 30_000),
        resources.cluster({ name: "plain" }),
      ],
    });
    const { fx } = await setup(snapshot, { heartbeatIntervalMs: 50 });
    // SotW TTLs need the client to accept resources wrapped in Resource, which it advertises.
    const c = fx.client({ node: { id: "node-a", clientFeatures: ["xds.config.resource-in-sotw"] } });
    c.request({ typeUrl: TypeUrl.Cluster });
    const first = await c.next();
    const ttl = first.resources.find((r) => r.name === "ttl");
    expect(ttl?.ttlMs).toBe(30_000);
    expect(ttl?.heartbeat).toBe(false);
    c.ack(first);
    const beat = await c.next();
    const refreshed = beat.resources.find((r) => r.name === "ttl");
    expect(refreshed?.heartbeat).toBe(true);
    expect(refreshed?.message).toBeUndefined();
    // CDS is full state: the heartbeat keeps the other cluster (with its body) in the response.
    expect(beat.resources.find((r) => r.name === "plain")?.message).toBeDefined();

    const d = fx.client({ protocol: "delta" });
    d.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["ttl"] });
    const dr = await d.next();
    expect(dr.resources[0]?.ttlMs).toBe(30_000);
    // Heartbeats refresh what the client took: they wait for its answer.
    d.ack(dr);
    const dbeat = await d.next();
    expect(dbeat.resources[0]?.heartbeat).toBe(true);

    // A SotW client without the feature (grpc-js NACKs the wrapper) gets the plain resource.
    const plain = fx.client({ node: { id: "node-a" } });
    plain.request({ typeUrl: TypeUrl.Cluster });
    const pr = await plain.next();
    expect(pr.resources.find((r) => r.name === "ttl")?.ttlMs).toBeUndefined();
    expect(pr.resources.find((r) => r.name === "ttl")?.message).toBeDefined();
    expect(pr.raw.resources.every((a) => "typeUrl" in a && a.typeUrl === TypeUrl.Cluster)).toBe(true);
    // … and no heartbeats: the next heartbeat round of the other streams sends it nothing.
    const beatsBefore = fx.seen("response", (e) => e.heartbeat).length;
    await fx.waitFor(
      "response",
      (e) => e.heartbeat && fx.seen("response", (x) => x.heartbeat).length > beatsBefore + 2,
    );
    expect(plain.pending()).toHaveLength(0);
  });

  it("rule 15: Snapshot.consistent() rejects dangling EDS and RDS references, naming each", () => {
    const snapshot = Snapshot.create({
      listeners: [resources.apiListener({ name: "l1", routeConfigName: "missing-route" })],
      clusters: [
        resources.cluster({ name: "c1" }),
        resources.cluster({ name: "c2", edsServiceName: "c2-eds" }),
      ],
      endpoints: [resources.loadAssignment({ clusterName: "c1", endpoints: [] })],
    });
    let error: unknown;
    try {
      snapshot.consistent();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InconsistentSnapshotError);
    const dangling = (error as InconsistentSnapshotError).dangling.map((d) => `${d.from}->${d.to}`);
    expect(dangling.sort()).toEqual(["c2->c2-eds", "l1->missing-route"]);
    expect((error as Error).message).toContain('Listener "l1" → RouteConfiguration "missing-route"');
    expect(() => meshSnapshot().consistent()).not.toThrow();
  });
});

describe("XdsServer robustness", () => {
  it("fails an ADS stream whose request has no type_url with INVALID_ARGUMENT and keeps serving others", async () => {
    const { fx } = await setup();
    const bad = fx.client();
    bad.request({ typeUrl: "" });
    await expect(bad.next()).rejects.toMatchObject({ code: 3 });
    const good = fx.client();
    good.request({ typeUrl: TypeUrl.Cluster });
    expect((await good.next()).resources).toHaveLength(1);
  });

  it("serves per-type SotW and Delta services (CDS) besides ADS", async () => {
    const { fx } = await setup();
    const sotw = fx.client({ service: "cds" });
    sotw.request({ typeUrl: "" });
    expect((await sotw.next()).resources.map((r) => r.name)).toEqual(["c1"]);
    const delta = fx.client({ service: "cds", protocol: "delta" });
    delta.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: [] });
    expect((await delta.next()).resources.map((r) => r.name)).toEqual(["c1"]);
    const wrong = fx.client({ service: "cds" });
    wrong.request({ typeUrl: TypeUrl.Listener });
    await expect(wrong.next()).rejects.toMatchObject({ code: 3 });
  });

  it("serves a client whose first request carries no node as the empty node", async () => {
    const { cache, fx } = await setup();
    cache.setSnapshot("", meshSnapshot({ clusters: ["anonymous"] }));
    const c = fx.client({ node: null });
    c.request({ typeUrl: TypeUrl.Cluster });
    expect((await c.next()).resources.map((r) => r.name)).toEqual(["anonymous"]);
  });

  it("assembles a push once: streams in the same state get the same response, nonce included", async () => {
    const { cache, fx } = await setup(meshSnapshot({ clusters: ["c1", "c2"] }));
    const a = fx.client({ autoAck: true });
    const b = fx.client({ autoAck: true });
    a.request({ typeUrl: TypeUrl.Cluster });
    b.request({ typeUrl: TypeUrl.Cluster });
    await a.next();
    await b.next();
    cache.setSnapshot("node-a", meshSnapshot({ clusters: ["c1", "c3"] }));
    const [ra, rb] = [await a.next(), await b.next()];
    expect(ra.nonce).toBe(rb.nonce);
    expect(ra.resources.map((r) => r.name).sort()).toEqual(["c1", "c3"]);
    // Still unique within each stream.
    expect(
      fx.seen("response", (e) => e.streamId === fx.seen("response")[0]!.streamId).map((e) => e.nonce),
    ).toHaveLength(2);
    expect(new Set(fx.seen("response").map((e) => `${e.streamId}:${e.nonce}`)).size).toBe(4);
  });

  it("identical content yields identical versions across independently built snapshots", () => {
    const a = meshSnapshot({ clusters: ["x", "y"] });
    const b = meshSnapshot({ clusters: ["x", "y"] });
    for (const t of [
      TypeUrl.Cluster,
      TypeUrl.ClusterLoadAssignment,
      TypeUrl.Listener,
      TypeUrl.RouteConfiguration,
    ]) {
      expect(a.version(t)).toBe(b.version(t));
    }
    expect(a.version(TypeUrl.Cluster)).not.toBe(meshSnapshot({ clusters: ["x"] }).version(TypeUrl.Cluster));
  });

  it("rejects a message of the wrong type with a clear error", () => {
    expect(() => Snapshot.create({ listeners: [create(ClusterSchema, { name: "c" }) as never] })).toThrow(
      /envoy.config.cluster.v3.Cluster was given where envoy.config.listener.v3.Listener/,
    );
  });

  it("a SotW reconnect that reports the current version is not sent it again", async () => {
    const { fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    const r = await c.next();
    c.close();
    const again = fx.client();
    again.request({ typeUrl: TypeUrl.Cluster, versionInfo: r.versionInfo });
    await fx.waitFor("request", (e) => e.versionInfo === r.versionInfo);
    await settle();
    expect(again.pending()).toHaveLength(0);
    expect(fx.seen("response")).toHaveLength(1);
  });
});
