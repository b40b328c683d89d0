// What the client holds, as the server must track it: the four protocol bugs of issue 10 §1, each
// with the rule of Envoy's "xDS REST and gRPC protocol" (envoyproxy/envoy api/xds_protocol.rst)
// that it breaks. Driven by the exported testing client against a real XdsServer on loopback.
import { ClientResourceStatus } from "@meshlet/api/envoy/admin/v3/config_dump_shared_pb";
import { resources, Snapshot, SnapshotCache, TypeUrl, type XdsServerOptions } from "@meshlet/xds";
import { afterEach, describe, expect, it } from "vitest";
import { type Fixture, settle, startFixture } from "./support/fixture.js";

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/** Endpoints of c1 and c2 at the given ports: changing a port changes that resource's version. */
function endpoints(p1: number, p2: number): Snapshot {
  return Snapshot.create({
    clusters: [resources.cluster({ name: "c1" }), resources.cluster({ name: "c2" })],
    endpoints: [
      resources.loadAssignment({ clusterName: "c1", endpoints: [{ address: "10.0.0.1", port: p1 }] }),
      resources.loadAssignment({ clusterName: "c2", endpoints: [{ address: "10.0.0.2", port: p2 }] }),
    ],
  });
}

async function setup(snapshot: Snapshot, options: Partial<XdsServerOptions> = {}) {
  const cache = new SnapshotCache();
  cache.setSnapshot("node-a", snapshot);
  fx = await startFixture(cache, options);
  return { cache, fx };
}

const names = (r: { resources: readonly { name: string }[] }) => r.resources.map((x) => x.name).sort();

describe("delta: a wildcard subscription to an empty type", () => {
  // xds_protocol.rst, "Knowing When a Requested Resource Does Not Exist": in wildcard mode every
  // response carries all existing resources, so the client learns the (empty) state from the first
  // one; without it Envoy waits initial_fetch_timeout (15 s) before it finishes starting.
  for (const subscribe of [[], ["*"]]) {
    it(`answers the first request [${subscribe}] with an empty response, as SotW does`, async () => {
      const { fx } = await setup(endpoints(1, 2));
      const d = fx.client({ protocol: "delta" });
      d.requestDelta({ typeUrl: TypeUrl.Listener, subscribe });
      const r = await d.next(TypeUrl.Listener, 5000);
      expect(r.resources).toEqual([]);
      expect(r.removed).toEqual([]);
      expect(r.nonce).not.toBe("");
      const s = fx.client();
      s.request({ typeUrl: TypeUrl.Listener });
      expect((await s.next(TypeUrl.Listener, 5000)).resources).toEqual([]);
    });
  }
});

describe("a NACKed response is not counted as delivered", () => {
  // xds_protocol.rst, "ACK and NACK semantics summary": a NACK "signifies unsuccessful
  // configuration update and contains the previous (existing) version_info": the client still
  // holds what it held before the rejected response, so the next push is diffed against that.
  it("SotW: after a NACK of c1+c2, fixing only c2 sends c1 and c2", async () => {
    const { cache, fx } = await setup(endpoints(1, 2));
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1", "c2"] });
    const r1 = await c.next();
    c.ack(r1);
    cache.setSnapshot("node-a", endpoints(11, 12));
    const r2 = await c.next();
    expect(names(r2)).toEqual(["c1", "c2"]);
    c.nack(r2, "c2: bad endpoint", r1.versionInfo);
    await fx.waitFor("nack");
    cache.setSnapshot("node-a", endpoints(11, 22));
    const r3 = await c.next();
    // The client never applied c1 at port 11: it is sent again with the fixed c2.
    expect(names(r3)).toEqual(["c1", "c2"]);
  });

  it("Delta: after a NACK of c1+c2, fixing only c2 sends c1 and c2", async () => {
    const { cache, fx } = await setup(endpoints(1, 2));
    const d = fx.client({ protocol: "delta" });
    d.requestDelta({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribe: ["c1", "c2"] });
    const r1 = await d.next();
    d.ack(r1);
    cache.setSnapshot("node-a", endpoints(11, 12));
    const r2 = await d.next();
    expect(names(r2)).toEqual(["c1", "c2"]);
    d.nack(r2, "c2: bad endpoint");
    await fx.waitFor("nack");
    cache.setSnapshot("node-a", endpoints(11, 22));
    const r3 = await d.next();
    expect(names(r3)).toEqual(["c1", "c2"]);
  });
});

describe("SotW reconnect with a version_info", () => {
  // xds_protocol.rst, "ACK/NACK and resource type instance version": a new stream's first request
  // names "the most recent version seen by the client on the previous stream" — a version of the
  // whole type, which says nothing about which names the client got. And "How the client specifies
  // what resources to return": the server "must resend any newly requested resources".
  it("sends every requested name the new stream cannot prove the client has", async () => {
    const { fx } = await setup(endpoints(1, 2));
    const first = fx.client();
    first.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1"] });
    const r1 = await first.next();
    first.ack(r1);
    // The client adds c2 and its stream breaks before the answer arrives.
    first.close();
    const again = fx.client();
    again.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: ["c1", "c2"],
      versionInfo: r1.versionInfo,
    });
    const r2 = await again.next(undefined, 5000);
    expect(r2.versionInfo).toBe(r1.versionInfo);
    expect(names(r2)).toEqual(["c1", "c2"]);
  });
});

describe("a heartbeat does not make the answer in flight stale", () => {
  // xds_protocol.rst, "Resource updates": a nonce goes stale when a newer response presents a
  // newer nonce. A TTL heartbeat re-sends the last response's state at its version; it must not
  // make the answer to that response stale. And since the client takes the heartbeat's version as
  // its own once it accepts it, none goes out while that response is unanswered (the client may
  // still reject it).
  const ttlSnapshot = () =>
    Snapshot.create({ clusters: [resources.withTtl(resources.cluster({ name: "c1" }), 30_000)] });

  for (const protocol of ["sotw", "delta"] as const) {
    it(`${protocol}: a NACK after heartbeats came due reaches events$ and status()`, async () => {
      const { cache, fx } = await setup(ttlSnapshot(), { heartbeatIntervalMs: 30 });
      // SotW TTLs (and heartbeats) go to clients that take resources wrapped in Resource.
      const node = { id: "node-a", clientFeatures: ["xds.config.resource-in-sotw"] };
      const subscribe = (c: ReturnType<Fixture["client"]>) =>
        protocol === "delta"
          ? c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["c1"] })
          : c.request({ typeUrl: TypeUrl.Cluster });
      const c = fx.client({ protocol, node });
      subscribe(c);
      const r1 = await c.next();
      const streamId = fx.seen("response")[0]?.streamId;
      // Another stream of the node that answers: its heartbeats show that heartbeat rounds ran
      // while r1 was unanswered.
      const witness = fx.client({ protocol, node, autoAck: true });
      subscribe(witness);
      await witness.next();
      for (let i = 0; i < 2; i++) expect((await witness.next()).resources[0]?.heartbeat).toBe(true);
      expect(c.pending()).toEqual([]);
      c.nack(r1, "rejected by test");
      await fx.waitFor("request", (e) => e.streamId === streamId && e.responseNonce === r1.nonce);
      await settle();
      expect(fx.seen("nack").map((e) => [e.streamId, e.nonce])).toEqual([[streamId, r1.nonce]]);
      expect(cache.status("node-a")?.types[TypeUrl.Cluster]?.nack?.message).toBe("rejected by test");
    });
  }
});

describe("a subscription change does not re-send what the client rejected", () => {
  // xds_protocol.rst, "ACK and NACK semantics summary" and "When to send an update": after a NACK
  // the server waits for a new state of the type rather than send the rejected resource again.
  // A client asking for one more name is no new state of the names it rejected: re-sending them
  // with the new name would make the client reject the new name's response too (Envoy's gRPC mux
  // NACKs a response as a whole, envoyproxy/envoy
  // source/extensions/config_subscription/grpc/grpc_mux_impl.cc), so one bad endpoint set would
  // block every cluster added after it until the cache changes. The next new state re-sends them
  // (the client holds no known version of them).
  for (const protocol of ["sotw", "delta"] as const) {
    it(`${protocol}: after a NACK of c1, subscribing to c2 sends c2 alone; the next push sends both`, async () => {
      const { cache, fx } = await setup(endpoints(1, 2));
      const c = fx.client({ protocol });
      const subscribe = (names: string[], added: string[], answering?: { nonce: string }) =>
        protocol === "delta"
          ? c.requestDelta({ typeUrl: TypeUrl.ClusterLoadAssignment, subscribe: added })
          : c.request({
              typeUrl: TypeUrl.ClusterLoadAssignment,
              resourceNames: names,
              responseNonce: answering?.nonce ?? "",
            });
      subscribe(["c1"], ["c1"]);
      const r1 = await c.next();
      expect(names(r1)).toEqual(["c1"]);
      c.nack(r1, "c1: bad endpoint");
      await fx.waitFor("nack");
      subscribe(["c1", "c2"], ["c2"], r1);
      const r2 = await c.next();
      expect(names(r2)).toEqual(["c2"]);
      c.ack(r2);
      await fx.waitFor("ack");
      // CSDS still shows c1 rejected: it was not sent again.
      const status = fx.xds.clientStatus().config[0]?.genericXdsConfigs ?? [];
      expect(status.map((x) => [x.name, ClientResourceStatus[x.clientStatus]])).toEqual([
        ["c1", "NACKED"],
        ["c2", "ACKED"],
      ]);
      cache.setSnapshot("node-a", endpoints(1, 22));
      const r3 = await c.next();
      expect(names(r3)).toEqual(["c1", "c2"]);
    });
  }
});

describe("SotW requests repeat the whole subscription", () => {
  // xds_protocol.rst, "How the client specifies what resources to return": every SotW request
  // (ACKs included) carries the full list of names; only a list that differs from the last one
  // changes the subscription, and newly requested names are re-sent. A short list is decoded per
  // request (the stream keeps none of it); a long one is interned and recognised by identity.
  // Both must behave alike.
  const many = Array.from({ length: 40 }, (_, i) => `outbound|8080||svc-${i}.default.svc.cluster.local`);
  const wide = Snapshot.create({
    endpoints: many.map((name, i) =>
      resources.loadAssignment({ clusterName: name, endpoints: [{ address: "10.0.1.1", port: 1000 + i }] }),
    ),
  });
  for (const [kind, list, snapshot] of [
    ["a short list (decoded per request)", ["c1", "c2"], endpoints(1, 2)],
    ["a long list (interned)", many, wide],
  ] as const) {
    it(`${kind}: repeated ACKs change nothing and report the response's version; a change re-sends the added name`, async () => {
      const { cache, fx } = await setup(snapshot);
      const c = fx.client();
      c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: [...list] });
      const r1 = await c.next();
      expect(names(r1)).toEqual([...list].sort());
      c.ack(r1);
      c.ack(r1);
      c.ack(r1);
      await fx.waitFor("ack");
      await settle();
      expect(fx.seen("response")).toHaveLength(1);
      expect(fx.seen("ack")).toHaveLength(1);
      expect(fx.seen("ack")[0]?.version).toBe(r1.versionInfo);
      expect(cache.status("node-a")?.types[TypeUrl.ClusterLoadAssignment]?.ackedVersion).toBe(r1.versionInfo);
      // Drop the first name, then ask for it again: it is sent again, alone.
      const [dropped, ...rest] = list;
      c.request({
        typeUrl: TypeUrl.ClusterLoadAssignment,
        resourceNames: rest,
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      });
      c.request({
        typeUrl: TypeUrl.ClusterLoadAssignment,
        resourceNames: [...list],
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      });
      const r2 = await c.next();
      expect(names(r2)).toEqual([dropped]);
      // A NACK reports the version the client kept, not the one it rejected.
      c.nack(r2, "rejected by test", "v-kept");
      const nack = await fx.waitFor("nack");
      expect(nack.version).toBe("v-kept");
      expect(nack.rejectedVersion).toBe(r2.versionInfo);
    });
  }
});

describe("SotW: an interned list sent again after a short one", () => {
  // xds_protocol.rst, "How the client specifies what resources to return": "the server must
  // resend any newly requested resources". The server recognises a long (interned, ≥ 512 encoded
  // bytes) list by identity; a short list in between must not leave the long one standing as
  // "the last list", or the same long list sent again would look like no change.
  const many = Array.from({ length: 40 }, (_, i) => `outbound|8080||svc-${i}.default.svc.cluster.local`);
  const wide = Snapshot.create({
    endpoints: many.map((name, i) =>
      resources.loadAssignment({ clusterName: name, endpoints: [{ address: "10.0.1.1", port: 1000 + i }] }),
    ),
  });
  it("re-sends every name the short list dropped", async () => {
    const { fx } = await setup(wide);
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: [...many] });
    const r1 = await c.next();
    expect(names(r1)).toEqual([...many].sort());
    c.ack(r1);
    const [kept = "", ...dropped] = many;
    c.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: [kept],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    c.request({
      typeUrl: TypeUrl.ClusterLoadAssignment,
      resourceNames: [...many],
      versionInfo: r1.versionInfo,
      responseNonce: r1.nonce,
    });
    const r2 = await c.next();
    expect(names(r2)).toEqual(dropped.sort());
  });
});
