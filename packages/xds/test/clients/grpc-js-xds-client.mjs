// A real proxyless xDS client: @grpc/grpc-js with the @grpc/grpc-js-xds resolver and LB policies.
//
// Runs as its own process because grpc-js-xds reads its bootstrap once per process
// (GRPC_XDS_BOOTSTRAP_CONFIG) and `register()` installs the `xds:` scheme globally.
// Driven by JSON lines, one command per stdin line, one reply per stdout line:
//   {"id":1,"op":"call","target":"xds:///echo","count":20,"timeoutMs":5000,"method":"/meshlet.test.Echo/Echo"}
//     -> {"id":1,"results":[{"ok":true,"backend":"b1"},{"ok":false,"code":14,"details":"..."}]}
//   {"id":2,"op":"close"}   closes every channel (the xDS client unsubscribes), replies, then exits.
// On start it prints {"ready":true}. Diagnostics go to stderr only.
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import * as grpcJsXds from "@grpc/grpc-js-xds";

grpcJsXds.register();

const DEFAULT_METHOD = "/meshlet.test.Echo/Echo";
const identity = (value) => value;

/** One generic client per target, reused so the channel keeps its xDS watches between commands. */
const clients = new Map();

function clientFor(target) {
  let client = clients.get(target);
  if (!client) {
    client = new grpc.Client(target, grpc.credentials.createInsecure());
    clients.set(target, client);
  }
  return client;
}

function callOnce(client, method, timeoutMs) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + timeoutMs);
    client.makeUnaryRequest(method, identity, identity, Buffer.alloc(0), { deadline }, (error, response) => {
      if (error) {
        resolve({ ok: false, code: error.code, details: error.details });
      } else {
        resolve({ ok: true, backend: Buffer.from(response).toString("utf8") });
      }
    });
  });
}

async function handle(command) {
  switch (command.op) {
    case "call": {
      const client = clientFor(command.target);
      const results = [];
      for (let i = 0; i < (command.count ?? 1); i++) {
        results.push(await callOnce(client, command.method ?? DEFAULT_METHOD, command.timeoutMs ?? 5000));
      }
      return { results };
    }
    case "close": {
      for (const client of clients.values()) client.close();
      clients.clear();
      return { closed: true };
    }
    default:
      return { error: `unknown op ${JSON.stringify(command.op)}` };
  }
}

function reply(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

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
    const result = await handle(command);
    reply({ id: command.id, ...result });
    if (command.op === "close") {
      lines.close();
      leaveSoon();
    }
  });
});
/**
 * Closing the channels makes the xDS client write its unsubscribe requests and end its stream; the
 * process then usually exits on its own. grpc-js-xds can keep timers alive for a while (its 15 s
 * resource-does-not-exist timers), so after a short grace for those writes to flush, leave anyway.
 */
function leaveSoon() {
  setTimeout(() => process.exit(0), 500).unref();
}

// The parent going away (stdin closed) ends this process too: no orphaned clients.
lines.on("close", () => {
  void queue.then(async () => {
    await handle({ op: "close" });
    leaveSoon();
  });
});
reply({ ready: true });
