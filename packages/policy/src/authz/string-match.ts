/**
 * Istio string matching: `*` (presence: any non-empty value), `prefix*`, `*suffix`, or exact.
 * `ignoreCase` is used for hosts, which Istio matches case-insensitively.
 */
export function matchString(pattern: string, value: string | undefined, ignoreCase = false): boolean {
  if (value === undefined) return false;
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  if (p === "*") return v.length > 0;
  if (p.startsWith("*")) return v.endsWith(p.slice(1));
  if (p.endsWith("*")) return v.startsWith(p.slice(0, -1));
  return v === p;
}

/** Whether a path pattern uses `{*}`/`{**}` template operators. */
export function isPathTemplate(pattern: string): boolean {
  return pattern.includes("{*}") || pattern.includes("{**}");
}

const templateCache = new Map<string, RegExp>();

/**
 * Compiles a path template: `{*}` matches exactly one non-empty path segment, `{**}` (only as
 * the last segment) matches zero or more segments, as Envoy's `uri_template` matcher defines them.
 */
export function compilePathTemplate(pattern: string): RegExp {
  const cached = templateCache.get(pattern);
  if (cached) return cached;
  const segments = pattern.split("/");
  let re = "";
  segments.forEach((seg, i) => {
    if (i > 0) re += "/";
    if (seg === "{*}") re += "[^/]+";
    else if (seg === "{**}") re += ".*";
    else re += seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  });
  const compiled = new RegExp(`^${re}$`);
  templateCache.set(pattern, compiled);
  return compiled;
}

/** Path matching: templates when the pattern has `{*}`/`{**}`, else {@link matchString}. */
export function matchPath(pattern: string, path: string | undefined): boolean {
  if (path === undefined) return false;
  if (isPathTemplate(pattern)) return compilePathTemplate(pattern).test(path);
  return matchString(pattern, path);
}

/**
 * Host matching as Istio generates it: case-insensitive, and an exact host also matches the same
 * host with any port (`example.com` matches `example.com:8080`).
 */
export function matchHost(pattern: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  if (matchString(pattern, host, true)) return true;
  if (!pattern.includes("*") && !pattern.includes(":")) {
    return host.toLowerCase().startsWith(`${pattern.toLowerCase()}:`);
  }
  return false;
}
