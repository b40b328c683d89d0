// Load child: N ADS streams over raw node:http2 (a lean gRPC client: no grpc-js, no full decode).
// Each response is parsed just enough to ACK it correctly (version_info, type_url, nonce; resource
// bodies are skipped), and ACKed at once (or after --ack-delay-ms). The same client drives the raw
// ceiling server.
import http2 from "node:http2";
import { TypeUrl } from "@meshlet/xds";
import { serveCommands } from "./ipc.mjs";
import { edsNames, rdsNames } from "./snapshot.mjs";
import { grpcFrame, lenField, nodeBytes, ResponseParser, stringField } from "./wire.mjs";

const types = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration];
const now = () => performance.timeOrigin + performance.now();

const paths = {
  sotw: "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
  delta: "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
};

let sessions = [];
let closing = false;
let streams = [];
const stats = {
  messages: 0,
  bytes: 0,
  resources: 0,
  acks: 0,
  lastMessageAt: 0,
  errors: 0,
  lastError: "",
  /** Streams the server ended (with their last gRPC status), which it should never do here. */
  ended: 0,
  lastStatus: "",
  /** GOAWAYs received (e.g. a keepalive PING not answered in time), with the last error code. */
  goaways: 0,
  lastGoaway: "",
  /** Connections that closed while the benchmark still used them. */
  sessionsClosed: 0,
};

function noteError(err) {
  stats.errors++;
  stats.lastError = String(err?.message ?? err);
}

/**
 * Per-type constant request parts. SotW EDS/RDS requests list their names explicitly in every
 * request and ACK, as Envoy does; CDS/LDS are wildcard (empty list).
 */
function requestParts(protocol, shape) {
  const names = {
    [TypeUrl.Cluster]: [],
    [TypeUrl.Listener]: [],
    [TypeUrl.ClusterLoadAssignment]: edsNames(shape),
    [TypeUrl.RouteConfiguration]: rdsNames(shape),
  };
  const parts = new Map();
  for (const t of types) {
    if (protocol === "sotw") {
      // DiscoveryRequest { version_info=1, node=2, resource_names=3, type_url=4, response_nonce=5 }
      parts.set(t, {
        names: Buffer.concat(names[t].map((n) => lenField(3, n))),
        type: lenField(4, t),
      });
    } else {
      // DeltaDiscoveryRequest { node=1, type_url=2, resource_names_subscribe=3, response_nonce=6 }
      parts.set(t, {
        names: Buffer.concat(names[t].map((n) => lenField(3, n))),
        type: lenField(2, t),
      });
    }
  }
  return parts;
}

function initialRequests(protocol, parts, node) {
  const out = [];
  let first = true;
  for (const t of types) {
    const p = parts.get(t);
    const nodeField = first ? lenField(protocol === "sotw" ? 2 : 1, node) : Buffer.alloc(0);
    first = false;
    out.push(
      grpcFrame(
        protocol === "sotw"
          ? Buffer.concat([nodeField, p.names, p.type])
          : Buffer.concat([nodeField, p.type, p.names]),
      ),
    );
  }
  return out;
}

function ack(protocol, parts, msg) {
  const p = parts.get(msg.typeUrl);
  if (!p) throw new Error(`response for unexpected type ${msg.typeUrl}`);
  if (protocol === "sotw")
    return grpcFrame(
      Buffer.concat([stringField(1, msg.version), p.names, p.type, stringField(5, msg.nonce)]),
    );
  return grpcFrame(Buffer.concat([p.type, stringField(6, msg.nonce)]));
}

function connectSession(port, opts) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      maxSessionMemory: 1_000_000,
      // Node assumes a peer allows 100 concurrent streams until it says otherwise; grpc-js never
      // says, so without this a multiplexed connection would open only 100 of its streams.
      peerMaxConcurrentStreams: 1_000_000,
      settings: { initialWindowSize: opts.window, enablePush: false },
    });
    const timer = setTimeout(() => reject(new Error("HTTP/2 connect timed out")), 30_000);
    session.on("close", () => {
      if (!closing) stats.sessionsClosed++;
    });
    session.on("goaway", (code, lastStreamId, data) => {
      stats.goaways++;
      stats.lastGoaway = `code ${code}, last stream ${lastStreamId}${data?.length ? `, ${data.toString()}` : ""}`;
    });
    session.once("connect", () => {
      clearTimeout(timer);
      session.setLocalWindowSize(opts.connectionWindow);
      resolve(session);
    });
    session.on("error", (err) => {
      clearTimeout(timer);
      noteError(err);
      reject(err);
    });
  });
}

function openStream(session, index, opts, parts) {
  const req = session.request({
    ":method": "POST",
    ":path": opts.raw ? "/bench.Raw/Stream" : paths[opts.protocol],
    "content-type": "application/grpc",
    te: "trailers",
  });
  const parser = new ResponseParser((msg) => {
    stats.messages++;
    stats.bytes += msg.bytes + 5;
    stats.resources += msg.resources;
    stats.lastMessageAt = now();
    const answer = ack(opts.protocol, parts, msg);
    if (opts.ackDelayMs > 0) {
      // A proxy applying the configuration before it answers (Envoy ACKs after its update).
      setTimeout(() => {
        if (!req.closed) req.write(answer);
        stats.acks++;
      }, opts.ackDelayMs);
    } else {
      req.write(answer);
      stats.acks++;
    }
  });
  req.on("data", (chunk) => {
    try {
      parser.push(chunk);
    } catch (err) {
      noteError(err);
      req.close();
    }
  });
  req.on("error", noteError);
  req.on("trailers", (trailers) => {
    stats.ended++;
    stats.lastStatus = `${trailers["grpc-status"]} ${decodeURIComponent(String(trailers["grpc-message"] ?? ""))}`;
  });
  const node = nodeBytes(`load-${index}`, "bench");
  for (const r of initialRequests(opts.protocol, parts, node)) req.write(r);
  return req;
}

serveCommands({
  async connect(opts) {
    const parts = requestParts(opts.protocol, opts.shape);
    const perStream = opts.connections === 0;
    const sessionCount = perStream ? opts.streams : Math.min(opts.connections, opts.streams);
    const t0 = now();
    // Open connections in batches so the listen backlog never overflows.
    const opened = [];
    for (let i = 0; i < sessionCount; i += 100) {
      const batch = [];
      for (let j = i; j < Math.min(sessionCount, i + 100); j++) batch.push(connectSession(opts.port, opts));
      opened.push(...(await Promise.all(batch)));
    }
    sessions.push(...opened);
    for (let i = 0; i < opts.streams; i++) {
      // Node ids continue across calls (`offset`): a second wave of streams is new proxies.
      streams.push(openStream(opened[i % sessionCount], (opts.offset ?? 0) + i, opts, parts));
      // Let the event loop breathe every few hundred streams (bounded by the stream count).
      if (i % 500 === 499) await new Promise((r) => setImmediate(r));
    }
    return { sessions: opened.length, streams: opts.streams, openedMs: now() - t0 };
  },

  stats() {
    const cpu = process.cpuUsage();
    return { ...stats, cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage().rss };
  },

  exit() {
    setTimeout(() => process.exit(0), 50);
    return {};
  },

  async close() {
    closing = true;
    for (const s of streams) s.close();
    for (const s of sessions) s.destroy();
    streams = [];
    sessions = [];
    await new Promise((r) => setTimeout(r, 200));
    return {};
  },
});
