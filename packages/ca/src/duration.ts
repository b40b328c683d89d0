import { CaError } from "./ca-error.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration: milliseconds as a number, or a string such as `"90s"`, `"24h"`, `"90d"`, `"1h30m"`.
 */
export type Duration = number | string;

/** Converts a {@link Duration} to milliseconds; `field` names the option in errors. */
export function toMilliseconds(value: Duration, field: string): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value))
      throw new CaError("invalid-ttl", `${field}: ${value} is not a finite duration`);
    return value;
  }
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== value) {
    throw new CaError(
      "invalid-ttl",
      `${field}: ${JSON.stringify(value)} is not a duration; use milliseconds or e.g. "24h", "90d", "1h30m"`,
    );
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] as number), 0);
}

/** Formats milliseconds for messages (`"2160h"`, `"90s"`). */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
