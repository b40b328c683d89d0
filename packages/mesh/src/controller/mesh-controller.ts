import type { Node } from "@meshlet/api/envoy/config/core/v3/base_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import type { ConfigSnapshot, Diagnostic, ResourceKey } from "@meshlet/config";
import { formatResourceKey } from "@meshlet/config";
import {
  DEFAULT_MAX_RESOURCE_NAMES_PER_TYPE,
  type GrpcStatusCode,
  type Refusal,
  ResourcePool,
  type ResourceSet,
  Snapshot,
  type SnapshotCache,
  TypeUrl,
  type XdsEvent,
} from "@meshlet/xds";
import {
  asyncScheduler,
  BehaviorSubject,
  debounceTime,
  isObservable,
  type Observable,
  type SchedulerLike,
  Subject,
  type Subscription,
} from "rxjs";
import { analyzeMesh, type MeshFinding } from "../diagnostics/analyze-mesh.js";
import { MeshError } from "../mesh-error.js";
import { checkProxyIdentity, type NodeLike, type Proxy, type ProxyKind, parseProxy } from "../proxy/proxy.js";
import type { ProxyDependencies } from "../push/dependencies.js";
import type { MeshConfig } from "../push/mesh-config.js";
import { PushContext } from "../push/push-context.js";
import {
  capabilitiesOf,
  type NodeUserAgent,
  type ProxyCapabilities,
  type XdsClientKind,
} from "../translate/capabilities.js";
import type { TranslationWarning } from "../translate/warnings.js";
import { quoteClientValue } from "../translate/warnings.js";
import { changedConfigKeys } from "./config-diff.js";
import { changedAddresses, endpointsOnlyChange } from "./endpoint-changes.js";
import { type GeneratedResources, type ProxyGenerators, proxylessGenerator } from "./generator.js";
import { SubscriptionTracker } from "./subscriptions.js";

/** Why proxies were pushed. */
export type PushCause = "config" | "connect" | "subscription" | "manual";

/** One push: which proxies got a new snapshot, why, what changed, how long it took. */
export interface PushEvent {
  readonly cause: PushCause;
  /** The config snapshot version pushed. */
  readonly version: string;
  /** Config objects whose change caused the push (cause `config`), as `Kind/namespace/name`. */
  readonly configs: readonly string[];
  /** Node ids whose snapshot was recomputed. */
  readonly proxies: readonly string[];
  /** Resources added, changed or removed across those proxies' snapshots. */
  readonly resourcesChanged: number;
  /** Time the recompute took, by the controller's clock (ms). */
  readonly durationMs: number;
  /** When it finished (ms since the epoch, by the controller's clock). */
  readonly at: number;
}

/** A connected proxy, as `status$` reports it. */
export interface ProxyStatus {
  readonly id: string;
  readonly kind: ProxyKind;
  readonly client: XdsClientKind;
  readonly namespace: string;
  /** Open xDS streams. */
  readonly streams: number;
  /** The config version of its current snapshot, once it has one. */
  readonly version?: string;
  /** What was left out for it (features its client rejects, undefined subsets…). */
  readonly warnings: readonly TranslationWarning[];
  /** Why its last build failed (it keeps its previous snapshot). */
  readonly error?: string;
}

/** A node the controller refused. */
export interface RefusedNode {
  readonly nodeId: string;
  /** The gRPC status it was (or is to be) refused with. */
  readonly code: number;
  readonly reason: string;
  readonly at: number;
}

/** What `status$` emits. */
export interface MeshStatus {
  /** Version of the config snapshot being served; undefined before the first one. */
  readonly version?: string;
  /** Analyzer findings of that config (istioctl analyze's messages). */
  readonly findings: readonly MeshFinding[];
  /** Config errors and warnings (files that did not parse, resources left out…). */
  readonly diagnostics: readonly Diagnostic[];
  /** Connected proxies. */
  readonly proxies: readonly ProxyStatus[];
  /** Nodes refused recently (the last 100). */
  readonly refused: readonly RefusedNode[];
}

/** Where config comes from: a ConfigStore (its `snapshots$`) or any observable of snapshots. */
export type ConfigInput = { readonly snapshots$: Observable<ConfigSnapshot> } | Observable<ConfigSnapshot>;

/** Options of {@link MeshController}. */
export interface MeshControllerOptions {
  /** The config to serve (e.g. `new ConfigStore({ sources: [new FileSource(dir)] })`). */
  readonly config: ConfigInput;
  /** Where per-proxy snapshots go, keyed by `cache.nodeKey(node)` (the node id by default). */
  readonly cache: SnapshotCache;
  /** The CA: its trust domain names workload identities (default `cluster.local`). */
  readonly ca?: { readonly trustDomain: string };
  /** A policy engine kept in step with the config's AuthorizationPolicies and RequestAuthentications. */
  readonly policy?: {
    setAuthorizationPolicies(policies: readonly never[]): void;
    setRequestAuthentications?(resources: readonly never[]): void;
  };
  /** Scheduler for debouncing and timing (RxJS; a TestScheduler gives virtual time). Default `asyncScheduler`. */
  readonly clock?: SchedulerLike;
  /** Quiet time before a config change is pushed (default 100 ms). */
  readonly debounceMs?: number;
  /** Mesh settings (Istio's defaults otherwise). */
  readonly mesh?: Partial<MeshConfig>;
  /** Generators per proxy kind; default: the proxyless gRPC generator only. */
  readonly generators?: ProxyGenerators;
  /** Where encoded resources are shared between per-proxy snapshots (default: one pool per controller). */
  readonly pool?: ResourcePool;
  /**
   * Resource names one stream may subscribe to per type (default 10,000, the xDS server's
   * default). A request over it is not tracked nor built for, and the node is listed as refused
   * with RESOURCE_EXHAUSTED; give the same value to the XdsServer
   * (`maxResourceNamesPerType: controller.maxResourceNamesPerType`), which ends such a stream.
   */
  readonly maxResourceNamesPerType?: number;
}

/** gRPC status RESOURCE_EXHAUSTED (grpc/grpc doc/statuscodes.md). */
const GRPC_RESOURCE_EXHAUSTED = 8;

interface ProxyEntry {
  readonly key: string;
  readonly node: NodeLike & NodeUserAgent;
  readonly proxy: Proxy;
  readonly capabilities: ProxyCapabilities;
  deps?: ProxyDependencies;
  /** What its generator returned last (lists made canonical), for incremental updates. */
  generated?: GeneratedResources;
  version?: string;
  warnings: readonly TranslationWarning[];
  error?: string;
}

/** The request an xDS server's `authorize` hook receives (the parts the controller reads). */
export interface MeshAuthorizeRequest {
  readonly node: NodeLike;
  /** The SPIFFE ID of the client's verified certificate, when the stream is mTLS. */
  readonly spiffeId?: string | undefined;
}

/**
 * Pilot's push loop: watches config, builds a {@link PushContext} per config snapshot, and keeps one
 * xDS snapshot per connected proxy in a SnapshotCache, recomputing (debounced) only the proxies a
 * change affects (their {@link ProxyDependencies} before or after the change name the changed
 * config object or service). Proxies are learned from an xDS server's events ({@link attach}) or
 * registered directly ({@link connect}); proxyless clients are served exactly the names they
 * subscribe to. Per-proxy snapshots share encoded resources through one ResourcePool.
 *
 * Bad config never stops it: analyzer findings and config diagnostics go to `status$`, a route to a
 * missing subset fails its requests with UNAVAILABLE, and a snapshot that cannot be built leaves the
 * proxy on its previous one, with the reason in `status$`.
 */
export class MeshController {
  /** Every push. */
  readonly pushes$: Observable<PushEvent>;
  /** The current status (replays the latest). */
  readonly status$: Observable<MeshStatus>;
  /** Resource names one stream may subscribe to per type ({@link MeshControllerOptions.maxResourceNamesPerType}). */
  readonly maxResourceNamesPerType: number;

  readonly #options: MeshControllerOptions;
  readonly #clock: SchedulerLike;
  readonly #pool: ResourcePool;
  readonly #generators: ProxyGenerators;
  readonly #trustDomain: string;
  readonly #pushes = new Subject<PushEvent>();
  readonly #status: BehaviorSubject<MeshStatus>;
  readonly #proxies = new Map<string, ProxyEntry>();
  readonly #subscriptions = new SubscriptionTracker();
  readonly #refused: RefusedNode[] = [];
  readonly #tasks: Subscription[] = [];
  #push: PushContext | undefined;
  #findings: readonly MeshFinding[] = [];
  #pending = new Map<string, PushCause>();
  /** The first generated list of each ResourceSet (see #canonical). */
  readonly #lists = new WeakMap<ResourceSet, readonly unknown[]>();
  /** Changed-resource counts between pairs of sets. */
  readonly #diffs = new WeakMap<ResourceSet, WeakMap<object, number>>();
  #flushScheduled = false;
  #closed = false;
  #started = false;

  constructor(options: MeshControllerOptions) {
    if (options?.config === undefined || options.cache === undefined) {
      throw new MeshError("INVALID_ARGUMENT", "MeshController needs { config, cache }");
    }
    this.#options = options;
    this.#clock = options.clock ?? asyncScheduler;
    this.#pool = options.pool ?? new ResourcePool();
    this.#generators = { proxyless: proxylessGenerator, ...options.generators };
    this.#trustDomain = options.ca?.trustDomain ?? options.mesh?.trustDomain ?? "cluster.local";
    this.maxResourceNamesPerType = options.maxResourceNamesPerType ?? DEFAULT_MAX_RESOURCE_NAMES_PER_TYPE;
    if (!(Number.isInteger(this.maxResourceNamesPerType) && this.maxResourceNamesPerType > 0))
      throw new MeshError("INVALID_ARGUMENT", "maxResourceNamesPerType must be a positive integer");
    this.pushes$ = this.#pushes.asObservable();
    this.#status = new BehaviorSubject<MeshStatus>({
      findings: [],
      diagnostics: [],
      proxies: [],
      refused: [],
    });
    this.status$ = this.#status.asObservable();
  }

  /** Starts watching config (idempotent; {@link attach} and {@link connect} work before it). */
  start(): this {
    if (this.#started || this.#closed) return this;
    this.#started = true;
    const input = this.#options.config;
    const snapshots$ = isObservable(input) ? input : input.snapshots$;
    this.#tasks.push(
      snapshots$.pipe(debounceTime(this.#options.debounceMs ?? 100, this.#clock)).subscribe({
        next: (snapshot) => this.#onConfig(snapshot),
        error: () => {
          // A config source failing for good is the store's to report; keep serving what we have.
        },
      }),
    );
    return this;
  }

  /** The push context being served, once config arrived. */
  get pushContext(): PushContext | undefined {
    return this.#push;
  }

  /**
   * Learns proxies from an xDS server: a stream's node connects its proxy, requests update its
   * subscriptions (proxyless names), the last stream closing disconnects it (its snapshot is
   * cleared). Nodes without a usable identity are recorded as refused and never served; refuse
   * their streams with {@link authorize}.
   */
  attach(xds: { readonly events$: Observable<XdsEvent> }): Subscription {
    const sub = xds.events$.subscribe((event) => this.#onEvent(event));
    this.#tasks.push(sub);
    return sub;
  }

  /**
   * The `authorize` hook of an xDS server (`new XdsServer({ cache, authorize: controller.authorize })`;
   * bound, so it can be passed as is): refuses a node without a usable identity with the gRPC
   * status its {@link MeshError} carries (INVALID_ARGUMENT) and, when the stream is mTLS, a node
   * whose claims its certificate's SPIFFE ID does not grant (PERMISSION_DENIED). Returns undefined to
   * allow. The SPIFFE ID is the server's, from a certificate it verified; the node is the client's word.
   */
  readonly authorize = (request: MeshAuthorizeRequest): Refusal | undefined => {
    try {
      const proxy = parseProxy(request.node, { trustDomain: this.#trustDomain });
      if (request.spiffeId !== undefined) checkProxyIdentity(proxy, [request.spiffeId]);
      // Snapshots are kept per node id: a stream claiming a connected node's id with other claims
      // (service account, labels, IPs…) would share that proxy's config, or define it for the
      // proxy's own later streams. istiod builds a Proxy per connection; here the id is the key,
      // so a second stream must be the same node (another stream of the same proxy).
      const connected = this.#proxies.get(this.#options.cache.nodeKey(request.node as Node));
      if (connected !== undefined && claimsOf(connected.proxy) !== claimsOf(proxy)) {
        throw new MeshError(
          "IDENTITY_MISMATCH",
          `node ${JSON.stringify(proxy.id)} is already connected with other metadata (namespace, service account, labels or IPs); one node id is one proxy — give each proxy its own id`,
        );
      }
      return undefined;
    } catch (error) {
      const e = error instanceof MeshError ? error : new MeshError("INVALID_NODE", String(error));
      const code = (isGrpcStatusCode(e.grpcCode) ? e.grpcCode : 3) as GrpcStatusCode;
      this.#refuse(request.node.id ?? "", code, e.rawMessage);
      return { code, message: e.rawMessage };
    }
  };

  /**
   * Registers a proxy by its node (what {@link attach} does on a stream's first request) and builds
   * its snapshot. Throws MeshError for a node without a usable identity.
   */
  connect(node: NodeLike & NodeUserAgent): Proxy {
    const key = this.#options.cache.nodeKey(node as Node);
    const existing = this.#proxies.get(key);
    if (existing !== undefined) return existing.proxy;
    const proxy = parseProxy(node, { trustDomain: this.#trustDomain });
    this.#proxies.set(key, {
      key,
      node,
      proxy,
      capabilities: capabilitiesOf(node, proxy.kind === "proxyless"),
      warnings: [],
    });
    this.#schedule(key, "connect");
    return proxy;
  }

  /** Forgets a proxy and clears its snapshot. */
  disconnect(nodeId: string): void {
    if (!this.#proxies.delete(nodeId)) return;
    this.#pending.delete(nodeId);
    this.#options.cache.clearSnapshot(nodeId);
    this.#publishStatus();
  }

  /**
   * A connected proxy by node id, with what its xDS client accepts (what `explain()` takes as
   * `ExplainInput.connected`); undefined when no stream of that node is open.
   */
  connectedProxy(
    nodeId: string,
  ): { readonly proxy: Proxy; readonly capabilities: ProxyCapabilities } | undefined {
    const entry = this.#proxies.get(nodeId) ?? [...this.#proxies.values()].find((e) => e.proxy.id === nodeId);
    return entry === undefined ? undefined : { proxy: entry.proxy, capabilities: entry.capabilities };
  }

  /** Recomputes every connected proxy now (e.g. after an external change the controller cannot see). */
  pushAll(): void {
    for (const key of this.#proxies.keys()) this.#schedule(key, "manual");
  }

  /** Stops watching; snapshots stay in the cache. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#tasks.splice(0)) t.unsubscribe();
    this.#pushes.complete();
    this.#status.complete();
  }

  #onEvent(event: XdsEvent): void {
    if (this.#closed) return;
    if (event.type === "stream-close") {
      const key = this.#subscriptions.close(event.streamId);
      if (key !== undefined && this.#subscriptions.streams(key) === 0) this.disconnect(key);
      else if (key !== undefined) this.#publishStatus();
      return;
    }
    if (event.type !== "request" || event.node === undefined) return;
    const node = event.node;
    const key = this.#options.cache.nodeKey(node);
    const count = this.#subscriptions.namesAfter(event);
    if (count > this.maxResourceNamesPerType) {
      // Client-chosen names are never held beyond the cap; the node id is quoted as the client sent it.
      this.#refuse(
        node.id,
        GRPC_RESOURCE_EXHAUSTED,
        `node ${quoteClientValue(node.id)} subscribed to ${count} resource names of ${event.typeUrl} on one stream; the limit is ${this.maxResourceNamesPerType} per type and stream`,
      );
      return;
    }
    if (!this.#proxies.has(key)) {
      try {
        this.connect(node);
      } catch (error) {
        const e = error instanceof MeshError ? error : new MeshError("INVALID_NODE", String(error));
        this.#refuse(node.id, e.grpcCode, e.rawMessage);
        return;
      }
    }
    if (this.#subscriptions.request(key, event)) this.#schedule(key, "subscription");
  }

  #refuse(nodeId: string, code: number, reason: string): void {
    const last = this.#refused[this.#refused.length - 1];
    if (last?.nodeId === nodeId && last.reason === reason) return;
    this.#refused.push({ nodeId, code, reason, at: this.#clock.now() });
    if (this.#refused.length > 100) this.#refused.splice(0, this.#refused.length - 100);
    this.#publishStatus();
  }

  #onConfig(snapshot: ConfigSnapshot): void {
    if (this.#closed) return;
    const start = this.#clock.now();
    const previous = this.#push;
    let next: PushContext;
    try {
      next = PushContext.create({
        snapshot,
        ...(this.#options.mesh ? { mesh: this.#options.mesh } : {}),
        ...(previous !== undefined ? { previous } : {}),
      });
    } catch (error) {
      // A bug or an input the model cannot take: keep serving the previous config, and say why.
      this.#status.next({
        ...this.#status.getValue(),
        diagnostics: [
          ...snapshot.diagnostics,
          {
            severity: "error",
            code: "MESH",
            message: `config version ${snapshot.version} not served: ${String(error)}`,
            source: "mesh",
          },
        ],
      });
      return;
    }
    this.#push = next;
    this.#syncPolicy(snapshot);
    const changed = changedConfigKeys(previous?.snapshot, snapshot);
    const services = next.registry.changedServices(previous?.registry);
    const plan = this.#plan(previous, next, changed, services);
    // Pushes first; the analysis (status$ only) after them, so it never delays a proxy's config.
    this.#build(plan, "config", changed.map(formatResourceKey), start, false);
    try {
      this.#findings = analyzeMesh(next);
    } catch {
      this.#findings = [];
    }
    this.#publishStatus();
  }

  /**
   * Which proxies a change affects, and how to rebuild each. When only endpoints changed (the push
   * context kept its scopes: Istio's incremental EDS case), a proxy's dependencies are those it had,
   * except for proxies at an address whose endpoints or workload changed (their own services and
   * workload may differ): those are rebuilt in full, the others that see a changed service get only
   * its load assignments rebuilt when their generator can, and the change is EDS-only (the changed
   * services keep their resolution through EDS and their endpoints' identities, which clusters carry
   * as SANs). Otherwise every proxy whose dependencies before or after the change name a changed
   * object or service is rebuilt in full.
   */
  #plan(
    previous: PushContext | undefined,
    next: PushContext,
    changed: readonly ResourceKey[],
    services: ReadonlySet<string>,
  ): BuildPlan {
    const full: string[] = [];
    const endpoints: string[] = [];
    if (previous === undefined) return { full: [...this.#proxies.keys()], endpoints, services };
    if (next.endpointsOnly && !changed.some((k) => k.kind === "Node")) {
      const addresses = changedAddresses(previous, next, changed, services);
      const edsOnly = endpointsOnlyChange(previous.registry, next.registry, services);
      for (const entry of this.#proxies.values()) {
        const deps = entry.deps;
        if (deps === undefined || entry.proxy.ipAddresses.some((ip) => addresses.has(ip))) {
          full.push(entry.key);
          continue;
        }
        let affected = false;
        for (const key of changed) if (deps.dependsOn(key)) affected = true;
        for (const s of services) if (!affected && deps.dependsOnService(s)) affected = true;
        if (!affected) continue;
        const incremental =
          edsOnly &&
          entry.generated !== undefined &&
          this.#generators[entry.proxy.kind]?.updateEndpoints !== undefined;
        (incremental ? endpoints : full).push(entry.key);
      }
      return { full, endpoints, services };
    }
    for (const entry of this.#proxies.values()) {
      if (entry.deps === undefined || this.#affects(entry, next, changed, services)) full.push(entry.key);
    }
    return { full, endpoints, services };
  }

  #affects(
    entry: ProxyEntry,
    next: PushContext,
    changed: readonly ResourceKey[],
    services: ReadonlySet<string>,
  ): boolean {
    const before = entry.deps;
    let after: ProxyDependencies | undefined;
    try {
      after = next.dependencies(entry.proxy);
    } catch {
      return true;
    }
    for (const key of changed) {
      if (before?.dependsOn(key) || after.dependsOn(key)) return true;
    }
    for (const s of services) {
      if (before?.dependsOnService(s) || after.dependsOnService(s)) return true;
    }
    return false;
  }

  #syncPolicy(snapshot: ConfigSnapshot): void {
    const policy = this.#options.policy;
    if (policy === undefined) return;
    try {
      policy.setAuthorizationPolicies(snapshot.list("AuthorizationPolicy") as readonly never[]);
      policy.setRequestAuthentications?.(snapshot.list("RequestAuthentication") as readonly never[]);
    } catch {
      // The engine validates on its own; a policy it refuses is reported by its owner.
    }
  }

  #schedule(key: string, cause: PushCause): void {
    if (this.#closed) return;
    if (!this.#pending.has(key)) this.#pending.set(key, cause);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#clock.schedule(() => {
      this.#flushScheduled = false;
      const pending = this.#pending;
      this.#pending = new Map();
      const byCause = new Map<PushCause, string[]>();
      for (const [k, c] of pending) {
        const list = byCause.get(c) ?? [];
        list.push(k);
        byCause.set(c, list);
      }
      for (const [c, keys] of byCause)
        this.#build({ full: keys, endpoints: [], services: new Set() }, c, [], this.#clock.now());
    }, 0);
  }

  #build(plan: BuildPlan, cause: PushCause, configs: readonly string[], start: number, status = true): void {
    const push = this.#push;
    if (push === undefined || this.#closed) {
      this.#publishStatus();
      return;
    }
    const built: string[] = [];
    let resourcesChanged = 0;
    // One memo per push: proxies that held the same load assignments and get the same new ones
    // share the new list, so the ResourcePool finds it by identity.
    const memo: EndpointsMemo = { lists: new Map(), ids: new WeakMap(), next: 0 };
    const one = (key: string, mode: "full" | "endpoints") => {
      const entry = this.#proxies.get(key);
      if (entry === undefined) return;
      const changed = this.#buildOne(
        entry,
        push,
        mode === "endpoints" ? { services: plan.services, memo } : undefined,
      );
      if (changed !== undefined) {
        built.push(key);
        resourcesChanged += changed;
      }
    };
    for (const key of plan.endpoints) one(key, "endpoints");
    for (const key of plan.full) one(key, "full");
    const at = this.#clock.now();
    if (status) this.#publishStatus();
    if (built.length > 0 || configs.length > 0) {
      this.#pushes.next({
        cause,
        version: push.version,
        configs,
        proxies: built,
        resourcesChanged,
        durationMs: at - start,
        at,
      });
    }
  }

  /**
   * Builds and sets one proxy's snapshot (only its load assignments when `endpoints` is given and
   * its generator can); returns the number of changed resources, or undefined when not built.
   */
  #buildOne(
    entry: ProxyEntry,
    push: PushContext,
    endpoints?: { readonly services: ReadonlySet<string>; readonly memo: EndpointsMemo },
  ): number | undefined {
    const generator = this.#generators[entry.proxy.kind];
    if (generator === undefined) {
      entry.error = `no generator for ${entry.proxy.kind} proxies`;
      return undefined;
    }
    const subscriptions = new Map<string, ReadonlySet<string> | undefined>();
    for (const t of this.#subscriptions.types(entry.key))
      subscriptions.set(t, this.#subscriptions.names(entry.key, t));
    const request = { proxy: entry.proxy, push, capabilities: entry.capabilities, subscriptions };
    let generated: GeneratedResources | undefined;
    let snapshot: Snapshot;
    try {
      if (
        endpoints !== undefined &&
        entry.generated !== undefined &&
        generator.updateEndpoints !== undefined
      ) {
        const updated = generator.updateEndpoints(request, entry.generated, endpoints.services);
        if (updated !== undefined) generated = shareEndpoints(entry.generated, updated, endpoints.memo);
      }
      if (generated === undefined) {
        entry.deps = push.dependencies(entry.proxy);
        generated = generator(request);
      }
      snapshot = Snapshot.create(
        {
          listeners: generated.listeners ?? [],
          routes: generated.routes ?? [],
          clusters: generated.clusters ?? [],
          endpoints: generated.endpoints ?? [],
          ...(generated.secrets !== undefined ? { secrets: generated.secrets } : {}),
        },
        // Envoy's field rules (protoc-gen-validate) are Envoy's: gRPC clients validate by their own
        // rules (gRFC A27/A28), and Istio's proxyless resources break some of Envoy's (an ApiListener
        // HCM without stat_prefix, the server's unnamed inbound virtual host).
        { pool: this.#pool, validate: entry.capabilities.client === "envoy" },
      );
    } catch (error) {
      entry.error = `config version ${push.version} could not be built: ${error instanceof Error ? error.message : String(error)}`;
      return undefined;
    }
    delete entry.error;
    entry.generated = this.#canonical(generated, snapshot);
    entry.warnings = generated.warnings;
    entry.version = push.version;
    const previous = this.#options.cache.getSnapshot(entry.key);
    this.#options.cache.setSnapshot(entry.key, snapshot);
    return this.#countChanges(previous, snapshot);
  }

  /**
   * The generated lists replaced by the first list that produced the same ResourceSet: proxies with
   * equal resources then hold the same lists (less memory, and the incremental paths and the
   * ResourcePool find them by identity).
   */
  #canonical(generated: GeneratedResources, snapshot: Snapshot): GeneratedResources {
    const canonical = <T>(typeUrl: string, list: readonly T[] | undefined): readonly T[] | undefined => {
      if (list === undefined) return undefined;
      const set = snapshot.resourceSet(typeUrl);
      const known = this.#lists.get(set) as readonly T[] | undefined;
      if (known !== undefined) return known;
      this.#lists.set(set, list);
      return list;
    };
    const out: GeneratedResources = {
      warnings: generated.warnings,
      ...optional("listeners", canonical(TypeUrl.Listener, generated.listeners)),
      ...optional("routes", canonical(TypeUrl.RouteConfiguration, generated.routes)),
      ...optional("clusters", canonical(TypeUrl.Cluster, generated.clusters)),
      ...optional("endpoints", canonical(TypeUrl.ClusterLoadAssignment, generated.endpoints)),
      ...optional("secrets", canonical(TypeUrl.Secret, generated.secrets)),
    };
    return out;
  }

  /** Resources added, changed (new version) or removed between two snapshots; unchanged sets (the same object) cost nothing. */
  #countChanges(previous: Snapshot | undefined, next: Snapshot): number {
    let n = 0;
    for (const t of TYPES) {
      const after = next.resourceSet(t);
      const before = previous?.resourceSet(t);
      if (before === after) continue;
      let byAfter = this.#diffs.get(after);
      if (byAfter === undefined) {
        byAfter = new WeakMap();
        this.#diffs.set(after, byAfter);
      }
      const key = before ?? EMPTY;
      let count = byAfter.get(key);
      if (count === undefined) {
        count = 0;
        for (const [name, r] of after.resources)
          if (before?.resources.get(name)?.version !== r.version) count++;
        if (before !== undefined)
          for (const name of before.resources.keys()) if (!after.resources.has(name)) count++;
        byAfter.set(key, count);
      }
      n += count;
    }
    return n;
  }

  #publishStatus(): void {
    if (this.#closed) return;
    const proxies: ProxyStatus[] = [...this.#proxies.values()].map((e) => ({
      id: e.proxy.id,
      kind: e.proxy.kind,
      client: e.capabilities.client,
      namespace: e.proxy.namespace,
      streams: this.#subscriptions.streams(e.key),
      ...(e.version !== undefined ? { version: e.version } : {}),
      warnings: e.warnings,
      ...(e.error !== undefined ? { error: e.error } : {}),
    }));
    this.#status.next({
      ...(this.#push !== undefined ? { version: this.#push.version } : {}),
      findings: this.#findings,
      diagnostics: this.#push?.snapshot.diagnostics ?? [],
      proxies,
      refused: [...this.#refused],
    });
  }
}

const TYPES = [
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Secret,
];

function isGrpcStatusCode(code: number): boolean {
  return Number.isInteger(code) && code >= 0 && code <= 16;
}

/** What a config change rebuilds: proxies in full, proxies' load assignments of `services` only. */
interface BuildPlan {
  readonly full: readonly string[];
  readonly endpoints: readonly string[];
  readonly services: ReadonlySet<string>;
}

/** Per push: new load-assignment lists by the list they replace and the changed entries. */
interface EndpointsMemo {
  readonly lists: Map<readonly unknown[], Map<string, readonly ClusterLoadAssignment[]>>;
  readonly ids: WeakMap<object, number>;
  next: number;
}

const EMPTY = {};

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * `updated` with its load-assignment list replaced by an equal one another proxy got in this push
 * from the same previous list, when there is one.
 */
function shareEndpoints(
  previous: GeneratedResources,
  updated: GeneratedResources,
  memo: EndpointsMemo,
): GeneratedResources {
  const before = previous.endpoints;
  const after = updated.endpoints;
  if (before === undefined || after === undefined || before === after || before.length !== after.length)
    return updated;
  let key = "";
  for (let i = 0; i < after.length; i++) {
    const cla = after[i] as ClusterLoadAssignment;
    if (cla === before[i]) continue;
    let id = memo.ids.get(cla);
    if (id === undefined) {
      id = memo.next++;
      memo.ids.set(cla, id);
    }
    key += `${i}:${id},`;
  }
  let byKey = memo.lists.get(before);
  if (byKey === undefined) {
    byKey = new Map();
    memo.lists.set(before, byKey);
  }
  const known = byKey.get(key);
  if (known !== undefined) return { ...updated, endpoints: known };
  byKey.set(key, after);
  return updated;
}

/** What a node claims, canonical (keys sorted), to tell another node under the same id. */
function claimsOf(proxy: Proxy): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === "object"
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
          )
        : value;
  return JSON.stringify(canonical({ type: proxy.type, ips: proxy.ipAddresses, metadata: proxy.metadata }));
}
