import type { Diagnostic } from "../diagnostic.js";

/** Sync and health of one source, as `ConfigStore.status$` reports it. */
export interface SourceStatus {
  readonly name: string;
  /** The source has delivered its initial state (and, after a reconnect, its relist). */
  readonly synced: boolean;
  /** False while the source has lost its backend; its last good resources are still served. */
  readonly connected: boolean;
  /** Valid resources currently held from this source. */
  readonly resources: number;
  /** Resources or scopes of this source currently in error. */
  readonly errors: number;
  /** The last connection or subscription error, if any. */
  readonly lastError?: string;
}

/** What `ConfigStore.status$` emits: per-source state, current errors and the latest warnings. */
export interface ConfigStatus {
  readonly sources: readonly SourceStatus[];
  /** True when every source is synced. */
  readonly synced: boolean;
  /**
   * Current errors: resources left out (their last good version, if any, is still served) and
   * analysis findings Istio rates as errors (IST0101 …; those resources are kept).
   */
  readonly errors: readonly Diagnostic[];
  /** Warnings: Istio validation warnings of resources kept, and analysis warnings of the latest snapshot. */
  readonly warnings: readonly Diagnostic[];
  /** Version of the latest snapshot, when one was emitted. */
  readonly version?: string;
}
