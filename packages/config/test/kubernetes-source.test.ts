import { KubeConfig } from "@kubernetes/client-node";
import { filter, firstValueFrom } from "rxjs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigStore, KubernetesSource } from "../src/index.js";
import { KubeApiServer } from "./support/kube-api-server.js";

// No Kubernetes API server can run here. KubernetesSource is tested against KubeApiServer
// (test/support/kube-api-server.ts), a local HTTP server speaking the Kubernetes list/watch wire
// protocol: Lists with resourceVersion, chunked watch streams of JSON events, BOOKMARK events and
// 410 Gone for compacted resourceVersions. The client side is the real @kubernetes/client-node informer.

const VS = "networking.istio.io/v1";
const vs = (namespace: string, name: string, labels: Record<string, string>, host = name) => ({
  metadata: { name, namespace, labels },
  spec: { hosts: [host], http: [{ route: [{ destination: { host } }] }] },
});

let server: KubeApiServer;
let store: ConfigStore | undefined;

beforeEach(async () => {
  server = await new KubeApiServer([
    { group: "networking.istio.io", version: "v1", plural: "virtualservices", namespaced: true },
    { group: "", version: "v1", plural: "namespaces", namespaced: false },
  ]).start();
});

afterEach(async () => {
  store?.close();
  store = undefined;
  await server.close();
});

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server: url, skipTLSVerify: true }],
    users: [{ name: "test", token: "t0ken" }],
    contexts: [{ name: "fake", cluster: "fake", user: "test" }],
    currentContext: "fake",
  });
  return kc;
}

function startStore(extra: Partial<ConstructorParameters<typeof KubernetesSource>[0]> = {}): ConfigStore {
  const source = new KubernetesSource({
    kubeConfig: kubeConfig(server.url),
    kinds: ["VirtualService", "Namespace"],
    namespaces: ["prod"],
    labelSelector: "mesh=on",
    backoff: { initialMs: 50, maxMs: 200 },
    ...extra,
  });
  store = new ConfigStore({ sources: [source], debounceMs: 10 }).start();
  return store;
}

const listCount = (path: string) => server.requests.filter((r) => !r.watch && r.path === path).length;
const VS_PATH = "/apis/networking.istio.io/v1/namespaces/prod/virtualservices";

describe("KubernetesSource (against a local list/watch protocol server)", () => {
  it("lists then watches adds, updates and deletes, honouring namespace and label filters", async () => {
    server.put(VS, "VirtualService", vs("prod", "a", { mesh: "on" }));
    server.put(VS, "VirtualService", vs("prod", "off", { mesh: "off" }));
    server.put(VS, "VirtualService", vs("dev", "elsewhere", { mesh: "on" }));
    server.put("v1", "Namespace", { metadata: { name: "prod", labels: { mesh: "on" } } });
    const s = startStore();
    const first = await s.synced();
    expect(first.list("VirtualService").map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual([
      "prod/a",
    ]);
    expect(first.list("Namespace").map((r) => r.metadata.name)).toEqual(["prod"]);

    const watchRequest = await server.waitForRequest((r) => r.watch && r.path === VS_PATH);
    expect(watchRequest).toMatchObject({ allowWatchBookmarks: true, labelSelector: "mesh=on" });
    expect(Number(watchRequest.resourceVersion)).toBeGreaterThan(0);

    server.put(VS, "VirtualService", vs("prod", "b", { mesh: "on" }));
    await s.waitFor((snap) => snap.get("VirtualService", "prod", "b") !== undefined);
    server.put(VS, "VirtualService", vs("prod", "a", { mesh: "on" }, "a-v2"));
    await s.waitFor((snap) => snap.get("VirtualService", "prod", "a")?.spec.hosts?.[0] === "a-v2");
    server.delete(VS, "VirtualService", "prod", "a");
    const last = await s.waitFor((snap) => snap.get("VirtualService", "prod", "a") === undefined);
    expect(last.list("VirtualService").map((r) => r.metadata.name)).toEqual(["b"]);
    expect(listCount(VS_PATH)).toBe(1);
  });

  it("reports invalid objects from the cluster without dropping the rest", async () => {
    server.put(VS, "VirtualService", vs("prod", "good", { mesh: "on" }));
    server.put(VS, "VirtualService", {
      metadata: { name: "bad", namespace: "prod", labels: { mesh: "on" } },
      spec: { hosts: "not-a-list" },
    });
    const first = await startStore().synced();
    expect(first.list("VirtualService").map((r) => r.metadata.name)).toEqual(["good"]);
    expect(first.diagnostics[0]).toMatchObject({
      source: "kubernetes",
      code: "MC0004",
      resource: "VirtualService/prod/bad",
      path: "spec.hosts",
    });
  });

  it("resumes a dropped watch from the last resourceVersion (advanced by BOOKMARKs) without relisting", async () => {
    server.put(VS, "VirtualService", vs("prod", "a", { mesh: "on" }));
    const s = startStore();
    await s.synced();
    await server.waitForRequest((r) => r.watch && r.path === VS_PATH);
    const bookmarkRv = server.bookmark();
    const before = server.requests.length;
    server.dropWatches();
    const resumed = await server.waitForRequest((r) => r.watch && r.path === VS_PATH, before);
    expect(resumed.resourceVersion).toBe(bookmarkRv);
    server.put(VS, "VirtualService", vs("prod", "b", { mesh: "on" }));
    await s.waitFor((snap) => snap.get("VirtualService", "prod", "b") !== undefined);
    expect(listCount(VS_PATH)).toBe(1);
  });

  it("relists on 410 Gone and emits what changed while the watch was away", async () => {
    server.put(VS, "VirtualService", vs("prod", "stays", { mesh: "on" }));
    server.put(VS, "VirtualService", vs("prod", "goes", { mesh: "on" }));
    const s = startStore();
    await s.synced();
    await server.waitForRequest((r) => r.watch && r.path === VS_PATH);
    // A partition: changes happen, history is compacted, then the stream drops.
    server.holdWatches = true;
    server.delete(VS, "VirtualService", "prod", "goes");
    server.put(VS, "VirtualService", vs("prod", "new", { mesh: "on" }));
    server.compact();
    server.holdWatches = false;
    server.dropWatches();
    const after = await s.waitFor((snap) => snap.get("VirtualService", "prod", "new") !== undefined);
    expect(after.list("VirtualService").map((r) => r.metadata.name)).toEqual(["new", "stays"]);
    expect(listCount(VS_PATH)).toBe(2);
  });

  it("reports a lost API server and reconnects with backoff, resuming from its resourceVersion", async () => {
    server.put(VS, "VirtualService", vs("prod", "a", { mesh: "on" }));
    const s = startStore();
    await s.synced();
    await server.waitForRequest((r) => r.watch && r.path === VS_PATH);
    server.failNext(3);
    server.dropWatches();
    const down = await firstValueFrom(s.status$.pipe(filter((st) => st.sources[0]?.connected === false)));
    expect(down.sources[0]?.lastError).toContain("503");
    expect(s.current()?.get("VirtualService", "prod", "a")).toBeDefined();
    server.put(VS, "VirtualService", vs("prod", "b", { mesh: "on" }));
    await s.waitFor((snap) => snap.get("VirtualService", "prod", "b") !== undefined);
    const up = await firstValueFrom(s.status$.pipe(filter((st) => st.sources[0]?.connected === true)));
    expect(up.sources[0]?.synced).toBe(true);
    expect(listCount(VS_PATH)).toBe(1);
  });

  it("skips a kind whose CRD is not installed with a status warning, and still delivers the first snapshot", async () => {
    server.put(VS, "VirtualService", vs("prod", "a", { mesh: "on" }));
    const s = startStore({ kinds: ["VirtualService", "Namespace", "Telemetry", "Sidecar"] });
    const first = await s.synced();
    expect(first.list("VirtualService").map((r) => r.metadata.name)).toEqual(["a"]);
    const status = await firstValueFrom(s.status$);
    expect(status.synced).toBe(true);
    expect(status.errors).toEqual([]);
    expect(status.sources[0]).toMatchObject({ synced: true, errors: 0 });
    expect(status.warnings.map((w) => [w.code, w.severity, w.resource])).toEqual([
      ["MC0009", "warning", "Telemetry"],
      ["MC0009", "warning", "Sidecar"],
    ]);
    expect(status.warnings[0]?.message).toContain("is its CRD installed?");
    // Nothing is watched for the missing kinds. Sidecar's group has a discovery document that does
    // not list it; Telemetry's group has none, so its collection was asked at each version (404s).
    const missing = server.requests.filter(
      (r) => r.path.includes("telemetries") || r.path.includes("sidecars"),
    );
    expect(missing.map((r) => [r.path, r.watch])).toEqual([
      ["/apis/telemetry.istio.io/v1/namespaces/prod/telemetries", false],
      ["/apis/telemetry.istio.io/v1alpha1/namespaces/prod/telemetries", false],
    ]);
  });

  it("starts watching a kind once its CRD is installed, and clears the warning", async () => {
    const s = startStore({ kinds: ["VirtualService", "Sidecar"], rediscoverMs: 50 });
    await s.synced();
    server.addCollection({
      group: "networking.istio.io",
      version: "v1",
      plural: "sidecars",
      namespaced: true,
    });
    server.put(VS, "Sidecar", {
      metadata: { name: "default", namespace: "prod", labels: { mesh: "on" } },
      spec: { egress: [{ hosts: ["./*", "istio-system/*"] }] },
    });
    const snap = await s.waitFor((x) => x.get("Sidecar", "prod", "default") !== undefined);
    expect(snap.get("Sidecar", "prod", "default")?.apiVersion).toBe("networking.istio.io/v1");
    const status = await firstValueFrom(s.status$.pipe(filter((st) => st.warnings.length === 0)));
    expect(status.errors).toEqual([]);
  });
});

describe("KubernetesSource against an Istio 1.21-style API server (no networking.istio.io/v1)", () => {
  const V1BETA1 = "networking.istio.io/v1beta1";
  let old: KubeApiServer;
  let oldStore: ConfigStore | undefined;

  beforeEach(async () => {
    old = await new KubeApiServer([
      {
        group: "networking.istio.io",
        version: "v1beta1",
        plural: "virtualservices",
        namespaced: true,
        kind: "VirtualService",
      },
      {
        group: "networking.istio.io",
        version: "v1alpha3",
        plural: "virtualservices",
        namespaced: true,
        kind: "VirtualService",
      },
      {
        group: "networking.istio.io",
        version: "v1alpha3",
        plural: "envoyfilters",
        namespaced: true,
        kind: "EnvoyFilter",
      },
      {
        group: "security.istio.io",
        version: "v1beta1",
        plural: "peerauthentications",
        namespaced: true,
        kind: "PeerAuthentication",
      },
    ]).start();
  });

  afterEach(async () => {
    oldStore?.close();
    oldStore = undefined;
    await old.close();
  });

  it("reads each kind at the newest version served and normalises objects to the preferred apiVersion", async () => {
    old.put(V1BETA1, "VirtualService", vs("prod", "reviews", {}));
    const source = new KubernetesSource({
      kubeConfig: kubeConfig(old.url),
      kinds: ["VirtualService", "EnvoyFilter"],
      backoff: { initialMs: 50, maxMs: 200 },
    });
    oldStore = new ConfigStore({ sources: [source], debounceMs: 10 }).start();
    const first = await oldStore.synced();
    const reviews = first.get("VirtualService", "prod", "reviews");
    expect(reviews?.apiVersion).toBe("networking.istio.io/v1");
    expect(first.originOf(reviews!)?.location).toBe(
      "/apis/networking.istio.io/v1beta1/virtualservices/reviews",
    );
    const lists = old.requests
      .filter((r) => !r.watch && r.path.endsWith("virtualservices"))
      .map((r) => r.path);
    expect(lists).toEqual(["/apis/networking.istio.io/v1beta1/virtualservices"]);
    expect(old.requests.some((r) => r.path.startsWith("/apis/networking.istio.io/v1/"))).toBe(false);
    const status = await firstValueFrom(oldStore.status$);
    expect(status.warnings).toEqual([]);
  });

  it("honours a pinned version only when it is served", async () => {
    const source = new KubernetesSource({
      kubeConfig: kubeConfig(old.url),
      kinds: [{ kind: "VirtualService", version: "v1" }, "PeerAuthentication"],
    });
    oldStore = new ConfigStore({ sources: [source], debounceMs: 10 }).start();
    await oldStore.synced();
    const status = await firstValueFrom(oldStore.status$);
    expect(status.warnings.map((w) => w.resource)).toEqual(["VirtualService"]);
    expect(old.requests.some((r) => r.path === "/apis/security.istio.io/v1beta1/peerauthentications")).toBe(
      true,
    );
  });
});

describe("KubernetesSource against a server that answers no discovery documents", () => {
  it("asks each version's collection directly, and still skips what is not there", async () => {
    const bare = await new KubeApiServer(
      [
        { group: "networking.istio.io", version: "v1beta1", plural: "virtualservices", namespaced: true },
        { group: "", version: "v1", plural: "namespaces", namespaced: false },
      ],
      { discovery: false },
    ).start();
    const source = new KubernetesSource({
      kubeConfig: kubeConfig(bare.url),
      kinds: ["VirtualService", "Namespace", "Sidecar"],
    });
    const s = new ConfigStore({ sources: [source], debounceMs: 10 }).start();
    try {
      bare.put("networking.istio.io/v1beta1", "VirtualService", vs("prod", "reviews", {}));
      const first = await s.synced();
      expect(first.get("VirtualService", "prod", "reviews")?.apiVersion).toBe("networking.istio.io/v1");
      const status = await firstValueFrom(s.status$);
      expect(status.warnings.map((w) => w.resource)).toEqual(["Sidecar"]);
    } finally {
      s.close();
      await bare.close();
    }
  });
});
