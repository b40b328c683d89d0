// The per-type cap on the resource names one stream subscribes to (maxResourceNamesPerType), on a
// real server and a real gRPC stream (the grpc-js AdsClient of @meshlet/xds/testing): a request over
// the cap ends the stream with RESOURCE_EXHAUSTED naming the node and the type, and emits no
// `request` event, so nothing downstream (a controller reading events$) holds the names.
import {
  GrpcStatus,
  resources,
  Snapshot,
  SnapshotCache,
  silentLogger,
  TypeUrl,
  type XdsEvent,
  XdsServer,
} from "@meshlet/xds";
import { AdsClient } from "@meshlet/xds/testing";
import { afterEach, describe, expect, it } from "vitest";

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function start(max: number) {
  const cache = new SnapshotCache();
  cache.setSnapshot(
    "capped-node",
    Snapshot.create({ clusters: ["a", "b", "c", "d"].map((name) => resources.cluster({ name })) }),
  );
  const xds = new XdsServer({ cache, logger: silentLogger, maxResourceNamesPerType: max });
  const events: XdsEvent[] = [];
  const sub = xds.events$.subscribe((e) => events.push(e));
  const server = await xds.listen({ address: "127.0.0.1:0" });
  cleanup.push(
    () => sub.unsubscribe(),
    () => server.close(200),
    () => xds.close(),
  );
  const connect = (protocol: "sotw" | "delta") => {
    const client = AdsClient.connect({
      address: `127.0.0.1:${server.port}`,
      node: { id: "capped-node" },
      protocol,
    });
    cleanup.push(() => client.close());
    return client;
  };
  return { events, connect };
}

describe("maxResourceNamesPerType", () => {
  it("serves a SotW subscription at the cap and refuses one over it with RESOURCE_EXHAUSTED", async () => {
    const s = await start(3);
    const ok = s.connect("sotw");
    ok.request({ typeUrl: TypeUrl.Cluster, resourceNames: ["a", "b", "c"] });
    const response = await ok.next(TypeUrl.Cluster);
    expect(response.resources.map((r) => r.name).sort()).toEqual(["a", "b", "c"]);

    const over = s.connect("sotw");
    over.request({ typeUrl: TypeUrl.Cluster, resourceNames: ["a", "b", "c", "d"] });
    const error = (await over.next(TypeUrl.Cluster).catch((e: unknown) => e)) as {
      code?: number;
      details?: string;
    };
    expect(error.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(error.details).toContain('node "capped-node" subscribed to 4 resource names of');
    expect(error.details).toContain(TypeUrl.Cluster);
    expect(error.details).toContain("the limit is 3 per type and stream");
    // Only the request within the cap reached events$.
    const requests = s.events.filter((e) => e.type === "request");
    expect(requests.map((e) => (e.type === "request" ? e.resourceNames.length : 0))).toEqual([3]);
  });

  it("counts a Delta subscription across requests", async () => {
    const s = await start(3);
    const c = s.connect("delta");
    c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["a", "b"] });
    await c.next(TypeUrl.Cluster);
    // Re-subscribing to held names and unsubscribing one keeps it within the cap.
    c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["a", "c"], unsubscribe: ["b"] });
    await c.next(TypeUrl.Cluster);
    c.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["b", "d"] });
    const error = (await c.next(TypeUrl.Cluster).catch((e: unknown) => e)) as {
      code?: number;
      details?: string;
    };
    expect(error.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(error.details).toContain("subscribed to 4 resource names");
  });

  it("refuses a cap that is not a positive integer", () => {
    expect(() => new XdsServer({ cache: new SnapshotCache(), maxResourceNamesPerType: 0 })).toThrow(
      /maxResourceNamesPerType must be a positive integer/,
    );
  });
});
