// A real proxyless gRPC client: @grpc/grpc-js with @grpc/grpc-js-xds, one process per client
// (grpc-js-xds reads its bootstrap once per process and registers the `xds:` scheme globally).
// Driven by JSON lines on stdin, one reply per line on stdout:
//   {"id":1,"op":"call","target":"xds:///echo.test.svc.cluster.local:7070","count":20,
//    "method":"/meshlet.test.Echo/Echo","metadata":{"x-user":"jason"},"timeoutMs":5000,"credentials":"xds"}
//     -> {"id":1,"results":[{"ok":true,"backend":"v1","ms":3},{"ok":false,"code":14,"details":"…","ms":2}]}
//   {"id":2,"op":"close"}
// "credentials": "insecure" (default) or "xds" (XdsChannelCredentials with an insecure fallback:
// mTLS when the cluster says so, certificates from the bootstrap's certificate_providers).
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import * as grpcJsXds from "@grpc/grpc-js-xds";

grpcJsXds.register();

const identity = (value) => value;
const clients = new Map();

function clientFor(target, credentials) {
  const key = `${credentials}|${target}`;
  let client = clients.get(key);
  if (!client) {
    const creds =
      credentials === "xds"
        ? new grpcJsXds.XdsChannelCredentials(grpc.credentials.createInsecure())
        : grpc.credentials.createInsecure();
    client = new grpc.Client(target, creds);
    clients.set(key, client);
  }
  return client;
}

function callOnce(client, method, metadata, timeoutMs) {
  return new Promise((resolve) => {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata ?? {})) md.set(k, v);
    const started = performance.now();
    client.makeUnaryRequest(
      method,
      identity,
      identity,
      Buffer.alloc(0),
      md,
      { deadline: new Date(Date.now() + timeoutMs) },
      (error, response) => {
        const ms = Math.round(performance.now() - started);
        if (error) resolve({ ok: false, code: error.code, details: error.details, ms });
        else resolve({ ok: true, backend: Buffer.from(response).toString("utf8"), ms });
      },
    );
  });
}

async function handle(command) {
  switch (command.op) {
    case "call": {
      const client = clientFor(command.target, command.credentials ?? "insecure");
      const results = [];
      for (let i = 0; i < (command.count ?? 1); i++) {
        results.push(
          await callOnce(
            client,
            command.method ?? "/meshlet.test.Echo/Echo",
            command.metadata,
            command.timeoutMs ?? 5000,
          ),
        );
      }
      return { results };
    }
    case "close":
      for (const client of clients.values()) client.close();
      clients.clear();
      return { closed: true };
    default:
      return { error: `unknown op ${JSON.stringify(command.op)}` };
  }
}

const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  if (line.trim() === "") return;
  queue = queue.then(async () => {
    let command;
    try {
      command = JSON.parse(line);
    } catch (error) {
      reply({ error: `invalid JSON command: ${error.message}` });
      return;
    }
    reply({ id: command.id, ...(await handle(command)) });
    if (command.op === "close") {
      lines.close();
      setTimeout(() => process.exit(0), 300).unref();
    }
  });
});
// The parent going away (stdin closed) ends this process too.
lines.on("close", () => {
  void queue.then(async () => {
    await handle({ op: "close" });
    setTimeout(() => process.exit(0), 300).unref();
  });
});
reply({ ready: true });
