import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConfig, KubernetesListObject, KubernetesObject, ListWatch } from "@kubernetes/client-node";
import { asyncScheduler, Observable, type SchedulerLike, type Subscription } from "rxjs";
import { ConfigError } from "../config-error.js";
import { DiagnosticCode } from "../diagnostic-code.js";
import { KindRegistry } from "../kind-registry.js";
import { builtinKinds, type KindDefinition } from "../kinds.js";
import { type Logger, silentLogger } from "../logger.js";
import type { ConfigEvent, ConfigSource } from "./config-source.js";

/** A kind to watch, optionally at a specific served version (default: the kind's preferred one). */
export type KubernetesKindSelector = string | { readonly kind: string; readonly version?: string };

/** Options for {@link KubernetesSource}. */
export interface KubernetesSourceOptions {
  /** Cluster and credentials; defaults to `KubeConfig.loadFromDefault()` (in-cluster or ~/.kube/config). */
  readonly kubeConfig?: KubeConfig;
  /**
   * Kinds to list and watch (default: {@link DEFAULT_KUBERNETES_KINDS}, the Istio kinds and the
   * registry kinds the mesh reads; Secrets, ConfigMaps and workload controllers only when asked).
   */
  readonly kinds?: readonly KubernetesKindSelector[];
  /** Where kinds' groups, versions and plurals come from; defaults to the built-in kinds. */
  readonly registry?: KindRegistry;
  /** Watch only these namespaces (namespaced kinds); default: all namespaces. */
  readonly namespaces?: readonly string[];
  /** A Kubernetes label selector applied to every list and watch, e.g. `meshlet.io/config=true`. */
  readonly labelSelector?: string;
  /** Defaults to `kubernetes`. */
  readonly name?: string;
  /** Reconnect backoff after a failed list or watch: starts at `initialMs` (500), doubles up to `maxMs` (30 s). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Scheduler for backoff and rediscovery timers. */
  readonly scheduler?: SchedulerLike;
  /**
   * How often kinds the API server did not serve (a CRD not installed yet) are looked up again;
   * once served they are listed and watched (default 60 s).
   */
  readonly rediscoverMs?: number;
  readonly logger?: Logger;
}

/**
 * The kinds a KubernetesSource watches unless told otherwise: Istio's configuration kinds and the
 * registry kinds (Service, EndpointSlice, Pod, Namespace). Secrets, ConfigMaps, ServiceAccounts and
 * workload controllers are validated when they come from files, but watched only when listed.
 */
export const DEFAULT_KUBERNETES_KINDS: readonly string[] = [
  "VirtualService",
  "DestinationRule",
  "Gateway",
  "ServiceEntry",
  "Sidecar",
  "WorkloadEntry",
  "WorkloadGroup",
  "EnvoyFilter",
  "ProxyConfig",
  "PeerAuthentication",
  "AuthorizationPolicy",
  "RequestAuthentication",
  "Telemetry",
  "WasmPlugin",
  "Service",
  "EndpointSlice",
  "Pod",
  "Namespace",
];

/** A kind asked for, before discovery picks the version the API server serves. */
interface Wanted {
  readonly def: KindDefinition;
  /** A version the user pinned; otherwise the first of `def.versions` the server serves. */
  readonly version?: string;
  readonly namespaces: ReadonlyArray<string | undefined>;
}

interface Target {
  readonly def: KindDefinition;
  /** The group/version the objects are read at. */
  readonly served: string;
  /** The apiVersion objects are normalised to: the kind's preferred (first) version. */
  readonly apiVersion: string;
  readonly path: string;
}

/**
 * Config from the Kubernetes API server: one `@kubernetes/client-node` informer (`ListWatch`) per
 * kind and namespace.
 *
 * The informer lists, then watches from the list's `resourceVersion` (with `allowWatchBookmarks`, so
 * quiet resources still advance it). A dropped watch is resumed from the last resourceVersion seen,
 * without a relist; `410 Gone` (an `ERROR` event or HTTP status: the version was compacted) makes it
 * relist and emit the differences. Any other failure (API server down, 5xx, auth) is reported as a
 * `connection` event and retried with exponential backoff, resuming from the last resourceVersion.
 * `synced` is emitted once every kind has been listed.
 *
 * Before listing, the source asks the API server which versions it serves (API discovery: `/api`,
 * `/apis/<group>`, `/apis/<group>/<version>`) and reads each kind at the first of the kind's
 * versions that is served, so a cluster whose Istio serves only `networking.istio.io/v1beta1` (Istio
 * 1.21 and older) works as well as a current one. Objects are normalised to the kind's preferred
 * apiVersion (`networking.istio.io/v1`). A kind the server does not serve at all (its CRD is not
 * installed) is skipped with a warning (`MC0009`, in the store's status) instead of holding back the
 * first snapshot, and looked up again every `rediscoverMs`. A server that answers no discovery
 * document for a group is asked for each version's collection instead (404: not served).
 */
export class KubernetesSource implements ConfigSource {
  readonly name: string;
  readonly events$: Observable<ConfigEvent>;

  constructor(options: KubernetesSourceOptions = {}) {
    this.name = options.name ?? "kubernetes";
    const wanted = resolveWanted(options);
    this.events$ = new Observable<ConfigEvent>((subscriber) => {
      const scheduler = options.scheduler ?? asyncScheduler;
      const logger = options.logger ?? silentLogger;
      const informers: ListWatch<KubernetesObject>[] = [];
      const timers: Subscription[] = [];
      const targets: Target[] = [];
      const listed = new Set<number>();
      let discovered = false;
      let closed = false;
      let syncedSent = false;
      let connected = true;

      const setConnected = (value: boolean, error?: string) => {
        if (value === connected) return;
        connected = value;
        subscriber.next({ type: "connection", connected: value, ...(error !== undefined ? { error } : {}) });
      };

      const start = async () => {
        // Loaded on first use: client-node takes over a second to import, and file-only users never need it.
        const k8s = await import("@kubernetes/client-node").catch((cause: unknown) => {
          throw new ConfigError(
            "SOURCE_FAILED",
            "KubernetesSource needs the optional peer dependency @kubernetes/client-node@^1.4.0: npm install @kubernetes/client-node",
            { cause },
          );
        });
        if (closed) return;
        const kc = options.kubeConfig ?? loadDefault(k8s.KubeConfig);
        const cluster = kc.getCurrentCluster();
        if (cluster === null) throw new ConfigError("SOURCE_FAILED", "the kubeconfig has no current cluster");
        const inner = new k8s.Watch(kc);
        // Any watch line (events and BOOKMARKs, which informers swallow) proves the connection is back.
        const watch = {
          config: kc,
          watch: (
            path: string,
            query: Record<string, string | number | boolean | undefined>,
            callback: (phase: string, obj: unknown, raw: unknown) => void,
            done: (err: unknown) => void,
          ) =>
            inner.watch(
              path,
              query,
              (phase, obj, raw) => {
                if (phase !== "ERROR") setConnected(true);
                callback(phase, obj, raw);
              },
              done,
            ),
        } as unknown as InstanceType<typeof k8s.Watch>;

        const startTarget = (target: Target): Promise<void> => {
          const index = targets.length;
          targets.push(target);
          let retries = 0;
          const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
            const result = await listObjects(kc, cluster.server, target.path, options.labelSelector);
            listed.add(index);
            setConnected(true);
            return result;
          };
          // The path carries allowWatchBookmarks; Watch appends watch=true, resourceVersion and the selector.
          const informer = new k8s.ListWatch<KubernetesObject>(
            `${target.path}?allowWatchBookmarks=true`,
            watch,
            list,
            false,
            options.labelSelector,
          );
          const emit = (type: "add" | "update") => (obj: KubernetesObject) => {
            retries = 0;
            setConnected(true);
            // Normalised: the same kind reads the same whichever version the server served it at.
            const object = { ...obj, apiVersion: target.apiVersion, kind: target.def.kind };
            const id = idOf(target, obj);
            subscriber.next({
              type,
              id,
              object,
              origin: { source: this.name, location: `${target.path}/${obj.metadata?.name ?? ""}` },
            });
          };
          informer.on("add", emit("add"));
          informer.on("update", emit("update"));
          informer.on("delete", (obj) => subscriber.next({ type: "delete", id: idOf(target, obj) }));
          informer.on("error", (error: unknown) => {
            if (closed) return;
            const message = describeError(error);
            const delay = Math.min(
              options.backoff?.maxMs ?? 30_000,
              (options.backoff?.initialMs ?? 500) * 2 ** retries,
            );
            retries++;
            logger.warn("kubernetes list/watch failed; retrying", {
              path: target.path,
              error: message,
              delayMs: delay,
            });
            setConnected(false, `${target.path}: ${message}`);
            // ListWatch stops after a non-410 error; start() resumes from its last resourceVersion.
            timers.push(
              scheduler.schedule(() => {
                if (!closed) void informer.start().then(checkSynced);
              }, delay),
            );
          });
          informers.push(informer);
          return informer.start();
        };

        const discovery = new Discovery(kc, cluster.server);
        let pending = [...wanted];
        const discover = async (): Promise<Target[]> => {
          const found: Target[] = [];
          const missing: Wanted[] = [];
          for (const w of pending) {
            const version = await discovery.servedVersion(
              w.def,
              w.version,
              (v) => (targetsOf(w, v)[0] as Target).path,
            );
            if (version === undefined) missing.push(w);
            else found.push(...targetsOf(w, version));
            const scope = `discovery:${w.def.kind}`;
            subscriber.next({
              type: "problems",
              scope,
              diagnostics:
                version === undefined
                  ? [
                      {
                        severity: "warning",
                        code: DiagnosticCode.KindNotServed,
                        message: `the API server does not serve ${w.def.kind} (${w.def.group === "" ? "core" : w.def.group} ${
                          w.version ?? w.def.versions.join(", ")
                        }): is its CRD installed? Skipped; looked up again every ${Math.round((options.rediscoverMs ?? 60_000) / 1000)} s`,
                        source: this.name,
                        resource: w.def.kind,
                      },
                    ]
                  : [],
            });
          }
          pending = missing;
          return found;
        };
        const found = await discover();
        if (closed) return;
        discovered = true;
        const rediscover = () => {
          if (closed || pending.length === 0) return;
          discovery.reset();
          discover()
            .then((more) => Promise.all(more.map(startTarget)))
            .catch((error: unknown) =>
              logger.warn("kubernetes discovery failed", { error: describeError(error) }),
            )
            .finally(() => {
              if (!closed && pending.length > 0)
                timers.push(scheduler.schedule(rediscover, options.rediscoverMs ?? 60_000));
            });
        };
        if (pending.length > 0) timers.push(scheduler.schedule(rediscover, options.rediscoverMs ?? 60_000));
        await Promise.all(found.map(startTarget));
        checkSynced();
      };

      const checkSynced = () => {
        if (!syncedSent && !closed && discovered && listed.size === targets.length) {
          syncedSent = true;
          subscriber.next({ type: "synced" });
        }
      };

      start().catch((error: unknown) => {
        if (!closed) subscriber.error(error);
      });
      return () => {
        closed = true;
        for (const t of timers) t.unsubscribe();
        for (const i of informers) void i.stop();
      };
    });
  }
}

function loadDefault(KubeConfigClass: typeof KubeConfig): KubeConfig {
  const kc = new KubeConfigClass();
  kc.loadFromDefault();
  return kc;
}

function resolveWanted(options: KubernetesSourceOptions): Wanted[] {
  const registry = options.registry ?? new KindRegistry();
  const selectors: KubernetesKindSelector[] =
    options.kinds !== undefined
      ? [...options.kinds]
      : registry
          .list()
          // The default kinds, plus any kind the user registered (custom config kinds).
          .filter(
            (d) => DEFAULT_KUBERNETES_KINDS.includes(d.kind) || !builtinKinds.some((b) => b.kind === d.kind),
          )
          .map((d) => d.kind);
  return selectors.map((selector) => {
    const kind = typeof selector === "string" ? selector : selector.kind;
    const def = registry.get(kind);
    if (def === undefined)
      throw new ConfigError("UNKNOWN_KIND", `KubernetesSource: kind ${kind} is not registered`);
    const version = typeof selector === "string" ? undefined : selector.version;
    if (version !== undefined && !def.versions.includes(version)) {
      throw new ConfigError(
        "INVALID_ARGUMENT",
        `KubernetesSource: ${kind} has no version ${version}; use one of ${def.versions.join(", ")}`,
      );
    }
    const namespaces = def.namespaced && options.namespaces !== undefined ? options.namespaces : [undefined];
    return { def, ...(version !== undefined ? { version } : {}), namespaces };
  });
}

function targetsOf(w: Wanted, version: string): Target[] {
  const { def } = w;
  const served = def.group === "" ? version : `${def.group}/${version}`;
  const preferred = def.versions[0] as string;
  const apiVersion = def.group === "" ? preferred : `${def.group}/${preferred}`;
  const base = def.group === "" ? `/api/${version}` : `/apis/${def.group}/${version}`;
  return w.namespaces.map((ns) => ({
    def,
    served,
    apiVersion,
    path:
      ns === undefined
        ? `${base}/${def.plural}`
        : `${base}/namespaces/${encodeURIComponent(ns)}/${def.plural}`,
  }));
}

/**
 * Kubernetes API discovery, cached per group-version: which versions of a group the server serves
 * (`/api`, `/apis/<group>`) and which resources each serves (`/apis/<group>/<version>`).
 */
class Discovery {
  readonly #kc: KubeConfig;
  readonly #server: string;
  #groups = new Map<string, Promise<string[] | undefined>>();
  #resources = new Map<string, Promise<Set<string>>>();

  constructor(kc: KubeConfig, server: string) {
    this.#kc = kc;
    this.#server = server;
  }

  reset(): void {
    this.#groups.clear();
    this.#resources.clear();
  }

  /**
   * The version `def` is read at: `pinned` if served, else the first of its versions served;
   * undefined if none. Where the server answers no discovery document for the group, each version's
   * collection (`listPath`) is asked directly: a 404 means not served, as for a CRD not installed.
   */
  async servedVersion(
    def: KindDefinition,
    pinned: string | undefined,
    listPath: (version: string) => string,
  ): Promise<string | undefined> {
    const candidates = pinned !== undefined ? [pinned] : def.versions;
    const served = await this.#versions(def.group);
    if (served === undefined) {
      for (const version of candidates) {
        const url = new URL(this.#server + listPath(version));
        url.searchParams.set("limit", "1");
        if (await getJson(this.#kc, url).then(() => true, notFoundAs(false))) return version;
      }
      return undefined;
    }
    for (const version of candidates) {
      if (!served.includes(version)) continue;
      if ((await this.#resourcesOf(def.group, version)).has(def.plural)) return version;
    }
    return undefined;
  }

  /** The versions the server serves of `group`; undefined when it has no discovery document for it. */
  #versions(group: string): Promise<string[] | undefined> {
    let p = this.#groups.get(group);
    if (p === undefined) {
      const url = new URL(this.#server + (group === "" ? "/api" : `/apis/${group}`));
      p = getJson(this.#kc, url).then((body) => {
        const versions = (body as { versions?: Array<string | { version?: string }> }).versions ?? [];
        return versions.map((v) => (typeof v === "string" ? v : (v.version ?? "")));
      }, notFoundAs(undefined));
      this.#groups.set(group, p);
    }
    return p;
  }

  #resourcesOf(group: string, version: string): Promise<Set<string>> {
    const key = `${group}/${version}`;
    let p = this.#resources.get(key);
    if (p === undefined) {
      const url = new URL(this.#server + (group === "" ? `/api/${version}` : `/apis/${group}/${version}`));
      p = getJson(this.#kc, url).then(
        (body) =>
          new Set(
            ((body as { resources?: Array<{ name?: string }> }).resources ?? []).map((r) => r.name ?? ""),
          ),
        notFoundAs(new Set<string>()),
      );
      this.#resources.set(key, p);
    }
    return p;
  }
}

/** A rejection handler: `value` for an HTTP 404, the error again otherwise. */
function notFoundAs<T>(value: T): (error: unknown) => T {
  return (error) => {
    if ((error as { statusCode?: number }).statusCode === 404) return value;
    throw error;
  };
}

function idOf(target: Target, obj: KubernetesObject): string {
  return `${target.def.kind}/${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const status = (error as { statusCode?: number }).statusCode;
    return status !== undefined ? `HTTP ${status} ${error.message}` : error.message;
  }
  return String(error);
}

/**
 * GET a list with the kubeconfig's TLS and credentials (applyToHTTPSOptions), following `continue`
 * tokens so large collections are read in pages.
 */
async function listObjects(
  kc: KubeConfig,
  server: string,
  path: string,
  labelSelector: string | undefined,
): Promise<KubernetesListObject<KubernetesObject>> {
  const items: KubernetesObject[] = [];
  let continueToken: string | undefined;
  let resourceVersion = "";
  do {
    const url = new URL(server + path);
    url.searchParams.set("limit", "500");
    if (labelSelector !== undefined) url.searchParams.set("labelSelector", labelSelector);
    if (continueToken !== undefined) url.searchParams.set("continue", continueToken);
    const page = (await getJson(kc, url)) as KubernetesListObject<KubernetesObject>;
    items.push(...(page.items ?? []));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    continueToken =
      page.metadata?._continue ?? (page.metadata as { continue?: string } | undefined)?.continue;
  } while (continueToken !== undefined && continueToken !== "");
  return { apiVersion: "v1", kind: "List", metadata: { resourceVersion }, items };
}

async function getJson(kc: KubeConfig, url: URL): Promise<unknown> {
  const opts: RequestOptions = { method: "GET", headers: { Accept: "application/json" } };
  await kc.applyToHTTPSOptions(opts);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) > 299) {
          const error = Object.assign(
            new Error(`GET ${url.pathname} failed: ${res.statusCode} ${body.slice(0, 200)}`),
            {
              statusCode: res.statusCode,
            },
          );
          reject(error);
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (error) {
          reject(error);
        }
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url.pathname} timed out`)));
    req.on("error", reject);
    req.end();
  });
}
