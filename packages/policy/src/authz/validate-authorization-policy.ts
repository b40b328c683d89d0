import { PolicyError } from "../policy-error.js";
import {
  type AuthorizationPolicy,
  type Condition,
  DRY_RUN_ANNOTATION,
  isDryRun,
  type Operation,
  type Source,
} from "./authorization-policy.js";
import { compileCel } from "./cel-condition.js";
import { parseCidr } from "./ip-match.js";

const ACTIONS = new Set(["ALLOW", "DENY", "AUDIT", "CUSTOM"]);
const SOURCE_FIELDS: readonly (keyof Source)[] = [
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
];
const OPERATION_FIELDS: readonly (keyof Operation)[] = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
];
/** Condition keys Istio documents; `[...]` keys take a name. */
const CONDITION_KEYS = new Set([
  "source.ip",
  "remote.ip",
  "source.namespace",
  "source.principal",
  "destination.ip",
  "destination.port",
  "connection.sni",
  "request.auth.principal",
  "request.auth.audiences",
  "request.auth.presenter",
]);
const INDEXED_CONDITION_KEYS = /^(request\.headers|request\.auth\.claims)(\[[^\][]+\])+$/;

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** Checks a path pattern the way Istio's validation does for `{*}`/`{**}` templates. */
function pathProblem(p: string): string | undefined {
  if (!p.includes("{")) return undefined;
  if (p.includes("*") && !/\{\*\*?\}/.test(p)) return "mixes * and {";
  const segments = p.split("/");
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    if (s.includes("{") || s.includes("}")) {
      if (s !== "{*}" && s !== "{**}") return `segment "${s}" must be exactly {*} or {**}`;
      if (s === "{**}" && i !== segments.length - 1) return "{**} must be the last segment";
    } else if (s.includes("*")) {
      return `segment "${s}" mixes * with a template`;
    }
  }
  return undefined;
}

/**
 * Validates one AuthorizationPolicy against Istio's rules and returns it unchanged.
 *
 * @throws PolicyError `invalid-policy` naming the policy, the field path, the bad value and the
 *   fix, e.g. `AuthorizationPolicy foo/httpbin: spec.rules[0].from[1].source.ipBlocks[0]: "10.0.0.0/33"
 *   is not an IP address or CIDR range (e.g. 10.0.0.0/8)`.
 */
export function validateAuthorizationPolicy(policy: AuthorizationPolicy): AuthorizationPolicy {
  const name =
    policy && typeof policy === "object" && policy.metadata && typeof policy.metadata.name === "string"
      ? `${policy.metadata.namespace ?? "default"}/${policy.metadata.name}`
      : "<unnamed>";
  const fail = (path: string, what: string): never => {
    throw new PolicyError("invalid-policy", `AuthorizationPolicy ${name}: ${path}: ${what}`);
  };
  if (!policy || typeof policy !== "object") fail("<root>", "must be an object with metadata and spec");
  if (!policy.metadata || typeof policy.metadata.name !== "string" || policy.metadata.name === "") {
    fail("metadata.name", "is required (a non-empty string)");
  }
  if (policy.metadata.namespace !== undefined && typeof policy.metadata.namespace !== "string") {
    fail("metadata.namespace", "must be a string");
  }
  const spec = policy.spec;
  if (!spec || typeof spec !== "object") fail("spec", "is required; use {} for an allow-nothing policy");
  const action = spec.action ?? "ALLOW";
  if (!ACTIONS.has(action)) fail("spec.action", `"${action}" is not one of ALLOW, DENY, AUDIT, CUSTOM`);
  if (
    action === "CUSTOM" &&
    (!spec.provider || typeof spec.provider.name !== "string" || !spec.provider.name)
  ) {
    fail("spec.provider.name", "is required when action is CUSTOM: name the registered CheckAdapter");
  }
  if (action !== "CUSTOM" && spec.provider !== undefined) {
    fail("spec.provider", `is only allowed with action CUSTOM (action is ${action})`);
  }
  const dryRunValue = policy.metadata.annotations?.[DRY_RUN_ANNOTATION];
  if (dryRunValue !== undefined && !/^(true|false)$/i.test(dryRunValue)) {
    fail(`metadata.annotations["${DRY_RUN_ANNOTATION}"]`, `"${dryRunValue}" must be "true" or "false"`);
  }
  if (isDryRun(policy) && action !== "ALLOW" && action !== "DENY") {
    fail(
      `metadata.annotations["${DRY_RUN_ANNOTATION}"]`,
      `dry-run is only supported for ALLOW and DENY, not ${action}`,
    );
  }
  const labels = spec.selector?.matchLabels;
  if (labels !== undefined) {
    if (typeof labels !== "object" || labels === null) fail("spec.selector.matchLabels", "must be a map");
    for (const [k, v] of Object.entries(labels)) {
      if (typeof v !== "string") fail(`spec.selector.matchLabels.${k}`, "must be a string");
    }
  }
  if (spec.rules !== undefined && !Array.isArray(spec.rules)) fail("spec.rules", "must be a list");
  (spec.rules ?? []).forEach((rule, r) => {
    const rp = `spec.rules[${r}]`;
    if (!rule || typeof rule !== "object") fail(rp, "must be an object");
    (rule.from ?? []).forEach((from, f) => {
      const fp = `${rp}.from[${f}].source`;
      if (!from?.source || typeof from.source !== "object") fail(fp, "is required");
      const src = from.source;
      for (const k of Object.keys(src)) {
        if (!SOURCE_FIELDS.includes(k as keyof Source)) fail(`${fp}.${k}`, "is not a Source field");
      }
      const used = SOURCE_FIELDS.filter((k) => src[k] !== undefined);
      if (used.length === 0) fail(fp, "must set at least one field (an empty source matches nothing useful)");
      for (const k of used) {
        const vals = src[k];
        if (!isStringList(vals) || vals.length === 0)
          fail(`${fp}.${k}`, "must be a non-empty list of strings");
        if (/ipblocks/i.test(k)) {
          (vals as string[]).forEach((v, i) => {
            if (!parseCidr(v))
              fail(`${fp}.${k}[${i}]`, `"${v}" is not an IP address or CIDR range (e.g. 10.0.0.0/8)`);
          });
        }
        if (/serviceaccounts/i.test(k)) {
          (vals as string[]).forEach((v, i) => {
            if (!/^[^/*]+\/[^/*]+$/.test(v))
              fail(`${fp}.${k}[${i}]`, `"${v}" must be <namespace>/<service account>`);
          });
          if (src.principals || src.notPrincipals) {
            fail(`${fp}.${k}`, "cannot be combined with principals/notPrincipals");
          }
        }
      }
    });
    (rule.to ?? []).forEach((to, t) => {
      const tp = `${rp}.to[${t}].operation`;
      if (!to?.operation || typeof to.operation !== "object") fail(tp, "is required");
      const op = to.operation;
      for (const k of Object.keys(op)) {
        if (!OPERATION_FIELDS.includes(k as keyof Operation)) fail(`${tp}.${k}`, "is not an Operation field");
      }
      const used = OPERATION_FIELDS.filter((k) => op[k] !== undefined);
      if (used.length === 0) fail(tp, "must set at least one field");
      for (const k of used) {
        const vals = op[k];
        if (!isStringList(vals) || vals.length === 0)
          fail(`${tp}.${k}`, "must be a non-empty list of strings");
        (vals as string[]).forEach((v, i) => {
          if (k === "ports" || k === "notPorts") {
            const n = Number(v);
            if (!/^\d+$/.test(v) || n > 65535)
              fail(`${tp}.${k}[${i}]`, `"${v}" is not a port number (0-65535)`);
          }
          if (k === "paths" || k === "notPaths") {
            const problem = pathProblem(v);
            if (problem) fail(`${tp}.${k}[${i}]`, `"${v}": ${problem}`);
          }
        });
      }
    });
    (rule.when ?? []).forEach((cond: Condition, w) => {
      const wp = `${rp}.when[${w}]`;
      if (!cond || typeof cond !== "object") fail(wp, "must be an object");
      if (cond.cel !== undefined) {
        if (typeof cond.cel !== "string" || cond.cel.trim() === "")
          fail(`${wp}.cel`, "must be a CEL expression");
        try {
          compileCel(cond.cel);
        } catch (e) {
          fail(`${wp}.cel`, `does not parse: ${(e as Error).message}`);
        }
        return;
      }
      if (typeof cond.key !== "string") fail(`${wp}.key`, "is required");
      if (!CONDITION_KEYS.has(cond.key) && !INDEXED_CONDITION_KEYS.test(cond.key)) {
        fail(
          `${wp}.key`,
          `"${cond.key}" is not a supported condition key (see Istio's authorization conditions)`,
        );
      }
      if (cond.values === undefined && cond.notValues === undefined) {
        fail(wp, "needs values or notValues");
      }
      for (const field of ["values", "notValues"] as const) {
        const vals = cond[field];
        if (vals === undefined) continue;
        if (!isStringList(vals) || vals.length === 0)
          fail(`${wp}.${field}`, "must be a non-empty list of strings");
        if (/\.ip$/.test(cond.key)) {
          vals.forEach((v, i) => {
            if (!parseCidr(v)) fail(`${wp}.${field}[${i}]`, `"${v}" is not an IP address or CIDR range`);
          });
        }
        if (cond.key === "destination.port") {
          vals.forEach((v, i) => {
            if (!/^\d+$/.test(v) || Number(v) > 65535)
              fail(`${wp}.${field}[${i}]`, `"${v}" is not a port number`);
          });
        }
      }
    });
  });
  return policy;
}
