import type { RequestAuthentication as IstioRequestAuthentication, KindRegistry } from "@meshlet/config";
import type { ObjectMeta } from "../authz/authorization-policy.js";
import { identify, type PolicyScope } from "../authz/scope.js";
import { configProblems } from "../config-validation.js";
import type { PolicyDiagnostic } from "../policy-diagnostic.js";
import { PolicyError } from "../policy-error.js";

type IstioSpec = IstioRequestAuthentication["spec"];

/** Istio `JWTRule` (from `@meshlet/config`): one accepted issuer and how to find and verify its tokens. */
export type JwtRule = NonNullable<IstioSpec["jwtRules"]>[number];
/** Where a token is read from: a header, with an optional prefix such as `Bearer `. */
export type JwtHeader = NonNullable<JwtRule["fromHeaders"]>[number];

/**
 * A `security.istio.io` RequestAuthentication as the engine takes it: `@meshlet/config`'s
 * `RequestAuthentication`, or the same object as written without `apiVersion`/`kind`.
 */
export interface RequestAuthentication {
  apiVersion?: string;
  kind?: "RequestAuthentication";
  metadata: ObjectMeta;
  spec: IstioSpec;
}

/** A RequestAuthentication ready to use: its scope resolved and its JWT rules checked. */
export interface CompiledRequestAuthentication {
  readonly id: string;
  readonly order: number;
  readonly scope: PolicyScope;
  readonly rules: readonly JwtRule[];
  /** Set when refused with a known scope: its workloads then reject every token (401). */
  readonly refused?: PolicyDiagnostic;
}

/**
 * What the engine needs of a JWT rule beyond Istio's validation (which `@meshlet/config` runs:
 * jwks JSON, jwksUri scheme): keys it can load, since meshlet does no OIDC discovery.
 */
function ruleProblem(rule: JwtRule, i: number): string | undefined {
  if (rule.jwks === undefined && rule.jwksUri === undefined) {
    return `spec.jwtRules[${i}]: needs jwks (inline JSON) or jwksUri: meshlet does not do OIDC discovery from the issuer`;
  }
  return undefined;
}

/**
 * Validates (with `@meshlet/config`) and compiles one RequestAuthentication. Never throws: a
 * refused one comes back as a diagnostic, compiled with `refused` when its scope is known.
 */
export function compileRequestAuthentication(
  ra: RequestAuthentication,
  order: number,
  registry: KindRegistry,
): { compiled?: CompiledRequestAuthentication; diagnostic?: PolicyDiagnostic } {
  const { id, spec, scope, scopeError } = identify(ra);
  const refuse = (error: PolicyError, path?: string) => {
    const diagnostic: PolicyDiagnostic = {
      kind: "RequestAuthentication",
      policy: id,
      ...(path !== undefined && { path }),
      message: error.rawMessage,
      effect: scope ? "reject-tokens" : "not-applied",
      error,
    };
    return scope
      ? { compiled: { id, order, scope, rules: [], refused: diagnostic }, diagnostic }
      : { diagnostic };
  };
  const problems = configProblems(registry, "RequestAuthentication", ra);
  if (problems.length > 0) {
    const text = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join("; ");
    return refuse(
      new PolicyError("invalid-policy", `RequestAuthentication ${id}: ${text}`),
      problems[0]?.path,
    );
  }
  if (scopeError || !scope || !spec) {
    const e = scopeError ?? new PolicyError("invalid-policy", "no metadata.name or spec");
    return refuse(new PolicyError(e.code, `RequestAuthentication ${id}: ${e.rawMessage}`, { cause: e }));
  }
  const rules = spec.jwtRules ?? [];
  for (const [i, rule] of rules.entries()) {
    const problem = ruleProblem(rule, i);
    if (problem) {
      return refuse(
        new PolicyError("unsupported", `RequestAuthentication ${id}: ${problem}`),
        problem.slice(0, problem.indexOf(":")),
      );
    }
  }
  return { compiled: { id, order, scope, rules } };
}
