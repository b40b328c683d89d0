import type { Etcd3, IKeyValue, IOptions, Watcher } from "etcd3";
import { Observable, type Subscriber } from "rxjs";
import { ConfigError } from "../config-error.js";
import { DiagnosticCode } from "../diagnostic-code.js";
import { parseDocuments } from "../parse-documents.js";
import type { ConfigEvent, ConfigSource } from "./config-source.js";

/** Options for {@link EtcdSource}. */
export interface EtcdSourceOptions {
  /** Key prefix holding one resource (YAML or JSON) per key, e.g. `/meshlet/config/`. */
  readonly prefix: string;
  /** Connection options for the `etcd3` client (hosts, TLS credentials, auth). Ignored when `client` is given. */
  readonly etcd?: IOptions;
  /** A client you manage (and close) yourself. */
  readonly client?: Etcd3;
  /** Defaults to `etcd`. */
  readonly name?: string;
}

/**
 * Resources stored in etcd under a key prefix, one YAML or JSON resource per key: the distributed
 * store for meshes that run without Kubernetes (every control-plane replica watches the same prefix).
 *
 * Lists the prefix, then watches it from the list's revision + 1, so no change between list and
 * watch is lost. The `etcd3` watcher reconnects by itself and resumes from the last revision it saw
 * (`connection` events report the outage meanwhile). If etcd cannot resume (the revision was
 * compacted) the observable errors and the store relists with backoff, keeping the last good
 * resources until then. Diagnostics use the key as their `file`, with line/column inside the value.
 */
export class EtcdSource implements ConfigSource {
  readonly name: string;
  readonly events$: Observable<ConfigEvent>;
  /** Keys whose current value could not be read; cleared when a good value or a delete arrives. */
  readonly #withProblems = new Set<string>();

  constructor(options: EtcdSourceOptions) {
    if (options.client === undefined && options.etcd === undefined) {
      throw new ConfigError(
        "INVALID_ARGUMENT",
        "EtcdSource needs either `client` or `etcd` connection options (hosts)",
      );
    }
    this.name = options.name ?? "etcd";
    this.events$ = new Observable<ConfigEvent>((subscriber) => {
      const ownClient = options.client === undefined;
      let client = options.client;
      let watcher: Watcher | undefined;
      let closed = false;
      const run = async () => {
        // Loaded on first use: gRPC and protobuf loading cost ~0.4 s that file-only users never pay.
        if (client === undefined) {
          const etcd3 = await import("etcd3").catch((cause: unknown) => {
            throw new ConfigError(
              "SOURCE_FAILED",
              "EtcdSource needs the optional peer dependency etcd3@^1.1.2: npm install etcd3",
              { cause },
            );
          });
          client = new etcd3.Etcd3(options.etcd);
        }
        if (closed) {
          if (ownClient) client.close();
          return;
        }
        const known = new Set<string>();
        const response = await client.getAll().prefix(options.prefix).exec();
        if (closed) return;
        for (const kv of response.kvs) this.#emitPut(subscriber, kv, known);
        const next = (BigInt(response.header.revision) + 1n).toString();
        // `watcher()` attaches at once (unlike `create()`, which waits for etcd to confirm), so the
        // handlers are in place before `synced` and an outage right after the list is still seen.
        watcher = client.watch().prefix(options.prefix).startRevision(next).watcher();
        watcher
          .on("put", (kv) => this.#emitPut(subscriber, kv, known))
          .on("delete", (kv) => {
            const key = kv.key.toString();
            if (known.delete(key)) subscriber.next({ type: "delete", id: key });
            if (this.#withProblems.delete(key))
              subscriber.next({ type: "problems", scope: key, diagnostics: [] });
          })
          .on("disconnected", (error) =>
            subscriber.next({ type: "connection", connected: false, error: error.message }),
          )
          .on("connected", () => subscriber.next({ type: "connection", connected: true }))
          // Unrecoverable (e.g. compacted revision): let the store resubscribe, which relists.
          .on("error", (error) => subscriber.error(error));
        subscriber.next({ type: "synced" });
      };
      run().catch((error: unknown) => {
        if (!closed) subscriber.error(error);
      });
      return () => {
        closed = true;
        const cancel = watcher?.cancel() ?? Promise.resolve();
        void cancel
          .catch(() => undefined)
          .finally(() => {
            if (ownClient) client?.close();
          });
      };
    });
  }

  #emitPut(subscriber: Subscriber<ConfigEvent>, kv: IKeyValue, known: Set<string>): void {
    const key = kv.key.toString();
    const parsed = parseDocuments(kv.value.toString(), { source: this.name, file: key });
    const docs = parsed.documents;
    if (parsed.diagnostics.length > 0 || docs.length !== 1) {
      // Keep the last good version of this key; report why the new one was not taken.
      const diagnostics =
        parsed.diagnostics.length > 0
          ? parsed.diagnostics
          : [
              {
                severity: "error" as const,
                code: DiagnosticCode.ParseError,
                message: `expected exactly one resource in the value of ${key}, found ${docs.length}`,
                source: this.name,
                file: key,
              },
            ];
      subscriber.next({ type: "problems", scope: key, diagnostics });
      this.#withProblems.add(key);
      return;
    }
    const doc = docs[0]!;
    const type = known.has(key) ? "update" : "add";
    known.add(key);
    subscriber.next({
      type,
      id: key,
      object: doc.object,
      origin: { ...doc.origin, location: `${key}@${kv.mod_revision}` },
    });
    if (this.#withProblems.delete(key)) subscriber.next({ type: "problems", scope: key, diagnostics: [] });
  }
}
