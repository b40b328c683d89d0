// XdsServer.listen()'s own gRPC-over-node:http2 transport, driven by grpc-js clients (an
// independent gRPC implementation) and, for what no well-behaved client does, by raw HTTP/2.
// The conformance suite and the real-client suites (grpc-js-xds, gRPC C-core) also run on it,
// since it is listen()'s default.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { DiscoveryRequestSchema } from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import {
  type ListeningServer,
  resources,
  Snapshot,
  SnapshotCache,
  silentLogger,
  TypeUrl,
  XdsServer,
} from "@meshlet/xds";
import { AdsClient } from "@meshlet/xds/testing";
import { afterEach, describe, expect, it } from "vitest";

const ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

function serverWithCluster() {
  const cache = new SnapshotCache();
  cache.setSnapshot("node-a", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
  return new XdsServer({ cache, logger: silentLogger });
}

/** A gRPC stream opened with bare node:http2, for what grpc-js clients would not send. */
function rawHttp2(port: number, encoding: string) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": ADS,
    "content-type": "application/grpc",
    te: "trailers",
    "grpc-encoding": encoding,
  });
  let received = 0;
  stream.on("data", (b: Buffer) => {
    received += b.length;
  });
  stream.on("error", () => {});
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => stream.on("trailers", resolve));
  return { stream, trailers, bytes: () => received, close: () => session.destroy() };
}

/** A raw bidi stream from a grpc-js client: what it receives and the status it ends with. */
function rawCall(address: string, path: string, options: grpc.ChannelOptions = {}) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), options);
  const call = client.makeBidiStreamRequest(
    path,
    (b: Uint8Array) => Buffer.from(b),
    (b: Buffer) => b,
  );
  const received: Buffer[] = [];
  call.on("data", (b: Buffer) => received.push(b));
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  call.on("error", () => {});
  return { client, call, received, status };
}

const cdsRequest = (extra: Partial<{ resourceNames: string[] }> = {}) =>
  toBinary(
    DiscoveryRequestSchema,
    create(DiscoveryRequestSchema, { node: { id: "node-a" }, typeUrl: TypeUrl.Cluster, ...extra }),
  );

let closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers = [];
});

async function listen(
  xds: XdsServer,
  options: Parameters<XdsServer["listen"]>[0] = {},
): Promise<ListeningServer> {
  const server = await xds.listen({ address: "127.0.0.1:0", ...options });
  closers.push(
    () => server.close(200),
    () => xds.close(),
  );
  return server;
}

describe("XdsServer.listen() transports", () => {
  it("serves over node:http2 by default and over grpc-js when asked, with the same responses", async () => {
    const xds = serverWithCluster();
    const native = await listen(xds);
    const grpcJs = await listen(xds, { transport: "grpc-js" });
    expect(native.transport).toBe("http2");
    expect(native.server).toBeUndefined();
    expect(grpcJs.transport).toBe("grpc-js");
    const seen = [];
    for (const server of [native, grpcJs]) {
      const client = AdsClient.connect({ address: server.address, node: { id: "node-a" } });
      closers.push(() => client.close());
      client.request({ typeUrl: TypeUrl.Cluster });
      const r = await client.next(TypeUrl.Cluster);
      seen.push({ version: r.versionInfo, names: r.resources.map((x) => x.name) });
    }
    expect(seen[0]).toEqual({ version: expect.any(String), names: ["c1"] });
    expect(seen[1]).toEqual(seen[0]);
  });

  it("answers an unknown method with UNIMPLEMENTED", async () => {
    const server = await listen(serverWithCluster());
    const call = rawCall(server.address, "/foo.Bar/Baz");
    closers.push(() => call.client.close());
    call.call.write(Buffer.from([]));
    const status = await call.status;
    expect(status.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(status.details).toContain("unknown method /foo.Bar/Baz");
  });

  it("ends a stream whose request cannot be decoded with INVALID_ARGUMENT, and serves the others", async () => {
    const xds = serverWithCluster();
    const server = await listen(xds);
    const bad = rawCall(server.address, ADS);
    const good = AdsClient.connect({ address: server.address, node: { id: "node-a" } });
    closers.push(
      () => bad.client.close(),
      () => good.close(),
    );
    bad.call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff])); // field 1, length beyond the message
    const status = await bad.status;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/^cannot decode a DiscoveryRequest: /);
    good.request({ typeUrl: TypeUrl.Cluster });
    expect((await good.next(TypeUrl.Cluster)).resources.map((r) => r.name)).toEqual(["c1"]);
  });

  it("survives clients that reset their streams mid-message or right away", async () => {
    const xds = serverWithCluster();
    const server = await listen(xds);
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    session.on("error", () => {});
    closers.push(() => session.destroy());
    const resets = [];
    for (let i = 0; i < 50; i++) {
      const s = session.request({ ":method": "POST", ":path": ADS, "content-type": "application/grpc" });
      s.on("error", () => {});
      if (i % 2 === 0) s.write(Buffer.from([0, 0, 0, 0, 100, 1, 2, 3])); // promises 100 bytes, sends 3
      resets.push(new Promise((resolve) => s.on("close", resolve)));
      s.close(http2.constants.NGHTTP2_CANCEL);
    }
    await Promise.all(resets);
    await expect.poll(() => xds.openStreams).toBe(0);
    const good = AdsClient.connect({ address: server.address, node: { id: "node-a" } });
    closers.push(() => good.close());
    good.request({ typeUrl: TypeUrl.Cluster });
    expect((await good.next(TypeUrl.Cluster)).resources.map((r) => r.name)).toEqual(["c1"]);
  });

  for (const transport of ["http2", "grpc-js"] as const) {
    it(`a client whose Node the cache's nodeKey throws on cannot take the server down or leave its stream open (${transport})`, async () => {
      // nodeKey reads what the client sent (here its cluster); the cache's bookkeeping and its
      // watch both call it. Under grpc-js (listen's grpc-js transport, register()) the request
      // is handled inside grpc-js's event listener, where a throw is an uncaught exception.
      const cache = new SnapshotCache({
        nodeKey: (n) => {
          if (!n.cluster) throw new Error("node has no cluster");
          return n.cluster;
        },
      });
      cache.setSnapshot("svc", Snapshot.create({ clusters: [resources.cluster({ name: "c1" })] }));
      const xds = new XdsServer({ cache, logger: silentLogger });
      const server = await listen(xds, { transport });
      const bad = AdsClient.connect({ address: server.address, node: { id: "no-cluster" } });
      closers.push(() => bad.close());
      bad.request({ typeUrl: TypeUrl.Cluster });
      await expect.poll(() => xds.openStreams).toBe(1);
      const good = AdsClient.connect({ address: server.address, node: { id: "pod", cluster: "svc" } });
      closers.push(() => good.close());
      good.request({ typeUrl: TypeUrl.Cluster });
      expect((await good.next(TypeUrl.Cluster)).resources.map((r) => r.name)).toEqual(["c1"]);
      bad.close();
      await expect.poll(() => xds.openStreams).toBe(1);
      good.close();
      await expect.poll(() => xds.openStreams).toBe(0);
    });
  }

  it("announces maxConcurrentStreams in its SETTINGS (10,000 unless told)", async () => {
    const seen = [];
    for (const options of [{}, { maxConcurrentStreams: 2 }]) {
      const server = await listen(serverWithCluster(), options);
      const session = http2.connect(`http://127.0.0.1:${server.port}`);
      session.on("error", () => {});
      closers.push(() => session.destroy());
      await new Promise((resolve) => session.once("remoteSettings", resolve));
      seen.push(session.remoteSettings.maxConcurrentStreams);
    }
    expect(seen).toEqual([10_000, 2]);
  });

  it("refuses a request over maxReceiveMessageBytes with RESOURCE_EXHAUSTED", async () => {
    const server = await listen(serverWithCluster(), { maxReceiveMessageBytes: 1000 });
    const call = rawCall(server.address, ADS);
    closers.push(() => call.client.close());
    call.call.write(cdsRequest({ resourceNames: Array.from({ length: 100 }, (_, i) => `cluster-${i}`) }));
    const status = await call.status;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toMatch(/limit is 1000/);
  });

  it("decodes gzip-compressed requests, and refuses an encoding it does not know with UNIMPLEMENTED", async () => {
    const server = await listen(serverWithCluster());
    const gzip = rawHttp2(server.port, "gzip");
    const snappy = rawHttp2(server.port, "snappy");
    closers.push(gzip.close, snappy.close);
    for (const c of [gzip, snappy]) {
      const body = gzipSync(cdsRequest());
      const prefix = Buffer.from([1, 0, 0, 0, 0]);
      prefix.writeUInt32BE(body.length, 1);
      c.stream.write(Buffer.concat([prefix, body]));
    }
    await expect.poll(() => gzip.bytes()).toBeGreaterThan(5);
    expect((await snappy.trailers)["grpc-status"]).toBe(String(grpc.status.UNIMPLEMENTED));
  });

  it("ends open streams with UNAVAILABLE on close() and stops listening", async () => {
    const xds = serverWithCluster();
    const server = await xds.listen({ address: "127.0.0.1:0" });
    const call = rawCall(server.address, ADS);
    closers.push(
      () => call.client.close(),
      () => xds.close(),
    );
    call.call.write(cdsRequest());
    await expect.poll(() => call.received.length).toBe(1);
    await server.close(500);
    const status = await call.status;
    expect(status.code).toBe(grpc.status.UNAVAILABLE);
    expect(status.details).toBe("control plane shutting down");
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(server.port, "127.0.0.1");
      s.on("error", (e: NodeJS.ErrnoException) => resolve(String(e.code)));
      s.on("connect", () => {
        s.destroy();
        resolve("connected");
      });
    });
    expect(refused).toBe("ECONNREFUSED");
  });

  it("close() of one listen() ends only that server's streams", async () => {
    const cache = new SnapshotCache();
    const snap = (ms: number) =>
      Snapshot.create({ clusters: [resources.cluster({ name: "c1", connectTimeoutMs: ms })] });
    cache.setSnapshot("node-a", snap(1000));
    const xds = new XdsServer({ cache, logger: silentLogger });
    const first = await xds.listen({ address: "127.0.0.1:0" });
    const second = await listen(xds, { transport: "grpc-js" });
    const a = rawCall(first.address, ADS);
    const b = AdsClient.connect({ address: second.address, node: { id: "node-a" }, autoAck: true });
    closers.push(
      () => a.client.close(),
      () => b.close(),
    );
    a.call.write(cdsRequest());
    b.request({ typeUrl: TypeUrl.Cluster });
    await b.next(TypeUrl.Cluster);
    await expect.poll(() => a.received.length).toBe(1);
    await first.close(500);
    expect((await a.status).code).toBe(grpc.status.UNAVAILABLE);
    expect(b.error).toBeUndefined();
    cache.setSnapshot("node-a", snap(2000));
    const pushed = await b.next(TypeUrl.Cluster);
    expect(pushed.versionInfo).toBe(snap(2000).version(TypeUrl.Cluster));
  });

  it("drops a connection that does not answer keepalive PINGs", async () => {
    const server = await listen(serverWithCluster(), { keepaliveTimeMs: 100, keepaliveTimeoutMs: 100 });
    const socket = net.connect(server.port, "127.0.0.1");
    closers.push(() => socket.destroy());
    let pings = 0;
    socket.on("data", (b: Buffer) => {
      // HTTP/2 frame header: length (3), type (1): 6 = PING. Count, never answer.
      for (let i = 0; i + 9 <= b.length; ) {
        const length = b.readUIntBE(i, 3);
        if (b[i + 3] === 6) pings++;
        i += 9 + length;
      }
    });
    await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
    // Client connection preface and an empty SETTINGS frame; then silence.
    socket.write(
      Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      ]),
    );
    await new Promise<void>((resolve) => socket.on("close", () => resolve()));
    expect(pings).toBeGreaterThanOrEqual(1);
  });

  it("waits out a keepaliveTimeoutMs longer than a Node timer holds (Infinity) instead of dropping the connection", async () => {
    // A Node timer asked for more than 2^31 - 1 ms fires after 1 ms: the connection was dropped
    // 1 ms after its first PING. PINGs go on every keepaliveTimeMs while one is unanswered.
    const server = await listen(serverWithCluster(), {
      keepaliveTimeMs: 50,
      keepaliveTimeoutMs: Number.POSITIVE_INFINITY,
    });
    const socket = net.connect(server.port, "127.0.0.1");
    closers.push(() => socket.destroy());
    const outcome = new Promise<string>((resolve) => {
      let pings = 0;
      socket.on("data", (b: Buffer) => {
        for (let i = 0; i + 9 <= b.length; ) {
          const length = b.readUIntBE(i, 3);
          if (b[i + 3] === 6 && ++pings === 3) resolve("pinged three times");
          i += 9 + length;
        }
      });
      socket.on("close", () => resolve("closed"));
    });
    await new Promise<void>((resolve) => socket.on("connect", () => resolve()));
    socket.write(
      Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      ]),
    );
    expect(await outcome).toBe("pinged three times");
  });

  it("serves TLS with the tls option (a certificate made by openssl)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlet-tls-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const cert = readFileSync(join(dir, "cert.pem"));
    const server = await listen(serverWithCluster(), {
      address: "localhost:0",
      tls: { key: readFileSync(join(dir, "key.pem")), cert },
    });
    const client = AdsClient.connect({
      address: `localhost:${server.port}`,
      node: { id: "node-a" },
      credentials: grpc.credentials.createSsl(cert),
    });
    closers.push(() => client.close());
    client.request({ typeUrl: TypeUrl.Cluster });
    expect((await client.next(TypeUrl.Cluster)).resources.map((r) => r.name)).toEqual(["c1"]);
  });

  it("a client that stops reading holds up the others only until its write stalls (writeStallMs)", async () => {
    const cache = new SnapshotCache();
    const clusters = Array.from({ length: 40 }, (_, i) => resources.cluster({ name: `cluster-${i}` }));
    cache.setSnapshot("stuck", Snapshot.create({ clusters }));
    cache.setSnapshot("node-a", Snapshot.create({ clusters }));
    // The CDS response (~2 KB) is larger than the whole budget: one write at a time.
    const xds = new XdsServer({ cache, logger: silentLogger, maxBytesInFlight: 1000, writeStallMs: 300 });
    const server = await listen(xds);
    const requests: string[] = [];
    const sub = xds.events$.subscribe((e) => {
      if (e.type === "request") requests.push(e.node?.id ?? "");
    });
    closers.push(() => sub.unsubscribe());
    // A stream window of 0: the server can send it nothing until it says so, which it never does.
    const session = http2.connect(`http://127.0.0.1:${server.port}`, { settings: { initialWindowSize: 0 } });
    session.on("error", () => {});
    closers.push(() => session.destroy());
    const stuck = session.request({ ":method": "POST", ":path": ADS, "content-type": "application/grpc" });
    stuck.on("error", () => {});
    const body = toBinary(
      DiscoveryRequestSchema,
      create(DiscoveryRequestSchema, { node: { id: "stuck" }, typeUrl: TypeUrl.Cluster }),
    );
    const prefix = Buffer.from([0, 0, 0, 0, 0]);
    prefix.writeUInt32BE(body.length, 1);
    stuck.write(Buffer.concat([prefix, body]));
    await expect.poll(() => requests.includes("stuck")).toBe(true);
    await expect.poll(() => xds.writes.bytesInFlight).toBeGreaterThan(1000);

    const good = AdsClient.connect({ address: server.address, node: { id: "node-a" } });
    closers.push(() => good.close());
    good.request({ typeUrl: TypeUrl.Cluster });
    expect((await good.next(TypeUrl.Cluster)).resources).toHaveLength(40);
    expect(xds.writes.stalledWrites).toBe(1);
  });

  for (const [transport, protocol] of [
    ["http2", "sotw"],
    ["http2", "delta"],
    ["grpc-js", "sotw"],
  ] as const) {
    it(`a response counts against the write budget until the client answers it (${transport}, ${protocol})`, async () => {
      const xds = serverWithCluster();
      const server = await listen(xds, { transport });
      const client = AdsClient.connect({ address: server.address, node: { id: "node-a" }, protocol });
      closers.push(() => client.close());
      if (protocol === "delta") client.requestDelta({ typeUrl: TypeUrl.Cluster, subscribe: ["*"] });
      else client.request({ typeUrl: TypeUrl.Cluster });
      const response = await client.next(TypeUrl.Cluster);
      // Received in full by the client, but not answered: the bytes still count.
      expect(xds.writes.bytesInFlight).toBeGreaterThan(0);
      client.ack(response);
      await expect.poll(() => xds.writes.bytesInFlight).toBe(0);
      expect(xds.writes.stalledWrites).toBe(0);
    });
  }

  it("rejects a port in use and a malformed address with a clear error", async () => {
    const xds = serverWithCluster();
    const taken = await listen(xds);
    await expect(xds.listen({ address: `127.0.0.1:${taken.port}` })).rejects.toThrow(
      new RegExp(`cannot listen on 127.0.0.1:${taken.port}: .*EADDRINUSE`),
    );
    await expect(xds.listen({ address: "127.0.0.1" })).rejects.toThrow(/expected host:port or unix:\/path/);
  });

  it("listens on a unix socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlet-uds-"));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "xds.sock");
    const server = await listen(serverWithCluster(), { address: `unix:${path}` });
    expect(server.address).toBe(`unix:${path}`);
    const client = AdsClient.connect({ address: `unix:${path}`, node: { id: "node-a" } });
    closers.push(() => client.close());
    client.request({ typeUrl: TypeUrl.Cluster });
    expect((await client.next(TypeUrl.Cluster)).resources.map((r) => r.name)).toEqual(["c1"]);
  });

  it("rejects grpc-js credentials with transport http2, http2-only tls options with grpc-js, and requestCert without ca", async () => {
    const xds = serverWithCluster();
    closers.push(() => xds.close());
    await expect(
      xds.listen({ transport: "http2", credentials: grpc.ServerCredentials.createInsecure() }),
    ).rejects.toThrow(/use tls with transport http2/);
    await expect(
      xds.listen({ transport: "grpc-js", tls: { key: "k", cert: "c", minVersion: "TLSv1.3" } }),
    ).rejects.toThrow(/minVersion apply to transport http2 only/);
    for (const transport of ["http2", "grpc-js"] as const) {
      await expect(
        xds.listen({ transport, tls: { key: "k", cert: "c", requestCert: true } }),
      ).rejects.toThrow(/requestCert needs tls.ca/);
    }
  });
});
