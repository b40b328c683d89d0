import { ConfigError } from "./config-error.js";
import { type Diagnostic, formatPath, type Origin } from "./diagnostic.js";
import { DiagnosticCode } from "./diagnostic-code.js";
import type { KindRegistry } from "./kind-registry.js";
import { ISTIO_GROUPS } from "./kinds.js";
import {
  deepFreeze,
  formatResourceKey,
  type ObjectMeta,
  parseApiVersion,
  type Resource,
} from "./resource.js";
import type { StandardIssue } from "./standard-schema.js";

/** Options for {@link validateResource}. */
export interface ValidateOptions {
  readonly registry: KindRegistry;
  /** Namespace given to namespaced resources written without one (kubectl's default: `default`). */
  readonly defaultNamespace?: string;
  /** At most this many schema diagnostics per resource (default 20): one typo should not flood CI. */
  readonly maxIssues?: number;
}

/** A validated resource (a deeply frozen copy of the input) or the errors that kept it out. */
export interface ValidationResult {
  readonly resource?: Resource;
  readonly diagnostics: Diagnostic[];
}

// RFC 1123 names, as Kubernetes validates metadata.name and metadata.namespace.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Validates one object read from a source against the registry: kind and version, metadata, then
 * the kind's schema. The resource it returns is a deeply frozen copy; `object` itself is never
 * frozen or changed. Never throws for bad input: every problem becomes a {@link Diagnostic} naming
 * the source, file:line:column (when `origin` can locate fields), resource and field path.
 */
export function validateResource(
  object: unknown,
  origin: Origin,
  options: ValidateOptions,
): ValidationResult {
  const diagnostics: Diagnostic[] = [];
  const report = (
    code: string,
    message: string,
    path: ReadonlyArray<string | number>,
    extra: Partial<Diagnostic> = {},
  ) => {
    const pos = origin.locate?.(path) ?? origin.position;
    diagnostics.push({
      severity: "error",
      code,
      message,
      source: origin.source,
      ...(origin.file !== undefined ? { file: origin.file } : {}),
      ...(pos !== undefined ? { line: pos.line, column: pos.column } : {}),
      ...(path.length > 0 ? { path: formatPath(path) } : {}),
      ...extra,
    });
  };

  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    report(
      DiagnosticCode.SchemaViolation,
      "expected a Kubernetes object with apiVersion, kind and metadata",
      [],
      {
        expected: "object",
      },
    );
    return { diagnostics };
  }
  const raw = object as Record<string, unknown>;
  const { apiVersion, kind } = raw;
  const rawMeta = raw.metadata;
  const rawName = isRecord(rawMeta) && typeof rawMeta.name === "string" ? rawMeta.name : undefined;
  const rawNamespace =
    isRecord(rawMeta) && typeof rawMeta.namespace === "string" ? rawMeta.namespace : undefined;
  const label = `${typeof kind === "string" ? kind : "?"}/${rawNamespace !== undefined ? `${rawNamespace}/` : ""}${rawName ?? "?"}`;

  if (typeof apiVersion !== "string" || apiVersion === "") {
    report(DiagnosticCode.UnknownKind, "missing apiVersion", ["apiVersion"], {
      resource: label,
      expected: "a string such as networking.istio.io/v1",
    });
  }
  if (typeof kind !== "string" || kind === "") {
    report(DiagnosticCode.UnknownKind, "missing kind", ["kind"], {
      resource: label,
      expected: "a string such as VirtualService",
    });
  }
  if (diagnostics.length > 0 || typeof apiVersion !== "string" || typeof kind !== "string")
    return { diagnostics };

  const def = options.registry.resolve(apiVersion, kind);
  if (def === undefined) {
    const known = options.registry.get(kind);
    const { group } = parseApiVersion(apiVersion);
    if (known !== undefined && known.group === group) {
      const served = known.versions.map((v) => (known.group === "" ? v : `${known.group}/${v}`));
      report(
        DiagnosticCode.UnknownKind,
        `apiVersion ${apiVersion} is not served for kind ${kind}`,
        ["apiVersion"],
        {
          resource: label,
          expected: `one of ${served.join(", ")}`,
        },
      );
    } else if (
      ISTIO_GROUPS.includes(group) ||
      options.registry.list().some((d) => d.group === group && d.group !== "")
    ) {
      // A group meshlet validates (Istio's, or a registered custom group): an unknown kind is a typo.
      report(
        DiagnosticCode.UnknownKind,
        `unknown kind ${kind} (${apiVersion}); register it in the KindRegistry to accept it`,
        ["kind"],
        {
          resource: label,
          expected: `a kind of ${group}: ${options.registry
            .list()
            .filter((d) => d.group === group)
            .map((d) => d.kind)
            .join(", ")}`,
        },
      );
    } else {
      // Like istioctl analyze: kinds the mesh does not read are skipped with a note, never an error.
      report(
        DiagnosticCode.KindNotValidated,
        `${kind} (${apiVersion}) is not read by the mesh; skipped without validation`,
        [],
        { resource: label, severity: "info" },
      );
    }
    return { diagnostics };
  }

  // metadata: identity first, since every later message names the resource.
  if (!isRecord(rawMeta)) {
    report(DiagnosticCode.InvalidMetadata, "missing metadata", ["metadata"], {
      resource: label,
      expected: "an object with name",
    });
    return { diagnostics };
  }
  const namespace = def.namespaced ? (rawNamespace ?? options.defaultNamespace ?? "default") : "";
  const resource = formatResourceKey({ kind, namespace, name: rawName ?? "?" });
  const metaError = (message: string, field: string, expected: string) =>
    report(DiagnosticCode.InvalidMetadata, message, ["metadata", field], { resource, expected });
  if (rawName === undefined || rawName === "")
    metaError("missing metadata.name", "name", "a DNS-1123 subdomain");
  else if (rawName.length > 253 || !DNS1123_SUBDOMAIN.test(rawName))
    metaError(
      `invalid name "${rawName}"`,
      "name",
      "lower-case alphanumerics, '-' and '.', at most 253 characters",
    );
  if (rawMeta.namespace !== undefined) {
    if (!def.namespaced && rawMeta.namespace !== "")
      metaError(`${kind} is cluster-scoped and takes no namespace`, "namespace", "no namespace");
    else if (
      typeof rawMeta.namespace !== "string" ||
      rawMeta.namespace.length > 63 ||
      !DNS1123_LABEL.test(rawMeta.namespace)
    )
      metaError(`invalid namespace ${JSON.stringify(rawMeta.namespace)}`, "namespace", "a DNS-1123 label");
  }
  for (const field of ["labels", "annotations"] as const) {
    const map = rawMeta[field];
    if (map === undefined || map === null) continue;
    if (!isRecord(map)) {
      metaError(`metadata.${field} must be a map of strings`, field, "map of string to string");
      continue;
    }
    for (const [k, v] of Object.entries(map)) {
      if (typeof v !== "string")
        report(
          DiagnosticCode.InvalidMetadata,
          `metadata.${field}["${k}"] must be a string (quote numbers and booleans)`,
          ["metadata", field, k],
          {
            resource,
            expected: "string",
          },
        );
    }
  }
  if (rawMeta.generation !== undefined && !Number.isInteger(rawMeta.generation))
    metaError("metadata.generation must be an integer", "generation", "integer");
  if (rawMeta.resourceVersion !== undefined && typeof rawMeta.resourceVersion !== "string")
    metaError("metadata.resourceVersion must be a string", "resourceVersion", "string");
  if (diagnostics.length > 0) return { diagnostics };

  const result = def.schema["~standard"].validate(raw);
  if (result instanceof Promise) {
    throw new ConfigError(
      "ASYNC_SCHEMA",
      `the schema of kind ${kind} is asynchronous; meshlet validates synchronously`,
    );
  }
  if (result.issues !== undefined) {
    const max = options.maxIssues ?? 20;
    for (const issue of result.issues.slice(0, max)) {
      const { message, path, expected } = describeIssue(issue);
      report(DiagnosticCode.SchemaViolation, message, path, {
        resource,
        ...(expected !== undefined ? { expected } : {}),
      });
    }
    if (result.issues.length > max) {
      report(
        DiagnosticCode.SchemaViolation,
        `${result.issues.length - max} more schema errors not shown`,
        [],
        { resource },
      );
    }
    return { diagnostics };
  }
  const metadata: ObjectMeta = {
    ...(rawMeta as Record<string, unknown>),
    name: rawName as string,
    namespace,
  };
  // The accepted resource is a frozen copy: the caller's object is neither frozen nor shared, so
  // it can be edited and validated again (and a snapshot never changes under its readers).
  let value: Record<string, unknown>;
  try {
    value = structuredClone({ ...(result.value as Record<string, unknown>), metadata });
  } catch (error) {
    report(
      DiagnosticCode.SchemaViolation,
      `not plain data (${(error as Error).message}); give JSON/YAML values only`,
      [],
      { resource },
    );
    return { diagnostics };
  }
  const candidate = { ...value, apiVersion, kind } as Resource;
  let refused = false;
  for (const issue of def.rules?.(candidate) ?? []) {
    if (issue.severity === "error") refused = true;
    const code =
      issue.code ?? (issue.severity === "error" ? DiagnosticCode.RuleViolation : DiagnosticCode.RuleWarning);
    report(code, issue.message, issue.path, { resource, severity: issue.severity });
  }
  if (refused) return { diagnostics };
  return { resource: deepFreeze(candidate), diagnostics };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Turns a schema issue into a message, a path and what was expected, in the words kubectl uses. */
function describeIssue(issue: StandardIssue): {
  message: string;
  path: Array<string | number>;
  expected?: string;
} {
  const path = (issue.path ?? []).map((seg) => {
    const key = typeof seg === "object" && seg !== null ? seg.key : seg;
    return typeof key === "number" ? key : String(key);
  });
  const extra = issue as StandardIssue & {
    code?: string;
    keys?: string[];
    expected?: string;
    values?: unknown[];
  };
  if (extra.code === "unrecognized_keys" && Array.isArray(extra.keys) && extra.keys.length > 0) {
    const key = extra.keys[0] as string;
    return {
      message: `unknown field "${key}"${
        extra.keys.length > 1
          ? ` (and ${extra.keys
              .slice(1)
              .map((k) => `"${k}"`)
              .join(", ")})`
          : ""
      }`,
      path: [...path, key],
      expected: "a field defined by the schema (check spelling and nesting)",
    };
  }
  const message = issue.message.replace(/^Invalid input: /, "");
  if (extra.code === undefined && typeof extra.expected === "string")
    return { message, path, expected: extra.expected };
  if (extra.code === "invalid_type" && /received undefined$/.test(issue.message)) {
    return {
      message: `missing required field ${String(path[path.length - 1] ?? "")}`.trim(),
      path,
      expected: extra.expected ?? "a value",
    };
  }
  if (extra.code === "invalid_value" && Array.isArray(extra.values)) {
    return { message, path, expected: `one of ${extra.values.map((v) => JSON.stringify(v)).join(", ")}` };
  }
  return { message, path, ...(extra.expected !== undefined ? { expected: String(extra.expected) } : {}) };
}
