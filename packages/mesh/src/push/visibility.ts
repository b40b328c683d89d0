// exportTo semantics (istio/istio pilot/pkg/model/push_context.go `IsServiceVisible`,
// `initServiceRegistry`, `initVirtualServices`, `setDestinationRules`): `*` = every namespace,
// `.` = the resource's own namespace, `~` = none, other values = that namespace. A resource without
// exportTo uses the mesh default (`defaultServiceExportTo`, …), of which only `*` and `.` count.

/** Public: visible everywhere. */
export const PUBLIC = "*";
/** Private: visible in the resource's own namespace. */
export const PRIVATE = ".";
/** Visible nowhere. */
export const NONE = "~";

/**
 * Whether a resource of `ownNamespace` with `exportTo` (undefined/empty = `defaults`) is visible
 * from `namespace`.
 */
export function isExportedTo(
  exportTo: ReadonlySet<string> | readonly string[] | undefined,
  ownNamespace: string,
  namespace: string,
  defaults: readonly string[],
): boolean {
  const set = exportTo === undefined ? undefined : exportTo instanceof Set ? exportTo : new Set(exportTo);
  if (set === undefined || set.size === 0) {
    if (defaults.includes(PRIVATE)) return ownNamespace === namespace;
    return defaults.includes(PUBLIC);
  }
  if (set.has(PUBLIC)) return true;
  if (set.has(NONE)) return false;
  return (set.has(PRIVATE) && ownNamespace === namespace) || set.has(namespace);
}

/**
 * The namespaces a resource is exported to, as an index would file it: `"*"` for public, else the
 * list of namespaces (`.` written as the own namespace); `[]` when visible nowhere.
 */
export function exportTargets(
  exportTo: ReadonlySet<string> | readonly string[] | undefined,
  ownNamespace: string,
  defaults: readonly string[],
): "*" | string[] {
  const set = exportTo === undefined ? undefined : exportTo instanceof Set ? exportTo : new Set(exportTo);
  if (set === undefined || set.size === 0) {
    if (defaults.includes(PRIVATE)) return [ownNamespace];
    return defaults.includes(PUBLIC) ? PUBLIC : [];
  }
  if (set.has(PUBLIC)) return PUBLIC;
  if (set.has(NONE)) return [];
  return [...new Set([...set].map((e) => (e === PRIVATE ? ownNamespace : e)))];
}
