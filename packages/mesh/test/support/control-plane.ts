import { ConfigStore, MemorySource, parseDocuments } from "@meshlet/config";
import { MeshController, type MeshStatus, type PushEvent } from "@meshlet/mesh";
import { type ListeningServer, SnapshotCache, silentLogger, type XdsEvent, XdsServer } from "@meshlet/xds";
import { filter, firstValueFrom, type Subscription } from "rxjs";

/** MeshController + SnapshotCache + XdsServer on 127.0.0.1, config from memory. */
export interface MeshControlPlane {
  readonly port: number;
  readonly controller: MeshController;
  /** Every xDS event since start (NACKs included). */
  readonly events: XdsEvent[];
  /** Applies YAML documents (add or replace) and resolves once the controller pushed them. */
  apply(yaml: string): Promise<PushEvent>;
  /** Deletes objects and resolves once the controller pushed the change. */
  remove(...keys: Array<[kind: string, namespace: string, name: string]>): Promise<PushEvent>;
  /** The latest status. */
  status(): MeshStatus;
  close(): Promise<void>;
}

/** Starts a control plane with `yaml` as its initial config. */
export async function startControlPlane(
  yaml = "",
  options: { readonly maxResourceNamesPerType?: number } = {},
): Promise<MeshControlPlane> {
  const objects = (text: string) => parseDocuments(text, { source: "test" }).documents.map((d) => d.object);
  const source = new MemorySource({ objects: objects(yaml) });
  const store = new ConfigStore({ sources: [source], debounceMs: 20, maxDelayMs: 200 });
  const cache = new SnapshotCache();
  const controller = new MeshController({ config: store, cache, debounceMs: 20, ...options });
  const xds = new XdsServer({
    cache,
    logger: silentLogger,
    authorize: controller.authorize,
    maxResourceNamesPerType: controller.maxResourceNamesPerType,
  });
  const events: XdsEvent[] = [];
  const tasks: Subscription[] = [xds.events$.subscribe((e) => events.push(e))];
  let status: MeshStatus | undefined;
  tasks.push(controller.status$.subscribe((s) => (status = s)));
  controller.attach(xds);
  const first = firstValueFrom(controller.pushes$.pipe(filter((p) => p.cause === "config")));
  controller.start();
  await first;
  const listening: ListeningServer = await xds.listen({ address: "127.0.0.1:0" });
  const pushed = () => firstValueFrom(controller.pushes$.pipe(filter((p) => p.cause === "config")));
  return {
    port: listening.port,
    controller,
    events,
    async apply(text) {
      const next = pushed();
      for (const o of objects(text)) source.set(o);
      return next;
    },
    async remove(...keys) {
      const next = pushed();
      for (const [kind, ns, name] of keys) source.delete(kind, ns, name);
      return next;
    },
    status: () => status as MeshStatus,
    async close() {
      for (const t of tasks) t.unsubscribe();
      controller.close();
      store.close();
      await listening.close();
      xds.close();
    },
  };
}
