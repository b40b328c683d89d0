import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A real etcd (Debian `etcd-server`, /usr/bin/etcd) on loopback, with a temporary data dir. */
export interface EtcdServer {
  readonly endpoint: string;
  /** Stops the process (keeping the data dir), e.g. to test reconnects. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  restart(): Promise<void>;
  /** Stops it and removes the data dir. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

export async function startEtcd(): Promise<EtcdServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "meshlet-etcd-"));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${clientPort}`;
  let child: ChildProcess | undefined;

  const launch = () =>
    new Promise<void>((resolve, reject) => {
      const proc = spawn(
        process.env.ETCD_BIN ?? "/usr/bin/etcd",
        [
          "--name=meshlet-test",
          `--data-dir=${dataDir}`,
          `--listen-client-urls=${endpoint}`,
          `--advertise-client-urls=${endpoint}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=meshlet-test=http://127.0.0.1:${peerPort}`,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      child = proc;
      let log = "";
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        if (/ready to serve client requests/.test(log)) {
          proc.stderr?.off("data", onData);
          proc.stderr?.resume();
          resolve();
        }
      };
      proc.stderr?.on("data", onData);
      proc.once("error", reject);
      proc.once("exit", (code) =>
        reject(new Error(`etcd exited with ${code} before it was ready:\n${log.slice(-2000)}`)),
      );
    });

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once("exit", () => resolve());
      proc.kill("SIGTERM");
    });
  };

  try {
    await launch();
  } catch (error) {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    endpoint,
    stop,
    restart: launch,
    close: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
