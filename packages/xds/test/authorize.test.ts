// Authenticated streams: TLS with client certificates on both listen() transports, and the
// authorize hook binding a node id to the caller's identity (its SPIFFE ID, a bearer token).
// Certificates come from openssl in the test (support/tls.ts); the client is grpc-js.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import {
  type AuthorizeRequest,
  GrpcStatus,
  resources,
  Snapshot,
  SnapshotCache,
  silentLogger,
  TypeUrl,
  type XdsEvent,
  XdsServer,
  type XdsServerOptions,
} from "@meshlet/xds";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makePki, type TestPki } from "./support/tls.js";

const ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const PROXY_A = "spiffe://example.org/ns/default/sa/proxy-a";

let pki: TestPki;
beforeAll(() => {
  pki = makePki({ "proxy-a": PROXY_A, "no-san": undefined });
});
afterAll(() => pki.remove());

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function start(
  transport: "http2" | "grpc-js",
  options: Partial<XdsServerOptions> & { requestCert?: boolean } = {},
) {
  const cache = new SnapshotCache();
  for (const id of ["proxy-a", "proxy-b"])
    cache.setSnapshot(id, Snapshot.create({ clusters: [resources.cluster({ name: `${id}-cluster` })] }));
  const { requestCert = true, ...serverOptions } = options;
  const xds = new XdsServer({ cache, logger: silentLogger, ...serverOptions });
  const events: XdsEvent[] = [];
  const sub = xds.events$.subscribe((e) => events.push(e));
  const server = await xds.listen({
    address: "localhost:0",
    transport,
    tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestCert },
  });
  cleanup.push(
    () => sub.unsubscribe(),
    () => server.close(200),
    () => xds.close(),
  );
  return { xds, events, port: server.port };
}

/** An ADS stream over TLS from grpc-js, with a client certificate and metadata if given. */
function stream(port: number, cert?: { key: Buffer; cert: Buffer }, metadata: Record<string, string> = {}) {
  const client = new grpc.Client(
    `localhost:${port}`,
    grpc.credentials.createSsl(pki.ca, cert?.key ?? null, cert?.cert ?? null),
  );
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  const call = client.makeBidiStreamRequest(
    ADS,
    (b: Uint8Array) => Buffer.from(b),
    (b: Buffer) => b,
    md,
  );
  call.on("error", () => {});
  const responses: string[][] = [];
  call.on("data", (b: Buffer) =>
    responses.push(fromBinary(DiscoveryResponseSchema, b).resources.map((r) => r.typeUrl)),
  );
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  cleanup.push(() => {
    call.cancel();
    client.close();
  });
  const send = (nodeId: string | undefined) =>
    call.write(
      toBinary(
        DiscoveryRequestSchema,
        create(DiscoveryRequestSchema, {
          ...(nodeId !== undefined ? { node: { id: nodeId } } : {}),
          typeUrl: TypeUrl.Cluster,
        }),
      ),
    );
  return { call, responses, status, send };
}

/** Allows node proxy-a only to the holder of proxy-a's certificate with proxy-a's token. */
const bindNodeToIdentity = (seen: AuthorizeRequest[]) => (r: AuthorizeRequest) => {
  seen.push(r);
  if (r.spiffeId !== `spiffe://example.org/ns/default/sa/${r.node.id}`)
    return {
      code: GrpcStatus.PERMISSION_DENIED,
      message: `node ${r.node.id} is not ${r.spiffeId ?? "unauthenticated"}`,
    };
  if (r.metadata.authorization !== `Bearer token-${r.node.id}`)
    return { code: GrpcStatus.UNAUTHENTICATED, message: "bad bearer token" };
  return undefined;
};

for (const transport of ["http2", "grpc-js"] as const) {
  describe(`authorize and mTLS (${transport} transport)`, () => {
    it("shows the hook the verified certificate, its SPIFFE ID, the peer, the node and the metadata, and serves an allowed stream", async () => {
      const seen: AuthorizeRequest[] = [];
      const { events, port } = await start(transport, { authorize: bindNodeToIdentity(seen) });
      const s = stream(port, pki.client("proxy-a"), { authorization: "Bearer token-proxy-a" });
      s.send("proxy-a");
      await expect.poll(() => s.responses.length).toBe(1);
      expect(seen).toHaveLength(1);
      const r = seen[0] as AuthorizeRequest;
      expect(r.spiffeId).toBe(PROXY_A);
      expect(r.certificate?.subject).toBe("CN=proxy-a");
      expect(r.certificate?.checkIssued(new (await import("node:crypto")).X509Certificate(pki.ca))).toBe(
        true,
      );
      expect(r.peer).toMatch(/^(127\.0\.0\.1|\[::1\]):\d+$/);
      expect(r.node.id).toBe("proxy-a");
      expect(r.metadata.authorization).toBe("Bearer token-proxy-a");
      expect(r.service).toBe("ads");
      expect(r.protocol).toBe("sotw");
      expect(events.some((e) => e.type === "stream-open" && e.node?.id === "proxy-a")).toBe(true);
    });

    it("refuses a node the certificate does not name, or a wrong token, with the hook's status; nothing of it is served", async () => {
      const { events, port } = await start(transport, { authorize: bindNodeToIdentity([]) });
      const impostor = stream(port, pki.client("proxy-a"), { authorization: "Bearer token-proxy-b" });
      impostor.send("proxy-b");
      const status = await impostor.status;
      expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(status.details).toBe(`node proxy-b is not ${PROXY_A}`);
      const badToken = stream(port, pki.client("proxy-a"), { authorization: "Bearer stolen" });
      badToken.send("proxy-a");
      expect((await badToken.status).code).toBe(grpc.status.UNAUTHENTICATED);
      expect(impostor.responses).toEqual([]);
      expect(events.filter((e) => e.type === "stream-open")).toEqual([]);
    });

    it("refuses a later request that names another node (PERMISSION_DENIED)", async () => {
      const { port } = await start(transport, { authorize: bindNodeToIdentity([]) });
      const s = stream(port, pki.client("proxy-a"), { authorization: "Bearer token-proxy-a" });
      s.send("proxy-a");
      await expect.poll(() => s.responses.length).toBe(1);
      s.send("proxy-b");
      const status = await s.status;
      expect(status.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(status.details).toMatch(/names node "proxy-b" on a stream opened by node "proxy-a"/);
    });

    it("holds requests while an async hook decides, then serves them in order", async () => {
      let release: () => void = () => {};
      const decided = new Promise<void>((resolve) => {
        release = resolve;
      });
      let asked: () => void = () => {};
      const deciding = new Promise<void>((resolve) => {
        asked = resolve;
      });
      const { port } = await start(transport, {
        authorize: () => {
          asked();
          return decided.then(() => undefined);
        },
      });
      const s = stream(port, pki.client("proxy-a"));
      s.send("proxy-a");
      s.call.write(
        toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, { typeUrl: TypeUrl.Listener })),
      );
      // The server has the first request and is waiting for the hook: nothing may be served yet.
      await deciding;
      expect(s.responses).toEqual([]);
      release();
      await expect.poll(() => s.responses.length).toBe(2);
    });

    it("fails closed: a hook that throws refuses the stream with INTERNAL", async () => {
      const { port } = await start(transport, {
        authorize: () => {
          throw new Error("policy store down");
        },
      });
      const s = stream(port, pki.client("proxy-a"));
      s.send("proxy-a");
      const status = await s.status;
      expect(status.code).toBe(grpc.status.INTERNAL);
      expect(status.details).toBe("authorization failed");
    });

    it("refuses at the TLS handshake a client without a certificate, or with one from another CA", async () => {
      const seen: AuthorizeRequest[] = [];
      const { port } = await start(transport, { authorize: bindNodeToIdentity(seen) });
      for (const cert of [undefined, pki.stranger]) {
        const s = stream(port, cert);
        s.send("proxy-a");
        expect((await s.status).code).toBe(grpc.status.UNAVAILABLE);
      }
      expect(seen).toEqual([]);
    });

    it("gives no SPIFFE ID for a verified certificate without a URI SAN", async () => {
      const seen: AuthorizeRequest[] = [];
      const { port } = await start(transport, { authorize: bindNodeToIdentity(seen) });
      const s = stream(port, pki.client("no-san"), { authorization: "Bearer token-proxy-a" });
      s.send("proxy-a");
      expect((await s.status).code).toBe(grpc.status.PERMISSION_DENIED);
      expect(seen[0]?.certificate?.subject).toBe("CN=no-san");
      expect(seen[0]?.spiffeId).toBeUndefined();
    });

    it("serves TLS without client certificates when requestCert is off (the hook sees no certificate)", async () => {
      const seen: AuthorizeRequest[] = [];
      const { port } = await start(transport, {
        requestCert: false,
        authorize: (r) => {
          seen.push(r);
        },
      });
      const s = stream(port);
      s.send("proxy-a");
      await expect.poll(() => s.responses.length).toBe(1);
      expect(seen[0]?.certificate).toBeUndefined();
    });
  });
}
