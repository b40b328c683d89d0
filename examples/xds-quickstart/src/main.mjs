#!/usr/bin/env node
// meshlet quick start: a control plane serving a demo snapshot to a proxyless gRPC client.
//
//   1. two demo backends (plain grpc-js servers) listen on loopback;
//   2. an XdsServer serves a snapshot: listener "greeter" → route → cluster → endpoints;
//   3. a real xDS client (@grpc/grpc-js-xds) dials xds:///greeter and calls the backends;
//   4. a new snapshot splits traffic 50/50 between the two backends, and the client follows.
//
// Everything runs on 127.0.0.1; nothing else is needed. Pass --serve to keep the control plane
// running afterwards (it prints the bootstrap for your own clients).
import * as grpc from "@grpc/grpc-js";
import { resources, Snapshot, SnapshotCache, TypeUrl, typeShortName, XdsServer } from "@meshlet/xds";

const METHOD = "/meshlet.demo.Greeter/SayHello";
const raw = (b) => b;
const serve = process.argv.includes("--serve");

/** A demo backend: answers every call with its name. */
async function startBackend(name) {
  const server = new grpc.Server();
  server.addService(
    {
      SayHello: {
        path: METHOD,
        requestStream: false,
        responseStream: false,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    },
    { SayHello: (_call, callback) => callback(null, Buffer.from(`hello from ${name}`)) },
  );
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { name, port, server };
}

/** The mesh config: one gRPC service "greeter" routed by weight to one or two clusters. */
function demoSnapshot(backends, weights) {
  return Snapshot.create({
    listeners: [resources.apiListener({ name: "greeter", routeConfigName: "greeter-route" })],
    routes: [
      resources.routeConfiguration({
        name: "greeter-route",
        virtualHosts: [
          {
            name: "greeter",
            domains: ["*"],
            routes: [
              {
                prefix: "",
                weightedClusters: Object.entries(weights).map(([name, weight]) => ({ name, weight })),
              },
            ],
          },
        ],
      }),
    ],
    clusters: backends.map((b) => resources.cluster({ name: b.name })),
    endpoints: backends.map((b) =>
      resources.loadAssignment({ clusterName: b.name, endpoints: [{ address: "127.0.0.1", port: b.port }] }),
    ),
  });
}

function call(client) {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      METHOD,
      raw,
      raw,
      Buffer.from("hi"),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : resolve(res.toString())),
    ),
  );
}

async function callMany(client, count) {
  const answers = {};
  for (let i = 0; i < count; i++) {
    const answer = await call(client);
    answers[answer] = (answers[answer] ?? 0) + 1;
  }
  return answers;
}

const backends = [await startBackend("greeter-v1"), await startBackend("greeter-v2")];
console.log(`backends: ${backends.map((b) => `${b.name} on 127.0.0.1:${b.port}`).join(", ")}`);

const cache = new SnapshotCache();
const xds = new XdsServer({ cache });
xds.events$.subscribe((e) => {
  const type = "typeUrl" in e ? (typeShortName[e.typeUrl] ?? e.typeUrl) : "";
  if (e.type === "response")
    console.log(`  xds → ${type} version ${e.version.slice(0, 8)} [${e.resources.join(", ")}]`);
  else if (e.type === "ack") console.log(`  xds ← ${type} ACK ${e.version.slice(0, 8)}`);
  else if (e.type === "nack") console.log(`  xds ← ${type} NACK: ${e.errorDetail.message}`);
  else if (e.type === "stream-open") console.log(`  xds: stream from node "${e.node?.id}" (${e.peer})`);
});
const controlPlane = await xds.listen({ address: process.env.MESHLET_XDS_ADDRESS ?? "127.0.0.1:0" });
console.log(`control plane: xDS on ${controlPlane.address}`);

const nodeId = "quickstart-client";
const first = demoSnapshot(backends, { "greeter-v1": 100 });
first.consistent();
cache.setSnapshot(nodeId, first);

// The gRPC client finds the control plane through its xDS bootstrap.
const bootstrap = {
  xds_servers: [
    { server_uri: controlPlane.address, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] },
  ],
  node: { id: nodeId, locality: {} },
};
process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(bootstrap);
const grpcXds = await import("@grpc/grpc-js-xds");
grpcXds.register();

const client = new grpc.Client("xds:///greeter", grpc.credentials.createInsecure());
console.log("\nclient: 10 calls to xds:///greeter (route: 100% greeter-v1)");
console.log("client received:", await callMany(client, 10));

console.log("\ncontrol plane: new snapshot, 50/50 between greeter-v1 and greeter-v2");
cache.setSnapshot(nodeId, demoSnapshot(backends, { "greeter-v1": 50, "greeter-v2": 50 }));
await new Promise((resolve) => {
  const sub = xds.events$.subscribe((e) => {
    if (e.type === "ack" && e.typeUrl === TypeUrl.RouteConfiguration) {
      sub.unsubscribe();
      resolve();
    }
  });
});
console.log("client: 40 calls to xds:///greeter");
console.log("client received:", await callMany(client, 40));

const status = cache.status(nodeId);
console.log(
  `\ncache.status("${nodeId}"): ${Object.entries(status?.types ?? {})
    .map(([t, s]) => `${typeShortName[t]} acked ${s.ackedVersion?.slice(0, 8)}`)
    .join(", ")}`,
);

if (serve) {
  console.log(`\nserving; bootstrap for your own clients:\n${JSON.stringify(bootstrap)}\n(Ctrl-C to stop)`);
  await new Promise((resolve) => process.once("SIGINT", resolve));
}
client.close();
xds.close();
await controlPlane.close();
for (const b of backends) b.server.forceShutdown();
console.log("done");
process.exit(0);
