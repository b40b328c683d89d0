import { isMap, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from "yaml";
import { PolicyError } from "../policy-error.js";

/**
 * envoyproxy/ratelimit's configuration format, read exactly as ratelimit reads it
 * (`src/config/config_impl.go`: `validateYamlKeys`, `loadDescriptors`, `loadConfig`): the same
 * keys, the same checks and, for what ratelimit rejects, the same error text.
 */

/** Rate-limit window units of envoyproxy/ratelimit (`RateLimitResponse.RateLimit.Unit`, case-insensitive). */
export type RateLimitUnit = "second" | "minute" | "hour" | "day" | "week" | "month" | "year";

/** Seconds per {@link RateLimitUnit}, as ratelimit's `UnitToDivider` (a month is 30 days, a year 365). */
export const UNIT_SECONDS: Readonly<Record<RateLimitUnit, number>> = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86_400,
  week: 604_800,
  month: 2_592_000,
  year: 31_536_000,
};

/** A limit (`rate_limit`): `requests_per_unit` per `unit`, or `unlimited`. */
export interface RateLimitPolicy {
  /** Names this limit, for other limits' `replaces`. */
  name?: string;
  unit?: string;
  requests_per_unit?: number;
  /** Matches and is never counted nor limited. */
  unlimited?: boolean;
  /** Matching this limit drops the limits with these names from the same request. */
  replaces?: { name: string }[];
}

/** A node of the descriptor tree, snake_case as ratelimit's YAML writes it. */
export interface RateLimitDescriptorConfig {
  key: string;
  /** Exact value, a wildcard value (`*` matches any characters: `api/*`, `/api*v1`), or absent to match any value of `key`. */
  value?: string;
  rate_limit?: RateLimitPolicy;
  /** Over-limit requests are counted and reported but allowed. */
  shadow_mode?: boolean;
  /** Metrics per value (ratelimit's stats; accepted, no effect on decisions). */
  detailed_metric?: boolean;
  /** Metrics keyed by the runtime value (ratelimit's stats; accepted, no effect on decisions). */
  value_to_metric?: boolean;
  /** With a wildcard `value`, every value the wildcard matches shares one counter. */
  share_threshold?: boolean;
  descriptors?: RateLimitDescriptorConfig[];
}

/** One domain's configuration: the unit of ratelimit's config files. */
export interface RateLimitConfig {
  domain: string;
  descriptors?: RateLimitDescriptorConfig[];
}

/** ratelimit's `validKeys`: one flat set, checked at every level of the document. */
const VALID_KEYS = new Set([
  "domain",
  "key",
  "value",
  "descriptors",
  "rate_limit",
  "unit",
  "requests_per_unit",
  "unlimited",
  "shadow_mode",
  "name",
  "replaces",
  "detailed_metric",
  "value_to_metric",
  "share_threshold",
]);

/** Fields each level of ratelimit's structs reads; other valid keys there are ignored. */
const ROOT_FIELDS = new Set(["domain", "descriptors"]);
const DESCRIPTOR_FIELDS = new Set([
  "key",
  "value",
  "rate_limit",
  "descriptors",
  "shadow_mode",
  "detailed_metric",
  "value_to_metric",
  "share_threshold",
]);
const LIMIT_FIELDS = new Set(["requests_per_unit", "unit", "unlimited", "name", "replaces"]);

/** Where a config value sits: a field path, mapped to file:line when the config came from YAML. */
type Where = (path: (string | number)[]) => string;

/** Options of {@link parseRateLimitConfig} and {@link validateRateLimitConfig}. */
export interface RateLimitConfigOptions {
  /**
   * Called for keys ratelimit accepts but ignores where they are written (e.g. `replaces` on a
   * descriptor instead of under `rate_limit`): the file loads, the key has no effect.
   */
  onWarning?: (message: string) => void;
}

function describe(path: (string | number)[]): string {
  return (
    path
      .map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`))
      .join("")
      .replace(/^\./, "") || "<root>"
  );
}

/** A validated descriptor node, normalized (unit lower case, value absent when empty). */
export interface NormalizedDescriptor {
  key: string;
  value?: string;
  /** `key` or `key_value`, as ratelimit keys its maps. */
  finalKey: string;
  limit?: {
    name?: string;
    unit?: RateLimitUnit;
    requestsPerUnit: number;
    unlimited: boolean;
    replaces: string[];
  };
  shadowMode: boolean;
  shareThreshold: boolean;
  descriptors: NormalizedDescriptor[];
}

/**
 * Validates one domain's config with ratelimit's rules and returns it normalized.
 * @throws PolicyError `invalid-rate-limit-config` with ratelimit's message, the field path and
 *   the location.
 */
export function normalizeRateLimitConfig(
  config: unknown,
  where: Where = () => "",
  options: RateLimitConfigOptions = {},
): { domain: string; descriptors: NormalizedDescriptor[] } {
  const fail = (path: (string | number)[], what: string): never => {
    const loc = where(path);
    throw new PolicyError(
      "invalid-rate-limit-config",
      `${loc ? `${loc}: ` : ""}${what} (at ${describe(path)})`,
    );
  };
  const warn = (path: (string | number)[], what: string) => {
    const loc = where(path);
    options.onWarning?.(`${loc ? `${loc}: ` : ""}${what} (at ${describe(path)})`);
  };
  // validateYamlKeys: every key of every map is a string from the valid set; lists hold maps.
  const checkKeys = (v: unknown, path: (string | number)[]): void => {
    if (Array.isArray(v)) {
      v.forEach((e, i) => {
        if (e === null || typeof e !== "object" || Array.isArray(e)) {
          fail([...path, i], `config error, yaml file contains list of type other than map: ${String(e)}`);
        }
        checkKeys(e, [...path, i]);
      });
      return;
    }
    if (v === null || typeof v !== "object") return;
    for (const [k, child] of Object.entries(v)) {
      if (!VALID_KEYS.has(k)) fail([...path, k], `config error, unknown key '${k}'`);
      if (typeof child === "number" && !Number.isInteger(child)) fail([...path, k], "error checking config");
      checkKeys(child, [...path, k]);
    }
  };
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    fail([], "config file must be a mapping with domain and descriptors");
  }
  checkKeys(config, []);
  const root = config as Record<string, unknown>;
  for (const k of Object.keys(root)) {
    if (!ROOT_FIELDS.has(k)) warn([k], `key '${k}' has no effect at the top level`);
  }
  // yaml.v2 fills a string field from any scalar; other fields must have their type.
  const str = (v: unknown, path: (string | number)[]): string => {
    if (v === undefined || v === null) return "";
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return fail(path, `cannot unmarshal ${Array.isArray(v) ? "!!seq" : "!!map"} into string`);
  };
  const bool = (v: unknown, path: (string | number)[]): boolean => {
    if (v === undefined || v === null) return false;
    if (typeof v !== "boolean") fail(path, `cannot unmarshal ${JSON.stringify(v)} into bool`);
    return v as boolean;
  };
  const list = (v: unknown, path: (string | number)[]): Record<string, unknown>[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) fail(path, "cannot unmarshal into a list");
    return v as Record<string, unknown>[];
  };
  const domain = str(root.domain, ["domain"]);
  if (domain === "") fail(["domain"], "config file cannot have empty domain");

  const load = (
    items: Record<string, unknown>[],
    parentKey: string,
    path: (string | number)[],
  ): NormalizedDescriptor[] => {
    const seen = new Set<string>();
    return items.map((d, i) => {
      const p = [...path, i];
      for (const k of Object.keys(d)) {
        if (!DESCRIPTOR_FIELDS.has(k)) {
          warn(
            [...p, k],
            `key '${k}' has no effect on a descriptor${k === "replaces" || k === "name" ? ` (write it under rate_limit)` : ""}`,
          );
        }
      }
      const key = str(d.key, [...p, "key"]);
      if (key === "") fail([...p, "key"], "descriptor has empty key");
      const value = str(d.value, [...p, "value"]);
      const finalKey = value === "" ? key : `${key}_${value}`;
      const fullKey = parentKey + finalKey;
      if (seen.has(finalKey)) fail(p, `duplicate descriptor composite key '${fullKey}'`);
      seen.add(finalKey);
      let limit: NormalizedDescriptor["limit"];
      const rl = d.rate_limit;
      if (rl !== undefined && rl !== null) {
        const lp = [...p, "rate_limit"];
        if (typeof rl !== "object" || Array.isArray(rl)) fail(lp, "cannot unmarshal into rate_limit");
        const r = rl as Record<string, unknown>;
        for (const k of Object.keys(r)) {
          if (!LIMIT_FIELDS.has(k)) warn([...lp, k], `key '${k}' has no effect in rate_limit`);
        }
        const unlimited = bool(r.unlimited, [...lp, "unlimited"]);
        const unitText = str(r.unit, [...lp, "unit"]);
        const unit = unitText.toLowerCase();
        const validUnit = unit in UNIT_SECONDS;
        if (unlimited) {
          if (validUnit) fail([...lp, "unit"], "should not specify rate limit unit when unlimited");
        } else if (!validUnit) {
          fail([...lp, "unit"], `invalid rate limit unit '${unitText}'`);
        }
        const rpu = r.requests_per_unit ?? 0;
        if (typeof rpu !== "number" || !Number.isInteger(rpu) || rpu < 0 || rpu > 0xffffffff) {
          fail([...lp, "requests_per_unit"], `cannot unmarshal ${JSON.stringify(rpu)} into uint32`);
        }
        const name = str(r.name, [...lp, "name"]);
        const replaces = list(r.replaces, [...lp, "replaces"]).map((x, j) => {
          if (x === null || typeof x !== "object")
            fail([...lp, "replaces", j], "cannot unmarshal into replaces");
          return str(x.name, [...lp, "replaces", j, "name"]);
        });
        replaces.forEach((n, j) => {
          if (n === "") fail([...lp, "replaces", j], "should not have an empty replaces entry");
          if (n === name) fail([...lp, "replaces", j], "replaces should not contain name of same descriptor");
        });
        limit = {
          ...(name !== "" && { name }),
          ...(validUnit && !unlimited && { unit: unit as RateLimitUnit }),
          requestsPerUnit: rpu as number,
          unlimited,
          replaces,
        };
      }
      const shadowMode = bool(d.shadow_mode, [...p, "shadow_mode"]);
      bool(d.detailed_metric, [...p, "detailed_metric"]);
      bool(d.value_to_metric, [...p, "value_to_metric"]);
      const shareThreshold = bool(d.share_threshold, [...p, "share_threshold"]);
      if (shareThreshold && !finalKey.includes("*")) {
        fail(
          [...p, "share_threshold"],
          `share_threshold can only be used with wildcard values (containing '*'), but found key '${finalKey}'`,
        );
      }
      return {
        key,
        ...(value !== "" && { value }),
        finalKey,
        ...(limit && { limit }),
        shadowMode,
        shareThreshold,
        descriptors: load(list(d.descriptors, [...p, "descriptors"]), `${fullKey}.`, [...p, "descriptors"]),
      };
    });
  };
  return {
    domain,
    descriptors: load(list(root.descriptors, ["descriptors"]), `${domain}.`, ["descriptors"]),
  };
}

/**
 * Validates a rate-limit config object with envoyproxy/ratelimit's rules; returns it unchanged.
 * @throws PolicyError `invalid-rate-limit-config` naming the path and ratelimit's reason.
 */
export function validateRateLimitConfig(
  config: RateLimitConfig,
  options: RateLimitConfigOptions = {},
): RateLimitConfig {
  normalizeRateLimitConfig(config, () => "", options);
  return config;
}

/**
 * Parses envoyproxy/ratelimit's YAML config. ratelimit reads one domain per file; as a meshlet
 * extension, several YAML documents separated by `---` give several domains. Errors name the file
 * and line and carry ratelimit's own message.
 * @throws PolicyError `invalid-rate-limit-config`.
 */
export function parseRateLimitConfig(
  yamlText: string,
  fileName = "<inline>",
  options: RateLimitConfigOptions = {},
): RateLimitConfig[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(yamlText, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const out: RateLimitConfig[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length > 0) {
      const e = doc.errors[0] as (typeof doc.errors)[number];
      const pos = lines.linePos(e.pos[0]);
      throw new PolicyError(
        "invalid-rate-limit-config",
        `${fileName}:${pos.line}:${pos.col}: error loading config file: ${e.message.split("\n")[0]}`,
        { cause: e },
      );
    }
    const nonString = findNonStringKey(doc.contents);
    if (nonString) {
      throw new PolicyError(
        "invalid-rate-limit-config",
        `${fileName}:${lines.linePos(nonString.offset).line}: config error, key is not of type string: ${nonString.key}`,
      );
    }
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const where: Where = (path) => {
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node?.range) return `${fileName}:${lines.linePos(node.range[0]).line}`;
      }
      return fileName;
    };
    normalizeRateLimitConfig(value, where, options);
    out.push(value as RateLimitConfig);
  }
  const domains = new Set<string>();
  for (const c of out) {
    if (domains.has(c.domain)) {
      throw new PolicyError(
        "invalid-rate-limit-config",
        `${fileName}: duplicate domain '${c.domain}' in config file`,
      );
    }
    domains.add(c.domain);
  }
  return out;
}

/** ratelimit rejects a map key that is not a string (`0.25:`); YAML's JS form would hide it. */
function findNonStringKey(node: Node | null | undefined): { key: string; offset: number } | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = pair.key;
      if (isScalar(k) && typeof k.value !== "string") {
        return { key: String(k.value), offset: k.range?.[0] ?? 0 };
      }
      const inner = findNonStringKey(pair.value as Node);
      if (inner) return inner;
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      const inner = findNonStringKey(item as Node);
      if (inner) return inner;
    }
  }
  return undefined;
}
