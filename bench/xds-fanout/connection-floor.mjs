// The memory floor of one idle HTTP/2 connection on a bare node:http2 server: N client
// connections (in a child process), each with one open gRPC-style stream that sent 100 bytes,
// measured in the server after 3 forced GCs. No xDS, no meshlet: what any Node HTTP/2 server pays
// per connection, to read beside fan-out's per-stream memory in "one connection per stream" mode.
//
//   node --expose-gc bench/xds-fanout/connection-floor.mjs [N]      (default N = 5000)
//
// Prints one JSON object; bytes per connection.
import { fork } from "node:child_process";
import http2 from "node:http2";

const N = Number(process.argv[2] ?? process.env.N ?? 5000);

if (process.env.FLOOR_CLIENT_PORT) {
  const port = Number(process.env.FLOOR_CLIENT_PORT);
  const keep = [];
  const open = () =>
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
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, open));
  process.on("disconnect", () => process.exit(0));
} else {
  if (typeof globalThis.gc !== "function") {
    console.error("run with --expose-gc");
    process.exit(2);
  }
  const server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
  const streams = [];
  let received = 0;
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    stream.on("error", () => {});
    stream.on("data", () => {
      received++;
    });
    streams.push(stream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const measure = async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    return process.memoryUsage();
  };
  const before = await measure();
  const child = fork(new URL(import.meta.url), [String(N)], {
    env: { ...process.env, FLOOR_CLIENT_PORT: String(server.address().port) },
  });
  const deadline = Date.now() + 120_000;
  while (received < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));
  const after = await measure();
  const per = (k) => Math.round((after[k] - before[k]) / N);
  const native = (m) => m.rss - m.heapTotal - m.external;
  console.log(
    JSON.stringify({
      benchmark: "xds-fanout/connection-floor",
      node: process.version,
      connections: N,
      connected: received,
      env: { MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ ?? null },
      perConnection: {
        rss: per("rss"),
        heapCommitted: per("heapTotal"),
        heapUsed: per("heapUsed"),
        external: per("external"),
        native: Math.round((native(after) - native(before)) / N),
      },
    }),
  );
  child.kill();
  server.close();
  process.exit(received >= N ? 0 : 1);
}
