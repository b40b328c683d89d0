import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { filter, firstValueFrom, config as rxjsConfig, throwError, VirtualTimeScheduler } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CaError,
  CertificateAuthority,
  DirectoryRootStore,
  ISTIO_CA_SECRET,
  KubernetesSecretRootStore,
  type RootRotation,
  type RootStore,
  type StoredRoot,
  silentLogger,
} from "../src/index.js";
import { tempDir } from "./helpers.js";
import { KubeSecretsServer } from "./support/kube-secrets-server.js";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const HOUR = 3_600_000;

function virtualTime() {
  const scheduler = new VirtualTimeScheduler();
  const base = Date.now();
  /** Moves virtual time to `t` (ms after base), running everything scheduled up to then. */
  const advanceTo = (t: number) => {
    scheduler.schedule(() => {}, t - scheduler.now());
    scheduler.maxFrames = t;
    scheduler.flush();
  };
  return { scheduler, clock: () => base + scheduler.now(), advanceTo };
}

const rootsOf = (ca: CertificateAuthority) => ca.trustBundle.roots;

describe("new-key rotation of a stored root, whose leaves this process has not all seen", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /**
   * A root loaded from a store was used before this process started (or by other replicas): leaves
   * of up to `maxTtl` may be in use that this process never issued. The propagation wait and the
   * old root's retirement must cover them, not just what this process saw.
   */
  async function restartedAfterLongLeaf() {
    const tmp = await tempDir("rotation-store");
    cleanups.push(() => tmp.cleanup());
    const time = virtualTime();
    const directory = new DirectoryRootStore(tmp.dir);
    // The directory store, recording each update as it is asked for (synchronously, so a step
    // taken too early shows at the virtual instant it happens, before the write completes).
    const updates: StoredRoot[] = [];
    const store: RootStore = {
      location: directory.location,
      load: () => directory.load(),
      create: (root) => directory.create(root),
      update: (root) => {
        updates.push(root);
        return directory.update(root);
      },
    };
    const options = {
      trustDomain: TD,
      store,
      defaultTtl: "1h",
      maxTtl: "10h",
      clock: time.clock,
      scheduler: time.scheduler,
    } as const;
    const first = await CertificateAuthority.selfSigned(options);
    const longLeaf = await first.mintSvid({ identity: WEB, ttl: "10h" });
    first.close();
    const restarted = await CertificateAuthority.selfSigned(options);
    cleanups.push(() => restarted.close());
    const activated = firstValueFrom(restarted.rootRotation$.pipe(filter((r) => r.phase === "activated")));
    return { ...time, restarted, updates, activated, longLeaf };
  }

  it("waits maxTtl before the new key signs: a peer holding a 10h leaf issued before the restart may only learn the bundle when it renews", async () => {
    const { restarted, updates, activated, advanceTo } = await restartedAfterLongLeaf();
    const rotation = await restarted.rotateRoot({ mode: "new-key" });
    const signingStored = () => updates.filter((u) => u.cert === rotation.root);
    advanceTo(HOUR + 1);
    expect(signingStored()).toEqual([]);
    advanceTo(10 * HOUR - 1);
    expect(signingStored()).toEqual([]);
    advanceTo(10 * HOUR);
    expect(signingStored()).toHaveLength(1);
    await activated;
    expect(restarted.signingCertificate).toBe(rotation.root);
  });

  it("keeps the old root trusted until a leaf issued before the restart has expired", async () => {
    const { restarted, updates, activated, advanceTo, longLeaf, clock } = await restartedAfterLongLeaf();
    const oldRoot = longLeaf.chain[longLeaf.chain.length - 1] as string;
    const rotation = await restarted.rotateRoot({ mode: "new-key", activateAfter: "1h" });
    advanceTo(HOUR);
    await activated;
    // The long leaf lives until 10h after it was issued: its root must stay in the bundle, and
    // no stored state may drop it, until then (peers verify the leaf with it).
    const start = clock() - HOUR;
    advanceTo(longLeaf.notAfter.getTime() - start - 1000);
    expect(rootsOf(restarted)).toContain(oldRoot);
    expect(updates.every((u) => u.roots.includes(oldRoot))).toBe(true);
    expect(rotation.phase).toBe("prepared");
  });
});

describe("rotation and the root store", () => {
  const TOKEN = "ca-service-account-token";
  let api: KubeSecretsServer;
  beforeAll(async () => {
    api = await new KubeSecretsServer(TOKEN).start();
  });
  afterAll(() => api.stop());
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const store = (namespace: string, extra: { scheduler?: VirtualTimeScheduler } = {}) =>
    new KubernetesSecretRootStore({
      apiServer: api.url,
      bearerToken: TOKEN,
      namespace,
      pollInterval: "1m",
      ...extra,
    });
  const storedCert = (namespace: string) =>
    Buffer.from(
      (api.secrets.get(`${namespace}/${ISTIO_CA_SECRET.name}`) as { data: Record<string, string> }).data[
        "ca-cert.pem"
      ] as string,
      "base64",
    ).toString();

  it("a rotation the store refuses (409: another replica changed it) changes nothing and says why", async () => {
    const a = await CertificateAuthority.selfSigned({ trustDomain: TD, store: store("conflict") });
    const b = await CertificateAuthority.selfSigned({ trustDomain: TD, store: store("conflict") });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const fromA = await a.rotateRoot({ mode: "keep-key" });
    const before = b.trustBundle;
    const steps: RootRotation[] = [];
    b.rootRotation$.subscribe((r) => steps.push(r));
    // b still holds the resourceVersion from before a's rotation: its PUT answers 409 Conflict.
    const error = await b.rotateRoot({ mode: "new-key" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CaError);
    expect((error as CaError).code).toBe("root-store");
    expect((error as CaError).message).toMatch(/409/);
    // Nothing was published or switched: b's bundle is what it was, the store holds a's root.
    expect(b.trustBundle).toBe(before);
    expect(steps).toEqual([]);
    expect(storedCert("conflict")).toBe(fromA.root);
    // b can rotate later (no rotation is left "in flight").
    await expect(b.rotateRoot({ mode: "keep-key" })).rejects.toThrow(/409/);
  });

  it("a prepared rotation is abandoned when the stored root is replaced underneath it: signing never switches to a root the bundle lost", async () => {
    const time = virtualTime();
    const ca = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: store("replaced", { scheduler: time.scheduler }),
      clock: time.clock,
      scheduler: time.scheduler,
      defaultTtl: "1h",
    });
    cleanups.push(() => ca.close());
    await ca.rotateRoot({ mode: "new-key", activateAfter: "2h" });
    // An operator (or a replica using another store client) replaces the Secret with another root.
    const tmp = await tempDir("other-root");
    cleanups.push(() => tmp.cleanup());
    const other = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: new DirectoryRootStore(tmp.dir),
    });
    other.close();
    const file = (name: string) => readFile(join(tmp.dir, name), "utf8");
    const otherRoot = await file("ca-cert.pem");
    const secret = api.secrets.get(`replaced/${ISTIO_CA_SECRET.name}`) as Record<string, unknown>;
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    api.put("replaced", {
      ...secret,
      data: {
        "ca-cert.pem": b64(otherRoot),
        "ca-key.pem": b64(await file("ca-key.pem")),
        "root-cert.pem": b64(otherRoot),
      },
    });
    const followed = firstValueFrom(ca.trustBundle$.pipe(filter((b) => b.roots.includes(otherRoot))));
    time.advanceTo(60_000); // the store's poll
    await followed;
    time.advanceTo(3 * HOUR); // past activateAfter
    expect(ca.signingCertificate).toBe(otherRoot);
    const svid = await ca.mintSvid({ identity: WEB });
    expect(svid.chain.at(-1)).toBe(otherRoot);
  });
});

describe("one root rotation at a time", () => {
  it("refuses a keep-key rotation while a new-key rotation is in flight (it would leave a root that never retires)", async () => {
    const time = virtualTime();
    const ca = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      clock: time.clock,
      scheduler: time.scheduler,
    });
    const prepared = await ca.rotateRoot({ mode: "new-key", activateAfter: "1h", overlap: "1h" });
    await expect(ca.rotateRoot({ mode: "keep-key" })).rejects.toThrow(/in progress/);
    time.advanceTo(5 * HOUR);
    expect(ca.trustBundle.roots).toEqual([prepared.root]);
    await expect(ca.rotateRoot({ mode: "keep-key" })).resolves.toMatchObject({ phase: "activated" });
    ca.close();
  });
});

describe("a root store whose change feed fails", () => {
  it("is logged and the CA keeps serving (an unhandled observable error would crash the process)", async () => {
    const unhandled: unknown[] = [];
    const previous = rxjsConfig.onUnhandledError;
    rxjsConfig.onUnhandledError = (error) => unhandled.push(error);
    const errors: string[] = [];
    const logger = { ...silentLogger, error: (message: string) => errors.push(message) };
    let stored: StoredRoot | undefined;
    const store: RootStore = {
      location: "failing-feed",
      load: async () => stored,
      create: async (root) => {
        stored = root;
        return root;
      },
      update: async (root) => {
        stored = root;
      },
      // e.g. fs.watch failing (inotify limit reached) or a watch stream dropped for good.
      changes$: throwError(() => new Error("ENOSPC: System limit for number of file watchers reached")),
    };
    try {
      const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, store, logger });
      // RxJS reports an unhandled error from a setTimeout(0): let that timer run first.
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(unhandled).toEqual([]);
      expect(errors.join("\n")).toMatch(/no longer followed/);
      await expect(ca.mintSvid({ identity: WEB })).resolves.toBeDefined();
      ca.close();
    } finally {
      rxjsConfig.onUnhandledError = previous;
    }
  });
});
