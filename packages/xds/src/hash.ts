import { createHash } from "node:crypto";
import type { CachedResource } from "./cached-resource.js";

/**
 * The version of a set of resources: a hash over their names and versions, sorted by name, so
 * that identical content yields an identical version on every replica.
 */
export function versionOfResources(resources: Iterable<CachedResource>): string {
  const entries = [...resources].map((r) => `${r.name}\u0000${r.version}`).sort();
  const hash = createHash("sha256");
  for (const e of entries) hash.update(e).update("\n");
  return hash.digest("base64url").slice(0, 22);
}
