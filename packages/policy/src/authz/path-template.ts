/**
 * Istio's path templates (`Operation.paths` with `{*}` and `{**}`), which Istio hands to Envoy's
 * `uri_template` matcher as `*` and `**`:
 * - `{*}` matches one path segment of one or more pchar characters (RFC 3986 appendix A, without
 *   `*`): Envoy's `[a-zA-Z0-9-._~%!$&'()+,;:@=]+`;
 * - `{**}` matches zero or more of those characters and `/`, across segments; no operator may
 *   follow it (Istio: "If a path contains {**}, it must be the last operator");
 * - every other segment of a templated path is a literal of pchar characters.
 * Which templates are valid is `@meshlet/config`'s rule (Istio's CheckValidPathTemplate,
 * `pathTemplateProblem`): policies are validated by config before they are compiled here.
 * Sources: istio/api `security/v1beta1/authorization_policy.proto` (Operation.paths),
 * envoyproxy/envoy `source/extensions/path/uri_template_lib/uri_template_internal.cc`
 * (toRegexPattern).
 */

const PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";

/** The Envoy `uri_template` form of an Istio path template (`{*}` → `*`, `{**}` → `**`). */
export function toEnvoyPathTemplate(pattern: string): string {
  return pattern.replaceAll("{**}", "**").replaceAll("{*}", "*");
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Compiles an Istio path template to the full-match regular expression Envoy's `uri_template`
 * matcher builds for it. Validate it first (`@meshlet/config`'s `pathTemplateProblem`):
 * invalid templates are not rejected here.
 */
export function compilePathTemplate(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; ) {
    if (pattern.startsWith("{**}", i)) {
      re += `[${PCHAR}/]*`;
      i += 4;
    } else if (pattern.startsWith("{*}", i)) {
      re += `[${PCHAR}]+`;
      i += 3;
    } else {
      re += escapeRe(pattern[i] as string);
      i += 1;
    }
  }
  return new RegExp(`^${re}$`);
}
