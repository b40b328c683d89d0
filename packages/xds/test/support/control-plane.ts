import { type ListeningServer, SnapshotCache, silentLogger, XdsServer } from "@meshlet/xds";
import { EventRecorder } from "./event-recorder.js";

/** An XdsServer over a SnapshotCache on loopback, with its events recorded from the start. */
export interface ControlPlane {
  readonly cache: SnapshotCache;
  readonly xds: XdsServer;
  readonly recorder: EventRecorder;
  /** The port clients bootstrap with; a restart listens on it again. */
  readonly port: number;
  /** Stops listening (open streams end, clients start reconnecting). */
  stop(): Promise<void>;
  /** Listens again on the same port with the same server and cache. */
  restart(): Promise<void>;
  /** Stops everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a control plane on 127.0.0.1, on an ephemeral port unless `port` is given (a second
 * replica taking over the port of one that stopped).
 */
export async function startControlPlane(options: { port?: number } = {}): Promise<ControlPlane> {
  const cache = new SnapshotCache();
  const xds = new XdsServer({ cache, logger: silentLogger });
  const recorder = new EventRecorder(xds.events$);
  let listening: ListeningServer | undefined = await xds.listen({
    address: `127.0.0.1:${options.port ?? 0}`,
  });
  const port = listening.port;
  const stop = async () => {
    const current = listening;
    listening = undefined;
    await current?.close();
  };
  return {
    cache,
    xds,
    recorder,
    port,
    stop,
    async restart() {
      await stop();
      listening = await xds.listen({ address: `127.0.0.1:${port}` });
    },
    async close() {
      await stop();
      xds.close();
      recorder.stop();
    },
  };
}
