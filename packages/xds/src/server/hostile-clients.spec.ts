// What a hostile or broken client can make a long-running server hold: nothing that outlives its
// stream, and nothing unbounded while the stream is open. Driven in-process through
// XdsServer.handle() (no sockets); memory is checked with the garbage collector (WeakRef), never
// with heap figures.

import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import {
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { describe, expect, it } from "vitest";
import { MuxCache } from "../cache/mux-cache.js";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import * as resources from "../resources/index.js";
import { Snapshot } from "../snapshot.js";
import { TypeUrl, xdsRegistry } from "../type-url.js";
import type { CallHandler, ServerCall } from "./call.js";
import { silentLogger } from "./logger.js";
import { XdsServer } from "./xds-server.js";

v8.setFlagsFromString("--expose_gc");
const gc = runInNewContext("gc") as () => void;

const ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

/** A call whose responses and status are recorded. */
function call(): ServerCall & { responses: number; status?: { code: number; details: string } } {
  const c: ServerCall & { responses: number; status?: { code: number; details: string } } = {
    peer: "hostile:1",
    metadata: {},
    peerCertificate: undefined,
    responses: 0,
    write: (_framed, done) => {
      c.responses++;
      queueMicrotask(() => done());
    },
    finish: (code, details) => {
      c.status = { code, details };
    },
  };
  return c;
}

function sotw(handler: CallHandler, init: Parameters<typeof create<typeof DiscoveryRequestSchema>>[1]): void {
  handler.message(Buffer.from(toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, init))), false);
}

const turn = () => new Promise((r) => setImmediate(r));

async function collected(refs: readonly WeakRef<object>[]): Promise<number> {
  for (let i = 0; i < 5; i++) {
    gc();
    await turn();
  }
  return refs.filter((r) => r.deref() !== undefined).length;
}

describe("a client asking for type URLs no cache knows", () => {
  it("leaves nothing behind once its stream closes", async () => {
    const cache = new SnapshotCache();
    const snapshot = Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] });
    cache.setSnapshot("n", snapshot);
    const xds = new XdsServer({ cache, logger: silentLogger });
    const c = call();
    let handler: CallHandler | undefined = xds.handle(ADS, c) as CallHandler;
    const types = Array.from({ length: 20 }, (_, i) => `type.googleapis.com/hostile.T${i}.${"x".repeat(64)}`);
    sotw(handler, { node: { id: "n" }, typeUrl: types[0] as string });
    for (const typeUrl of types.slice(1)) sotw(handler, { typeUrl });
    await turn();
    // Each got its (empty) answer, from a set the stream holds while it is open.
    expect(c.responses).toBe(types.length);
    const refs = types.map((t) => new WeakRef(snapshot.resourceSet(t)));
    handler.close("cancelled");
    // A transport lets go of a call's handler when the call is gone.
    handler = undefined;
    xds.close();
    expect(await collected(refs)).toBe(0);
  });
});

describe("a client whose authorization is still being decided", () => {
  const nodeRequest = (typeUrl: string) => ({ node: { id: "n" }, typeUrl });
  /** A server whose authorize hook decides (allows) only when `allow()` is called. */
  const deciding = () => {
    const gate = { allow: () => {} };
    const cache = new SnapshotCache();
    cache.setSnapshot("n", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    const xds = new XdsServer({
      cache,
      logger: silentLogger,
      authorize: () => new Promise<undefined>((resolve) => (gate.allow = () => resolve(undefined))),
    });
    const c = call();
    return { xds, c, handler: xds.handle(ADS, c) as CallHandler, allow: () => gate.allow() };
  };

  it("is refused once the hook takes longer than authorizeTimeoutMs (UNAVAILABLE: clients retry)", async () => {
    const cache = new SnapshotCache();
    cache.setSnapshot("n", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    const xds = new XdsServer({
      cache,
      logger: silentLogger,
      authorize: () => new Promise<undefined>(() => {}),
      authorizeTimeoutMs: 20,
    });
    const c = call();
    const refused = new Promise<void>((resolve) => {
      c.finish = (code, details) => {
        c.status = { code, details };
        resolve();
      };
    });
    sotw(
      xds.handle(ADS, c) as CallHandler,
      nodeRequest("type.googleapis.com/envoy.config.cluster.v3.Cluster"),
    );
    await refused;
    expect(c.status?.code).toBe(14);
    expect(c.status?.details).toMatch(/authoriz/);
    expect(c.responses).toBe(0);
    expect(xds.openStreams).toBe(0);
    xds.close();
  });

  it("cannot queue requests without bound while it waits (RESOURCE_EXHAUSTED)", async () => {
    const { xds, c, handler, allow } = deciding();
    sotw(handler, nodeRequest("type.googleapis.com/t0"));
    for (let i = 1; i < 10_000 && !c.status; i++) sotw(handler, { typeUrl: `type.googleapis.com/t${i}` });
    expect(c.status?.code).toBe(8);
    allow();
    await turn();
    expect(c.responses).toBe(0);
    expect(xds.openStreams).toBe(0);
    xds.close();
  });

  it("gets its queued requests served in order once allowed", async () => {
    const { xds, c, handler, allow } = deciding();
    sotw(handler, nodeRequest("type.googleapis.com/envoy.config.cluster.v3.Cluster"));
    for (let i = 0; i < 10; i++) sotw(handler, { typeUrl: `type.googleapis.com/t${i}` });
    allow();
    await turn();
    expect(c.status).toBeUndefined();
    expect(c.responses).toBe(11);
    handler.close("cancelled");
    xds.close();
  });
});

describe("a client that stops reading its responses", () => {
  // Flow control holds the stream's first write; every push after it queues behind it. A client
  // that keeps its connection alive (it answers PINGs) but never reads the stream would hold every
  // push's buffers for as long as it stays connected.
  it("is ended (RESOURCE_EXHAUSTED) once a hundred responses queue behind its stuck write", async () => {
    const cache = new SnapshotCache();
    const snapshot = (v: number) =>
      Snapshot.create({ clusters: [resources.cluster({ name: "c1", connectTimeoutMs: 1000 + v })] });
    cache.setSnapshot("n", snapshot(0));
    const xds = new XdsServer({ cache, logger: silentLogger });
    const c = call();
    c.write = () => {
      c.responses++; // handed to a transport that never completes it
    };
    const handler = xds.handle(ADS, c) as CallHandler;
    sotw(handler, { node: { id: "n" }, typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster" });
    await turn();
    let pushes = 0;
    for (; pushes < 10_000 && !c.status; pushes++) {
      cache.setSnapshot("n", snapshot(pushes + 1));
      await Promise.resolve();
    }
    await turn();
    expect(c.status?.code).toBe(8);
    expect(c.status?.details).toMatch(/not reading/);
    expect(pushes).toBeLessThan(1000);
    expect(c.responses).toBe(1);
    handler.close("cancelled");
    xds.close();
  });
});

describe("a client whose resource names contain the characters the server joins names with", () => {
  // Subscriptions (NameSets) and removed-name lists (ResponseCache) are shared between streams
  // by a key built from their names. Names are any string a client sends, NUL included: a key
  // that one name can spell like two would hand one stream another's subscription.
  it("cannot take over another stream's subscription", async () => {
    const cache = new SnapshotCache({ nodeKey: () => "all" });
    cache.setSnapshot(
      "all",
      Snapshot.create({
        endpoints: ["a", "b"].map((name) =>
          resources.loadAssignment({ clusterName: name, endpoints: [{ address: "10.0.0.1", port: 80 }] }),
        ),
      }),
    );
    const xds = new XdsServer({ cache, logger: silentLogger });
    const eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    const hostile = call();
    const h = xds.handle(ADS, hostile) as CallHandler;
    sotw(h, { node: { id: "hostile" }, typeUrl: eds, resourceNames: ["a\u0000b"] });
    await turn();
    const victim = call();
    const seen: string[][] = [];
    victim.write = (framed, done) => {
      const r = fromBinary(DiscoveryResponseSchema, framed.subarray(5));
      seen.push(
        r.resources.map((x) => (anyUnpack(x, xdsRegistry) as unknown as { clusterName: string }).clusterName),
      );
      queueMicrotask(() => done());
    };
    const v = xds.handle(ADS, victim) as CallHandler;
    sotw(v, { node: { id: "victim" }, typeUrl: eds, resourceNames: ["a", "b"] });
    await turn();
    expect(seen.flat().sort()).toEqual(["a", "b"]);
    h.close("cancelled");
    v.close("cancelled");
    xds.close();
  });
});

describe("a client whose node the cache's nodeKey cannot key", () => {
  // A nodeKey reads the client's Node (its cluster, its metadata): a client can send one it
  // throws on. The cache's bookkeeping (record(), StatusTracker) and its watch both call it.
  const strictKey = (n: { cluster: string }) => {
    if (!n.cluster) throw new Error("node has no cluster");
    return n.cluster;
  };
  class Overriding extends SnapshotCache {
    override watch(...args: Parameters<SnapshotCache["watch"]>) {
      return super.watch(...args);
    }
  }

  it("cannot make a request throw out of the call or leave its stream open, with or without watch() overridden", async () => {
    const outcomes = [];
    for (const cache of [new SnapshotCache({ nodeKey: strictKey }), new Overriding({ nodeKey: strictKey })]) {
      const errors: string[] = [];
      const logger = { ...silentLogger, error: (message: string) => errors.push(message) };
      const xds = new XdsServer({ cache, logger });
      const c = call();
      const handler = xds.handle(ADS, c) as CallHandler;
      // A transport hands over messages from an event listener (grpc-js's `data` under register()):
      // a throw from here would be an uncaught exception in the server.
      expect(() => sotw(handler, { node: { id: "n" }, typeUrl: TypeUrl.Cluster })).not.toThrow();
      await turn();
      handler.close("cancelled");
      expect(xds.openStreams).toBe(0);
      outcomes.push({ status: c.status, responses: c.responses, errors });
      xds.close();
    }
    // The internal fast path of SnapshotCache does what watch() does (the watch fails, logged).
    expect(outcomes[0]).toEqual(outcomes[1]);
    expect(outcomes[0]?.errors.some((e) => /watch of .*Cluster for node "n" failed/.test(e))).toBe(true);
  });
});

describe("a client naming a type URL like an Object property", () => {
  it("gets no cache's watch through a MuxCache, and its stream keeps being served", async () => {
    // Type URLs come from the client: MuxCache must look them up among its own keys only, never
    // reach Object's prototype ("constructor", "__proto__", "toString" are not caches).
    const snapshots = new SnapshotCache();
    snapshots.setSnapshot("n", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
    const mux = new MuxCache({ caches: { [TypeUrl.Cluster]: snapshots } });
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (message: string) => errors.push(message) };
    const xds = new XdsServer({ cache: mux, logger });
    const c = call();
    const handler = xds.handle(ADS, c) as CallHandler;
    for (const typeUrl of ["constructor", "__proto__", "toString", "hasOwnProperty"])
      expect(() => sotw(handler, { node: { id: "n" }, typeUrl })).not.toThrow();
    expect(() => sotw(handler, { node: { id: "n" }, typeUrl: TypeUrl.Cluster })).not.toThrow();
    await turn();
    expect(c.status).toBeUndefined();
    expect(c.responses).toBe(1);
    expect(errors).toEqual([]);
    handler.close("cancelled");
    expect(xds.openStreams).toBe(0);
    xds.close();
  });
});

describe("clients opening and closing many streams", () => {
  it("leave the cache holding only the keys that have snapshots", async () => {
    // SnapshotCache keeps a key while a stream watches it or it has a snapshot: once every stream
    // is closed (in any order, some keys with two streams), only the snapshot keys remain.
    const cache = new SnapshotCache();
    const snapshot = Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] });
    for (let i = 0; i < 50; i += 5) cache.setSnapshot(`n${i}`, snapshot);
    const xds = new XdsServer({ cache, logger: silentLogger });
    const open: CallHandler[] = [];
    for (let i = 0; i < 200; i++) {
      const handler = xds.handle(ADS, call()) as CallHandler;
      const id = `n${i % 50}`;
      sotw(handler, { node: { id }, typeUrl: TypeUrl.Cluster });
      sotw(handler, { typeUrl: TypeUrl.Listener });
      if (i % 3 === 0) sotw(handler, { typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1"] });
      open.push(handler);
      // Close some as others open: a key's watchers go 1 → 2 → 1 → 0 and come back.
      if (i % 7 === 6) open.splice(i % open.length, 1)[0]?.close("cancelled");
    }
    await turn();
    const entries = (cache as unknown as { entries: Map<string, unknown> }).entries;
    expect(entries.size).toBe(50);
    cache.setSnapshot("n1", snapshot);
    cache.clearSnapshot("n1");
    expect(entries.size).toBe(50);
    for (const handler of open.reverse()) handler.close("cancelled");
    expect(xds.openStreams).toBe(0);
    expect(entries.size).toBe(10);
    expect(cache.keys().sort()).toEqual(Array.from({ length: 10 }, (_, i) => `n${i * 5}`).sort());
    xds.close();
  });
});
