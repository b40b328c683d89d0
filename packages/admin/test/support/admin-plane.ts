import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type AdminServer,
  createMeshAdmin,
  type ListenAdminOptions,
  listenAdmin,
  type MeshAdminOptions,
  type MeshAdminService,
} from "@meshlet/admin";
import { ConfigStore, FileSource } from "@meshlet/config";
import { envoyGenerators, MeshController, type PushEvent } from "@meshlet/mesh";
import { type ListeningServer, SnapshotCache, silentLogger, XdsServer } from "@meshlet/xds";
import { filter, firstValueFrom } from "rxjs";

// A real control plane for the admin tests: YAML files in a temporary directory (FileSource,
// watched, as `meshlet serve` reads them), ConfigStore, MeshController with the Envoy and proxyless
// generators, XdsServer on 127.0.0.1:0, and the admin API on its own 127.0.0.1:0 listener.

/** Istio's Bookinfo sample files, as pinned (with their upstream source) in @meshlet/mesh's testdata. */
export const BOOKINFO_DIR = fileURLToPath(
  new URL("../../../mesh/src/envoy/testdata/bookinfo/", import.meta.url),
);

/** What a test drives. */
export interface AdminPlane {
  readonly dir: string;
  readonly xdsPort: number;
  readonly admin: MeshAdminService;
  readonly server: AdminServer;
  readonly controller: MeshController;
  readonly xds: XdsServer;
  /** Writes (or replaces) a config file and resolves once the controller pushed a config change. */
  write(name: string, yaml: string): Promise<PushEvent>;
  close(): Promise<void>;
}

/** Copies Bookinfo sample files into the config directory. */
export async function bookinfoFiles(...names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = await readFile(join(BOOKINFO_DIR, n), "utf8");
  return out;
}

/** Starts the plane with `files` (name → YAML) as its config. */
export async function startAdminPlane(
  files: Record<string, string>,
  options: {
    readonly admin?: Partial<MeshAdminOptions>;
    readonly listen?: ListenAdminOptions;
  } = {},
): Promise<AdminPlane> {
  const dir = await mkdtemp(join(tmpdir(), "meshlet-admin-"));
  for (const [name, yaml] of Object.entries(files)) await writeFile(join(dir, name), yaml);
  const store = new ConfigStore({
    sources: [new FileSource({ paths: [dir], settleMs: 20 })],
    debounceMs: 20,
    maxDelayMs: 200,
  });
  const cache = new SnapshotCache();
  const controller = new MeshController({
    config: store,
    cache,
    debounceMs: 20,
    generators: envoyGenerators(),
  });
  const xds = new XdsServer({ cache, logger: silentLogger, authorize: controller.authorize });
  controller.attach(xds);
  const admin = createMeshAdmin({
    xds,
    controller,
    config: store,
    controlPlaneId: "meshlet-test",
    displayPath: (f) => f.slice(dir.length + 1),
    ...options.admin,
  });
  const first = firstValueFrom(controller.pushes$.pipe(filter((p) => p.cause === "config")));
  controller.start();
  await first;
  let listening: ListeningServer | undefined;
  let server: AdminServer | undefined;
  try {
    listening = await xds.listen({ address: "127.0.0.1:0" });
    server = await listenAdmin(admin, { address: "127.0.0.1:0", ...options.listen });
  } catch (error) {
    await listening?.close();
    admin.close();
    controller.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const srv = server;
  const lis = listening;
  return {
    dir,
    xdsPort: lis.port,
    admin,
    server: srv,
    controller,
    xds,
    async write(name, yaml) {
      const pushed = firstValueFrom(
        controller.pushes$.pipe(filter((p) => p.cause === "config" && p.configs.length > 0)),
      );
      await writeFile(join(dir, name), yaml);
      return pushed;
    },
    async close() {
      await srv.close(200);
      admin.close();
      controller.close();
      store.close();
      await lis.close();
      xds.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
