/**
 * The subset of JSON Schema an adapter uses to describe its config: enough to reject typos and
 * wrong types at registration instead of at the first request.
 */
export interface ConfigSchema {
  type?: "object" | "string" | "number" | "integer" | "boolean" | "array";
  properties?: Record<string, ConfigSchema>;
  required?: string[];
  /** `false` rejects unknown keys (the usual typo). */
  additionalProperties?: boolean;
  items?: ConfigSchema;
  enum?: readonly (string | number | boolean)[];
  minimum?: number;
  maximum?: number;
  description?: string;
}

/**
 * Validates a value against a {@link ConfigSchema}; returns every problem as
 * `<path>: <what is wrong>` (empty when valid).
 */
export function validateConfig(schema: ConfigSchema, value: unknown, path = "config"): string[] {
  const problems: string[] = [];
  const t = schema.type;
  const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  if (t === "integer") {
    if (typeof value !== "number" || !Number.isInteger(value))
      return [`${path}: must be an integer, got ${actual}`];
  } else if (t !== undefined && t !== actual) {
    return [`${path}: must be ${t === "array" || t === "object" ? "an" : "a"} ${t}, got ${actual}`];
  }
  if (schema.enum && !schema.enum.includes(value as string)) {
    problems.push(`${path}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum)
      problems.push(`${path}: must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      problems.push(`${path}: must be <= ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    value.forEach((v, i) => {
      problems.push(...validateConfig(items, v, `${path}[${i}]`));
    });
  }
  if (actual === "object") {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? []) {
      if (obj[r] === undefined) problems.push(`${path}.${r}: is required`);
    }
    for (const [k, v] of Object.entries(obj)) {
      const sub = schema.properties?.[k];
      if (sub) problems.push(...validateConfig(sub, v, `${path}.${k}`));
      else if (schema.additionalProperties === false) problems.push(`${path}.${k}: is not a known option`);
    }
  }
  return problems;
}
