// The memory floor of one idle HTTP/2 connection on a bare node:http2 server: N client
// connections (in a child process), each with one open gRPC-style stream that sent 100 bytes,
// measured in the server after 3 forced GCs. No xDS, no meshlet: what any Node HTTP/2 server pays
// per connection, to read beside fan-out's per-stream memory in "one connection per stream" mode.
//
//   node --expose-gc [node flags] bench/xds-fanout/connection-floor.mjs [N] [stream|session|net]
//
// N defaults to 5000. The mode says what each client holds: "stream" (the default) an HTTP/2
// session with one open stream the server answered with headers; "session" an HTTP/2 session with
// SETTINGS exchanged and no stream; "net" a plain TCP socket that sent 100 bytes. Connections open
// in two waves (half, then the rest), as run.mjs opens one connection per stream: `perConnection`
// is all N from an empty server, `marginal` the second wave alone, free of costs paid once (V8's
// young generation grows during the first connect storm). The server's Node flags and MALLOC_*
// environment are recorded; the client child runs with neither. Prints one JSON object; bytes per
// connection.
import { fork } from "node:child_process";
import http2 from "node:http2";
import net from "node:net";
import { mallocStats } from "./malloc-stats.mjs";

const N = Number(process.argv[2] ?? process.env.N ?? 5000);
const MODE = process.argv[3] ?? "stream";
if (!["stream", "session", "net"].includes(MODE)) {
  console.error(`mode must be stream, session or net, got "${MODE}"`);
  process.exit(2);
}

if (process.env.FLOOR_CLIENT_PORT) {
  const port = Number(process.env.FLOOR_CLIENT_PORT);
  const keep = [];
  const openStream = () =>
    new Promise((resolve) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on("error", () => {});
      session.once("connect", () => {
        const req = session.request({ ":method": "POST", ":path": "/x", "content-type": "application/grpc" });
        req.on("error", () => {});
        req.write(Buffer.alloc(100));
        keep.push(session, req);
        resolve();
      });
    });
  const openSession = () =>
    new Promise((resolve) => {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      session.on("error", () => {});
      session.once("remoteSettings", () => {
        keep.push(session);
        resolve();
      });
    });
  const openSocket = () =>
    new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.write(Buffer.alloc(100));
        keep.push(socket);
        resolve();
      });
      socket.on("error", () => {});
    });
  const open = MODE === "net" ? openSocket : MODE === "session" ? openSession : openStream;
  // The parent asks for connections in waves ({ open: n }) and hears back when they are open.
  process.on("message", async ({ open: n }) => {
    for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, open));
    process.send({ opened: n });
  });
  process.on("disconnect", () => process.exit(0));
} else {
  if (typeof globalThis.gc !== "function") {
    console.error("run with --expose-gc");
    process.exit(2);
  }
  let received = 0;
  const kept = [];
  let server;
  if (MODE === "net") {
    server = net.createServer((socket) => {
      let got = 0;
      socket.on("error", () => {});
      socket.on("data", (d) => {
        const before = got;
        got += d.length;
        if (before < 100 && got >= 100) received++;
      });
      kept.push(socket);
    });
  } else {
    server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
    if (MODE === "session") {
      server.on("session", (session) => {
        session.on("error", () => {});
        session.once("localSettings", () => received++);
        kept.push(session);
      });
    } else {
      server.on("stream", (stream) => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" });
        stream.on("error", () => {});
        stream.on("data", () => {
          received++;
        });
        kept.push(stream);
      });
    }
  }
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const measure = async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    return { ...process.memoryUsage(), malloc: mallocStats() };
  };
  const before = await measure();
  const clientEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("MALLOC_") && k !== "XDS_FANOUT_MALLINFO"),
  );
  const child = fork(new URL(import.meta.url), [String(N), MODE], {
    env: { ...clientEnv, FLOOR_CLIENT_PORT: String(server.address().port) },
    execArgv: [],
  });
  // Two waves, as run.mjs connects one connection per stream: half, then the rest; the second
  // wave alone is the marginal cost of a connection.
  const waves = N > 1 ? [Math.ceil(N / 2), Math.floor(N / 2)] : [N];
  const deadline = Date.now() + 120_000;
  const marks = [];
  let target = 0;
  for (const count of waves) {
    target += count;
    const opened = new Promise((r) => child.once("message", r));
    child.send({ open: count });
    await opened;
    while (received < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    marks.push(await measure());
  }
  const after = marks[marks.length - 1];
  const native = (m) => m.rss - m.heapTotal - m.external;
  const perConnection = (from, to, n) => {
    const per = (k) => Math.round((to[k] - from[k]) / n);
    return {
      rss: per("rss"),
      heapCommitted: per("heapTotal"),
      heapUsed: per("heapUsed"),
      external: per("external"),
      native: Math.round((native(to) - native(from)) / n),
      ...(to.malloc && from.malloc
        ? {
            mallocUsed: Math.round((to.malloc.usedBytes - from.malloc.usedBytes) / n),
            mallocMmap: Math.round((to.malloc.mmapBytes - from.malloc.mmapBytes) / n),
          }
        : {}),
    };
  };
  console.log(
    JSON.stringify({
      benchmark: "xds-fanout/connection-floor",
      node: process.version,
      mode: MODE,
      connections: N,
      connected: received,
      execArgv: process.execArgv,
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("MALLOC_"))),
      perConnection: perConnection(before, after, N),
      ...(marks.length > 1
        ? { marginal: { connections: waves[1], ...perConnection(marks[0], after, waves[1]) } }
        : {}),
    }),
  );
  child.kill();
  server.close();
  process.exit(received >= N ? 0 : 1);
}
