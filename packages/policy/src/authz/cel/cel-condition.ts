import { celEnv, isCelError, parse, plan } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import type { Attributes } from "../../attributes.js";
import { PolicyError } from "../../policy-error.js";
import { CEL_ENVIRONMENT, celBindings } from "./cel-environment.js";
import { CelTypeError, checkCel } from "./cel-type-check.js";

/** What one evaluation of a CEL condition gave: a boolean, or why it could not be decided. */
export type CelOutcome = boolean | { error: string };

/** A CEL condition compiled once: evaluate it for any number of requests. */
export interface CompiledCel {
  readonly expression: string;
  /** Evaluates over the attributes; a non-boolean result or an evaluation error is `{ error }`. */
  evaluate(attrs: Attributes, bindings?: unknown): CelOutcome;
}

const env = celEnv({ funcs: strings });

/**
 * Compiles a CEL expression over the attribute groups `source`, `destination`, `request`,
 * `connection`, `remote` (e.g. `request.headers["x-tier"] == "gold" && source.namespace != "dev"`),
 * type-checked against {@link CEL_ENVIRONMENT}: an unknown variable, field or function, or a
 * comparison of mismatched types, is refused here rather than failing every request later.
 *
 * @throws PolicyError `invalid-cel` when the expression does not parse, does not type-check, or
 *   is not a boolean.
 */
export function compileCel(expression: string): CompiledCel {
  let program: ReturnType<typeof plan>;
  try {
    const parsed = parse(expression);
    const type = checkCel(parsed.expr, CEL_ENVIRONMENT);
    if (type.kind !== "bool" && type.kind !== "dyn") {
      throw new CelTypeError(`the expression is a ${type.kind}, a condition must be a bool`);
    }
    program = plan(env, parsed);
  } catch (e) {
    const why = e instanceof CelTypeError ? "does not type-check" : "does not parse";
    throw new PolicyError(
      "invalid-cel",
      `CEL expression ${JSON.stringify(expression)} ${why}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return {
    expression,
    evaluate(attrs, bindings) {
      const result = program((bindings ?? celBindings(attrs)) as Parameters<typeof program>[0]);
      if (isCelError(result)) return { error: result.message };
      if (typeof result !== "boolean") return { error: `evaluated to a ${typeof result}, not a bool` };
      return result;
    },
  };
}
