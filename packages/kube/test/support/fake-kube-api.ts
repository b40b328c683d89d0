import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// A FAKE Kubernetes API server: no real one can run here. It speaks the documented REST shape for
// the two collections the root-certificate publisher uses ("Kubernetes API Concepts": lists carry
// metadata.resourceVersion; `?watch=true` streams newline-delimited {type, object} events after a
// resourceVersion; fieldSelector metadata.name=…; POST creates, 409 AlreadyExists; PUT replaces with
// optimistic concurrency, 409 Conflict on a stale resourceVersion; errors are v1 Status objects;
// creating in a terminating namespace is 403 with cause NamespaceTerminating, in a missing one 404).
// Modelled on packages/config/test/support/kube-api-server.ts, with writes added.

type Obj = {
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

interface Watcher {
  readonly collection: "namespaces" | "configmaps";
  readonly name?: string;
  readonly res: ServerResponse;
}

export interface Recorded {
  readonly method: string;
  readonly path: string;
}

export class FakeKubeApi {
  url = "";
  readonly requests: Recorded[] = [];
  /** Namespaces where writes are forbidden (403), as without RBAC. */
  readonly forbidden = new Set<string>();
  #server: Server | undefined;
  #rv = 1000;
  readonly #namespaces = new Map<string, Obj>();
  readonly #configMaps = new Map<string, Obj>(); // ns/name
  readonly #history: Array<{ rv: number; collection: Watcher["collection"]; type: string; object: Obj }> = [];
  readonly #watchers = new Set<Watcher>();
  #failWrites = 0;

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => this.#handle(req, res, Buffer.concat(chunks).toString("utf8")));
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  putNamespace(name: string, phase: "Active" | "Terminating" = "Active"): void {
    this.#store("namespaces", this.#namespaces, name, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name },
      status: { phase },
    });
  }

  /** A ConfigMap as a user would write it (kubectl edit/apply), bypassing the publisher. */
  putConfigMap(
    namespace: string,
    name: string,
    data: Record<string, string>,
    labels: Record<string, string> = {},
  ): void {
    const existing = this.#configMaps.get(`${namespace}/${name}`);
    this.#store("configmaps", this.#configMaps, `${namespace}/${name}`, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { ...(existing?.metadata ?? {}), name, namespace, labels },
      data,
    });
  }

  deleteConfigMap(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const existing = this.#configMaps.get(key);
    if (existing === undefined) return;
    this.#configMaps.delete(key);
    this.#emit("configmaps", "DELETED", {
      ...existing,
      metadata: { ...existing.metadata, resourceVersion: String(++this.#rv) },
    });
  }

  configMap(namespace: string, name: string): Obj | undefined {
    return this.#configMaps.get(`${namespace}/${name}`);
  }

  /** The next `n` writes fail with 500. */
  failWrites(n: number): void {
    this.#failWrites = n;
  }

  #store(collection: Watcher["collection"], map: Map<string, Obj>, key: string, obj: Obj): Obj {
    const type = map.has(key) ? "MODIFIED" : "ADDED";
    const stored: Obj = {
      ...obj,
      metadata: {
        uid: (map.get(key)?.metadata.uid as string | undefined) ?? randomUUID(),
        creationTimestamp: new Date(0).toISOString(),
        ...obj.metadata,
        resourceVersion: String(++this.#rv),
      },
    };
    map.set(key, stored);
    this.#emit(collection, type, stored);
    return stored;
  }

  #emit(collection: Watcher["collection"], type: string, object: Obj): void {
    this.#history.push({ rv: Number(object.metadata.resourceVersion), collection, type, object });
    for (const w of this.#watchers) {
      if (w.collection === collection && (w.name === undefined || w.name === object.metadata.name)) {
        w.res.write(`${JSON.stringify({ type, object })}\n`);
      }
    }
  }

  #status(res: ServerResponse, code: number, reason: string, message: string, causes: string[] = []): void {
    res.writeHead(code, { "content-type": "application/json" }).end(
      JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message,
        reason,
        ...(causes.length > 0 ? { details: { causes: causes.map((r) => ({ reason: r, message })) } } : {}),
        code,
      }),
    );
  }

  #handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    this.requests.push({ method, path: url.pathname });
    const fieldSelector = url.searchParams.get("fieldSelector");
    const name = fieldSelector?.startsWith("metadata.name=")
      ? fieldSelector.slice("metadata.name=".length)
      : undefined;
    const json = (code: number, obj: unknown) =>
      res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(obj));

    const collection =
      url.pathname === "/api/v1/namespaces"
        ? "namespaces"
        : url.pathname === "/api/v1/configmaps"
          ? "configmaps"
          : undefined;
    if (method === "GET" && collection !== undefined) {
      const map = collection === "namespaces" ? this.#namespaces : this.#configMaps;
      if (url.searchParams.get("watch") !== "true") {
        const items = [...map.values()].filter((o) => name === undefined || o.metadata.name === name);
        json(200, {
          apiVersion: "v1",
          kind: collection === "namespaces" ? "NamespaceList" : "ConfigMapList",
          metadata: { resourceVersion: String(this.#rv) },
          items,
        });
        return;
      }
      const from = Number(url.searchParams.get("resourceVersion") ?? "0");
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
      res.flushHeaders();
      for (const e of this.#history) {
        if (
          e.rv > from &&
          e.collection === collection &&
          (name === undefined || e.object.metadata.name === name)
        ) {
          res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
        }
      }
      const watcher: Watcher = { collection, ...(name !== undefined ? { name } : {}), res };
      this.#watchers.add(watcher);
      // The response, not the request: a request whose (empty) body has been read is already closed.
      res.on("close", () => this.#watchers.delete(watcher));
      return;
    }

    const create = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/.exec(url.pathname);
    const replace = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/.exec(url.pathname);
    if ((method === "POST" && create !== null) || (method === "PUT" && replace !== null)) {
      const namespace = decodeURIComponent((create ?? replace)?.[1] as string);
      if (this.#failWrites > 0) {
        this.#failWrites--;
        this.#status(res, 500, "InternalError", "etcdserver: request timed out");
        return;
      }
      if (this.forbidden.has(namespace)) {
        this.#status(
          res,
          403,
          "Forbidden",
          `configmaps is forbidden: User cannot create resource "configmaps" in namespace "${namespace}"`,
        );
        return;
      }
      const ns = this.#namespaces.get(namespace);
      if (ns === undefined) {
        this.#status(res, 404, "NotFound", `namespaces "${namespace}" not found`);
        return;
      }
      const obj = JSON.parse(body) as Obj;
      const key = `${namespace}/${obj.metadata.name}`;
      if (create !== null) {
        if ((ns.status as { phase?: string }).phase === "Terminating") {
          this.#status(
            res,
            403,
            "Forbidden",
            `unable to create new content in namespace ${namespace} because it is being terminated`,
            ["NamespaceTerminating"],
          );
          return;
        }
        if (this.#configMaps.has(key)) {
          this.#status(res, 409, "AlreadyExists", `configmaps "${obj.metadata.name}" already exists`);
          return;
        }
        json(
          201,
          this.#store("configmaps", this.#configMaps, key, {
            ...obj,
            metadata: { ...obj.metadata, namespace },
          }),
        );
        return;
      }
      const current = this.#configMaps.get(key);
      if (current === undefined) {
        this.#status(res, 404, "NotFound", `configmaps "${obj.metadata.name}" not found`);
        return;
      }
      if (obj.metadata.resourceVersion !== current.metadata.resourceVersion) {
        this.#status(
          res,
          409,
          "Conflict",
          `Operation cannot be fulfilled on configmaps "${obj.metadata.name}": the object has been modified`,
        );
        return;
      }
      json(200, this.#store("configmaps", this.#configMaps, key, obj));
      return;
    }
    this.#status(
      res,
      404,
      "NotFound",
      `the server could not find the requested resource (${method} ${url.pathname})`,
    );
  }
}
