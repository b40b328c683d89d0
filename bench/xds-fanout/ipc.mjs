// Request/response over a forked child's IPC channel, with a time limit on every call.
import { fork } from "node:child_process";

/** Serves commands in a child: `handlers[cmd](args)` → reply. Exits when the parent goes away. */
export function serveCommands(handlers) {
  process.on("disconnect", () => process.exit(0));
  process.on("message", async ({ id, cmd, args }) => {
    try {
      const handler = handlers[cmd];
      if (!handler) throw new Error(`unknown command ${cmd}`);
      const result = await handler(args ?? {});
      process.send({ id, ok: true, result });
    } catch (err) {
      process.send({ id, ok: false, error: err instanceof Error ? err.stack : String(err) });
    }
  });
  process.send({ ready: true });
}

/** Forks a child module and returns a client whose `call` rejects on error, exit or timeout. */
export async function startChild(modulePath, { execArgv = [], env = {}, name }) {
  const child = fork(modulePath, [], {
    execArgv,
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map();
  let nextId = 1;
  let exited = false;
  child.on("message", (m) => {
    if (m.ready) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`${name}: ${m.error}`));
  });
  child.on("exit", (code, signal) => {
    exited = true;
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) during ${p.cmd}`));
    }
    pending.clear();
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30s`)), 30_000);
    child.once("message", () => {
      clearTimeout(timer);
      resolve();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} while starting`));
    });
  });
  return {
    pid: child.pid,
    call(cmd, args = {}, timeoutMs = 60_000) {
      if (exited) return Promise.reject(new Error(`${name} has exited; cannot run ${cmd}`));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: ${cmd} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer, cmd });
        child.send({ id, cmd, args });
      });
    },
    kill() {
      if (!exited) child.kill("SIGKILL");
    },
    get exited() {
      return exited;
    },
  };
}
