// Istio's webhook validation for security.istio.io (istio/istio pkg/config/validation/validation.go:
// ValidateAuthorizationPolicy, ValidateRequestAuthentication, ValidatePeerAuthentication; attribute
// and value rules from pkg/config/security/security.go), with the field path of each finding.
import type { Resource } from "../resource.js";
import { checkPolicyTargets, checkWorkloadSelector } from "./common-rules.js";
import { arr, Findings, type Obj, obj, str } from "./findings.js";
import {
  authzPortProblem,
  conditionKeyProblem,
  conditionValueProblem,
  MAX_SERVICE_ACCOUNT_VALUES,
  pathTemplateProblem,
  serviceAccountProblem,
} from "./security-values.js";
import { durationProblem, headerNameProblem, ipOrCidrProblem } from "./values.js";

const DRY_RUN = "istio.io/dry-run";
const SOURCE_FIELDS = [
  "principals",
  "requestPrincipals",
  "namespaces",
  "ipBlocks",
  "remoteIpBlocks",
  "notPrincipals",
  "notRequestPrincipals",
  "notNamespaces",
  "notIpBlocks",
  "notRemoteIpBlocks",
  "serviceAccounts",
  "notServiceAccounts",
] as const;
const OPERATION_FIELDS = [
  "ports",
  "methods",
  "paths",
  "hosts",
  "notPorts",
  "notMethods",
  "notPaths",
  "notHosts",
] as const;
/** Go's strconv.ParseBool, which Istio uses for the dry-run annotation. */
function parseBool(value: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  return undefined;
}

/** Rules of AuthorizationPolicy beyond its schema. */
export function authorizationPolicyRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  const action = str(spec.action) || "ALLOW";
  checkPolicyTargets(f, spec);
  const dryRun = resource.metadata.annotations?.[DRY_RUN];
  if (dryRun !== undefined) {
    const at = ["metadata", "annotations", DRY_RUN];
    if (action !== "ALLOW" && action !== "DENY")
      f.error(
        at,
        `the annotation ${DRY_RUN} currently only supports action ALLOW/DENY, found action ${action}`,
      );
    else if (parseBool(dryRun) === undefined)
      f.error(at, `annotation ${DRY_RUN} has an invalid value (${dryRun})`);
  }
  const rules = spec.rules;
  if (action === "CUSTOM") {
    if (rules === undefined)
      f.error(
        ["spec", "rules"],
        "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
      );
    else if (str(obj(spec.provider).name) === "")
      f.error(["spec", "provider", "name"], "`provider.name` must not be empty");
    arr(rules).forEach((rule, r) => {
      arr(obj(rule).from).forEach((from, i) => {
        const src = obj(obj(from).source);
        for (const field of [
          "namespaces",
          "notNamespaces",
          "serviceAccounts",
          "notServiceAccounts",
          "principals",
          "notPrincipals",
          "requestPrincipals",
          "notRequestPrincipals",
        ]) {
          if (arr(src[field]).length > 0)
            f.error(
              ["spec", "rules", r, "from", i, "source", field],
              `${field} is currently not supported with CUSTOM action`,
            );
        }
      });
      arr(obj(rule).when).forEach((when, i) => {
        const key = str(obj(when).key);
        if (
          key === "source.namespace" ||
          key === "source.serviceAccount" ||
          key === "source.principal" ||
          key.startsWith("request.auth.")
        )
          f.error(
            ["spec", "rules", r, "when", i, "key"],
            `${key} is currently not supported with CUSTOM action`,
          );
      });
    });
  }
  if (spec.provider !== undefined && action !== "CUSTOM")
    f.error(["spec", "provider"], `\`provider\` must not be with non CUSTOM action, found ${action}`);
  if (action === "DENY" && rules === undefined)
    f.error(
      ["spec", "rules"],
      "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
    );
  arr(rules).forEach((raw, r) => {
    checkRule(f, obj(raw), ["spec", "rules", r], action);
  });
  return f;
}

function checkRule(f: Findings, rule: Obj, path: Array<string | number>, action: string): void {
  if (rule.from !== undefined && arr(rule.from).length === 0)
    f.error([...path, "from"], "`from` must not be empty");
  let tcpInFrom = false;
  let fromExists = false;
  arr(rule.from).forEach((from, i) => {
    const at = [...path, "from", i, "source"];
    const source = obj(from).source;
    if (source === undefined || source === null) {
      f.error(at, "`from.source` must not be nil");
      return;
    }
    fromExists = true;
    const src = obj(source);
    if (!SOURCE_FIELDS.some((k) => arr(src[k]).length > 0)) f.error(at, "`from.source` must not be empty");
    for (const k of SOURCE_FIELDS) {
      arr(src[k]).forEach((v, j) => {
        if (str(v) === "") f.error([...at, k, j], `empty value not allowed, found in ${k}`);
        else if (/ipblocks/i.test(k)) f.check([...at, k, j], ipOrCidrProblem(str(v)));
        else if (/serviceaccounts/i.test(k)) f.check([...at, k, j], serviceAccountProblem(str(v), k));
      });
    }
    // The CRD's rule (istio/istio testdata/crds/authz-invalid.yaml): service accounts name identities
    // by namespace already, so they do not combine with namespaces or principals in one source.
    if (
      (arr(src.serviceAccounts).length > 0 || arr(src.notServiceAccounts).length > 0) &&
      ["namespaces", "notNamespaces", "principals", "notPrincipals"].some((k) => arr(src[k]).length > 0)
    )
      f.error(at, "cannot set serviceAccounts with namespaces or principals");
    if (
      [
        "notPrincipals",
        "principals",
        "ipBlocks",
        "notIpBlocks",
        "namespaces",
        "notNamespaces",
        "remoteIpBlocks",
        "notRemoteIpBlocks",
        "serviceAccounts",
        "notServiceAccounts",
      ].some((k) => src[k] !== undefined)
    )
      tcpInFrom = true;
  });
  if (rule.to !== undefined && arr(rule.to).length === 0) f.error([...path, "to"], "`to` must not be empty");
  let tcpInTo = false;
  let toExists = false;
  arr(rule.to).forEach((to, i) => {
    const at = [...path, "to", i, "operation"];
    const operation = obj(to).operation;
    if (operation === undefined || operation === null) {
      f.error(at, "`to.operation` must not be nil");
      return;
    }
    toExists = true;
    const op = obj(operation);
    if (!OPERATION_FIELDS.some((k) => arr(op[k]).length > 0)) f.error(at, "`to.operation` must not be empty");
    for (const k of OPERATION_FIELDS) {
      arr(op[k]).forEach((v, j) => {
        const value = str(v);
        if (value === "") f.error([...at, k, j], `empty value not allowed, found in ${k}`);
        else if (k === "ports" || k === "notPorts") f.check([...at, k, j], authzPortProblem(value));
        else if (k === "paths" || k === "notPaths") f.check([...at, k, j], pathTemplateProblem(value, k));
      });
    }
    if (op.ports !== undefined || op.notPorts !== undefined) tcpInTo = true;
  });
  arr(rule.when).forEach((raw, i) => {
    const at = [...path, "when", i];
    const when = obj(raw);
    const key = str(when.key);
    if (key === "") {
      f.error([...at, "key"], "`key` must not be empty");
      return;
    }
    const values = arr(when.values).map(str);
    const notValues = arr(when.notValues).map(str);
    if (values.length === 0 && notValues.length === 0) {
      f.error(at, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
      return;
    }
    const keyProblem = conditionKeyProblem(key);
    if (keyProblem !== undefined) {
      f.error([...at, "key"], `invalid \`key\` ${key}: ${keyProblem}`);
      return;
    }
    for (const field of ["values", "notValues"] as const) {
      if (key === "source.serviceAccount" && arr(when[field]).length > MAX_SERVICE_ACCOUNT_VALUES)
        f.error([...at, field], `may not have more than ${MAX_SERVICE_ACCOUNT_VALUES} values`);
      arr(when[field]).forEach((v, j) => {
        const problem = conditionValueProblem(key, str(v));
        if (problem !== undefined)
          f.error(
            [...at, field, j],
            `invalid \`${field === "values" ? "value" : "notValue"}\` for \`key\` ${key}: ${problem}`,
          );
      });
    }
  });
  if (((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo)) && action === "DENY") {
    f.warn(
      path,
      "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port",
    );
  }
}

/** Rules of RequestAuthentication beyond its schema. */
export function requestAuthenticationRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  checkPolicyTargets(f, spec);
  arr(spec.jwtRules).forEach((raw, i) => {
    const at = ["spec", "jwtRules", i];
    const rule = obj(raw);
    // validation.go validateJwtRule: either is enough (Envoy then takes the issuer from the token).
    if (str(rule.issuer) === "" && str(rule.jwksUri) === "")
      f.error(at, "issuer or jwksUri must be non-empty string");
    arr(rule.audiences).forEach((a, j) => {
      if (str(a) === "") f.error([...at, "audiences", j], "audience must be non-empty string");
    });
    const jwksUri = str(rule.jwksUri);
    if (jwksUri !== "") {
      let scheme = "";
      try {
        scheme = new URL(jwksUri).protocol;
      } catch {
        f.error([...at, "jwksUri"], `"${jwksUri}" is not a URI`);
      }
      if (scheme !== "" && scheme !== "http:" && scheme !== "https:")
        f.error([...at, "jwksUri"], `URI scheme "${scheme.slice(0, -1)}" is not supported`);
    }
    if (str(rule.jwks) !== "") f.check([...at, "jwks"], jwksProblem(str(rule.jwks)));
    arr(rule.fromHeaders).forEach((h, j) => {
      if (str(obj(h).name) === "")
        f.error([...at, "fromHeaders", j, "name"], "location header name must be non-empty string");
    });
    arr(rule.fromParams).forEach((p, j) => {
      if (str(p) === "") f.error([...at, "fromParams", j], "location query must be non-empty string");
    });
    arr(rule.fromCookies).forEach((c, j) => {
      if (str(c) === "") f.error([...at, "fromCookies", j], "cookie name must be non-empty string");
    });
    arr(rule.outputClaimToHeaders).forEach((raw2, j) => {
      const o = obj(raw2);
      if (str(o.claim) === "" || str(o.header) === "")
        f.error(
          [...at, "outputClaimToHeaders", j],
          "outputClaimToHeaders header and claim value must be non-empty string",
        );
      else f.check([...at, "outputClaimToHeaders", j, "header"], headerNameProblem(str(o.header)));
    });
    if (rule.timeout !== undefined) f.check([...at, "timeout"], durationProblem(str(rule.timeout)));
  });
  return f;
}

/** A JWKS as Istio's jwk.Parse accepts it: a JSON key set (`keys`) or a single JSON Web Key (`kty`). */
function jwksProblem(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { keys?: unknown; kty?: unknown };
    if (Array.isArray(parsed.keys) || typeof parsed.kty === "string") return undefined;
    return "jwks parse error: neither a key set (keys) nor a key (kty)";
  } catch (error) {
    return `jwks parse error: ${(error as Error).message}`;
  }
}

/** Rules of PeerAuthentication beyond its schema. */
export function peerAuthenticationRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  const portLevel = spec.portLevelMtls;
  const emptySelector = Object.keys(obj(obj(spec.selector).matchLabels)).length === 0;
  if (emptySelector && Object.keys(obj(portLevel)).length > 0)
    f.error(["spec", "portLevelMtls"], "mesh/namespace peer authentication cannot have port level mTLS");
  if (portLevel !== undefined && Object.keys(obj(portLevel)).length === 0)
    f.error(["spec", "portLevelMtls"], "port level mTLS, if defined, must have at least one element");
  for (const port of Object.keys(obj(portLevel))) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n <= 0 || n > 65535)
      f.error(["spec", "portLevelMtls", port], "port must be in range 1..65535");
  }
  checkWorkloadSelector(f, spec.selector, ["spec", "selector"]);
  return f;
}
