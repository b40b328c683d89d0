import type { KubeConfig, KubernetesObject, V1ConfigMap, V1Namespace } from "@kubernetes/client-node";
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription } from "rxjs";
import { KubeError } from "../kube-error.js";

/** The ConfigMap istiod publishes in every namespace, and the agent mounts at /var/run/secrets/istio. */
export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
/** The key holding the PEM roots. */
export const ROOT_CERT_KEY = "root-cert.pem";
/** The label istiod puts on it. */
export const ROOT_CERT_LABELS: Readonly<Record<string, string>> = { "istio.io/config": "true" };

/**
 * Namespaces left alone, as istiod's namespace controller leaves them: Istio's never-injected
 * system namespaces except kube-system (istiod keeps it, for ztunnel).
 */
export const ROOT_CERT_IGNORED_NAMESPACES: readonly string[] = [
  "kube-public",
  "kube-node-lease",
  "local-path-storage",
];

/** A trust bundle: PEM text, or the roots of `@meshlet/ca`'s `TrustBundle`. */
export type RootCertBundle = string | { readonly roots: readonly string[] };

/** Options for {@link publishRootCert}. */
export interface PublishRootCertOptions {
  /** The roots to publish; every value replaces the previous one everywhere. */
  readonly trustBundle$: Observable<RootCertBundle>;
  /** Cluster and credentials; defaults to `KubeConfig.loadFromDefault()` (in-cluster, or ~/.kube/config). */
  readonly kubeConfig?: KubeConfig;
  readonly configMapName?: string;
  readonly ignoredNamespaces?: readonly string[];
  /** Attempts per namespace before giving up until its next event (default 5, as istiod). */
  readonly maxAttempts?: number;
  /** First retry delay, doubled each attempt (default 100 ms). */
  readonly retryBaseMs?: number;
  /** Re-checks every namespace this often, in case an event was missed (default 10 min; 0 = never). */
  readonly resyncMs?: number;
  readonly scheduler?: SchedulerLike;
}

/** What the publisher did for one namespace. */
export type RootCertEvent =
  | { readonly type: "created" | "updated" | "unchanged"; readonly namespace: string }
  | { readonly type: "skipped"; readonly namespace: string; readonly reason: string }
  | {
      readonly type: "error";
      readonly namespace?: string;
      readonly reason: string;
      readonly attempt: number;
    };

/** A running publisher. */
export interface RootCertPublisher {
  /** One event per reconciled namespace, and the errors. */
  readonly events$: Observable<RootCertEvent>;
  /** Resolves once namespaces and ConfigMaps have been listed. */
  readonly synced: Promise<void>;
  /** Stops watching and retrying; completes `events$`. */
  stop(): Promise<void>;
}

type Informer<T extends KubernetesObject> = {
  on(verb: "add" | "update" | "delete", cb: (obj: T) => void): void;
  on(verb: "error", cb: (err: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  list(namespace?: string): T[];
  get(name: string, namespace?: string): T | undefined;
};

function pemOf(bundle: RootCertBundle): string {
  if (typeof bundle === "string") return bundle;
  return bundle.roots.map((r) => (r.endsWith("\n") ? r : `${r}\n`)).join("");
}

/** The HTTP status and Kubernetes Status `reason`/`details.causes` of a failed API call. */
function statusOf(error: unknown): { code: number; reason: string; message: string; causes: string[] } {
  const e = error as { code?: unknown; body?: unknown };
  const code = typeof e.code === "number" ? e.code : 0;
  let body: unknown = e.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const status = (body ?? {}) as {
    reason?: string;
    message?: string;
    details?: { causes?: Array<{ reason?: string }> };
  };
  return {
    code,
    reason: status.reason ?? "",
    message: status.message ?? "",
    causes: (status.details?.causes ?? []).map((c) => c.reason ?? ""),
  };
}

/**
 * Keeps ConfigMap `istio-ca-root-cert` (key `root-cert.pem`, label `istio.io/config=true`) current
 * in every namespace, as istiod's namespace controller does
 * (pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go): a namespace that appears, a
 * ConfigMap edited or deleted, and every new trust bundle each queue their namespaces; the
 * reconciler creates the ConfigMap when missing and updates its key when it differs, leaving other
 * keys alone. Terminating, deleted and forbidden namespaces are skipped without retrying, as
 * istiod skips them; other failures retry with exponential backoff. The agent trusts meshletd's
 * serving certificate through this ConfigMap.
 */
export function publishRootCert(options: PublishRootCertOptions): RootCertPublisher {
  const events = new Subject<RootCertEvent>();
  const scheduler = options.scheduler ?? asyncScheduler;
  const name = options.configMapName ?? ROOT_CERT_CONFIGMAP;
  const ignored = new Set(options.ignoredNamespaces ?? ROOT_CERT_IGNORED_NAMESPACES);
  const maxAttempts = options.maxAttempts ?? 5;
  const retryBaseMs = options.retryBaseMs ?? 100;
  const timers = new Set<Subscription>();
  const queue = new Map<string, number>(); // namespace → attempt
  let bundle: string | undefined;
  let stopped = false;
  let working = false;
  let informers: { namespaces: Informer<V1Namespace>; configMaps: Informer<V1ConfigMap> } | undefined;
  let api: import("@kubernetes/client-node").CoreV1Api | undefined;
  let bundleSubscription: Subscription | undefined;
  let resolveSynced!: () => void;
  let rejectSynced!: (e: unknown) => void;
  const synced = new Promise<void>((resolve, reject) => {
    resolveSynced = resolve;
    rejectSynced = reject;
  });
  synced.catch(() => undefined);

  const enqueue = (namespace: string, attempt = 1) => {
    if (stopped || ignored.has(namespace)) return;
    if (!queue.has(namespace)) queue.set(namespace, attempt);
    void drain();
  };
  const enqueueAll = () => {
    for (const ns of informers?.namespaces.list() ?? []) if (ns.metadata?.name) enqueue(ns.metadata.name);
  };
  const later = (ms: number, work: () => void) => {
    const sub = scheduler.schedule(() => {
      timers.delete(sub);
      if (!stopped) work();
    }, ms);
    timers.add(sub);
  };

  const reconcile = async (namespace: string): Promise<RootCertEvent> => {
    if (bundle === undefined || informers === undefined || api === undefined) {
      return { type: "skipped", namespace, reason: "no trust bundle yet" };
    }
    const ns = informers.namespaces.get(namespace);
    if (ns === undefined) return { type: "skipped", namespace, reason: "namespace not found" };
    if (ns.status?.phase === "Terminating")
      return { type: "skipped", namespace, reason: "namespace is terminating" };
    const existing = informers.configMaps.get(name, namespace);
    const pem = bundle;
    if (existing === undefined) {
      try {
        await api.createNamespacedConfigMap({
          namespace,
          body: {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name, namespace, labels: { ...ROOT_CERT_LABELS } },
            data: { [ROOT_CERT_KEY]: pem },
          },
        });
        return { type: "created", namespace };
      } catch (error) {
        const s = statusOf(error);
        // istio security/pkg/k8s InsertDataToConfigMap: someone else created it (the watch will
        // bring it back here), or the namespace is going away or gone: nothing to retry.
        if (s.code === 409 || s.reason === "AlreadyExists")
          return { type: "skipped", namespace, reason: "created concurrently" };
        if (s.code === 404) return { type: "skipped", namespace, reason: "namespace not found" };
        if (s.causes.includes("NamespaceTerminating"))
          return { type: "skipped", namespace, reason: "namespace is terminating" };
        if (s.code === 403) return { type: "skipped", namespace, reason: "forbidden: check meshletd's RBAC" };
        throw error;
      }
    }
    if (existing.data?.[ROOT_CERT_KEY] === pem) return { type: "unchanged", namespace };
    await api.replaceNamespacedConfigMap({
      name,
      namespace,
      body: { ...existing, data: { ...existing.data, [ROOT_CERT_KEY]: pem } },
    });
    return { type: "updated", namespace };
  };

  const drain = async () => {
    if (working) return;
    working = true;
    try {
      while (!stopped && queue.size > 0) {
        const [namespace, attempt] = queue.entries().next().value as [string, number];
        queue.delete(namespace);
        try {
          events.next(await reconcile(namespace));
        } catch (error) {
          const reason = describe(error);
          events.next({ type: "error", namespace, reason, attempt });
          if (attempt < maxAttempts)
            later(retryBaseMs * 2 ** (attempt - 1), () => enqueue(namespace, attempt + 1));
        }
      }
    } finally {
      working = false;
    }
  };

  const startInformer = (informer: Informer<KubernetesObject>, what: string, attempt = 1) => {
    informer.on("error", (error) => {
      if (stopped) return;
      events.next({ type: "error", reason: `${what} watch failed: ${describe(error)}`, attempt });
      later(Math.min(retryBaseMs * 2 ** (attempt - 1), 30_000), () => {
        informer.start().catch(() => undefined);
      });
    });
  };

  const start = async () => {
    const k8s = await import("@kubernetes/client-node").catch((cause: unknown) => {
      throw new KubeError(
        "KUBE_API",
        "publishRootCert needs the optional peer dependency @kubernetes/client-node@^1.4.0: npm install @kubernetes/client-node",
        { cause },
      );
    });
    const kc = options.kubeConfig ?? defaultKubeConfig(k8s.KubeConfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    api = core;
    const watch = new k8s.Watch(kc);
    const selector = `metadata.name=${name}`;
    const namespaces = new k8s.ListWatch<V1Namespace>(
      "/api/v1/namespaces",
      watch,
      () => core.listNamespace(),
      false,
    );
    const configMaps = new k8s.ListWatch<V1ConfigMap>(
      "/api/v1/configmaps",
      watch,
      () => core.listConfigMapForAllNamespaces({ fieldSelector: selector }),
      false,
      undefined,
      selector,
    );
    informers = {
      namespaces: namespaces as unknown as Informer<V1Namespace>,
      configMaps: configMaps as unknown as Informer<V1ConfigMap>,
    };
    const onNamespace = (ns: V1Namespace) => {
      if (ns.metadata?.name !== undefined) enqueue(ns.metadata.name);
    };
    const onConfigMap = (cm: V1ConfigMap) => {
      if (cm.metadata?.namespace !== undefined) enqueue(cm.metadata.namespace);
    };
    namespaces.on("add", onNamespace);
    namespaces.on("update", onNamespace);
    configMaps.on("add", onConfigMap);
    configMaps.on("update", onConfigMap);
    configMaps.on("delete", onConfigMap);
    startInformer(namespaces as unknown as Informer<KubernetesObject>, "namespace");
    startInformer(configMaps as unknown as Informer<KubernetesObject>, "ConfigMap");
    await Promise.all([namespaces.start(), configMaps.start()]);
    if (stopped) return;
    resolveSynced();
    bundleSubscription = options.trustBundle$.subscribe({
      next: (value) => {
        const pem = pemOf(value);
        if (pem === bundle) return;
        bundle = pem;
        enqueueAll();
      },
      error: (error) =>
        events.next({ type: "error", reason: `trust bundle failed: ${describe(error)}`, attempt: 1 }),
    });
    const resync = options.resyncMs ?? 600_000;
    if (resync > 0) {
      const tick = () => {
        enqueueAll();
        later(resync, tick);
      };
      later(resync, tick);
    }
  };

  start().catch((error) => {
    events.next({ type: "error", reason: describe(error), attempt: 1 });
    rejectSynced(error);
  });

  return {
    events$: events.asObservable(),
    synced,
    async stop() {
      stopped = true;
      bundleSubscription?.unsubscribe();
      for (const t of timers) t.unsubscribe();
      timers.clear();
      queue.clear();
      await Promise.all([informers?.namespaces.stop(), informers?.configMaps.stop()]);
      events.complete();
    },
  };
}

function describe(error: unknown): string {
  const s = statusOf(error);
  const message =
    s.message !== "" ? s.message : error instanceof Error ? error.message.split("\n")[0] : String(error);
  return s.code !== 0
    ? `HTTP ${s.code}${s.reason !== "" ? ` ${s.reason}` : ""}: ${message}`
    : (message ?? "unknown error");
}

function defaultKubeConfig(KubeConfigClass: typeof KubeConfig): KubeConfig {
  const kc = new KubeConfigClass();
  kc.loadFromDefault();
  return kc;
}
