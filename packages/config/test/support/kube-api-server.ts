import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// A local HTTP server that speaks the Kubernetes API list/watch protocol, because no API server can
// run here. It implements what informers rely on, as documented in "Kubernetes API Concepts"
// (efficient detection of changes, watch bookmarks, 410 Gone):
// - GET <collection>            → a List with metadata.resourceVersion (labelSelector, limit/continue)
// - GET <collection>?watch=true → a chunked stream of JSON lines {type, object}: ADDED, MODIFIED,
//   DELETED after the given resourceVersion, BOOKMARK when asked, and, for a resourceVersion older
//   than the retained history, an ERROR event with a 410 Status, then the stream ends.
// - API discovery, as `kubectl api-resources` and clients read it: GET /api (APIVersions), /apis
//   (APIGroupList), /apis/<group> (APIGroup) and /api/v1, /apis/<group>/<version> (APIResourceList),
//   listing only the collections this server was given: a group or version not given is a 404, as
//   on a cluster where that CRD (or that version of it) is not installed.
// Collections are keyed by their path (/api/v1/pods, /apis/g/v/namespaces/ns/plural).

type Obj = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
} & Record<string, unknown>;

interface Collection {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** The kind, for discovery documents. */
  readonly kind?: string;
}

interface HistoryEvent {
  readonly rv: number;
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: Obj;
  readonly collection: string;
}

interface Watcher {
  readonly collection: string;
  readonly namespace: string | undefined;
  readonly selector: Array<[string, string]>;
  readonly res: ServerResponse;
}

export interface RecordedRequest {
  readonly path: string;
  readonly watch: boolean;
  readonly resourceVersion: string | null;
  readonly allowWatchBookmarks: boolean;
  readonly labelSelector: string | null;
}

export class KubeApiServer {
  readonly requests: RecordedRequest[] = [];
  #server: Server | undefined;
  #rv = 100;
  /** Events at or below this resourceVersion are compacted away. */
  #compactedThrough = 0;
  #history: HistoryEvent[] = [];
  readonly #objects = new Map<string, Obj>(); // collection|ns|name
  readonly #watchers = new Set<Watcher>();
  #failures = 0;
  #waiters: Array<{ predicate: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }> = [];
  /** While true, changes are recorded but not streamed to open watches (a network partition). */
  holdWatches = false;
  readonly #collections: Collection[];

  /** Starts serving another collection, as when a CRD is installed while clients run. */
  addCollection(collection: Collection): void {
    this.#collections.push(collection);
  }
  url = "";

  /** Serve API discovery documents (default true); false plays an API server that offers none. */
  readonly #discoveryEnabled: boolean;

  constructor(collections: Collection[], options: { discovery?: boolean } = {}) {
    this.#collections = collections;
    this.#discoveryEnabled = options.discovery ?? true;
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** Creates or replaces an object and notifies matching watches. */
  put(apiVersion: string, kind: string, obj: Obj): string {
    const collection = this.#collectionOf(apiVersion, kind);
    const key = `${collection}|${obj.metadata.namespace ?? ""}|${obj.metadata.name}`;
    const rv = String(++this.#rv);
    const stored: Obj = { ...obj, apiVersion, kind, metadata: { ...obj.metadata, resourceVersion: rv } };
    const type = this.#objects.has(key) ? "MODIFIED" : "ADDED";
    this.#objects.set(key, stored);
    this.#record({ rv: this.#rv, type, object: stored, collection });
    return rv;
  }

  delete(apiVersion: string, kind: string, namespace: string, name: string): void {
    const collection = this.#collectionOf(apiVersion, kind);
    const key = `${collection}|${namespace}|${name}`;
    const existing = this.#objects.get(key);
    if (existing === undefined) return;
    this.#objects.delete(key);
    const rv = ++this.#rv;
    this.#record({
      rv,
      type: "DELETED",
      object: { ...existing, metadata: { ...existing.metadata, resourceVersion: String(rv) } },
      collection,
    });
  }

  /** Sends a BOOKMARK carrying the current resourceVersion to every open watch. */
  bookmark(): string {
    const rv = String(++this.#rv);
    for (const w of this.#watchers) {
      const c = this.#collections.find((x) => collectionPath(x) === w.collection)!;
      this.#send(w.res, {
        type: "BOOKMARK",
        object: { apiVersion: apiVersionOf(c), kind: "Bookmark", metadata: { resourceVersion: rv } },
      });
    }
    return rv;
  }

  /** Forgets history: a watch from any older resourceVersion now gets 410 Gone. */
  compact(): void {
    this.#compactedThrough = this.#rv;
    this.#history = [];
  }

  /** Ends every open watch stream, as an API server does on restart or timeout. */
  dropWatches(): void {
    for (const w of this.#watchers) w.res.end();
    this.#watchers.clear();
  }

  /** The next `n` requests fail with 503. */
  failNext(n: number): void {
    this.#failures = n;
  }

  /** Resolves with the first request (already received or future) matching `predicate`. */
  waitForRequest(predicate: (r: RecordedRequest) => boolean, after = 0): Promise<RecordedRequest> {
    const seen = this.requests.slice(after).find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ predicate, resolve }));
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  #collectionOf(apiVersion: string, kind: string): string {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const c = this.#collections.find(
      (x) => x.group === group && x.version === version && x.plural === `${kind.toLowerCase()}s`,
    );
    if (c === undefined) throw new Error(`no collection for ${apiVersion} ${kind}`);
    return collectionPath(c);
  }

  #record(event: HistoryEvent): void {
    this.#history.push(event);
    if (this.holdWatches) return;
    for (const w of this.#watchers) {
      if (w.collection === event.collection && this.#matches(w.namespace, w.selector, event.object)) {
        this.#send(w.res, { type: event.type, object: event.object });
      }
    }
  }

  #matches(namespace: string | undefined, selector: Array<[string, string]>, obj: Obj): boolean {
    if (namespace !== undefined && obj.metadata.namespace !== namespace) return false;
    return selector.every(([k, v]) => obj.metadata.labels?.[k] === v);
  }

  #send(res: ServerResponse, event: unknown): void {
    res.write(`${JSON.stringify(event)}\n`);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://localhost");
    const watch = url.searchParams.get("watch") === "true";
    const recorded: RecordedRequest = {
      path: url.pathname,
      watch,
      resourceVersion: url.searchParams.get("resourceVersion"),
      allowWatchBookmarks: url.searchParams.get("allowWatchBookmarks") === "true",
      labelSelector: url.searchParams.get("labelSelector"),
    };
    this.requests.push(recorded);
    for (const w of [...this.#waiters]) {
      if (w.predicate(recorded)) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(recorded);
      }
    }
    if (this.#failures > 0) {
      this.#failures--;
      res.writeHead(503, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          code: 503,
          reason: "ServiceUnavailable",
        }),
      );
      return;
    }
    const discovery = this.#discoveryEnabled ? this.#discovery(url.pathname) : undefined;
    if (discovery !== undefined) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(discovery));
      return;
    }
    const route = this.#route(url.pathname);
    if (route === undefined) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          code: 404,
          reason: "NotFound",
        }),
      );
      return;
    }
    const selector = parseSelector(url.searchParams.get("labelSelector"));
    if (!watch) {
      const items = [...this.#objects.entries()]
        .filter(
          ([key, obj]) =>
            key.startsWith(`${route.collection}|`) && this.#matches(route.namespace, selector, obj),
        )
        .map(([, obj]) => obj);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          apiVersion: apiVersionOf(route.c),
          kind: "List",
          metadata: { resourceVersion: String(this.#rv) },
          items,
        }),
      );
      return;
    }
    const from = Number(url.searchParams.get("resourceVersion") ?? "0");
    // Chunked transfer encoding: no content-length, one JSON event per line, flushed as it happens.
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    if (from > 0 && from < this.#compactedThrough) {
      this.#send(res, {
        type: "ERROR",
        object: {
          kind: "Status",
          apiVersion: "v1",
          status: "Failure",
          message: `too old resource version: ${from} (${this.#compactedThrough})`,
          reason: "Expired",
          code: 410,
        },
      });
      res.end();
      return;
    }
    for (const event of this.#history) {
      if (
        event.rv > from &&
        event.collection === route.collection &&
        this.#matches(route.namespace, selector, event.object)
      ) {
        this.#send(res, { type: event.type, object: event.object });
      }
    }
    const watcher: Watcher = { collection: route.collection, namespace: route.namespace, selector, res };
    this.#watchers.add(watcher);
    req.on("close", () => this.#watchers.delete(watcher));
  }

  /** The discovery document at `pathname`, or undefined when it is not a discovery path this server serves. */
  #discovery(pathname: string): unknown {
    const groups = [...new Set(this.#collections.filter((c) => c.group !== "").map((c) => c.group))];
    const versionsOf = (group: string) => [
      ...new Set(this.#collections.filter((c) => c.group === group).map((c) => c.version)),
    ];
    const resourceList = (group: string, version: string) => ({
      kind: "APIResourceList",
      apiVersion: "v1",
      groupVersion: group === "" ? version : `${group}/${version}`,
      resources: this.#collections
        .filter((c) => c.group === group && c.version === version)
        .map((c) => ({
          name: c.plural,
          namespaced: c.namespaced,
          kind: c.kind ?? "",
          verbs: ["list", "watch"],
        })),
    });
    const apiGroup = (group: string) => {
      const versions = versionsOf(group).map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
      return { name: group, versions, preferredVersion: versions[0] };
    };
    if (pathname === "/api") {
      const versions = versionsOf("");
      return versions.length > 0 ? { kind: "APIVersions", versions } : undefined;
    }
    if (pathname === "/apis") return { kind: "APIGroupList", apiVersion: "v1", groups: groups.map(apiGroup) };
    const core = /^\/api\/([^/]+)$/.exec(pathname);
    if (core !== null) {
      return versionsOf("").includes(core[1] as string) ? resourceList("", core[1] as string) : undefined;
    }
    const group = /^\/apis\/([^/]+)$/.exec(pathname);
    if (group !== null) {
      return groups.includes(group[1] as string)
        ? { kind: "APIGroup", apiVersion: "v1", ...apiGroup(group[1] as string) }
        : undefined;
    }
    const gv = /^\/apis\/([^/]+)\/([^/]+)$/.exec(pathname);
    if (gv !== null) {
      return versionsOf(gv[1] as string).includes(gv[2] as string)
        ? resourceList(gv[1] as string, gv[2] as string)
        : undefined;
    }
    return undefined;
  }

  #route(pathname: string): { c: Collection; collection: string; namespace: string | undefined } | undefined {
    for (const c of this.#collections) {
      const base = c.group === "" ? `/api/${c.version}` : `/apis/${c.group}/${c.version}`;
      if (pathname === `${base}/${c.plural}`)
        return { c, collection: collectionPath(c), namespace: undefined };
      const m = pathname.match(new RegExp(`^${escapeRegExp(base)}/namespaces/([^/]+)/${c.plural}$`));
      if (m !== null && c.namespaced)
        return { c, collection: collectionPath(c), namespace: decodeURIComponent(m[1]!) };
    }
    return undefined;
  }
}

function collectionPath(c: Collection): string {
  return `${c.group}/${c.version}/${c.plural}`;
}

function apiVersionOf(c: Collection): string {
  return c.group === "" ? c.version : `${c.group}/${c.version}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function parseSelector(text: string | null): Array<[string, string]> {
  if (text === null || text === "") return [];
  return text.split(",").map((part) => {
    const [k, v] = part.split("=");
    return [k ?? "", v ?? ""];
  });
}
