import {
  type ConfigWatcher,
  type ListeningServer,
  resources,
  Snapshot,
  type SnapshotInput,
  silentLogger,
  type XdsEvent,
  XdsServer,
  type XdsServerOptions,
} from "@meshlet/xds";
import { AdsClient, type AdsClientOptions } from "@meshlet/xds/testing";
import { filter, firstValueFrom, type Observable, ReplaySubject } from "rxjs";

/** A running XdsServer on loopback with every event recorded, and clients that close with it. */
export interface Fixture {
  readonly xds: XdsServer;
  readonly server: ListeningServer;
  /** Every event since start. */
  readonly events: XdsEvent[];
  readonly events$: Observable<XdsEvent>;
  client(options?: Partial<AdsClientOptions>): AdsClient;
  /** Resolves with the first event (already seen or future) matching `match`. */
  waitFor<T extends XdsEvent["type"]>(
    type: T,
    match?: (e: Extract<XdsEvent, { type: T }>) => boolean,
  ): Promise<Extract<XdsEvent, { type: T }>>;
  /** Events of a type, optionally filtered. */
  seen<T extends XdsEvent["type"]>(
    type: T,
    match?: (e: Extract<XdsEvent, { type: T }>) => boolean,
  ): Extract<XdsEvent, { type: T }>[];
  close(): Promise<void>;
}

export async function startFixture(
  cache: ConfigWatcher,
  options: Partial<XdsServerOptions> = {},
): Promise<Fixture> {
  const xds = new XdsServer({ cache, logger: silentLogger, ...options });
  const events: XdsEvent[] = [];
  const replay = new ReplaySubject<XdsEvent>();
  const sub = xds.events$.subscribe((e) => {
    events.push(e);
    replay.next(e);
  });
  const server = await xds.listen({ address: "127.0.0.1:0" });
  const clients: AdsClient[] = [];
  return {
    xds,
    server,
    events,
    events$: replay.asObservable(),
    client(opts = {}) {
      const c = AdsClient.connect({ address: server.address, node: { id: "node-a" }, ...opts });
      clients.push(c);
      return c;
    },
    waitFor(type, match = () => true) {
      return firstValueFrom(
        replay.pipe(filter((e): e is never => e.type === type && match(e as never))),
      ) as never;
    },
    seen(type, match = () => true) {
      return events.filter((e) => e.type === type && match(e as never)) as never;
    },
    async close() {
      for (const c of clients) c.close();
      sub.unsubscribe();
      xds.close();
      await server.close(200);
    },
  };
}

/**
 * Lets the server finish what one request triggers: it handles a request synchronously and
 * flushes responses in a microtask, so after a macrotask turn every response it would send for
 * the requests it has seen has been emitted on events$.
 */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A demo mesh: listener → route → clusters → endpoints for gRPC clients. */
export function meshSnapshot(
  opts: {
    clusters?: string[];
    weights?: Record<string, number>;
    extra?: Partial<SnapshotInput>;
    port?: number;
  } = {},
): Snapshot {
  const clusters = opts.clusters ?? ["c1"];
  const weights = opts.weights;
  return Snapshot.create({
    listeners: [resources.apiListener({ name: "echo", routeConfigName: "echo-route" })],
    routes: [
      resources.routeConfiguration({
        name: "echo-route",
        virtualHosts: [
          {
            name: "echo",
            domains: ["*"],
            routes: [
              weights
                ? {
                    prefix: "",
                    weightedClusters: Object.entries(weights).map(([name, weight]) => ({ name, weight })),
                  }
                : { prefix: "", cluster: clusters[0]! },
            ],
          },
        ],
      }),
    ],
    clusters: clusters.map((name) => resources.cluster({ name })),
    endpoints: clusters.map((name, i) =>
      resources.loadAssignment({
        clusterName: name,
        endpoints: [{ address: "127.0.0.1", port: (opts.port ?? 10000) + i }],
      }),
    ),
    ...opts.extra,
  });
}
