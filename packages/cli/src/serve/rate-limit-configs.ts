import type { ConfigSnapshot } from "@meshlet/config";
import { parseRateLimitConfig, type RateLimitConfig } from "@meshlet/policy";

// Where the rate-limit service's configuration comes from: an envoyproxy/ratelimit YAML file given
// at start, and ConfigMaps of the served config with a given name — Istio's rate-limit task and
// sample (istio/istio samples/ratelimit/rate-limit-service.yaml) mount ConfigMap `ratelimit-config`
// as the ratelimit service's config directory, every data key one file (`config.yaml`). Reading
// the ConfigMap from the config makes rate limits follow YAML edits like any other config.

/** One loaded rate-limit configuration file, or why it could not be loaded. */
export interface RateLimitConfigFile {
  /** `path/to/file.yaml`, or `ConfigMap <namespace>/<name> key <key>`. */
  readonly source: string;
  readonly configs?: readonly RateLimitConfig[];
  readonly error?: string;
}

/**
 * The rate-limit files of a config snapshot: every data key of every ConfigMap named `name`, in
 * any namespace, in namespace then key order (the order envoyproxy/ratelimit reads a directory).
 */
export function rateLimitConfigMapFiles(snapshot: ConfigSnapshot, name: string): RateLimitConfigFile[] {
  const maps = snapshot
    .list("ConfigMap")
    .filter((m) => m.metadata.name === name)
    .sort((a, b) => (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? ""));
  const files: RateLimitConfigFile[] = [];
  for (const map of maps) {
    const data = map.data ?? {};
    for (const key of Object.keys(data).sort()) {
      const source = `ConfigMap ${map.metadata.namespace ?? "default"}/${name} key ${key}`;
      files.push(loadRateLimitYaml(data[key] ?? "", source));
    }
  }
  return files;
}

/** Parses one envoyproxy/ratelimit YAML document set; errors are returned, never thrown. */
export function loadRateLimitYaml(text: string, source: string): RateLimitConfigFile {
  try {
    return { source, configs: parseRateLimitConfig(text, source) };
  } catch (error) {
    return { source, error: error instanceof Error ? error.message : String(error) };
  }
}
