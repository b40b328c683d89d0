import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";

/** A child process started by a test, with its output kept for error messages. */
export interface Started {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `command` and resolves once a line matching `ready` appears on stdout or stderr; rejects
 * if the process exits first. `stop()` ends exactly this process (by its pid) and waits for it.
 */
export function start(
  command: string,
  args: string[],
  options: { cwd: string; ready: RegExp },
): Promise<Started> {
  const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const started: Started = {
    child,
    output: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (options.ready.test(output)) resolve(started);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", reject);
    child.once("exit", (code) =>
      reject(new Error(`${command} exited with ${code} before it was ready:\n${output}`)),
    );
  });
}

/**
 * The TCP port a process listens on, read from /proc (the process was started with port 0 and
 * does not print the port it got): its socket inodes matched against /proc/<pid>/net/tcp LISTEN rows.
 * cfssl logs "Now listening" just before it binds, and nothing signals the bind itself, so this
 * polls /proc until the socket appears (or `timeoutMs` passes).
 */
export async function listeningPort(pid: number, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const port = await findListeningPort(pid);
    if (port !== undefined) return port;
    if (Date.now() > deadline)
      throw new Error(`process ${pid} opened no listening TCP socket within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function findListeningPort(pid: number): Promise<number | undefined> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1] as string);
  }
  for (const file of ["tcp", "tcp6"]) {
    const table = await readFile(`/proc/${pid}/net/${file}`, "utf8").catch(() => "");
    for (const line of table.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === "0A" && inodes.has(cols[9] as string))
        return Number.parseInt((cols[1] as string).split(":")[1] as string, 16);
    }
  }
  return undefined;
}
