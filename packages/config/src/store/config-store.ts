import {
  asyncScheduler,
  BehaviorSubject,
  defer,
  filter,
  firstValueFrom,
  map,
  type Observable,
  ReplaySubject,
  type SchedulerLike,
  type Subscription,
} from "rxjs";
import { analyze } from "../analyze.js";
import { ConfigError } from "../config-error.js";
import { ConfigSnapshot } from "../config-snapshot.js";
import type { Diagnostic, Origin } from "../diagnostic.js";
import { DiagnosticCode } from "../diagnostic-code.js";
import { KindRegistry } from "../kind-registry.js";
import { type Logger, silentLogger } from "../logger.js";
import { formatResourceKey, type Resource, resourceKeyOf } from "../resource.js";
import type { ConfigEvent, ConfigSource } from "../sources/config-source.js";
import { validateResource } from "../validate-resource.js";
import type { ConfigStatus, SourceStatus } from "./config-status.js";

/** Options for {@link ConfigStore}. */
export interface ConfigStoreOptions {
  /**
   * The sources, highest precedence first: when two sources define the same `kind/namespace/name`,
   * the one listed earlier wins (e.g. `[localOverrides, kubernetes]`).
   */
  readonly sources: readonly ConfigSource[];
  /** Kinds accepted; defaults to a registry of the built-in kinds. */
  readonly registry?: KindRegistry;
  /** A snapshot is emitted once changes have been quiet this long (default 100 ms). */
  readonly debounceMs?: number;
  /** …or at the latest this long after the first pending change, so a steady stream still flows (default 1000 ms). */
  readonly maxDelayMs?: number;
  /** Scheduler for debouncing and resubscription backoff; inject a `TestScheduler` for virtual time. */
  readonly scheduler?: SchedulerLike;
  /** Namespace for namespaced resources written without one (default `default`). */
  readonly defaultNamespace?: string;
  /** Cluster domain for short host names (default `cluster.local`). */
  readonly domainSuffix?: string;
  /** Run semantic analysis on each snapshot (default true). */
  readonly analyze?: boolean;
  readonly logger?: Logger;
}

interface Entry {
  /** The last valid version: kept when a later version is invalid. */
  good?: { resource: Resource; origin: Origin; key: string };
  errors: Diagnostic[];
  /** Set on resubscription; entries still stale at `synced` were deleted while we were away. */
  stale: boolean;
}

interface SourceState {
  readonly source: ConfigSource;
  readonly entries: Map<string, Entry>;
  readonly problems: Map<string, readonly Diagnostic[]>;
  synced: boolean;
  connected: boolean;
  lastError?: string;
  subscription?: Subscription;
  retries: number;
}

/**
 * Galley: merges config sources, validates every object, keeps the last good version of each
 * resource, and emits immutable {@link ConfigSnapshot}s.
 *
 * - Validation: an invalid object is reported (in `status$` and the snapshot's diagnostics) and left
 *   out; if an earlier version of it was valid, that version stays in the snapshots.
 * - Precedence: sources listed earlier win; within one source, the lowest id wins and the others get
 *   an `MC0005` duplicate error.
 * - Coalescing: no snapshot until every source is synced; after that, changes are debounced
 *   (`debounceMs`, bounded by `maxDelayMs`), so a burst of a thousand edits yields a handful of snapshots.
 * - Resilience: a source whose observable errors is resubscribed with exponential backoff; its last
 *   good resources stay until its relist says otherwise.
 */
export class ConfigStore {
  /** Every snapshot, starting with the latest one for late subscribers. */
  readonly snapshots$: Observable<ConfigSnapshot>;
  /** Per-source sync state, current errors and warnings; replays the latest value. */
  readonly status$: Observable<ConfigStatus>;

  readonly #registry: KindRegistry;
  readonly #scheduler: SchedulerLike;
  readonly #logger: Logger;
  readonly #sources: SourceState[];
  readonly #snapshots = new ReplaySubject<ConfigSnapshot>(1);
  readonly #status: BehaviorSubject<ConfigStatus>;
  readonly #options: ConfigStoreOptions;
  #current: ConfigSnapshot | undefined;
  #version = 0;
  #resourcesChanged = false;
  #firstPendingAt: number | undefined;
  #timer: Subscription | undefined;
  #started = false;
  #closed = false;

  constructor(options: ConfigStoreOptions) {
    const names = new Set<string>();
    for (const s of options.sources) {
      if (names.has(s.name))
        throw new ConfigError(
          "INVALID_ARGUMENT",
          `two sources are named "${s.name}"; give each a unique name`,
        );
      names.add(s.name);
    }
    this.#options = options;
    this.#registry = options.registry ?? new KindRegistry();
    this.#scheduler = options.scheduler ?? asyncScheduler;
    this.#logger = options.logger ?? silentLogger;
    this.#sources = options.sources.map((source) => ({
      source,
      entries: new Map(),
      problems: new Map(),
      synced: false,
      connected: true,
      retries: 0,
    }));
    this.#status = new BehaviorSubject<ConfigStatus>(this.#computeStatus([]));
    // Subscribing starts the store, so `store.snapshots$.subscribe(…)` alone is enough.
    this.snapshots$ = defer(() => {
      this.start();
      return this.#snapshots;
    });
    this.status$ = defer(() => {
      this.start();
      return this.#status;
    });
  }

  /**
   * Subscribes to every source (idempotent). Subscribing to `snapshots$`/`status$` or calling
   * `synced()` starts the store too; `close()` stops it for good.
   */
  start(): this {
    if (this.#started || this.#closed) return this;
    this.#started = true;
    for (const state of this.#sources) this.#subscribe(state);
    if (this.#sources.length === 0) this.#flush();
    return this;
  }

  /** The latest snapshot, or undefined before every source has synced. */
  current(): ConfigSnapshot | undefined {
    return this.#current;
  }

  /** Resolves with the first snapshot, i.e. once every source has delivered its initial state. */
  synced(): Promise<ConfigSnapshot> {
    return firstValueFrom(this.snapshots$);
  }

  /** Stops watching every source and completes the observables. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.unsubscribe();
    for (const s of this.#sources) s.subscription?.unsubscribe();
    this.#snapshots.complete();
    this.#status.complete();
  }

  /** Each snapshot projected through `project` (e.g. one kind's list), starting with the current one. */
  select<T>(project: (snapshot: ConfigSnapshot) => T): Observable<T> {
    return this.snapshots$.pipe(map(project));
  }

  /** Resolves with the first snapshot satisfying `predicate` (useful in tests and startup code). */
  waitFor(predicate: (snapshot: ConfigSnapshot) => boolean): Promise<ConfigSnapshot> {
    return firstValueFrom(this.snapshots$.pipe(filter(predicate)));
  }

  #subscribe(state: SourceState): void {
    for (const e of state.entries.values()) e.stale = true;
    // Problems are re-reported by the relist; keep only the subscription failure until it syncs.
    for (const scope of [...state.problems.keys()]) if (scope !== "<source>") state.problems.delete(scope);
    state.synced = false;
    state.subscription = state.source.events$.subscribe({
      next: (event) => this.#onEvent(state, event),
      error: (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        state.connected = false;
        state.lastError = message;
        state.problems.set("<source>", [
          {
            severity: "error",
            code: DiagnosticCode.SourceError,
            message: `source failed: ${message}; retrying`,
            source: state.source.name,
          },
        ]);
        const delay = Math.min(30_000, 250 * 2 ** state.retries);
        state.retries++;
        this.#logger.warn("config source failed; resubscribing", {
          source: state.source.name,
          error: message,
          delayMs: delay,
        });
        this.#markDirty();
        if (!this.#closed) {
          this.#scheduler.schedule(() => {
            if (!this.#closed) this.#subscribe(state);
          }, delay);
        }
      },
    });
  }

  #onEvent(state: SourceState, event: ConfigEvent): void {
    if (this.#closed) return;
    switch (event.type) {
      case "add":
      case "update": {
        const { resource, diagnostics } = this.#validate(state, event.object, event.origin);
        const entry = state.entries.get(event.id) ?? { errors: [], stale: false };
        entry.stale = false;
        entry.errors = diagnostics;
        if (resource !== undefined) {
          // Keep where it came from, but not the parsed document behind `locate`.
          const { locate: _locate, ...origin } = event.origin;
          entry.good = { resource, origin, key: formatResourceKey(resourceKeyOf(resource)) };
          this.#resourcesChanged = true;
        } else {
          this.#logger.debug("invalid resource left out", {
            source: state.source.name,
            id: event.id,
            errors: diagnostics.length,
          });
        }
        state.entries.set(event.id, entry);
        break;
      }
      case "delete":
        if (state.entries.get(event.id)?.good !== undefined) this.#resourcesChanged = true;
        state.entries.delete(event.id);
        break;
      case "problems":
        if (event.diagnostics.length === 0) state.problems.delete(event.scope);
        else state.problems.set(event.scope, event.diagnostics);
        break;
      case "connection":
        state.connected = event.connected;
        if (event.error !== undefined) state.lastError = event.error;
        break;
      case "synced":
        for (const [id, e] of state.entries) {
          if (e.stale) {
            state.entries.delete(id);
            if (e.good !== undefined) this.#resourcesChanged = true;
          }
        }
        state.problems.delete("<source>");
        state.connected = true;
        state.retries = 0;
        if (!state.synced) {
          state.synced = true;
          this.#logger.info("config source synced", {
            source: state.source.name,
            entries: state.entries.size,
          });
          if (this.#current === undefined && this.#sources.every((s) => s.synced)) {
            // The first snapshot goes out as soon as everything is loaded: no reason to wait.
            this.#flush();
            return;
          }
        }
        break;
    }
    this.#markDirty();
  }

  #markDirty(): void {
    if (this.#closed) return;
    // Snapshots and status are both published from the debounced flush, so a burst of events
    // (an initial list of 10,000 objects) costs one status computation, not one per event.
    const now = this.#scheduler.now();
    this.#firstPendingAt ??= now;
    const debounce = this.#options.debounceMs ?? 100;
    const maxDelay = this.#options.maxDelayMs ?? 1000;
    const due = Math.max(0, Math.min(debounce, this.#firstPendingAt + maxDelay - now));
    this.#timer?.unsubscribe();
    this.#timer = this.#scheduler.schedule(() => this.#flush(), due);
  }

  #flush(): void {
    this.#timer?.unsubscribe();
    this.#timer = undefined;
    this.#firstPendingAt = undefined;
    if (this.#closed) return;
    const ready = this.#current !== undefined || this.#sources.every((s) => s.synced);
    if (ready && (this.#resourcesChanged || this.#current === undefined)) {
      this.#resourcesChanged = false;
      const snapshot = this.#buildSnapshot();
      this.#current = snapshot;
      this.#publishStatus();
      this.#snapshots.next(snapshot);
    } else {
      this.#publishStatus();
    }
  }

  /** Validates without ever throwing: a user schema that throws must not take the store down. */
  #validate(
    state: SourceState,
    object: unknown,
    origin: Origin,
  ): { resource?: Resource; diagnostics: Diagnostic[] } {
    try {
      return validateResource(object, origin, {
        registry: this.#registry,
        ...(this.#options.defaultNamespace !== undefined
          ? { defaultNamespace: this.#options.defaultNamespace }
          : {}),
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return {
        diagnostics: [
          {
            severity: "error",
            code: DiagnosticCode.SchemaViolation,
            message: `validation failed: ${message}`,
            source: state.source.name,
            ...(origin.file !== undefined ? { file: origin.file } : {}),
          },
        ],
      };
    }
  }

  #buildSnapshot(): ConfigSnapshot {
    const chosen = new Map<string, { resource: Resource; origin: Origin; id: string; source: number }>();
    const duplicates: Diagnostic[] = [];
    const dupes: Array<{ key: string; source: string; winner: Origin; loser: Origin }> = [];
    this.#sources.forEach((state, sourceIndex) => {
      for (const [id, entry] of state.entries) {
        const good = entry.good;
        if (good === undefined) continue;
        const existing = chosen.get(good.key);
        if (existing === undefined) {
          chosen.set(good.key, { resource: good.resource, origin: good.origin, id, source: sourceIndex });
        } else if (existing.source === sourceIndex) {
          // Duplicates within one source: the lowest id wins, whatever the event order was.
          const [winner, loser] =
            id < existing.id
              ? [{ resource: good.resource, origin: good.origin, id, source: sourceIndex }, existing]
              : [existing, { ...good, id }];
          chosen.set(good.key, winner);
          dupes.push({
            key: good.key,
            source: state.source.name,
            winner: winner.origin,
            loser: loser.origin,
          });
        }
        // A lower-precedence source defining the same resource is not an error: that is what precedence is for.
      }
    });
    for (const d of dupes) {
      const pos = d.loser.position;
      duplicates.push({
        severity: "error",
        code: DiagnosticCode.DuplicateResource,
        message: `${d.key} is defined more than once in source ${d.source}; ${describe(d.winner)} wins`,
        source: d.source,
        ...(d.loser.file !== undefined ? { file: d.loser.file } : {}),
        ...(pos !== undefined ? { line: pos.line, column: pos.column } : {}),
        resource: d.key,
      });
    }
    this.#duplicates = duplicates;
    const origins = new Map<Resource, Origin>();
    for (const c of chosen.values()) origins.set(c.resource, c.origin);
    this.#version++;
    const runAnalysis = this.#options.analyze !== false;
    const domainSuffix = this.#options.domainSuffix;
    return ConfigSnapshot.create(
      [...chosen.values()].map((c) => c.resource),
      {
        version: String(this.#version),
        origins,
        ...(domainSuffix !== undefined ? { domainSuffix } : {}),
        diagnostics: (snapshot) => {
          this.#analysis = runAnalysis
            ? analyze(snapshot, domainSuffix !== undefined ? { domainSuffix } : {})
            : [];
          return [...this.#collectErrors(), ...this.#analysis];
        },
      },
    );
  }

  #duplicates: Diagnostic[] = [];
  /** Findings of the analysis of the latest snapshot (errors and warnings; resources are kept). */
  #analysis: Diagnostic[] = [];

  #collectErrors(): Diagnostic[] {
    const errors: Diagnostic[] = [];
    for (const state of this.#sources) {
      for (const list of state.problems.values()) errors.push(...list);
      for (const e of state.entries.values()) errors.push(...e.errors);
    }
    errors.push(...this.#duplicates);
    return errors;
  }

  #publishStatus(): void {
    if (this.#closed) return;
    this.#status.next(this.#computeStatus(this.#analysis));
  }

  #computeStatus(analysis: readonly Diagnostic[]): ConfigStatus {
    const sources: SourceStatus[] = this.#sources.map((s) => {
      let resources = 0;
      let errors = [...s.problems.values()].filter((list) => list.some((d) => d.severity === "error")).length;
      for (const e of s.entries.values()) {
        if (e.good !== undefined) resources++;
        if (e.errors.some((d) => d.severity === "error")) errors++;
      }
      return {
        name: s.source.name,
        synced: s.synced,
        connected: s.connected,
        resources,
        errors,
        ...(s.lastError !== undefined ? { lastError: s.lastError } : {}),
      };
    });
    return {
      sources,
      synced: sources.every((s) => s.synced),
      errors: [...this.#collectErrors(), ...analysis].filter((d) => d.severity === "error"),
      warnings: [...this.#collectErrors(), ...analysis].filter((d) => d.severity === "warning"),
      ...(this.#current !== undefined ? { version: this.#current.version } : {}),
    };
  }
}

function describe(origin: Origin): string {
  if (origin.file !== undefined) return `${origin.file}:${origin.position?.line ?? 1}`;
  return origin.location ?? origin.source;
}
