import {
  ConfigSnapshot,
  formatDiagnostic,
  KindRegistry,
  type Origin,
  parseDocuments,
  type Resource,
  validateResource,
} from "@meshlet/config";

// Test support (not part of the public API): build snapshots from YAML through @meshlet/config's
// own parser and validator, so test data is config a user could write.

/**
 * A snapshot of the YAML documents, validated by @meshlet/config; throws on any error so a test
 * never runs on config the store would have refused. `raw` documents skip validation (for shapes
 * Istio accepts that the config schemas do not yet, e.g. `workloadSelector.labels`).
 */
export function snapshotOf(
  yaml: string,
  options: { raw?: readonly Resource[]; version?: string } = {},
): ConfigSnapshot {
  const registry = new KindRegistry();
  const parsed = parseDocuments(yaml, { source: "test", file: "test.yaml" });
  const errors = parsed.diagnostics.map(formatDiagnostic);
  const resources: Resource[] = [];
  const origins = new Map<Resource, Origin>();
  for (const doc of parsed.documents) {
    const result = validateResource(doc.object, doc.origin, { registry });
    for (const d of result.diagnostics) if (d.severity === "error") errors.push(formatDiagnostic(d));
    if (result.resource !== undefined) {
      resources.push(result.resource);
      origins.set(result.resource, doc.origin);
    }
  }
  if (errors.length > 0) throw new Error(`test config is invalid:\n${errors.join("\n")}`);
  return ConfigSnapshot.create([...resources, ...(options.raw ?? [])], {
    version: options.version ?? "1",
    origins,
  });
}
