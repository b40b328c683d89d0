/**
 * Istio's path templates (`Operation.paths` with `{*}` and `{**}`), which Istio hands to Envoy's
 * `uri_template` matcher as `*` and `**`:
 * - `{*}` matches one path segment of one or more pchar characters (RFC 3986 appendix A, without
 *   `*`): Envoy's `[a-zA-Z0-9-._~%!$&'()+,;:@=]+`;
 * - `{**}` matches zero or more of those characters and `/`, across segments; no operator may
 *   follow it (Istio: "If a path contains {**}, it must be the last operator");
 * - every other segment of a templated path is a literal of pchar characters.
 * Sources: istio/api `security/v1beta1/authorization_policy.proto` (Operation.paths),
 * istio/istio `pkg/config/security/security.go` (CheckValidPathTemplate), envoyproxy/envoy
 * `source/extensions/path/uri_template_lib/uri_template_internal.cc` (toRegexPattern).
 */

const PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";
const LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** Whether a path pattern uses the `{*}`/`{**}` template operators. */
export function isPathTemplate(pattern: string): boolean {
  return pattern.includes("{*}") || pattern.includes("{**}");
}

/**
 * Why a templated path is not one Istio accepts (undefined when it is fine, or not a template).
 * The checks are Istio's: operators only as whole segments, nothing but literals after `{**}`,
 * literal segments of pchar characters only.
 */
export function pathTemplateProblem(path: string): string | undefined {
  if (!isPathTemplate(path)) return undefined;
  if (!path.startsWith("/")) return "a path template must start with /";
  let seenAny = false;
  for (const glob of path.replace(/^\/+|\/+$/g, "").split("/")) {
    if (glob === "{*}" || glob === "{**}") {
      if (seenAny) return "{**} is not the last operator";
      seenAny = glob === "{**}";
      continue;
    }
    if (/[{}]/.test(glob)) return `segment "${glob}" contains '{' or '}' beyond a supported path template`;
    if (!LITERAL.test(glob)) return `segment "${glob}" is not a valid literal (RFC 3986 pchar, no '*')`;
  }
  return undefined;
}

/** The Envoy `uri_template` form of an Istio path template (`{*}` → `*`, `{**}` → `**`). */
export function toEnvoyPathTemplate(pattern: string): string {
  return pattern.replaceAll("{**}", "**").replaceAll("{*}", "*");
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Compiles an Istio path template to the full-match regular expression Envoy's `uri_template`
 * matcher builds for it. Call {@link pathTemplateProblem} first: invalid templates are not
 * rejected here.
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
