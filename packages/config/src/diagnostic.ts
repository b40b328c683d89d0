/** A position in a source file, 1-based as editors show it. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/**
 * Where a resource came from: the source's name and, for files, the file and the position of the
 * YAML/JSON document. `locate` maps a field path to the exact position of that field; it is only
 * available while the resource is being validated (it holds the parsed document).
 */
export interface Origin {
  /** The name of the {@link ConfigSource} that produced the resource. */
  readonly source: string;
  /** Absolute or user-given path of the file, when the resource came from a file. */
  readonly file?: string;
  /** Position of the document start in `file`. */
  readonly position?: SourcePosition;
  /** For etcd: the key; for Kubernetes: the API path. */
  readonly location?: string;
  /** Position of the deepest existing node on `path`; undefined when unknown. */
  readonly locate?: (path: ReadonlyArray<string | number>) => SourcePosition | undefined;
}

/**
 * `error`: the resource is left out of snapshots (or, from analysis, Istio would misbehave).
 * `warning`: reported, the resource is kept. `info`: a note, e.g. a kind meshlet does not validate.
 */
export type Severity = "error" | "warning" | "info";

/**
 * One problem found in config, precise enough for a user to fix it without guessing: which source,
 * which file and line, which resource (`kind/namespace/name`), which field, and what was expected.
 * `code` is stable (see `DiagnosticCode`) so CI scripts can allow-list or fail on specific ones.
 */
export interface Diagnostic {
  readonly severity: Severity;
  /** A stable code such as `MC0004` (schema violation) or `MC1001` (subset not found). */
  readonly code: string;
  /** Human-readable text, without location prefix. */
  readonly message: string;
  /** The source name. */
  readonly source: string;
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
  /** `Kind/namespace/name` (or `Kind/name` for cluster-scoped kinds) when known. */
  readonly resource?: string;
  /** Dotted field path, e.g. `spec.http[0].route[0].destination.host`. */
  readonly path?: string;
  /** What was expected at `path`, when the check can say. */
  readonly expected?: string;
}

/** Renders a field path the way Kubernetes and Istio print them: `spec.http[0].route`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else {
      const text = String(segment);
      out += /^[A-Za-z_][A-Za-z0-9_-]*$/.test(text)
        ? out === ""
          ? text
          : `.${text}`
        : `[${JSON.stringify(text)}]`;
    }
  }
  return out;
}

/**
 * Formats a diagnostic as `file:line:column code message` (the shape compilers and `istioctl analyze`
 * users grep for). Without a file, the source name and resource stand in for the location.
 */
export function formatDiagnostic(d: Diagnostic): string {
  const where =
    d.file !== undefined
      ? `${d.file}:${d.line ?? 1}:${d.column ?? 1}`
      : `${d.source}${d.resource !== undefined ? `:${d.resource}` : ""}`;
  const details: string[] = [];
  if (d.file !== undefined && d.resource !== undefined) details.push(d.resource);
  if (d.path !== undefined && d.path !== "") details.push(`at ${d.path}`);
  const suffix = details.length > 0 ? ` (${details.join(" ")})` : "";
  return `${where} ${d.code} ${d.severity}: ${d.message}${suffix}`;
}
