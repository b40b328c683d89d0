import { Observable, Subject } from "rxjs";
import { ConfigError } from "../config-error.js";
import { type ConfigEvent, type ConfigSource, objectId } from "./config-source.js";

/** Options for {@link MemorySource}. */
export interface MemorySourceOptions {
  /** Defaults to `memory`. */
  readonly name?: string;
  /** Objects present from the start. */
  readonly objects?: readonly unknown[];
}

/**
 * Config held in memory: for programmatic control planes and for tests. Objects are identified by
 * `kind/namespace/name`; `set` adds or replaces, `delete` removes. Every subscriber first receives
 * the current objects and `synced`, then each change.
 */
export class MemorySource implements ConfigSource {
  readonly name: string;
  readonly events$: Observable<ConfigEvent>;
  readonly #objects = new Map<string, unknown>();
  readonly #changes = new Subject<ConfigEvent>();

  constructor(options: MemorySourceOptions = {}) {
    this.name = options.name ?? "memory";
    for (const o of options.objects ?? []) this.#objects.set(this.#id(o), o);
    this.events$ = new Observable<ConfigEvent>((subscriber) => {
      for (const [id, object] of this.#objects)
        subscriber.next({ type: "add", id, object, origin: { source: this.name, location: id } });
      subscriber.next({ type: "synced" });
      return this.#changes.subscribe(subscriber);
    });
  }

  /** Adds or replaces an object (it is validated by the store, not here). */
  set(object: unknown): this {
    const id = this.#id(object);
    const type = this.#objects.has(id) ? "update" : "add";
    this.#objects.set(id, object);
    this.#changes.next({ type, id, object, origin: { source: this.name, location: id } });
    return this;
  }

  /** Removes the object with this kind, namespace and name; returns whether it existed. */
  delete(kind: string, namespace: string, name: string): boolean {
    const id = `${kind}/${namespace}/${name}`;
    if (!this.#objects.delete(id)) return false;
    this.#changes.next({ type: "delete", id });
    return true;
  }

  /** Current objects. */
  list(): unknown[] {
    return [...this.#objects.values()];
  }

  #id(object: unknown): string {
    const id = objectId(object);
    if (id === undefined) {
      throw new ConfigError("INVALID_ARGUMENT", "MemorySource objects need a string kind and metadata.name");
    }
    return id;
  }
}
