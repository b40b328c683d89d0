// The hooks a control plane builds on: requested names reach the cache (on-demand resources),
// status() forgets nodes that left, waitForAck() for a version that must land, and an injectable
// clock for heartbeats and timestamps. Against a real XdsServer on loopback.
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import { ClientStatusRequestSchema } from "@meshlet/api/envoy/service/status/v3/csds_pb";
import {
  type Clock,
  type ConfigWatcher,
  MuxCache,
  type ResourceSet,
  resources,
  Snapshot,
  SnapshotCache,
  type SubscribedNames,
  TypeUrl,
  XdsError,
} from "@meshlet/xds";
import { BehaviorSubject, map, Observable, switchMap } from "rxjs";
import { afterEach, describe, expect, it } from "vitest";
import { type Fixture, meshSnapshot, settle, startFixture } from "./support/fixture.js";

let fx: Fixture | undefined;
afterEach(async () => {
  await fx?.close();
  fx = undefined;
});

/**
 * A cache that builds clusters on demand: whatever a stream subscribes to by name exists, as a
 * cluster of that name. It records every subscription it is told of.
 */
class OnDemandClusters implements ConfigWatcher {
  readonly seen: string[][] = [];
  watch(_node: Node, typeUrl: string, names$?: Observable<SubscribedNames>): Observable<ResourceSet> {
    if (typeUrl !== TypeUrl.Cluster || !names$)
      return new BehaviorSubject(Snapshot.create({}).resourceSet(typeUrl));
    return names$.pipe(
      map((s) => {
        this.seen.push([...s.names].sort());
        return Snapshot.create({
          clusters: [...s.names].map((name) => resources.cluster({ name })),
        }).resourceSet(TypeUrl.Cluster);
      }),
      switchMap((set) => new BehaviorSubject(set)),
    );
  }
}

describe("requested names reach the cache", () => {
  for (const protocol of ["sotw", "delta"] as const) {
    it(`ConfigWatcher.watch gets the subscription and each change of it, so a cache can build on demand (${protocol})`, async () => {
      const cache = new OnDemandClusters();
      const fx0 = await startFixture(new MuxCache({ caches: { [TypeUrl.Cluster]: cache } }));
      fx = fx0;
      const c = fx0.client({ protocol });
      const subscribe = (names: string[], previous?: { nonce: string; versionInfo: string }) =>
        protocol === "delta"
          ? c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: names.slice(-1) })
          : c.request({
              typeUrl: TypeUrl.Cluster,
              resourceNames: names,
              ...(previous ? { responseNonce: previous.nonce, versionInfo: previous.versionInfo } : {}),
            });
      subscribe(["on-demand-a"]);
      const r1 = await c.next();
      expect(r1.resources.map((r) => r.name)).toEqual(["on-demand-a"]);
      subscribe(["on-demand-a", "on-demand-b"], r1);
      const r2 = await c.next();
      expect(r2.resources.map((r) => r.name)).toContain("on-demand-b");
      expect(cache.seen).toEqual([["on-demand-a"], ["on-demand-a", "on-demand-b"]]);
    });
  }

  for (const protocol of ["sotw", "delta"] as const) {
    it(`a SnapshotCache subclass that overrides watch() gets every watch through it, names$ included (${protocol})`, async () => {
      // The built-in caches' internal fast path must not bypass an override of watch().
      class Recording extends SnapshotCache {
        readonly seen: string[][] = [];
        override watch(node: Node, typeUrl: string, names$?: Observable<SubscribedNames>) {
          names$?.subscribe((s) => this.seen.push([typeUrl, ...[...s.names].sort()]));
          return super.watch(node, typeUrl);
        }
      }
      const cache = new Recording();
      cache.setSnapshot("node-a", meshSnapshot());
      fx = await startFixture(cache);
      const c = fx.client({ protocol });
      if (protocol === "delta") c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["*"] });
      else c.request({ typeUrl: TypeUrl.Cluster });
      const r = await c.next();
      expect(r.resources.length).toBeGreaterThan(0);
      expect(cache.seen).toEqual([[TypeUrl.Cluster]]);
    });
  }

  it("serves a ConfigWatcher that only has watch() (an Observable), and ends its watch with the stream", async () => {
    let watching = 0;
    const watcher: ConfigWatcher = {
      watch(_node, typeUrl) {
        return new Observable<ResourceSet>((subscriber) => {
          watching++;
          subscriber.next(meshSnapshot().resourceSet(typeUrl));
          return () => watching--;
        });
      },
    };
    fx = await startFixture(watcher);
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    const r = await c.next();
    expect(r.resources.map((x) => x.name)).toEqual(["c1"]);
    expect(watching).toBe(1);
    c.close();
    await fx.waitFor("stream-close");
    expect(watching).toBe(0);
  });

  it("completes names$ when the stream ends", async () => {
    let completed = false;
    const watcher: ConfigWatcher = {
      watch(_node, typeUrl, names$) {
        names$?.subscribe({ complete: () => (completed = true) });
        return new BehaviorSubject(Snapshot.create({}).resourceSet(typeUrl));
      },
    };
    fx = await startFixture(watcher);
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    await c.next();
    c.close();
    await fx.waitFor("stream-close");
    expect(completed).toBe(true);
  });
});

describe("status()", () => {
  it("drops the entry of a node whose last stream closed", async () => {
    const cache = new SnapshotCache();
    cache.setSnapshot("node-a", meshSnapshot());
    fx = await startFixture(cache);
    const one = fx.client();
    const two = fx.client();
    one.request({ typeUrl: TypeUrl.Cluster });
    two.request({ typeUrl: TypeUrl.Cluster });
    await one.next();
    await two.next();
    expect(cache.status("node-a")?.streams).toBe(2);
    one.close();
    await expect.poll(() => cache.status("node-a")?.streams).toBe(1);
    two.close();
    await expect.poll(() => cache.status("node-a")).toBeUndefined();
  });
});

describe("waitForAck()", () => {
  async function setup() {
    const cache = new SnapshotCache();
    cache.setSnapshot("node-a", meshSnapshot());
    fx = await startFixture(cache);
    return { cache, fx };
  }

  it("resolves when the node ACKs the version, and at once when it already has", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    const r1 = await c.next();
    const version = cache.getSnapshot("node-a")?.version(TypeUrl.Cluster) as string;
    let landed = false;
    const waiting = fx.xds.waitForAck("node-a", TypeUrl.Cluster, version).then(() => (landed = true));
    await settle();
    expect(landed).toBe(false);
    c.ack(r1);
    await waiting;
    await expect(
      fx.xds.waitForAck({ id: "node-a" } as Node, TypeUrl.Cluster, version),
    ).resolves.toBeUndefined();
  });

  it("rejects with the client's error when the node NACKs the version", async () => {
    const { cache, fx } = await setup();
    const c = fx.client();
    c.request({ typeUrl: TypeUrl.Cluster });
    c.ack(await c.next());
    const bad = meshSnapshot({ clusters: ["c9"] });
    const waiting = fx.xds.waitForAck("node-a", TypeUrl.Cluster, bad.version(TypeUrl.Cluster));
    cache.setSnapshot("node-a", bad);
    c.nack(await c.next(), "c9: unsupported lb_policy");
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(XdsError);
    expect((error as XdsError).code).toBe("nacked");
    expect((error as XdsError).message).toContain("c9: unsupported lb_policy");
  });

  it("rejects on timeout and on abort", async () => {
    const { fx } = await setup();
    await expect(
      fx.xds.waitForAck("node-a", TypeUrl.Cluster, "never", { timeoutMs: 20 }),
    ).rejects.toMatchObject({
      code: "timeout",
    });
    const abort = new AbortController();
    const waiting = fx.xds.waitForAck("node-a", TypeUrl.Cluster, "never", { signal: abort.signal });
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ code: "aborted" });
  });
});

describe("an injectable clock", () => {
  it("drives heartbeats and stamps ACKs and NACKs (CSDS last_updated)", async () => {
    let now = Date.UTC(2030, 0, 1);
    const timers: Array<() => void> = [];
    const clock: Clock = {
      now: () => now,
      setInterval: (callback) => timers.push(callback),
      clearInterval: () => {},
    };
    const cache = new SnapshotCache();
    cache.setSnapshot(
      "node-a",
      Snapshot.create({ clusters: [resources.withTtl(resources.cluster({ name: "c1" }), 30_000)] }),
    );
    fx = await startFixture(cache, { clock, heartbeatIntervalMs: 10_000 });
    expect(timers).toHaveLength(1);
    const c = fx.client({ protocol: "delta" });
    c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["c1"] });
    const r1 = await c.next();
    now += 5_000;
    c.ack(r1);
    await fx.waitFor("ack");
    // No heartbeat until the clock says so.
    await settle();
    expect(c.pending()).toHaveLength(0);
    (timers[0] as () => void)();
    const beat = await c.next();
    expect(beat.resources[0]?.heartbeat).toBe(true);
    const status = fx.xds.clientStatus(create(ClientStatusRequestSchema));
    const entry = status.config[0]?.genericXdsConfigs[0];
    expect(entry?.lastUpdated && timestampMs(entry.lastUpdated)).toBe(Date.UTC(2030, 0, 1) + 5_000);
  });
});
