import { type Diagnostic, KindRegistry, validateResource } from "@meshlet/config";

/** A problem `@meshlet/config` found in a resource: the field path and the message. */
export interface ConfigProblem {
  path?: string;
  message: string;
}

const API_VERSION = "security.istio.io/v1";

/**
 * Validates a security resource with `@meshlet/config`, the one model of Istio's kinds (its
 * schema and semantic rules): the engine keeps no second definition. Objects written without
 * `apiVersion`/`kind` are validated as `security.istio.io/v1`.
 */
export function configProblems(
  registry: KindRegistry,
  kind: "AuthorizationPolicy" | "RequestAuthentication",
  resource: { apiVersion?: string; metadata: unknown; spec: unknown },
): ConfigProblem[] {
  // config's validateResource freezes a copy of what it accepts, never the caller's object: a
  // policy can be edited in place and set again.
  const object = { ...resource, apiVersion: resource.apiVersion ?? API_VERSION, kind };
  const { diagnostics } = validateResource(object, { source: "PolicyEngine" }, { registry });
  return diagnostics
    .filter((d: Diagnostic) => d.severity === "error")
    .map((d) => ({
      ...(d.path !== undefined && { path: d.path }),
      message: `${d.message}${d.expected !== undefined ? ` (expected ${d.expected})` : ""}`,
    }));
}

/** A registry of the built-in kinds, for {@link configProblems}. */
export function securityKindRegistry(): KindRegistry {
  return new KindRegistry();
}
