import { lastValueFrom, toArray } from "rxjs";
import { analyze } from "./analyze.js";
import { ConfigSnapshot } from "./config-snapshot.js";
import type { Diagnostic, Origin } from "./diagnostic.js";
import { DiagnosticCode } from "./diagnostic-code.js";
import { KindRegistry } from "./kind-registry.js";
import { formatResourceKey, type Resource, resourceKeyOf } from "./resource.js";
import { FileSource } from "./sources/file-source.js";
import { validateResource } from "./validate-resource.js";

/** Options for {@link validateFiles}. */
export interface ValidateFilesOptions {
  readonly registry?: KindRegistry;
  readonly defaultNamespace?: string;
  /** Run semantic analysis (default true). */
  readonly analyze?: boolean;
}

/** What {@link validateFiles} found: the valid resources and every diagnostic, sorted by location. */
export interface ValidateFilesResult {
  readonly snapshot: ConfigSnapshot;
  readonly diagnostics: Diagnostic[];
  readonly files: number;
  readonly errors: number;
  readonly warnings: number;
  /** Notes, e.g. kinds skipped because the mesh does not read them. */
  readonly infos: number;
}

/**
 * Loads and validates files and directories once, the way `meshlet validate` does: schema errors,
 * duplicates and semantic warnings, each with `file:line:column`. Nothing is watched.
 */
export async function validateFiles(
  paths: readonly string[],
  options: ValidateFilesOptions = {},
): Promise<ValidateFilesResult> {
  const registry = options.registry ?? new KindRegistry();
  const events = await lastValueFrom(new FileSource({ paths, watch: false }).events$.pipe(toArray()));
  const diagnostics: Diagnostic[] = [];
  const byKey = new Map<string, { resource: Resource; origin: Origin }>();
  const files = new Set<string>();
  for (const event of events) {
    if (event.type === "problems") diagnostics.push(...event.diagnostics);
    if (event.type !== "add") continue;
    if (event.origin.file !== undefined) files.add(event.origin.file);
    const result = validateResource(event.object, event.origin, {
      registry,
      ...(options.defaultNamespace !== undefined ? { defaultNamespace: options.defaultNamespace } : {}),
    });
    diagnostics.push(...result.diagnostics);
    if (result.resource === undefined) continue;
    const key = formatResourceKey(resourceKeyOf(result.resource));
    const first = byKey.get(key);
    if (first !== undefined) {
      diagnostics.push({
        severity: "error",
        code: DiagnosticCode.DuplicateResource,
        message: `${key} is already defined at ${first.origin.file}:${first.origin.position?.line ?? 1}`,
        source: event.origin.source,
        ...(event.origin.file !== undefined ? { file: event.origin.file } : {}),
        ...(event.origin.position !== undefined
          ? { line: event.origin.position.line, column: event.origin.position.column }
          : {}),
        resource: key,
      });
      continue;
    }
    byKey.set(key, { resource: result.resource, origin: event.origin });
  }
  const origins = new Map([...byKey.values()].map((v) => [v.resource, v.origin] as const));
  const snapshot = ConfigSnapshot.create(
    [...byKey.values()].map((v) => v.resource),
    { origins, diagnostics: (s) => (options.analyze === false ? [] : analyze(s)) },
  );
  diagnostics.push(...snapshot.diagnostics);
  diagnostics.sort(
    (a, b) =>
      (a.file ?? "").localeCompare(b.file ?? "") ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      a.code.localeCompare(b.code),
  );
  const count = (severity: Diagnostic["severity"]) =>
    diagnostics.filter((d) => d.severity === severity).length;
  return {
    snapshot,
    diagnostics,
    files: files.size,
    errors: count("error"),
    warnings: count("warning"),
    infos: count("info"),
  };
}
