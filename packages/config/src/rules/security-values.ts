// The value rules of Istio's AuthorizationPolicy, written from istio/istio
// pkg/config/security/security.go (ValidateAttribute, CheckServiceAccount, CheckValidPathTemplate,
// ValidatePorts, validateMapKey) and its tests (security_test.go). They are exported so an engine
// that compiles policies (`@meshlet/policy`) can keep a defensive check that is this rule, never a
// second one.
import { ipOrCidrProblem } from "./values.js";

/** `when` keys Istio matches exactly (security.go's attribute constants). */
const EXACT_KEYS = new Set([
  "source.ip",
  "remote.ip",
  "source.namespace",
  "source.serviceAccount",
  "source.principal",
  "request.auth.principal",
  "request.auth.audiences",
  "request.auth.presenter",
  "destination.ip",
  "destination.port",
  "connection.sni",
]);

/** `when` keys that name one map entry: `<prefix>[<name>]` (security.go, validateMapKey). */
const MAP_KEY_PREFIXES = [
  "request.headers",
  "request.experimental.inline.headers",
  "request.auth.claims",
  "experimental.envoy.filters.",
];

/** Istio's limit on the values of one `source.serviceAccount` condition (CheckServiceAccount). */
export const MAX_SERVICE_ACCOUNT_VALUES = 16;

// RFC 3986 appendix A pchar without `*` (and with `=`), as Istio's validLiteral and Envoy's
// uri_template matcher define a literal segment.
const VALID_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** security.ValidateAttribute, the key half: what is wrong with a `when` key, or undefined. */
export function conditionKeyProblem(key: string): string | undefined {
  if (MAP_KEY_PREFIXES.some((prefix) => key.startsWith(prefix))) {
    const open = key.indexOf("[");
    return key.endsWith("]") && open > 0 && open < key.length - 2
      ? undefined
      : `bad key (${key}): should have format a[b]`;
  }
  if (EXACT_KEYS.has(key)) return undefined;
  if (key === "destination.namespace") return `attribute ${key} is replaced by the metadata.namespace`;
  if (key.startsWith("destination.labels")) return `attribute ${key} is replaced by the workload selector`;
  if (key === "destination.name" || key === "destination.user")
    return `deprecated attribute ${key}: only supported in v1alpha1`;
  return `unknown attribute: ${key} (see Istio's Authorization Policy Conditions)`;
}

/** security.ValidateAttribute, the value half: what is wrong with one value of a valid key, or undefined. */
export function conditionValueProblem(key: string, value: string): string | undefined {
  if (value === "") return `empty value not allowed, found in ${key}`;
  if (key === "source.ip" || key === "remote.ip" || key === "destination.ip") return ipOrCidrProblem(value);
  if (key === "destination.port") return authzPortProblem(value);
  if (key === "source.serviceAccount") return serviceAccountProblem(value, key);
  return undefined;
}

/** security.ValidatePorts: a decimal number up to 65535. */
export function authzPortProblem(value: string): string | undefined {
  return /^\d+$/.test(value) && Number(value) <= 65535 ? undefined : `bad port (${value})`;
}

/**
 * security.CheckServiceAccount for one value: `<serviceAccount>` or `<namespace>/<serviceAccount>`,
 * neither part empty, no wildcard, at most 320 characters. `field` names where it was found.
 */
export function serviceAccountProblem(value: string, field = "serviceAccounts"): string | undefined {
  if (value === "") return `empty value not allowed, found in ${field}`;
  if (value.includes("*")) return `wildcard not allowed, found in ${field}`;
  const slashes = value.split("/").length - 1;
  if (slashes > 1)
    return `expected format 'serviceAccount' or 'namespace/serviceAccount', found "${value}" in ${field}`;
  if (value.length > 320) return `value cannot exceed 320 characters, found "${value}" in ${field}`;
  const [ns, sa] = slashes === 1 ? (value.split("/") as [string, string]) : ["-", value];
  if (ns === "")
    return `expected format 'serviceAccount' or 'namespace/serviceAccount', found empty namespace "${value}" in ${field}`;
  if (sa === "")
    return `expected format 'serviceAccount' or 'namespace/serviceAccount', found empty serviceAccount "${value}" in ${field}`;
  return undefined;
}

/** Whether a path uses Istio's template operators `{*}` or `{**}` (security.ContainsPathTemplate). */
export function isPathTemplate(path: string): boolean {
  return path.includes("{*}") || path.includes("{**}");
}

/**
 * security.CheckValidPathTemplate for one `paths`/`notPaths` value: `{*}` and `{**}` only as whole
 * segments, nothing but literals after `{**}`, no other `{` or `}` anywhere (so `/foo/{bar}` is
 * refused even though it holds no operator), and in a template every other segment a literal of
 * RFC 3986 pchars.
 */
export function pathTemplateProblem(path: string, field = "paths"): string | undefined {
  const template = isPathTemplate(path);
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  const invalid = (why: string) => `invalid or unsupported path ${trimmed}, found in ${field}. ${why}`;
  let seenAny = false;
  for (const glob of trimmed.split("/")) {
    if (glob === "{*}" || glob === "{**}") {
      if (seenAny) return invalid("{**} is not the last operator");
      seenAny = glob === "{**}";
      continue;
    }
    if (/[{}]/.test(glob)) return invalid("Contains '{' or '}' beyond a supported path template");
    if (template && !VALID_LITERAL.test(glob))
      return invalid(`Contains segment ${glob} with invalid string literal`);
  }
  return undefined;
}
