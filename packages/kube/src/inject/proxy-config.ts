import { parse as parseYaml } from "yaml";

/**
 * Istio's `ProxyConfig` (istio/api `mesh/v1alpha1/proxy.proto`), in its JSON (camelCase) form: the
 * agent reads it from the `PROXY_CONFIG` environment variable. The fields the injector itself acts
 * on are typed; the others are checked for their JSON type and passed through.
 */
export interface ProxyConfig {
  readonly discoveryAddress?: string;
  readonly concurrency?: number;
  readonly interceptionMode?: "REDIRECT" | "TPROXY" | "NONE";
  readonly proxyMetadata?: Readonly<Record<string, string>>;
  readonly statusPort?: number;
  readonly holdApplicationUntilProxyStarts?: boolean;
  readonly [field: string]: unknown;
}

type FieldType =
  | "string"
  | "int"
  | "duration"
  | "bool"
  | "stringMap"
  | "stringList"
  | "object"
  | readonly string[];

// Declaration order in proxy.proto: protojson (Istio's protoToJSON) writes fields in this order, so
// PROXY_CONFIG reads exactly as Istio's injector writes it.
const FIELDS: ReadonlyArray<readonly [string, FieldType]> = [
  ["configPath", "string"],
  ["binaryPath", "string"],
  ["serviceCluster", "string"],
  ["tracingServiceName", ["APP_LABEL_AND_NAMESPACE", "CANONICAL_NAME_ONLY", "CANONICAL_NAME_AND_NAMESPACE"]],
  ["drainDuration", "duration"],
  ["parentShutdownDuration", "duration"],
  ["discoveryAddress", "string"],
  ["discoveryRefreshDelay", "duration"],
  ["zipkinAddress", "string"],
  ["statsdUdpAddress", "string"],
  ["envoyMetricsServiceAddress", "string"],
  ["proxyAdminPort", "int"],
  ["availabilityZone", "string"],
  ["controlPlaneAuthPolicy", ["NONE", "MUTUAL_TLS", "INHERIT"]],
  ["customConfigFile", "string"],
  ["statNameLength", "int"],
  ["concurrency", "int"],
  ["proxyBootstrapTemplatePath", "string"],
  ["interceptionMode", ["REDIRECT", "TPROXY", "NONE"]],
  ["tracing", "object"],
  ["sds", "object"],
  ["envoyAccessLogService", "object"],
  ["envoyMetricsService", "object"],
  ["proxyMetadata", "stringMap"],
  ["runtimeValues", "stringMap"],
  ["statusPort", "int"],
  ["extraStatTags", "stringList"],
  ["gatewayTopology", "object"],
  ["terminationDrainDuration", "duration"],
  ["meshId", "string"],
  ["readinessProbe", "object"],
  ["proxyStatsMatcher", "object"],
  ["holdApplicationUntilProxyStarts", "bool"],
  ["caCertificatesPem", "stringList"],
  ["image", "object"],
  ["privateKeyProvider", "object"],
  ["proxyHeaders", "object"],
];
const FIELD_TYPES = new Map(FIELDS);
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/**
 * Parses a `proxy.istio.io/config` value (YAML or JSON) strictly: unknown fields and values of the
 * wrong type are errors, as they are when Istio unmarshals the annotation into the proto. Returns
 * the config or the problems found.
 */
export function parseProxyConfig(text: string): { config?: ProxyConfig; errors: string[] } {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    return {
      errors: [`not valid YAML: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`],
    };
  }
  if (raw === null || raw === undefined) return { config: {}, errors: [] };
  return validateProxyConfig(raw);
}

/** Checks a ProxyConfig value; see {@link parseProxyConfig}. */
export function validateProxyConfig(raw: unknown): { config?: ProxyConfig; errors: string[] } {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { errors: ["must be a mapping of ProxyConfig fields"] };
  }
  const errors: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const type = FIELD_TYPES.get(key);
    if (type === undefined) {
      errors.push(`unknown field "${key}"`);
      continue;
    }
    const problem = checkType(value, type);
    if (problem !== undefined) errors.push(`${key}: ${problem}`);
  }
  return errors.length > 0 ? { errors } : { config: raw as ProxyConfig, errors };
}

function checkType(value: unknown, type: FieldType): string | undefined {
  if (Array.isArray(type)) {
    return typeof value === "string" && type.includes(value)
      ? undefined
      : `must be one of ${type.join(", ")}`;
  }
  switch (type) {
    case "string":
      return typeof value === "string" ? undefined : "must be a string";
    case "int":
      return Number.isInteger(value) && (value as number) >= 0 ? undefined : "must be a non-negative integer";
    case "duration":
      return typeof value === "string" && DURATION.test(value)
        ? undefined
        : "must be a duration such as 5s or 1m30s";
    case "bool":
      return typeof value === "boolean" ? undefined : "must be true or false";
    case "stringMap":
      return isRecord(value) && Object.values(value).every((v) => typeof v === "string")
        ? undefined
        : "must be a map of strings (quote numbers and booleans)";
    case "stringList":
      return Array.isArray(value) && value.every((v) => typeof v === "string")
        ? undefined
        : "must be a list of strings";
    case "object":
      return isRecord(value) ? undefined : "must be a mapping";
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Lays `overlays` over `base` in order, as Istio's `MergeProxyConfig` does: a field set in a later
 * config replaces the earlier value, except `proxyMetadata`, whose keys are merged.
 */
export function mergeProxyConfig(
  base: ProxyConfig,
  ...overlays: ReadonlyArray<ProxyConfig | undefined>
): ProxyConfig {
  let merged: Record<string, unknown> = { ...base };
  for (const overlay of overlays) {
    if (overlay === undefined) continue;
    const metadata =
      merged.proxyMetadata !== undefined && overlay.proxyMetadata !== undefined
        ? { ...(merged.proxyMetadata as Record<string, string>), ...overlay.proxyMetadata }
        : undefined;
    merged = { ...merged, ...overlay, ...(metadata !== undefined ? { proxyMetadata: metadata } : {}) };
  }
  return merged as ProxyConfig;
}

/**
 * The JSON the agent reads from `PROXY_CONFIG`: fields in proto declaration order, map keys sorted,
 * no whitespace — byte for byte what Istio's `protoToJSON` writes for the same config.
 */
export function proxyConfigToJson(config: ProxyConfig): string {
  const ordered: Record<string, unknown> = {};
  for (const [key] of FIELDS) {
    const value = config[key];
    if (value === undefined) continue;
    ordered[key] =
      isRecord(value) && (key === "proxyMetadata" || key === "runtimeValues") ? sortKeys(value) : value;
  }
  return JSON.stringify(ordered);
}

function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
