/** What went wrong, as a stable string callers can switch on. */
export type XdsErrorCode =
  | "invalid-argument"
  | "inconsistent-snapshot"
  | "unknown-type"
  | "duplicate-resource"
  | "missing-name"
  | "protocol"
  /** waitForAck: the node rejected the version. */
  | "nacked"
  /** waitForAck: the version did not land in time. */
  | "timeout"
  /** waitForAck: the caller's AbortSignal fired. */
  | "aborted";

/**
 * The one error class of `@meshlet/xds`. `code` is stable; `message` says what was wrong, where
 * (resource name, type URL, node id) and what to do; `cause` carries the underlying error.
 */
export class XdsError extends Error {
  override readonly name = "XdsError";
  readonly code: XdsErrorCode;

  constructor(code: XdsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** A reference from one resource to another that the snapshot does not contain. */
export interface DanglingReference {
  /** Type URL of the resource holding the reference (a Listener or a Cluster). */
  readonly fromType: string;
  /** Name of the resource holding the reference. */
  readonly from: string;
  /** Type URL of the missing resource (RouteConfiguration or ClusterLoadAssignment). */
  readonly toType: string;
  /** Name of the missing resource. */
  readonly to: string;
}

/**
 * Thrown by `Snapshot.consistent()`: names every reference to an EDS or RDS resource that the
 * snapshot does not contain, so a proxy would wait forever for it.
 */
export class InconsistentSnapshotError extends XdsError {
  readonly dangling: readonly DanglingReference[];

  constructor(dangling: readonly DanglingReference[]) {
    const lines = dangling.map(
      (d) => `${shortType(d.fromType)} "${d.from}" → ${shortType(d.toType)} "${d.to}"`,
    );
    super(
      "inconsistent-snapshot",
      `snapshot references ${dangling.length} missing resource(s); add them or drop the references:\n  ${lines.join("\n  ")}`,
    );
    this.dangling = dangling;
  }
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf(".") + 1);
}
