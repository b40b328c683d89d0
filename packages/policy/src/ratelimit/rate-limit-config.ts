import { LineCounter, parseDocument } from "yaml";
import { PolicyError } from "../policy-error.js";

/** Rate-limit window units of envoyproxy/ratelimit. */
export type RateLimitUnit = "second" | "minute" | "hour" | "day";

/** Seconds per {@link RateLimitUnit}. */
export const UNIT_SECONDS: Record<RateLimitUnit, number> = { second: 1, minute: 60, hour: 3600, day: 86400 };

/** A limit: `requests_per_unit` per `unit`, or `unlimited`. */
export interface RateLimitPolicy {
  /** Names this limit for `replaces` and stats. */
  name?: string;
  unit?: RateLimitUnit;
  requests_per_unit?: number;
  /** Matches and is never counted nor limited. */
  unlimited?: boolean;
}

/** A node of the descriptor tree (envoyproxy/ratelimit's YAML, snake_case as written there). */
export interface RateLimitDescriptorConfig {
  key: string;
  /** Exact value, `prefix*`, or absent to match any value of `key`. */
  value?: string;
  rate_limit?: RateLimitPolicy;
  /** Over-limit requests are counted and reported but allowed. */
  shadow_mode?: boolean;
  /** Matching this limit drops the limits with these names from the same request. */
  replaces?: { name: string }[];
  detailed_metric?: boolean;
  descriptors?: RateLimitDescriptorConfig[];
}

/** One domain's configuration: the unit of envoyproxy/ratelimit's config files. */
export interface RateLimitConfig {
  domain: string;
  descriptors?: RateLimitDescriptorConfig[];
}

const DESCRIPTOR_KEYS = new Set([
  "key",
  "value",
  "rate_limit",
  "shadow_mode",
  "replaces",
  "detailed_metric",
  "descriptors",
]);
const LIMIT_KEYS = new Set(["name", "unit", "requests_per_unit", "unlimited"]);

/**
 * Validates a rate-limit config object. `where` maps a field path to a location (file:line) for
 * messages.
 * @throws PolicyError `invalid-rate-limit-config` naming the domain, path and fix.
 */
export function validateRateLimitConfig(
  config: RateLimitConfig,
  where: (path: (string | number)[]) => string = () => "",
): RateLimitConfig {
  const fail = (path: (string | number)[], what: string): never => {
    const loc = where(path);
    const p = path
      .map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`))
      .join("")
      .replace(/^\./, "");
    throw new PolicyError(
      "invalid-rate-limit-config",
      `rate limit config${config?.domain ? ` (domain ${config.domain})` : ""}${loc ? ` at ${loc}` : ""}: ${p || "<root>"}: ${what}`,
    );
  };
  if (!config || typeof config !== "object") fail([], "must be a mapping with domain and descriptors");
  if (typeof config.domain !== "string" || config.domain === "")
    fail(["domain"], "is required (a non-empty string)");
  const walk = (list: unknown, path: (string | number)[]): void => {
    if (list === undefined || list === null) return;
    if (!Array.isArray(list)) fail(path, "must be a list");
    const seen = new Set<string>();
    (list as RateLimitDescriptorConfig[]).forEach((d, i) => {
      const p = [...path, i];
      if (!d || typeof d !== "object") fail(p, "must be a mapping");
      for (const k of Object.keys(d))
        if (!DESCRIPTOR_KEYS.has(k)) fail([...p, k], "is not a descriptor field");
      if (typeof d.key !== "string" || d.key === "") fail([...p, "key"], "is required");
      if (d.value !== undefined && typeof d.value !== "string") fail([...p, "value"], "must be a string");
      const id = `${d.key}_${d.value ?? ""}`;
      if (seen.has(id))
        fail(p, `duplicate descriptor key "${d.key}"${d.value ? ` value "${d.value}"` : ""} at this level`);
      seen.add(id);
      const rl = d.rate_limit;
      if (rl !== undefined) {
        if (typeof rl !== "object" || rl === null) fail([...p, "rate_limit"], "must be a mapping");
        for (const k of Object.keys(rl))
          if (!LIMIT_KEYS.has(k)) fail([...p, "rate_limit", k], "is not a rate_limit field");
        if (rl.unlimited === true) {
          if (rl.unit !== undefined || rl.requests_per_unit !== undefined) {
            fail([...p, "rate_limit"], "unlimited cannot be combined with unit/requests_per_unit");
          }
        } else {
          const unit = typeof rl.unit === "string" ? rl.unit.toLowerCase() : rl.unit;
          if (!(unit && unit in UNIT_SECONDS)) {
            fail([...p, "rate_limit", "unit"], `"${rl.unit}" must be one of second, minute, hour, day`);
          }
          rl.unit = unit as RateLimitUnit;
          const n = rl.requests_per_unit;
          if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
            fail([...p, "rate_limit", "requests_per_unit"], "must be an integer >= 0");
          }
        }
      }
      if (d.shadow_mode !== undefined && typeof d.shadow_mode !== "boolean")
        fail([...p, "shadow_mode"], "must be a boolean");
      if (d.replaces !== undefined) {
        if (!Array.isArray(d.replaces)) fail([...p, "replaces"], "must be a list of {name}");
        if (!rl?.name && d.replaces.length > 0) {
          // envoyproxy/ratelimit: a replacing limit must itself be named.
          fail([...p, "rate_limit", "name"], "is required when replaces is set");
        }
        d.replaces.forEach((r, j) => {
          if (!r || typeof r.name !== "string" || !r.name) fail([...p, "replaces", j, "name"], "is required");
        });
      }
      walk(d.descriptors, [...p, "descriptors"]);
    });
  };
  walk(config.descriptors, ["descriptors"]);
  return config;
}

/**
 * Parses envoyproxy/ratelimit's YAML config format (one domain per document; several documents
 * separated by `---` give several domains). Errors name the file and line.
 * @throws PolicyError `invalid-rate-limit-config`.
 */
export function parseRateLimitConfig(yamlText: string, fileName = "<inline>"): RateLimitConfig[] {
  const docs = yamlText.split(/^---\s*$/m);
  const out: RateLimitConfig[] = [];
  let lineOffset = 0;
  for (const text of docs) {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = lines.linePos(e.pos[0]);
      throw new PolicyError(
        "invalid-rate-limit-config",
        `${fileName}:${pos.line + lineOffset}:${pos.col}: YAML syntax error: ${e.message.split("\n")[0]}`,
        { cause: e },
      );
    }
    const value = doc.toJS() as RateLimitConfig | null;
    if (value !== null && value !== undefined) {
      const where = (path: (string | number)[]): string => {
        for (let n = path.length; n >= 0; n--) {
          const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
          if (node?.range) return `${fileName}:${lines.linePos(node.range[0]).line + lineOffset}`;
        }
        return fileName;
      };
      out.push(validateRateLimitConfig(value, where));
    }
    lineOffset += text.split("\n").length;
  }
  const domains = new Set<string>();
  for (const c of out) {
    if (domains.has(c.domain)) {
      throw new PolicyError(
        "invalid-rate-limit-config",
        `${fileName}: domain "${c.domain}" is defined twice`,
      );
    }
    domains.add(c.domain);
  }
  return out;
}
