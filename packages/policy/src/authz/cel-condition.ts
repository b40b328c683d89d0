import { type CelInput, celEnv, isCelError, parse, plan } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import type { Attributes } from "../attributes.js";
import { PolicyError } from "../policy-error.js";

/** A compiled CEL condition: call it with attributes, get whether it holds. */
export type CelCondition = (attrs: Attributes) => boolean;

const env = celEnv({ funcs: strings });
const compiled = new Map<string, CelCondition>();

/** Turns attributes into CEL bindings: `source`, `destination`, `request`, `connection`, `remote`. */
function bindings(attrs: Attributes): Record<string, CelInput> {
  // CEL sees plain JSON-like values; absent groups are empty maps so `has()` works.
  return {
    source: (attrs.source ?? {}) as CelInput,
    destination: (attrs.destination ?? {}) as CelInput,
    request: (attrs.request ?? {}) as CelInput,
    connection: (attrs.connection ?? {}) as CelInput,
    remote: (attrs.remote ?? {}) as CelInput,
  };
}

/**
 * Compiles a CEL expression over the attribute groups `source`, `destination`, `request`,
 * `connection`, `remote` (e.g. `request.headers["x-tier"] == "gold" && source.namespace != "dev"`).
 * Evaluation errors (a missing key, a wrong type) make the condition false rather than throw:
 * a policy that cannot be evaluated for a request does not match it.
 *
 * @throws PolicyError `invalid-cel` when the expression does not parse.
 */
export function compileCel(expression: string): CelCondition {
  const hit = compiled.get(expression);
  if (hit) return hit;
  let program: ReturnType<typeof plan>;
  try {
    program = plan(env, parse(expression));
  } catch (e) {
    throw new PolicyError("invalid-cel", `CEL expression ${JSON.stringify(expression)} does not parse`, {
      cause: e,
    });
  }
  const condition: CelCondition = (attrs) => {
    const result = program(bindings(attrs));
    return !isCelError(result) && result === true;
  };
  compiled.set(expression, condition);
  return condition;
}
