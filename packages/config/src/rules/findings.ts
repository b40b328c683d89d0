import type { Severity } from "../diagnostic.js";

/** One finding of a semantic rule: severity, what is wrong, and where (a field path). */
export interface RuleIssue {
  readonly severity: Severity;
  readonly message: string;
  readonly path: ReadonlyArray<string | number>;
  /** Istio's analysis message code when Istio reports the finding under one (IST0130, …). */
  readonly code?: string;
}

/** Collects rule findings; `at` scopes a path so nested checks can be written once. */
export class Findings {
  readonly issues: RuleIssue[] = [];

  error(path: ReadonlyArray<string | number>, message: string): void {
    this.issues.push({ severity: "error", message, path });
  }

  warn(path: ReadonlyArray<string | number>, message: string, code?: string): void {
    this.issues.push({ severity: "warning", message, path, ...(code !== undefined ? { code } : {}) });
  }

  /** A note Istio reports at level Info, under its message code. */
  info(path: ReadonlyArray<string | number>, message: string, code: string): void {
    this.issues.push({ severity: "info", message, path, code });
  }

  /** Records `message` (from a value check returning an error text or undefined) as an error. */
  check(path: ReadonlyArray<string | number>, message: string | undefined): void {
    if (message !== undefined) this.error(path, message);
  }
}

/** A value read loosely from a validated spec: the schema has checked types, rules read fields. */
export type Obj = Record<string, unknown>;

/** `value` as an object (or an empty one). */
export function obj(value: unknown): Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Obj) : {};
}

/** `value` as an array (or an empty one). */
export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** `value` as a string (or `""`, as protobuf reads an unset string). */
export function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}
