/** What went wrong, as a stable string callers can switch on. */
export type XdsErrorCode =
  | "invalid-argument"
  | "inconsistent-snapshot"
  | "unknown-type"
  | "duplicate-resource"
  | "missing-name"
  | "invalid-resource"
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

/** One broken field rule of a resource. */
export interface FieldViolation {
  /** Field path in proto names, e.g. `load_assignment.endpoints[0].lb_endpoints[1].endpoint`. */
  readonly path: string;
  /** The protoc-gen-validate rule, e.g. `string.min_len = 1`, `message.required`, `duration.gt = 0s`. */
  readonly rule: string;
  /** What is wrong, with the value where it helps. */
  readonly message: string;
}

/**
 * Thrown by `Snapshot.create` and `LinearCache.update` when a resource breaks one of the field
 * rules Envoy's protos declare (protoc-gen-validate `validate.rules`): Envoy would NACK it, so it
 * is refused before any proxy can. Names the resource (type and name), and every broken rule with
 * its field path.
 */
export class ResourceValidationError extends XdsError {
  readonly typeUrl: string;
  readonly resourceName: string;
  readonly violations: readonly FieldViolation[];

  constructor(typeUrl: string, resourceName: string, violations: readonly FieldViolation[]) {
    const lines = violations.map((v) => `${v.path || "(resource)"}: ${v.message} [${v.rule}]`);
    super(
      "invalid-resource",
      `${shortType(typeUrl)} "${resourceName}" breaks ${violations.length} of Envoy's field rule(s), so a proxy would NACK it; fix the resource (or pass { validate: false } if you validate elsewhere):\n  ${lines.join("\n  ")}`,
    );
    this.typeUrl = typeUrl;
    this.resourceName = resourceName;
    this.violations = violations;
  }
}
