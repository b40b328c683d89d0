// Issue 13: a burst of client cancels on one shared HTTP/2 connection must cost nothing but the
// cancelled streams. grpc-js puts every call of one target on one connection; each cancel is an
// RST_STREAM, and Node's HTTP/2 server (nghttp2 lib/nghttp2_session.c,
// session_update_stream_reset_ratelim) answers the 1,001st within a burst (refilled at 33/s) with
// GOAWAY(INTERNAL_ERROR), on which a Node client destroys its whole session — every healthy stream
// on it then fails with "13 INTERNAL: Received RST_STREAM with code 2". Measured on Node 20.20.2
// (nghttp2 1.61.0) with a bare node:http2 server: 1,000 cancels pass, 1,001 kill the session.
// So one storm of 1,000 is exactly the budget; the test runs two back to back on one client.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { resources, Snapshot, SnapshotCache, silentLogger, TypeUrl, XdsServer } from "@meshlet/xds";
import { afterEach, describe, expect, it } from "vitest";

const ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const STORM = 1000;
const HEALTHY = 20;
const names = Array.from({ length: 100 }, (_, i) => `cluster-${i}`);
const eds = names.slice(0, 10);

function snapshot(port: number): Snapshot {
  return Snapshot.create({
    clusters: names.map((name) => resources.cluster({ name })),
    endpoints: names.map((name, i) =>
      resources.loadAssignment({ clusterName: name, endpoints: [{ address: "10.0.0.1", port: port + i }] }),
    ),
  });
}

const request = (init: Parameters<typeof create<typeof DiscoveryRequestSchema>>[1]) =>
  toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, init));

/** One ADS stream: CDS wildcard and EDS for 10 names, ACKing every response. */
function adsStream(client: grpc.Client, onResponse?: (count: number) => void) {
  const call = client.makeBidiStreamRequest(
    ADS,
    (b: Uint8Array) => Buffer.from(b),
    (b: Buffer) => b,
  );
  let responses = 0;
  let cancelled = false;
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  call.on("data", (bytes: Buffer) => {
    const r = fromBinary(DiscoveryResponseSchema, bytes);
    if (!cancelled)
      call.write(
        request({
          typeUrl: r.typeUrl,
          versionInfo: r.versionInfo,
          responseNonce: r.nonce,
          resourceNames: r.typeUrl === TypeUrl.Cluster ? [] : eds,
        }),
      );
    responses++;
    onResponse?.(responses);
  });
  call.write(request({ node: { id: "storm" }, typeUrl: TypeUrl.Cluster }));
  call.write(request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: eds }));
  const cancel = () => {
    cancelled = true;
    call.cancel();
  };
  return { call, cancel, status, responses: () => responses };
}

/** 1,000 streams, each cancelled as soon as it has its first CDS and EDS responses. */
async function storm(client: grpc.Client): Promise<grpc.StatusObject[]> {
  const statuses = await Promise.all(
    Array.from({ length: STORM }, () => {
      const s = adsStream(client, (count) => {
        if (count === 2) s.cancel();
      });
      return s.status;
    }),
  );
  return statuses;
}

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function serve(
  transport: "listen" | "register",
): Promise<{ xds: XdsServer; cache: SnapshotCache; address: string }> {
  const cache = new SnapshotCache();
  cache.setSnapshot("storm", snapshot(1000));
  const xds = new XdsServer({ cache, logger: silentLogger });
  cleanup.push(() => xds.close());
  if (transport === "listen") {
    const server = await xds.listen({ address: "127.0.0.1:0" });
    cleanup.push(() => server.close(200));
    return { xds, cache, address: server.address };
  }
  const server = new grpc.Server();
  xds.register(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  cleanup.push(() => server.forceShutdown());
  return { xds, cache, address: `127.0.0.1:${port}` };
}

describe("a storm of client cancels on one shared connection", () => {
  for (const transport of ["listen", "register"] as const) {
    it(`costs only the cancelled streams, and the client keeps working (${transport === "listen" ? "listen()'s node:http2 transport" : "register() on a grpc-js Server"})`, async () => {
      const { cache, address } = await serve(transport);
      // One channel: grpc-js carries all its calls on one HTTP/2 connection.
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      cleanup.push(() => client.close());
      const healthy = Array.from({ length: HEALTHY }, () => adsStream(client));
      await expect
        .poll(() => healthy.every((h) => h.responses() >= 2), {
          timeout: 30_000,
          message: "healthy streams' first responses",
        })
        .toBe(true);
      let healthyFailure: grpc.StatusObject | undefined;
      for (const h of healthy) void h.status.then((s) => (healthyFailure ??= s));

      for (let round = 0; round < 2; round++) {
        const statuses = await storm(client);
        const failed = statuses.filter((s) => s.code !== grpc.status.CANCELLED);
        expect(failed.map((s) => `${s.code} ${s.details}`)).toEqual([]);
        expect(healthyFailure).toBeUndefined();
      }

      // The healthy streams still get pushes…
      const before = healthy.map((h) => h.responses());
      cache.setSnapshot("storm", snapshot(2000));
      await expect
        .poll(() => healthy.every((h, i) => h.responses() >= (before[i] as number) + 1), {
          timeout: 30_000,
          message: `a push to every healthy stream (responses ${healthy.map((h) => h.responses())}, before ${before})`,
        })
        .toBe(true);
      expect(healthyFailure).toBeUndefined();
      // …and a new stream on the same client works.
      const fresh = adsStream(client);
      await expect
        .poll(() => fresh.responses(), { timeout: 30_000, message: "a new stream's first responses" })
        .toBeGreaterThanOrEqual(2);
      fresh.call.cancel();
      for (const h of healthy) h.call.cancel();
    }, 120_000);
  }
});
