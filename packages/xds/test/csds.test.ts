// CSDS (envoyproxy/envoy api/envoy/service/status/v3/csds.proto) served from what the server knows
// of each connected node, called by a real grpc-js client (FetchClientStatus and
// StreamClientStatus) on both transports. The meaning of each status is the proto's own:
// ConfigStatus SYNCED "sent the config to client and received ACK", STALE "sent … but hasn't
// received ACK/NACK", ERROR "sent … but received NACK"; ClientResourceStatus (envoy/admin/v3/
// config_dump_shared.proto) ACKED, NACKED, REQUESTED, DOES_NOT_EXIST.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ClientResourceStatus } from "@meshlet/api/envoy/admin/v3/config_dump_shared_pb";
import {
  type ClientStatusRequest,
  ClientStatusRequestSchema,
  type ClientStatusResponse,
  ClientStatusResponseSchema,
  ConfigStatus,
} from "@meshlet/api/envoy/service/status/v3/csds_pb";
import { resources, Snapshot, SnapshotCache, silentLogger, TypeUrl, XdsServer } from "@meshlet/xds";
import { AdsClient } from "@meshlet/xds/testing";
import { afterEach, describe, expect, it } from "vitest";

const FETCH = "/envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus";
const STREAM = "/envoy.service.status.v3.ClientStatusDiscoveryService/StreamClientStatus";

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function mesh(port: number) {
  return Snapshot.create({
    clusters: [resources.cluster({ name: "c1" })],
    endpoints: [resources.loadAssignment({ clusterName: "c1", endpoints: [{ address: "10.0.0.1", port }] })],
  });
}

async function start(transport: "listen" | "register") {
  const cache = new SnapshotCache();
  cache.setSnapshot("node-a", mesh(1));
  const xds = new XdsServer({ cache, logger: silentLogger });
  cleanup.push(() => xds.close());
  let address: string;
  if (transport === "listen") {
    const server = await xds.listen({ address: "127.0.0.1:0", services: ["ads", "csds"] });
    cleanup.push(() => server.close(200));
    address = server.address;
  } else {
    const server = new grpc.Server();
    xds.register(server, { services: ["ads", "csds"] });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    cleanup.push(() => server.forceShutdown());
    address = `127.0.0.1:${port}`;
  }
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  cleanup.push(() => client.close());
  return { cache, xds, address, client };
}

const encode = (r: ClientStatusRequest) => Buffer.from(toBinary(ClientStatusRequestSchema, r));
const decode = (b: Buffer) => fromBinary(ClientStatusResponseSchema, b);

function fetch(
  client: grpc.Client,
  request = create(ClientStatusRequestSchema),
): Promise<ClientStatusResponse> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(FETCH, encode, decode, request, (err, res) =>
      err ? reject(err) : resolve(res!),
    ),
  );
}

/** One line per resource: type, name, client status, config status. */
function summary(response: ClientStatusResponse): string[] {
  return response.config.flatMap((c) =>
    c.genericXdsConfigs.map(
      (g) =>
        `${c.node?.id} ${g.typeUrl.split(".").pop()} ${g.name} ${ClientResourceStatus[g.clientStatus]} ${ConfigStatus[g.configStatus]}`,
    ),
  );
}

for (const transport of ["listen", "register"] as const) {
  describe(`CSDS (${transport})`, () => {
    it("FetchClientStatus shows, per resource, what was ACKed, NACKed (with the error) and what does not exist", async () => {
      const { cache, address, client } = await start(transport);
      const ads = AdsClient.connect({ address, node: { id: "node-a" } });
      cleanup.push(() => ads.close());
      ads.request({ typeUrl: TypeUrl.Cluster });
      ads.request({ typeUrl: TypeUrl.ClusterLoadAssignment, resourceNames: ["c1", "missing"] });
      const cds = await ads.next(TypeUrl.Cluster);
      const eds = await ads.next(TypeUrl.ClusterLoadAssignment);
      ads.ack(cds);
      ads.ack(eds);
      await expect
        .poll(async () => summary(await fetch(client)).filter((l) => l.includes("SYNCED")).length)
        .toBe(2);
      cache.setSnapshot("node-a", mesh(2));
      const eds2 = await ads.next(TypeUrl.ClusterLoadAssignment);
      ads.nack(eds2, "c1: endpoint port 2 refused", eds.versionInfo);
      await expect
        .poll(async () => summary(await fetch(client)))
        .toEqual([
          "node-a Cluster c1 ACKED SYNCED",
          "node-a ClusterLoadAssignment c1 NACKED ERROR",
          "node-a ClusterLoadAssignment missing DOES_NOT_EXIST NOT_SENT",
        ]);
      const response = await fetch(client);
      const [config] = response.config;
      expect(config?.node?.id).toBe("node-a");
      const cluster = config?.genericXdsConfigs.find((g) => g.typeUrl === TypeUrl.Cluster);
      expect(cluster?.versionInfo).toBe(cds.versionInfo);
      expect(cluster?.xdsConfig?.typeUrl).toBe(TypeUrl.Cluster);
      expect(cluster?.lastUpdated).toBeDefined();
      const endpoints = config?.genericXdsConfigs.find(
        (g) => g.name === "c1" && g.typeUrl === TypeUrl.ClusterLoadAssignment,
      );
      // A NACK keeps the last good version; the error state names the rejected one.
      expect(endpoints?.versionInfo).toBe(eds.versionInfo);
      expect(endpoints?.errorState?.details).toBe("c1: endpoint port 2 refused");
      expect(endpoints?.errorState?.versionInfo).toBe(eds2.versionInfo);
      expect(endpoints?.errorState?.failedConfiguration?.typeUrl).toBe(TypeUrl.ClusterLoadAssignment);
      const bare = await fetch(client, create(ClientStatusRequestSchema, { excludeResourceContents: true }));
      expect(bare.config[0]?.genericXdsConfigs.every((g) => g.xdsConfig === undefined)).toBe(true);
    });

    it("StreamClientStatus answers each request with the nodes its matchers select; a node that left is gone", async () => {
      const { address, client } = await start(transport);
      const a = AdsClient.connect({ address, node: { id: "node-a" }, autoAck: true });
      const b = AdsClient.connect({ address, node: { id: "node-b" }, autoAck: true });
      cleanup.push(
        () => a.close(),
        () => b.close(),
      );
      a.request({ typeUrl: TypeUrl.Cluster });
      b.request({ typeUrl: TypeUrl.Cluster });
      await a.next();
      const call = client.makeBidiStreamRequest(STREAM, encode, decode);
      cleanup.push(() => call.cancel());
      call.on("error", () => {});
      const responses: ClientStatusResponse[] = [];
      call.on("data", (r: ClientStatusResponse) => responses.push(r));
      const byNode = (prefix: string) =>
        create(ClientStatusRequestSchema, {
          nodeMatchers: [{ nodeId: { matchPattern: { case: "prefix", value: prefix } } }],
        });
      call.write(byNode("node-a"));
      await expect.poll(() => responses.length).toBe(1);
      expect(responses[0]?.config.map((c) => c.node?.id)).toEqual(["node-a"]);
      call.write(byNode("node-"));
      await expect.poll(() => responses.length).toBe(2);
      expect(responses[1]?.config.map((c) => c.node?.id).sort()).toEqual(["node-a", "node-b"]);
      a.close();
      await expect
        .poll(async () => {
          call.write(byNode("node-"));
          await new Promise((r) => setTimeout(r, 20));
          return responses.at(-1)?.config.map((c) => c.node?.id);
        })
        .toEqual(["node-b"]);
    });

    it("refuses a matcher it does not support with INVALID_ARGUMENT", async () => {
      const { client } = await start(transport);
      const request = create(ClientStatusRequestSchema, {
        nodeMatchers: [{ nodeMetadatas: [{ path: [{ segment: { case: "key", value: "k" } }] }] }],
      });
      await expect(fetch(client, request)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    });
  });
}

it("is not served unless asked for: services default to xDS only", async () => {
  const xds = new XdsServer({ cache: new SnapshotCache(), logger: silentLogger });
  const server = await xds.listen({ address: "127.0.0.1:0" });
  const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  cleanup.push(
    () => client.close(),
    () => server.close(200),
    () => xds.close(),
  );
  await expect(fetch(client)).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
});
