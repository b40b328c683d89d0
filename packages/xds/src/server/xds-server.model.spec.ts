// Model-based tests of the xDS streams (issue 10 §2): fast-check drives one ADS stream, SotW or
// Delta, with random sequences of subscribe, unsubscribe, ACK, NACK, reconnect, heartbeat and cache
// change, against a reference model of an xDS client written from Envoy's "xDS REST and gRPC
// protocol" (envoyproxy/envoy api/xds_protocol.rst) and sharing no code with the server: what the
// client subscribes to, what it holds, what it was sent, what it ACKed or NACKed.
//
// After every step, the server's view (CSDS, XdsServer.clientStatus) must agree with the client's:
// a resource the server says the client ACKed is the one the client holds, and one it says is
// SYNCED is the cache's. At the end of every sequence the cache changes once more and the client
// ACKs everything: it must then hold exactly what the cache holds for its subscription (SotW EDS
// may keep resources the cache deleted: SotW cannot delete them, "Deleting Resources").
//
// The server runs in-process through XdsServer.handle() (no sockets). A failure prints
//   { seed: S, path: "P", endOnFailure: true }
//   Counterexample: [ACK,heartbeat,NACK /*replayPath="R"*/, …]
// and replays with (-t picks the protocol that failed):
//   XDS_MODEL_SEED=S XDS_MODEL_PATH="P" XDS_MODEL_REPLAY="R" npx vitest run packages/xds/src/server/xds-server.model.spec.ts -t sotw
// XDS_MODEL_RUNS sets the number of sequences per protocol (default 1000).
import { create, fromBinary, type Message, toBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { ClientResourceStatus } from "@meshlet/api/envoy/admin/v3/config_dump_shared_pb";
import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  ResourceSchema,
} from "@meshlet/api/envoy/service/discovery/v3/discovery_pb";
import { ConfigStatus } from "@meshlet/api/envoy/service/status/v3/csds_pb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SnapshotCache } from "../cache/snapshot-cache.js";
import type { Clock } from "../clock.js";
import * as resources from "../resources/index.js";
import { Snapshot } from "../snapshot.js";
import { TypeUrl, xdsRegistry } from "../type-url.js";
import type { CallHandler, ServerCall } from "./call.js";
import { silentLogger } from "./logger.js";
import { XdsServer } from "./xds-server.js";

type Protocol = "sotw" | "delta";
const CDS = TypeUrl.Cluster;
const EDS = TypeUrl.ClusterLoadAssignment;
/**
 * Long names (≈ 290 bytes), so that a SotW list of two or more (≈ 590 encoded bytes and up) is
 * interned by the server's request decoder (lists of 512 bytes and more are: see
 * InterningDecoder) while a list of one is decoded per request: sequences cross that boundary both
 * ways, and send an interned list again after a short one.
 */
const long = (n: string) => `${n}.${"outbound-padding".repeat(18)}`;
const NAMES = [long("a"), long("b"), long("c"), long("d")] as const;
/** The fourth name carries a TTL, so heartbeats have something to refresh. */
const TTL_NAME = NAMES[3];
const RUNS = Number(process.env.XDS_MODEL_RUNS ?? 1000);

/** The cache as the test sees it: per type, name → version (a small number, so states recur). */
type CacheModel = Record<typeof CDS | typeof EDS, Map<string, number>>;

/** Resources whose content encodes their version, so the client can read it back. */
function snapshotOf(cache: CacheModel): Snapshot {
  const ttl = <T extends Message>(name: string, r: T) =>
    name === TTL_NAME ? resources.withTtl(r, 60_000) : r;
  return Snapshot.create({
    clusters: [...cache[CDS]].map(([name, v]) =>
      ttl(name, resources.cluster({ name, connectTimeoutMs: 1000 + v })),
    ),
    endpoints: [...cache[EDS]].map(([name, v]) =>
      ttl(
        name,
        resources.loadAssignment({ clusterName: name, endpoints: [{ address: "10.0.0.1", port: 1000 + v }] }),
      ),
    ),
  });
}

function versionOf(message: Message): number {
  if (message.$typeName === "envoy.config.cluster.v3.Cluster") {
    const t = (message as Cluster).connectTimeout;
    return Number(t?.seconds ?? 0n) * 1000 + Math.round((t?.nanos ?? 0) / 1e6) - 1000;
  }
  const socket = (message as ClusterLoadAssignment).endpoints[0]?.lbEndpoints[0]?.hostIdentifier;
  const address = socket?.case === "endpoint" ? socket.value.address?.address : undefined;
  return (
    (address?.case === "socketAddress" && address.value.portSpecifier.case === "portValue"
      ? address.value.portSpecifier.value
      : 0) - 1000
  );
}

const nameOf = (m: Message) =>
  m.$typeName === "envoy.config.cluster.v3.Cluster"
    ? (m as Cluster).name
    : (m as ClusterLoadAssignment).clusterName;

/** A resource of a response as the client reads it: no body means a TTL heartbeat. */
interface Received {
  readonly name: string;
  readonly version?: number;
  /** Delta's per-resource version (for initial_resource_versions on reconnect). */
  readonly resourceVersion?: string;
}

interface Response {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly versionInfo: string;
  readonly resources: readonly Received[];
  readonly removed: readonly string[];
}

/** A TTL heartbeat: it carries resources without a body. */
const isHeartbeat = (r: Response) => r.resources.some((x) => x.version === undefined);

/** The reference client: what an xDS client subscribes to and holds, per the protocol document. */
class ModelClient {
  readonly inbox: Response[] = [];
  readonly holdings = { [CDS]: new Map<string, number>(), [EDS]: new Map<string, number>() };
  readonly deltaVersions = { [CDS]: new Map<string, string>(), [EDS]: new Map<string, string>() };
  /** SotW: the version_info of the last accepted response, per type. */
  readonly accepted: Record<string, string> = { [CDS]: "", [EDS]: "" };
  /** The nonce of the last response processed, per type. */
  readonly lastNonce: Record<string, string> = { [CDS]: "", [EDS]: "" };
  /** EDS names subscribed to (CDS is a wildcard subscription, as Envoy's). */
  readonly eds = new Set<string>();
  /**
   * What the client rejected and the server may not send again unchanged (xDS protocol, "ACK and
   * NACK semantics": the server must not loop on a NACK) until the cache changes the type, the
   * client asks for the name again, or a new stream starts.
   */
  readonly rejected = { [CDS]: new Map<string, number>(), [EDS]: new Map<string, number>() };
  /** NACK loops seen: a rejected resource re-sent unchanged. */
  readonly loops: string[] = [];

  constructor(readonly protocol: Protocol) {}

  /** Applies an accepted response: what it carries is no longer rejected (the client holds it). */
  accept(r: Response): void {
    const rejected = this.rejected[r.typeUrl as typeof CDS];
    for (const x of r.resources) if (rejected.get(x.name) === x.version) rejected.delete(x.name);
    this.apply(r);
  }

  /**
   * A response arrives. A TTL heartbeat (resources without a body) is no re-send of what was
   * rejected: it refreshes what the server believes the client holds (checkViews holds it to that).
   */
  receive(r: Response): void {
    const rejected = this.rejected[r.typeUrl as typeof CDS];
    if (!isHeartbeat(r))
      for (const x of r.resources)
        if (x.version !== undefined && rejected.get(x.name) === x.version)
          this.loops.push(`${r.typeUrl.split(".").pop()} ${x.name} v${x.version} re-sent after its NACK`);
    this.inbox.push(r);
  }

  /**
   * Applies part of a rejected response, as Envoy does: CDS and LDS apply every valid resource of
   * a NACKed response (and drop the clusters a SotW response leaves out: envoyproxy/envoy
   * source/common/upstream/cds_api_helper.cc, cds_api_impl.cc), and the gRPC mux hands a
   * response to each watch in turn, so other types may have applied some names before one
   * threw (source/extensions/config_subscription/grpc/grpc_mux_impl.cc); gRPC applies the valid
   * resources of a NACKed response (gRFC A46). `keep(i)` says which items were valid.
   */
  applyPart(r: Response, keep: (i: number) => boolean): void {
    const rejected = this.rejected[r.typeUrl as typeof CDS];
    if (!isHeartbeat(r))
      r.resources.forEach((x, i) => {
        if (x.version !== undefined && !keep(i)) rejected.set(x.name, x.version);
      });
    const part: Response = {
      ...r,
      resources: r.resources.filter((_, i) => keep(i)),
      removed: r.removed.filter((_, i) => keep(r.resources.length + i)),
    };
    if (this.protocol === "sotw" && r.typeUrl === CDS) {
      // The full state: clusters missing from the response go; the valid ones are applied; the
      // invalid ones stay as they were.
      const held = this.holdings[CDS];
      const inResponse = new Set(r.resources.map((x) => x.name));
      for (const name of [...held.keys()]) if (!inResponse.has(name)) held.delete(name);
      for (const x of part.resources) if (x.version !== undefined) held.set(x.name, x.version);
      return;
    }
    const accepted = this.accepted[r.typeUrl] as string;
    this.apply(part);
    this.accepted[r.typeUrl] = accepted;
  }

  /**
   * Applies an accepted response. SotW CDS carries the full state ("Grouping Resources into
   * Responses"); SotW EDS only what it carries, ignoring names not requested ("How the client
   * specifies what resources to return"); delta upserts and removes. A heartbeat resource (no
   * body) keeps what is held.
   */
  apply(r: Response): void {
    const held = this.holdings[r.typeUrl as typeof CDS];
    const versions = this.deltaVersions[r.typeUrl as typeof CDS];
    if (this.protocol === "sotw" && r.typeUrl === CDS) {
      const next = new Map<string, number>();
      for (const x of r.resources) next.set(x.name, x.version ?? (held.get(x.name) as number));
      held.clear();
      for (const [k, v] of next) held.set(k, v);
    } else {
      for (const x of r.resources) {
        if (r.typeUrl === EDS && !this.eds.has(x.name)) continue;
        if (x.version !== undefined) held.set(x.name, x.version);
        if (x.resourceVersion !== undefined && x.version !== undefined)
          versions.set(x.name, x.resourceVersion);
      }
      for (const name of r.removed) {
        held.delete(name);
        versions.delete(name);
      }
    }
    if (this.protocol === "sotw") this.accepted[r.typeUrl] = r.versionInfo;
  }
}

/** A stream to the in-process server: requests in, decoded responses into the client's inbox. */
class Connection {
  private readonly handler: CallHandler;
  constructor(
    xds: XdsServer,
    private readonly client: ModelClient,
  ) {
    const path =
      client.protocol === "sotw"
        ? "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
        : "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
    const call: ServerCall = {
      peer: "model:1",
      metadata: {},
      peerCertificate: undefined,
      write: (framed, done) => {
        if (!this.closed) this.client.receive(this.decode(framed.subarray(5)));
        queueMicrotask(() => done());
      },
      finish: () => {
        this.closed = true;
      },
    };
    this.handler = xds.handle(path, call) as CallHandler;
  }
  closed = false;

  private decode(bytes: Uint8Array): Response {
    if (this.client.protocol === "sotw") {
      const r = fromBinary(DiscoveryResponseSchema, bytes);
      return {
        typeUrl: r.typeUrl,
        nonce: r.nonce,
        versionInfo: r.versionInfo,
        removed: [],
        resources: r.resources.map((any) => {
          if (any.typeUrl === TypeUrl.Resource) {
            const w = fromBinary(ResourceSchema, any.value);
            const m = w.resource ? anyUnpack(w.resource, xdsRegistry) : undefined;
            return { name: w.name, ...(m ? { version: versionOf(m) } : {}) };
          }
          const m = anyUnpack(any, xdsRegistry) as Message;
          return { name: nameOf(m), version: versionOf(m) };
        }),
      };
    }
    const r = fromBinary(DeltaDiscoveryResponseSchema, bytes);
    return {
      typeUrl: r.typeUrl,
      nonce: r.nonce,
      versionInfo: r.systemVersionInfo,
      removed: r.removedResources,
      resources: r.resources.map((w) => {
        const m = w.resource ? anyUnpack(w.resource, xdsRegistry) : undefined;
        return { name: w.name, resourceVersion: w.version, ...(m ? { version: versionOf(m) } : {}) };
      }),
    };
  }

  sotw(init: Parameters<typeof create<typeof DiscoveryRequestSchema>>[1]): void {
    this.handler.message(
      Buffer.from(toBinary(DiscoveryRequestSchema, create(DiscoveryRequestSchema, init))),
      false,
    );
  }

  delta(init: Parameters<typeof create<typeof DeltaDiscoveryRequestSchema>>[1]): void {
    this.handler.message(
      Buffer.from(toBinary(DeltaDiscoveryRequestSchema, create(DeltaDiscoveryRequestSchema, init))),
      false,
    );
  }

  close(): void {
    this.closed = true;
    this.handler.close("cancelled");
  }
}

/** The system under test and the model, side by side. */
class World {
  readonly cache: CacheModel = {
    [CDS]: new Map([
      [NAMES[0], 0],
      [NAMES[1], 0],
    ]),
    [EDS]: new Map([
      [NAMES[0], 0],
      [NAMES[1], 0],
    ]),
  };
  readonly snapshots = new SnapshotCache();
  readonly heartbeats: Array<() => void> = [];
  readonly xds: XdsServer;
  readonly client: ModelClient;
  connection!: Connection;
  readonly log: string[] = [];
  /** Nonces of the ACKs and NACKs the server reported on events$. */
  readonly reported = { ack: new Set<string>(), nack: new Set<string>() };
  /** Answers the server must report: to the latest response of a type, or a heartbeat since. */
  readonly expected: Array<{ kind: "ack" | "nack"; nonce: string; what: string }> = [];

  constructor(readonly protocol: Protocol) {
    const clock: Clock = {
      now: () => 0,
      setInterval: (cb) => this.heartbeats.push(cb),
      clearInterval: () => {},
    };
    this.snapshots.setSnapshot("model", snapshotOf(this.cache));
    this.xds = new XdsServer({
      cache: this.snapshots,
      logger: silentLogger,
      clock,
      heartbeatIntervalMs: 1000,
    });
    this.client = new ModelClient(protocol);
    this.xds.events$.subscribe((e) => {
      if (e.type === "ack" || e.type === "nack") this.reported[e.type].add(e.nonce);
    });
    this.open();
  }

  /** A new stream: the first requests say what the client subscribes to and, on a reconnect, has. */
  open(): void {
    this.connection = new Connection(this.xds, this.client);
    const c = this.client;
    const node = { id: "model", clientFeatures: ["xds.config.resource-in-sotw"] };
    // Nonces belong to a stream; an empty first EDS list would be a (legacy) wildcard, so EDS is
    // requested once the client has names to ask for.
    c.lastNonce[CDS] = "";
    c.lastNonce[EDS] = "";
    if (this.protocol === "sotw") {
      this.connection.sotw({ node, typeUrl: CDS, versionInfo: c.accepted[CDS] });
      if (c.eds.size > 0)
        this.connection.sotw({ typeUrl: EDS, resourceNames: [...c.eds], versionInfo: c.accepted[EDS] });
    } else {
      const initial = (t: typeof CDS | typeof EDS) => Object.fromEntries(c.deltaVersions[t]);
      this.connection.delta({
        node,
        typeUrl: CDS,
        resourceNamesSubscribe: ["*"],
        initialResourceVersions: initial(CDS),
      });
      if (c.eds.size > 0)
        this.connection.delta({
          typeUrl: EDS,
          resourceNamesSubscribe: [...c.eds],
          initialResourceVersions: initial(EDS),
        });
    }
  }

  /** A subscription change (SotW: the whole list; delta: the difference). */
  resubscribe(subscribe: string[], unsubscribe: string[]): void {
    const c = this.client;
    if (this.protocol === "sotw")
      this.connection.sotw({
        typeUrl: EDS,
        resourceNames: [...c.eds],
        versionInfo: c.accepted[EDS],
        responseNonce: c.lastNonce[EDS],
      });
    else
      this.connection.delta({
        typeUrl: EDS,
        resourceNamesSubscribe: subscribe,
        resourceNamesUnsubscribe: unsubscribe,
      });
  }

  /**
   * The client processes its oldest response and answers it. A NACK applies the items whose bit
   * is set in `valid` (resources first, then removals): see ModelClient.applyPart.
   */
  answer(ack: boolean, valid = 0): void {
    const c = this.client;
    const r = c.inbox.shift();
    if (!r) return;
    const previous = c.accepted[r.typeUrl] as string;
    // xDS protocol ("Resource updates"): only a newer response makes an answer stale; a TTL
    // heartbeat (resources without bodies) re-sends the same state and is not newer.
    const stale = c.inbox.some((later) => later.typeUrl === r.typeUrl && !isHeartbeat(later));
    if (!stale && !this.connection.closed)
      this.expected.push({
        kind: ack ? "ack" : "nack",
        nonce: r.nonce,
        what: `${ack ? "ACK" : "NACK"} of ${r.typeUrl}`,
      });
    if (ack) c.accept(r);
    else c.applyPart(r, (i) => ((valid >> i) & 1) === 1);
    c.lastNonce[r.typeUrl] = r.nonce;
    const errorDetail = ack ? {} : { errorDetail: { code: 3, message: "rejected by the model" } };
    if (this.protocol === "sotw")
      this.connection.sotw({
        typeUrl: r.typeUrl,
        resourceNames: r.typeUrl === EDS ? [...c.eds] : [],
        versionInfo: ack ? r.versionInfo : previous,
        responseNonce: r.nonce,
        ...errorDetail,
      });
    else this.connection.delta({ typeUrl: r.typeUrl, responseNonce: r.nonce, ...errorDetail });
  }

  setCache(): void {
    this.snapshots.setSnapshot("model", snapshotOf(this.cache));
  }

  /** Lets the server finish: flushes run in microtasks, writes complete in microtasks. */
  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }

  /**
   * The server's view must agree with the client's: what it says the client ACKed is what the
   * client holds, what it calls SYNCED is the cache's current version, DOES_NOT_EXIST is absent
   * from the cache.
   */
  checkViews(): void {
    expect(this.client.loops, "no NACK loop").toEqual([]);
    for (const e of this.expected)
      expect(this.reported[e.kind].has(e.nonce), `${e.what} reported on events$`).toBe(true);
    this.expected.length = 0;
    const status = this.xds.clientStatus();
    for (const entry of status.config.flatMap((c) => c.genericXdsConfigs)) {
      const type = entry.typeUrl as typeof CDS;
      const held = this.client.holdings[type].get(entry.name);
      const where = `${entry.typeUrl.split(".").pop()} ${entry.name} (${ClientResourceStatus[entry.clientStatus]}/${ConfigStatus[entry.configStatus]})`;
      // The config shown is what the client holds, except while a newer one is in flight (STALE).
      if (
        entry.clientStatus === ClientResourceStatus.ACKED &&
        entry.configStatus !== ConfigStatus.STALE &&
        entry.xdsConfig
      ) {
        expect(held, `server view of ${where}`).toBe(
          versionOf(anyUnpack(entry.xdsConfig, xdsRegistry) as Message),
        );
      }
      if (entry.configStatus === ConfigStatus.SYNCED) {
        expect(held, `client holds the cache's ${where}`).toBe(this.cache[type].get(entry.name));
      }
      if (entry.clientStatus === ClientResourceStatus.DOES_NOT_EXIST) {
        expect(this.cache[type].has(entry.name), where).toBe(false);
      }
    }
  }

  /** After the final push, answered with ACKs: the client holds the cache (for its subscription). */
  checkConverged(): void {
    const c = this.client;
    expect(Object.fromEntries(c.holdings[CDS]), "CDS").toEqual(Object.fromEntries(this.cache[CDS]));
    const want = Object.fromEntries([...this.cache[EDS]].filter(([n]) => c.eds.has(n)));
    const got = Object.fromEntries(c.holdings[EDS]);
    if (this.protocol === "delta") expect(got, "EDS").toEqual(want);
    else {
      for (const [name, v] of Object.entries(want)) expect(got[name], `EDS ${name}`).toBe(v);
      for (const name of Object.keys(got)) expect(c.eds.has(name), `EDS ${name} is subscribed`).toBe(true);
    }
    for (const entry of this.xds.clientStatus().config.flatMap((x) => x.genericXdsConfigs)) {
      const exists = this.cache[entry.typeUrl as typeof CDS].has(entry.name);
      const subscribed = entry.typeUrl === CDS || c.eds.has(entry.name);
      if (exists && subscribed) expect(ConfigStatus[entry.configStatus], entry.name).toBe("SYNCED");
    }
  }
}

type Cmd = fc.AsyncCommand<object, World>;
const cmd = (label: string, run: (w: World) => void): Cmd => ({
  check: () => true,
  async run(_m, w) {
    w.log.push(label);
    run(w);
    await w.settle();
    w.checkViews();
  },
  toString: () => label,
});

const name = fc.constantFrom(...NAMES);
const commands = fc.commands(
  [
    name.map((n) =>
      cmd(`subscribe EDS ${n}`, (w) => {
        const added = !w.client.eds.has(n);
        w.client.eds.add(n);
        // Asked for again: the server may send it, even unchanged.
        w.client.rejected[EDS].delete(n);
        if (added || w.protocol === "delta") w.resubscribe([n], []);
      }),
    ),
    name.map((n) =>
      cmd(`unsubscribe EDS ${n}`, (w) => {
        if (!w.client.eds.delete(n)) return;
        // The client forgets what it no longer asks for.
        w.client.holdings[EDS].delete(n);
        w.client.deltaVersions[EDS].delete(n);
        w.client.rejected[EDS].delete(n);
        w.resubscribe([], [n]);
      }),
    ),
    fc.constant(cmd("ACK", (w) => w.answer(true))),
    fc.constant(cmd("NACK", (w) => w.answer(false))),
    fc
      .integer({ min: 1, max: 31 })
      .map((valid) => cmd(`NACK applying ${valid.toString(2)}`, (w) => w.answer(false, valid))),
    fc.constant(
      cmd("reconnect", (w) => {
        // Responses in flight are lost with the stream; the client keeps what it holds.
        w.connection.close();
        w.client.inbox.length = 0;
        for (const r of Object.values(w.client.rejected)) r.clear();
        w.open();
      }),
    ),
    fc.constant(
      cmd("heartbeat", (w) => {
        for (const beat of w.heartbeats) beat();
      }),
    ),
    fc
      .tuple(fc.constantFrom(CDS, EDS), name, fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }))
      .map(([type, n, v]) =>
        cmd(`cache ${type === CDS ? "CDS" : "EDS"} ${n} ${v === undefined ? "deleted" : `v${v}`}`, (w) => {
          if (v === undefined) w.cache[type].delete(n);
          else w.cache[type].set(n, v);
          // A new state of the type: what was rejected may be sent with it.
          w.client.rejected[type].clear();
          w.setCache();
        }),
      ),
  ],
  {
    maxCommands: 25,
    // Replaying a failure needs the commands' own replay path too (the /*replayPath=…*/ comment).
    ...(process.env.XDS_MODEL_REPLAY ? { replayPath: process.env.XDS_MODEL_REPLAY } : {}),
  },
);

async function runSequence(protocol: Protocol, cmds: Iterable<Cmd>, bump: number[]): Promise<void> {
  const w = new World(protocol);
  try {
    await w.settle();
    w.checkViews();
    await fc.asyncModelRun(() => ({ model: {}, real: w }), cmds);
    // The final push: each type gets a new state, in which only some resources change (the
    // bumped ones, and "z", which no EDS subscription names). The client then ACKs all it gets
    // and must hold the cache: whatever it lacks after NACKs and reconnects — not only what this
    // push changes — must come with it (issue 10, bugs 2 and 3).
    for (const type of [CDS, EDS] as const) {
      for (const [n, v] of w.cache[type])
        if (bump[NAMES.indexOf(n as never)] === 1) w.cache[type].set(n, v + 3);
      w.cache[type].set("z", (w.cache[type].get("z") ?? 0) + 1);
      w.client.rejected[type].clear();
    }
    w.setCache();
    for (let i = 0; i < 50; i++) {
      await w.settle();
      if (w.client.inbox.length === 0) break;
      while (w.client.inbox.length > 0) w.answer(true);
    }
    await w.settle();
    expect(w.client.inbox, "the server is quiet").toEqual([]);
    w.checkViews();
    w.checkConverged();
  } finally {
    w.connection.close();
    w.xds.close();
  }
}

function assertOptions(): fc.Parameters<unknown> {
  const seed = process.env.XDS_MODEL_SEED;
  const path = process.env.XDS_MODEL_PATH;
  return {
    numRuns: RUNS,
    ...(seed !== undefined ? { seed: Number(seed) } : {}),
    ...(path !== undefined ? { path } : {}),
  };
}

describe("xDS streams against a reference model of the client", () => {
  for (const protocol of ["sotw", "delta"] as const) {
    it(`${protocol}: server and client views agree after every step, and the client converges to the cache`, async () => {
      await fc.assert(
        fc.asyncProperty(
          commands,
          fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 4, maxLength: 4 }),
          (cmds, bump) => runSequence(protocol, cmds, bump),
        ),
        assertOptions(),
      );
    }, 300_000);
  }
});
