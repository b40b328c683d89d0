import { ConfigError } from "./config-error.js";
import { builtinKinds, type KindDefinition, type RuleIssue } from "./kinds.js";
import type { Resource } from "./resource.js";
import { parseApiVersion } from "./resource.js";

/**
 * The kinds a store or validator accepts. Starts with {@link builtinKinds}; users add their own
 * (custom adapters' config) with `register`. Passed in explicitly — there is no global registry.
 */
export class KindRegistry {
  readonly #byKind = new Map<string, KindDefinition>();

  /** A registry with the built-in kinds, plus `extra` ones. */
  constructor(extra: readonly KindDefinition[] = [], options: { builtins?: boolean } = {}) {
    for (const def of options.builtins === false ? [] : builtinKinds) this.register(def);
    for (const def of extra) this.register(def);
  }

  /**
   * Adds a kind. Kind names are unique in one registry: registering a name again with another group
   * throws `KIND_CONFLICT` (use a separate registry when two APIs share a kind name).
   */
  register(def: KindDefinition): this {
    if (def.kind === "" || def.versions.length === 0 || def.plural === "") {
      throw new ConfigError(
        "INVALID_ARGUMENT",
        `kind definition for "${def.kind}" needs a kind, a plural and at least one version`,
      );
    }
    const existing = this.#byKind.get(def.kind);
    if (existing !== undefined && existing.group !== def.group) {
      throw new ConfigError(
        "KIND_CONFLICT",
        `kind ${def.kind} is already registered for group "${existing.group}"; cannot register it for "${def.group}"`,
      );
    }
    this.#byKind.set(def.kind, def);
    return this;
  }

  /**
   * Adds rules to a registered kind, run after its own (schema first, then Istio's rules, then
   * these): the hook for a package that gives a kind meaning beyond Istio's, such as
   * `@meshlet/policy`'s condition annotation on AuthorizationPolicy. Every validation through this
   * registry (`validateFiles`, `meshlet validate`, a `ConfigStore`) runs them, and their paths are
   * located at file:line:column like any other finding. Other registries are not affected.
   * @throws ConfigError `UNKNOWN_KIND` when `kind` is not registered.
   */
  addRules(kind: string, rules: (resource: Resource) => readonly RuleIssue[]): this {
    const def = this.#byKind.get(kind);
    if (def === undefined) {
      throw new ConfigError("UNKNOWN_KIND", `cannot add rules to ${kind}: the kind is not registered`);
    }
    const own = def.rules;
    this.#byKind.set(kind, {
      ...def,
      rules: (resource) => [...(own?.(resource) ?? []), ...rules(resource)],
    });
    return this;
  }

  /** The definition of `kind`, or undefined. */
  get(kind: string): KindDefinition | undefined {
    return this.#byKind.get(kind);
  }

  /** The definition matching `apiVersion` + `kind`, or undefined when either does not match. */
  resolve(apiVersion: string, kind: string): KindDefinition | undefined {
    const def = this.#byKind.get(kind);
    if (def === undefined) return undefined;
    const { group, version } = parseApiVersion(apiVersion);
    return def.group === group && def.versions.includes(version) ? def : undefined;
  }

  /** Every registered kind. */
  list(): KindDefinition[] {
    return [...this.#byKind.values()];
  }
}
