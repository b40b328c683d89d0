import type { Observable } from "rxjs";
import type { Diagnostic, Origin } from "../diagnostic.js";

/**
 * What a {@link ConfigSource} emits. Sources report raw objects; validation happens in the store,
 * so every source gets the same checks and the same error format.
 *
 * - `add` / `update`: an object with a source-unique `id` (stable across edits of the same resource).
 * - `delete`: the object with that `id` is gone.
 * - `synced`: the initial state (or a relist after a reconnect) has been fully emitted; any `id`
 *   the store knew from this source and that was not re-sent since the last connect is gone.
 * - `problems`: the current problems of one `scope` (a file, an etcd key, the connection) that are
 *   not tied to a resource, e.g. YAML syntax errors. An empty list clears the scope.
 * - `connection`: the source lost or regained its backend; its last good resources are kept.
 */
export type ConfigEvent =
  | {
      readonly type: "add" | "update";
      readonly id: string;
      readonly object: unknown;
      readonly origin: Origin;
    }
  | { readonly type: "delete"; readonly id: string }
  | { readonly type: "synced" }
  | { readonly type: "problems"; readonly scope: string; readonly diagnostics: readonly Diagnostic[] }
  | { readonly type: "connection"; readonly connected: boolean; readonly error?: string };

/**
 * A plug-in point for config: anything that can list and watch Kubernetes-style objects. meshlet
 * ships {@link FileSource}, {@link KubernetesSource}, {@link EtcdSource} and {@link MemorySource};
 * `@meshlet/adapters` and users implement more.
 *
 * `events$` is cold: each subscription lists (emitting `add`s then `synced`) and then watches until
 * unsubscribed. Sources never error the observable for a bad object; they error it only when they
 * cannot go on (the store then resubscribes with backoff).
 */
export interface ConfigSource {
  /** Names the source in diagnostics and status (`files`, `kubernetes`, `etcd`). */
  readonly name: string;
  readonly events$: Observable<ConfigEvent>;
}

/** A source-level id for an object: `kind/namespace/name` when the object says so. */
export function objectId(object: unknown): string | undefined {
  if (typeof object !== "object" || object === null) return undefined;
  const o = object as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (typeof o.kind !== "string" || typeof o.metadata?.name !== "string") return undefined;
  const ns = typeof o.metadata.namespace === "string" ? o.metadata.namespace : "";
  return `${o.kind}/${ns}/${o.metadata.name}`;
}
