import { mkdtempSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as os from "node:os";
import { join } from "node:path";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { AdminError, type AdminServer, createAdminClient, listenAdmin } from "@meshlet/admin";
import { EventKind, MeshAdmin } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../mesh/test/support/mesh-fixture.js";
import { type AdminPlane, bookinfoFiles, startAdminPlane } from "./support/admin-plane.js";
import { selfSignedLocalhost } from "./support/self-signed.js";

// How the admin API is reached: the three Connect protocols on one port (Connect JSON over
// HTTP/1.1 as curl sends it, gRPC over h2c, gRPC-Web), the address rules (loopback by default;
// elsewhere TLS and a token, or it refuses to start), bearer tokens, and the memory a WatchEvents
// reader that stops reading can cost (bounded: oldest events dropped and counted).

const TOKEN = "0123456789abcdef0123456789abcdef";
let plane: AdminPlane;
let tlsDir: string;
let tls: { key: Buffer; cert: Buffer };
const extra: AdminServer[] = [];

beforeAll(async () => {
  plane = await startAdminPlane(await bookinfoFiles("bookinfo.yaml"), {
    admin: { feed: { bufferSize: 50, maxSubscribers: 40 } },
  });
  tlsDir = mkdtempSync(join(os.tmpdir(), "meshlet-admin-tls-"));
  const made = selfSignedLocalhost(tlsDir);
  tls = { key: made.key, cert: made.cert };
});

afterAll(async () => {
  for (const s of extra) await s.close(100);
  await plane?.close();
  if (tlsDir) rmSync(tlsDir, { recursive: true, force: true });
});

describe("protocols on one port", () => {
  it("answers Connect JSON over plain HTTP/1.1 (POST, and GET for read-only calls), as curl sends it", async () => {
    const post = await fetch(`${plane.server.url}/meshlet.admin.v1.MeshAdmin/GetConfigStatus`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(post.status).toBe(200);
    expect(post.headers.get("content-type")).toBe("application/json");
    const body = (await post.json()) as { objects: Array<{ kind: string; name: string; file: string }> };
    expect(body.objects.find((o) => o.kind === "Service" && o.name === "reviews")).toMatchObject({
      file: "bookinfo.yaml",
    });
    // Connect's GET form for NO_SIDE_EFFECTS methods: ?encoding=json&message=<url-encoded JSON>.
    const get = await fetch(
      `${plane.server.url}/meshlet.admin.v1.MeshAdmin/ListProxies?encoding=json&message=${encodeURIComponent("{}")}`,
    );
    expect(get.status).toBe(200);
    expect(await get.json()).toMatchObject({ controlPlane: "meshlet-test" });
  });

  it("answers gRPC over h2c and gRPC-Web on the same port", async () => {
    const grpc = createClient(MeshAdmin, createGrpcTransport({ baseUrl: plane.server.url }));
    expect((await grpc.listProxies({})).controlPlane).toBe("meshlet-test");
    const web = createClient(
      MeshAdmin,
      createGrpcWebTransport({ baseUrl: plane.server.url, httpVersion: "1.1" }),
    );
    expect((await web.getConfigStatus({})).objects.length).toBeGreaterThan(0);
  });

  it("serves the console page with a strict content security policy, and 404 for anything else", async () => {
    const page = await fetch(`${plane.server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(await page.text()).toContain("meshlet");
    expect((await fetch(`${plane.server.url}/../../etc/passwd`)).status).toBe(404);
    expect((await fetch(`${plane.server.url}/nope.js`)).status).toBe(404);
  });

  it("answers a loopback listener only for loopback Host names (no DNS rebinding)", async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const s = http2.connect(plane.server.url);
      s.on("error", reject);
      const req = s.request({ ":method": "GET", ":path": "/", ":authority": "evil.example.com" });
      req.on("response", (h) => {
        resolve(Number(h[":status"]));
        s.close();
      });
      req.end();
    });
    expect(res).toBe(421);
  });
});

describe("address rules and tokens", () => {
  it("refuses to start on a non-loopback address without TLS and a token", async () => {
    for (const opts of [{}, { token: TOKEN }, { tls }]) {
      const err = await listenAdmin(plane.admin, { address: "0.0.0.0:0", ...opts }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AdminError);
      expect((err as AdminError).code).toBe("insecure-bind");
      expect((err as AdminError).message).toContain("0.0.0.0:0");
    }
    const v6 = await listenAdmin(plane.admin, { address: "[::]:0" }).catch((e: unknown) => e);
    expect((v6 as AdminError).code).toBe("insecure-bind");
  });

  it("answers a call without the token HTTP 401 with Connect's JSON error unauthenticated, as curl sees it", async () => {
    const server = await listenAdmin(plane.admin, { address: "127.0.0.1:0", token: TOKEN });
    extra.push(server);
    const url = `${server.url}/meshlet.admin.v1.MeshAdmin/ListProxies`;
    for (const authorization of [undefined, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`]) {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
        body: "{}",
      });
      expect(res.status).toBe(401);
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe("unauthenticated");
      expect(body.message).not.toContain(TOKEN);
    }
    const ok = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
      body: "{}",
    });
    expect(ok.status).toBe(200);
  });

  it("names this machine, not the wildcard, in the URL of a listener on every address", async () => {
    const server = await listenAdmin(plane.admin, { address: "0.0.0.0:0", token: TOKEN, tls });
    extra.push(server);
    expect(server.address).toBe(`0.0.0.0:${server.port}`);
    expect(server.url).toBe(`https://${os.hostname()}:${server.port}`);
  });

  it("refuses a token shorter than 16 characters", async () => {
    const err = await listenAdmin(plane.admin, { address: "127.0.0.1:0", token: "short" }).catch(
      (e: unknown) => e,
    );
    expect((err as AdminError).code).toBe("invalid-argument");
  });

  it("answers unauthenticated without the token or with a wrong one, over TLS, and serves the right one", async () => {
    const server = await listenAdmin(plane.admin, { address: "127.0.0.1:0", token: TOKEN, tls });
    extra.push(server);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    for (const token of [undefined, "wrong-token-wrong-token-wrong!!", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const c = createAdminClient({
        url: server.url,
        ca: tls.cert,
        ...(token !== undefined ? { token } : {}),
      });
      const err = await c.listProxies({}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    }
    const ok = createAdminClient({ url: server.url, ca: tls.cert, token: TOKEN });
    expect((await ok.listProxies({})).controlPlane).toBe("meshlet-test");
    // gRPC over TLS (HTTP/2 by ALPN) with the token, too.
    const grpc = createAdminClient({ url: server.url, ca: tls.cert, token: TOKEN, protocol: "grpc" });
    expect((await grpc.getConfigStatus({})).objects.length).toBeGreaterThan(0);
    // curl-style, wrong scheme: Connect's JSON error with code "unauthenticated".
    const res = await fetch(`${server.url.replace("https", "http")}/`, {}).catch(() => undefined);
    expect(res).toBeUndefined(); // a TLS port does not speak plaintext
  });
});

/** Sends raw bytes on a new connection and collects what comes back until the server closes it. */
async function raw(port: number, bytes: string | Buffer, opts: { end?: boolean } = {}): Promise<string> {
  const socket = net.connect(port, "127.0.0.1");
  let text = "";
  socket.setEncoding("latin1");
  socket.on("data", (c: string) => {
    text += c;
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  if (bytes.length > 0) socket.write(bytes);
  if (opts.end) socket.end();
  await closed;
  return text;
}

const post = (url: string, body: string | Uint8Array, headers: Record<string, string>) =>
  fetch(url, { method: "POST", headers, body });

describe("bad input and bad clients", () => {
  const call = (m: string) => `${plane.server.url}/meshlet.admin.v1.MeshAdmin/${m}`;
  const json = { "content-type": "application/json" };

  it("answers malformed JSON, a wrong field type and an unknown field with invalid_argument (HTTP 400)", async () => {
    for (const body of ["{not json", '{"proxy": 42, "types": "all"}', '{"noSuchField": true}']) {
      const res = await post(call("GetProxyConfig"), body, json);
      expect(res.status, body).toBe(400);
      expect(await res.json()).toMatchObject({ code: "invalid_argument" });
    }
    // Undecodable binary protobuf: @connectrpc/connect answers `internal` ("parse binary: …"), as
    // grpc-go does for a request it cannot unmarshal; a clean Connect error, and the server goes on.
    const bin = await post(call("GetProxyConfig"), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), {
      "content-type": "application/proto",
    });
    expect(bin.headers.get("content-type")).toBe("application/json");
    expect(await bin.json()).toMatchObject({ message: expect.stringContaining("parse binary") });
    expect((await post(call("ListProxies"), "{}", json)).status).toBe(200);
  });

  it("refuses a request larger than a megabyte with resource_exhausted, and an unknown method or content type", async () => {
    const big = JSON.stringify({
      proxy: "x",
      clusterNames: Array.from({ length: 200_000 }, (_, i) => `c${i}`),
    });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    const res = await post(call("GetProxyConfig"), big, json);
    expect(await res.json()).toMatchObject({ code: "resource_exhausted" });
    expect((await post(call("DeleteProxy"), "{}", json)).status).toBe(404);
    expect((await post(call("ListProxies"), "{}", { "content-type": "text/plain" })).status).toBe(415);
    // Still serving.
    expect((await post(call("ListProxies"), "{}", json)).status).toBe(200);
  });

  it("offers no mutating call: six read-only methods, the unary ones marked NO_SIDE_EFFECTS", () => {
    expect(MeshAdmin.methods.map((m) => m.name).sort()).toEqual([
      "Explain",
      "GetConfigStatus",
      "GetMeshGraph",
      "GetProxyConfig",
      "ListProxies",
      "WatchEvents",
    ]);
    for (const m of MeshAdmin.methods.filter((x) => x.methodKind === "unary"))
      expect(m.idempotency, m.name).toBe(MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS);
  });

  it("sends no CORS headers: another origin's page cannot read the API (preflight gets no Allow-Origin)", async () => {
    const pre = await fetch(call("ListProxies"), {
      method: "OPTIONS",
      headers: {
        origin: "https://evil.example.com",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(pre.headers.get("access-control-allow-headers")).toBeNull();
    const res = await post(call("ListProxies"), "{}", { ...json, origin: "https://evil.example.com" });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("survives garbage bytes, a half-sent request and silent connections, and closes them (no leak)", async () => {
    const server = await listenAdmin(plane.admin, { address: "127.0.0.1:0", handshakeTimeoutMs: 300 });
    extra.push(server);
    // Garbage: the HTTP/1.1 parser answers 400 and closes.
    expect(await raw(server.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x01, 0x02]))).toMatch(
      /^HTTP\/1\.1 400/,
    );
    expect(await raw(server.port, "\r\n\r\nGARBAGE GARBAGE\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    // A broken HTTP/2 preface, then garbage frames: the HTTP/2 session ends the connection.
    await raw(server.port, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n${"\xff".repeat(64)}`);
    // Silent, half a preface, half a request line then the write side shut: all closed by the server.
    await raw(server.port, "");
    await raw(server.port, "PRI * HT");
    await raw(server.port, "PRI * HT", { end: true });
    await raw(server.port, "POST /meshlet.admin.v1.MeshAdmin/ListProxies HTTP/1.1\r\nHost: 127.0.0.1\r\n", {
      end: true,
    });
    await eventually(() => expect(server.connections()).toBe(0));
    const ok = await post(`${server.url}/meshlet.admin.v1.MeshAdmin/ListProxies`, "{}", json);
    expect(await ok.json()).toMatchObject({ controlPlane: "meshlet-test" });
  });

  it("serves many WatchEvents streams at once, and refuses one past the limit with resource_exhausted", async () => {
    const client = createAdminClient({ url: plane.server.url });
    const abort = new AbortController();
    const streams = Array.from({ length: 40 }, () =>
      client.watchEvents({ kinds: [EventKind.PUSH] }, { signal: abort.signal })[Symbol.asyncIterator](),
    );
    const firsts = streams.map((s) => s.next());
    await eventually(() => expect(plane.admin.subscribers()).toHaveLength(40));
    const extraStream = client.watchEvents({}, { signal: abort.signal })[Symbol.asyncIterator]();
    const refused = await extraStream.next().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).code).toBe(Code.ResourceExhausted);
    plane.admin.feed.publish({ case: "push", value: { cause: "manual", configVersion: "fan-out" } });
    for (const r of await Promise.all(firsts))
      expect(r.value?.event).toMatchObject({ case: "push", value: { configVersion: "fan-out" } });
    abort.abort();
    await Promise.all(streams.map((s) => s.next().catch(() => undefined)));
    await eventually(() => expect(plane.admin.subscribers()).toHaveLength(0));
  });
});

describe("WatchEvents back-pressure", () => {
  it("a client that never reads costs at most bufferSize queued events; it is told what it lost", async () => {
    // A raw HTTP/1.1 client that sends the request and then stops reading its socket: the kernel's
    // buffers fill, the server's writes wait, and the feed keeps only the newest 50 events for it.
    const socket = net.connect(plane.server.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    const body = Buffer.from(JSON.stringify({ kinds: ["EVENT_KIND_PUSH"] }));
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
    socket.write(
      `POST /meshlet.admin.v1.MeshAdmin/WatchEvents HTTP/1.1\r\nHost: 127.0.0.1:${plane.server.port}\r\n` +
        `Content-Type: application/connect+json\r\nContent-Length: ${envelope.length}\r\n\r\n`,
    );
    socket.write(envelope);
    socket.pause();
    await eventually(() => expect(plane.admin.subscribers()).toHaveLength(1));
    // 5,000 pushes of ~8 KB each: 40 MB, more than loopback's socket buffers hold.
    const proxies = Array.from(
      { length: 100 },
      (_, i) => `sidecar~10.0.${i >> 8}.${i & 255}~reviews-v1-${i}.default~default.svc.cluster.local`,
    );
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 5000; i++) {
      plane.admin.feed.publish({
        case: "push",
        value: { cause: "manual", configVersion: String(i), proxies, resourcesChanged: i, durationMs: 1 },
      });
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    const [stats] = plane.admin.subscribers();
    expect(stats?.buffered).toBeLessThanOrEqual(50);
    expect(stats?.dropped).toBeGreaterThan(2500);
    expect(stats?.delivered).toBeLessThan(2500);
    // Heap growth stays far below the 40 MB published (the queue holds 50 events, shared with the replay ring).
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(30 * 1024 * 1024);
    // The client reads again: before the next event it gets a `dropped` notice with the count.
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (c: string) => {
      text += c;
    });
    socket.resume();
    await eventually(() => expect(text).toContain('"configVersion":"4999"'));
    // Every event published was either delivered or counted in a `dropped` notice.
    const dropped = [...text.matchAll(/"dropped":\{"count":"(\d+)"\}/g)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    const delivered = [...text.matchAll(/"configVersion":"\d+"/g)].length;
    expect(dropped).toBe(plane.admin.subscribers()[0]?.dropped);
    expect(dropped + delivered).toBe(5000);
    // A vanished client: its subscription goes with its connection.
    socket.destroy();
    await eventually(() => expect(plane.admin.subscribers()).toHaveLength(0));
  });
});
