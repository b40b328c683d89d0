import {
  type GeneratedResources,
  type GenerateRequest,
  type ProxyGenerator,
  type ProxyGenerators,
  updateLoadAssignments,
} from "../controller/generator.js";
import type { TranslationWarning, TranslationWarningCode } from "../translate/warnings.js";
import type { EnvoyGeneratorOptions, EnvoyGeneratorWarning } from "./context.js";
import { generateEnvoy } from "./generate.js";

// The Envoy generators as MeshController generators (controller/generator.ts `ProxyGenerator`):
// sidecars and gateways get every listener and cluster (Envoy subscribes to LDS and CDS with a
// wildcard) and the route configurations and load assignments they name.

const TRANSLATION_CODES = new Set<string>(["UNSUPPORTED_BY_CLIENT", "IGNORED_BY_ISTIO", "INVALID_CONFIG"]);

/** An Envoy generator warning as a translation warning (its own code kept in the message). */
export function toTranslationWarning(w: EnvoyGeneratorWarning): TranslationWarning {
  const known = TRANSLATION_CODES.has(w.code);
  return {
    code: (known
      ? w.code
      : w.code === "unsupported-policy"
        ? "UNSUPPORTED_BY_CLIENT"
        : "INVALID_CONFIG") as TranslationWarningCode,
    message: known ? w.message : `${w.code}: ${w.message}`,
    ...(w.source !== undefined ? { config: w.source } : {}),
    client: "envoy",
  };
}

/** `(Proxy, PushContext) → resources` for Envoy sidecars and gateways. */
export function envoyProxyGenerator(options: EnvoyGeneratorOptions = {}): ProxyGenerator {
  return Object.assign(
    (request: GenerateRequest): GeneratedResources => {
      const r = generateEnvoy(request.proxy, request.push, options);
      return {
        listeners: r.listeners,
        routes: r.routes,
        clusters: r.clusters,
        endpoints: r.endpoints,
        secrets: r.secrets,
        warnings: r.warnings.map(toTranslationWarning),
      };
    },
    // Load assignments are sharedLoadAssignment's (clusters.ts): the incremental EDS path applies.
    { updateEndpoints: updateLoadAssignments },
  );
}

/** Generators for `MeshController({ generators })`: the Envoy generator for sidecars and gateways. */
export function envoyGenerators(options: EnvoyGeneratorOptions = {}): ProxyGenerators {
  const generator = envoyProxyGenerator(options);
  return { sidecar: generator, gateway: generator };
}
