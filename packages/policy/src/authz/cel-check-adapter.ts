import type { CheckAdapter } from "../adapters/adapter.js";
import { compileCel } from "./cel/cel-condition.js";

/** Options of {@link createCelCheckAdapter}. */
export interface CelCheckAdapterOptions {
  /** The name CUSTOM policies use in `spec.provider.name`. */
  name: string;
  /** Allow when this CEL expression over the attributes is true (an evaluation error denies). */
  allowIf: string;
  /** Status for a denial (default 403). */
  denyStatus?: number;
  denyBody?: string;
}

/**
 * A custom rule as a {@link CheckAdapter}: a CEL expression decides requests that CUSTOM policies
 * route to it — logic that Istio's rule fields cannot express, without writing an adapter.
 *
 * @throws PolicyError `invalid-cel` when the expression does not parse or type-check.
 */
export function createCelCheckAdapter(options: CelCheckAdapterOptions): CheckAdapter {
  const allow = compileCel(options.allowIf);
  return {
    name: options.name,
    kind: "check",
    async check(attributes) {
      if (allow.evaluate(attributes) === true) return { allowed: true };
      return {
        allowed: false,
        status: options.denyStatus ?? 403,
        body: options.denyBody ?? "denied by CEL rule",
        reason: `CEL rule ${options.name} is false`,
      };
    },
  };
}
