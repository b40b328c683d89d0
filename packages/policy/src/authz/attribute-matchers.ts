import { isPathTemplate, pathTemplateProblem, serviceAccountProblem } from "@meshlet/config";
import { claimAt } from "../attributes.js";
import { cidrMatcher, parseCidr } from "./ip-match.js";
import { compilePathTemplate } from "./path-template.js";
import type { RequestFacts } from "./request-facts.js";

/**
 * How each Istio attribute matches one value, written to mean exactly what Istio's RBAC generator
 * makes Envoy do (istio/istio `pilot/pkg/security/authz/model/generator.go` and
 * `matcher/*.go`): so the engine and the generated Envoy config decide alike.
 */

/** A compiled test of one request. */
export type Pred = (f: RequestFacts) => boolean;

/** Thrown for a value that cannot be compiled; the caller adds where it was. */
export class BadValue extends Error {}

/** One attribute: whether Envoy can see it on a TCP connection, and how a value compiles. */
export interface AttributeKind {
  readonly httpOnly: boolean;
  /** Compiles one value. @throws BadValue */
  value(v: string): Pred;
}

function regex(source: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (e) {
    throw new BadValue(
      `becomes the regular expression ${JSON.stringify(source)}, which is invalid: ${(e as Error).message}`,
    );
  }
}

/**
 * Istio's `StringMatcher(v)`: `*` is the regex `.+` (non-empty), `*x` a suffix, `x*` a prefix,
 * anything else exact.
 */
export function stringPred(pattern: string, get: (f: RequestFacts) => string | undefined): Pred {
  if (pattern === "*") return (f) => (get(f)?.length ?? 0) > 0;
  if (pattern.startsWith("*")) {
    const s = pattern.slice(1);
    return (f) => get(f)?.endsWith(s) ?? false;
  }
  if (pattern.endsWith("*")) {
    const p = pattern.slice(0, -1);
    return (f) => get(f)?.startsWith(p) ?? false;
  }
  return (f) => get(f) === pattern;
}

/** Istio's `HeaderMatcher(k, v)`: like {@link stringPred}, but `*` is `present_match`. */
function headerPred(pattern: string, get: (f: RequestFacts) => string | undefined): Pred {
  if (pattern === "*") return (f) => get(f) !== undefined;
  return stringPred(pattern, get);
}

/** A string test on a string value (no request): the value side of {@link stringPred}. */
function valueTest(pattern: string): (v: string) => boolean {
  if (pattern === "*") return (v) => v.length > 0;
  if (pattern.startsWith("*")) {
    const s = pattern.slice(1);
    return (v) => v.endsWith(s);
  }
  if (pattern.endsWith("*")) {
    const p = pattern.slice(0, -1);
    return (v) => v.startsWith(p);
  }
  return (v) => v === pattern;
}

/** Istio's `StringMatcherWithPrefix(v, "spiffe://")` on the peer's URI SAN. */
function principalPred(pattern: string): Pred {
  if (pattern === "*") return (f) => f.spiffeUri !== undefined;
  if (pattern.startsWith("*")) {
    // Istio writes this one as the regex `spiffe://.*<suffix>`, the suffix unescaped.
    const re = regex(`spiffe://.*${pattern.slice(1)}`);
    return (f) => {
      const u = f.spiffeUri;
      return u !== undefined && re.test(u);
    };
  }
  if (pattern.endsWith("*")) {
    const p = `spiffe://${pattern.slice(0, -1)}`;
    return (f) => f.spiffeUri?.startsWith(p) ?? false;
  }
  const exact = `spiffe://${pattern}`;
  return (f) => f.spiffeUri === exact;
}

/**
 * Istio's namespace match: the regex `.*\/ns/<v>/.*` on the peer's URI SAN, `*` in the value
 * becoming `.*`. Callers of the in-process API that give `source.namespace` without a principal
 * get Istio's string matching on that namespace instead.
 */
function namespacePred(pattern: string): Pred {
  const plain = valueTest(pattern);
  let onUri: (uri: string) => boolean;
  if (!pattern.includes("*")) {
    // `.*/ns/<v>/.*` without wildcards: the URI contains `/ns/<v>/` (no regex per request).
    const needle = `/ns/${pattern}/`;
    onUri = (u) => u.includes(needle);
  } else {
    const re = regex(`.*/ns/${pattern.replaceAll("*", ".*")}/.*`);
    onUri = (u) => re.test(u);
  }
  return (f) => {
    const u = f.spiffeUri;
    if (u !== undefined) return onUri(u);
    const ns = f.attrs.source?.namespace;
    return ns !== undefined && plain(ns);
  };
}

/**
 * Istio's service account match (`<ns>/<sa>` or `<sa>` in the policy's namespace): the regex
 * `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` on the peer's URI SAN.
 */
export function serviceAccountPred(value: string, policyNamespace: string): Pred {
  // Config validated the value (Istio's CheckServiceAccount); this is the same rule, kept so a
  // caller of the one-off matchers gets an error rather than a regex built from a bad value.
  const problem = serviceAccountProblem(value);
  if (problem !== undefined) throw new BadValue(problem);
  const parts = value.split("/");
  const [ns, sa] = parts.length === 2 ? (parts as [string, string]) : [policyNamespace, parts[0] as string];
  const re = regex(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`);
  return (f) => {
    const u = f.spiffeUri;
    return u !== undefined && re.test(u);
  };
}

/** A CIDR value (`1.2.3.4` or `1.2.3.0/24`) against one of the request's addresses. */
function cidrKind(get: (f: RequestFacts) => import("./ip-match.js").ParsedIp | undefined): AttributeKind {
  return {
    httpOnly: false,
    value(v) {
      const range = parseCidr(v);
      if (!range) throw new BadValue(`"${v}" is not an IP address or CIDR range (e.g. 10.0.0.0/8)`);
      const m = cidrMatcher(range);
      return (f) => m(get(f));
    },
  };
}

/** Istio's `convertToPort`: a decimal number up to 65535. */
export function parsePort(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new BadValue(`"${v}" is not a port number (0-65535)`);
  return Number(v);
}

const portKind: AttributeKind = {
  httpOnly: false,
  value(v) {
    const port = parsePort(v);
    return (f) => f.attrs.destination?.port === port;
  },
};

/**
 * Istio's JWT claim match (`MetadataListValueMatcherForJWTClaims`): the claim in Envoy's
 * `jwt_authn` payload is a string that matches, or a list with a string element that matches.
 * Other JSON types never match a string matcher.
 */
function claimKind(path: readonly string[]): AttributeKind {
  return {
    httpOnly: true,
    value(v) {
      const test = valueTest(v);
      return (f) => {
        const c = claimAt(f.claims, path);
        if (typeof c === "string") return test(c);
        return Array.isArray(c) && c.some((x) => typeof x === "string" && test(x));
      };
    },
  };
}

/**
 * Istio's request principal match: `<iss>/<sub>` split at the last `/`, each half matched against
 * the JWT's `iss` and `sub` claims (`requestPrincipalGenerator`), `*` on either side meaning any
 * non-empty value.
 */
const requestPrincipalKind: AttributeKind = {
  httpOnly: true,
  value(value) {
    const idx = value.lastIndexOf("/");
    const found = idx >= 0;
    const iss = found ? value.slice(0, idx) : value;
    const sub = found ? value.slice(idx + 1) : "";
    const any = (v: string) => v.length > 0;
    const exact = (x: string) => (v: string) => v === x;
    let mi: (v: string) => boolean;
    let ms: (v: string) => boolean;
    if (value === "*") {
      mi = any;
      ms = any;
    } else if (value.startsWith("*")) {
      if (found) {
        mi =
          iss === "*"
            ? any
            : (
                (s) => (v: string) =>
                  v.endsWith(s)
              )(iss.slice(1));
        ms = exact(sub);
      } else {
        mi = any;
        ms = (
          (s) => (v: string) =>
            v.endsWith(s)
        )(value.slice(1));
      }
    } else if (value.endsWith("*")) {
      if (found) {
        mi = exact(iss);
        ms =
          sub === "*"
            ? any
            : (
                (p) => (v: string) =>
                  v.startsWith(p)
              )(sub.slice(0, -1));
      } else {
        mi = (
          (p) => (v: string) =>
            v.startsWith(p)
        )(value.slice(0, -1));
        ms = any;
      }
    } else {
      mi = exact(iss);
      ms = exact(sub);
    }
    return (f) => {
      const c = f.claims;
      return typeof c?.iss === "string" && typeof c.sub === "string" && mi(c.iss) && ms(c.sub);
    };
  },
};

function headerName(key: string, base: string): string {
  const rest = key.slice(base.length);
  const m = /^\[([^\]]+)\]$/.exec(rest);
  if (!m) throw new BadValue(`"${key}" must name one header: ${base}[<name>]`);
  return (m[1] as string).toLowerCase();
}

/** Splits `request.auth.claims[a][b]` into `["a", "b"]`. */
function claimPath(key: string): string[] {
  const rest = key.slice("request.auth.claims".length);
  const names = [...rest.matchAll(/\[([^\][]+)\]/g)].map((m) => m[1] as string);
  if (names.length === 0 || names.map((n) => `[${n}]`).join("") !== rest) {
    throw new BadValue(`"${key}" must name a claim: request.auth.claims[<name>] (nested: [a][b])`);
  }
  return names;
}

const inlineHeaderKind = (name: string): AttributeKind => ({
  httpOnly: true,
  value(v) {
    // Istio matches each comma-separated element (`HeaderMatcherWithRegex`).
    if (v === "*") return (f) => f.header(name) !== undefined;
    const test = valueTest(v);
    return (f) => f.header(name)?.split(",").some(test) ?? false;
  },
});

/**
 * The `when` keys the engine can evaluate (Istio's authorization conditions). Throws for keys it
 * cannot: unknown ones, and `experimental.envoy.filters.*`, which reads Envoy's dynamic metadata.
 * @throws BadValue
 */
export function conditionKind(key: string, policyNamespace: string): AttributeKind {
  switch (key) {
    case "source.ip":
      return cidrKind((f) => f.sourceIp);
    case "remote.ip":
      return cidrKind((f) => f.remoteIp);
    case "destination.ip":
      return cidrKind((f) => f.destinationIp);
    case "destination.port":
      return portKind;
    case "source.namespace":
      return { httpOnly: false, value: namespacePred };
    case "source.principal":
      return { httpOnly: false, value: principalPred };
    case "source.serviceAccount":
      return { httpOnly: false, value: (v) => serviceAccountPred(v, policyNamespace) };
    case "connection.sni":
      return { httpOnly: false, value: (v) => stringPred(v, (f) => f.attrs.connection?.sni) };
    case "request.auth.principal":
      return requestPrincipalKind;
    case "request.auth.audiences":
      return claimKind(["aud"]);
    case "request.auth.presenter":
      return claimKind(["azp"]);
  }
  if (key.startsWith("request.headers")) {
    const name = headerName(key, "request.headers");
    return { httpOnly: true, value: (v) => headerPred(v, (f) => f.header(name)) };
  }
  if (key.startsWith("request.experimental.inline.headers")) {
    return inlineHeaderKind(headerName(key, "request.experimental.inline.headers"));
  }
  if (key.startsWith("request.auth.claims")) return claimKind(claimPath(key));
  if (key.startsWith("experimental.envoy.filters.")) {
    throw new BadValue(
      `"${key}" reads Envoy's dynamic metadata, which only Envoy has: enforce this policy with toEnvoyRbac, not the engine`,
    );
  }
  throw new BadValue(`"${key}" is not an attribute Istio authorization supports`);
}

/** The `Source` fields: how each value compiles (`not*` twins share the kind). */
export function sourceKind(field: string, policyNamespace: string): AttributeKind | undefined {
  switch (field) {
    case "principals":
      return { httpOnly: false, value: principalPred };
    case "requestPrincipals":
      return requestPrincipalKind;
    case "namespaces":
      return { httpOnly: false, value: namespacePred };
    case "serviceAccounts":
      return { httpOnly: false, value: (v) => serviceAccountPred(v, policyNamespace) };
    case "ipBlocks":
      return cidrKind((f) => f.sourceIp);
    case "remoteIpBlocks":
      return cidrKind((f) => f.remoteIp);
    default:
      return undefined;
  }
}

function pathPred(pattern: string): Pred {
  if (isPathTemplate(pattern)) {
    // Config's rule (Istio's CheckValidPathTemplate), checked again for the one-off matchers.
    const problem = pathTemplateProblem(pattern);
    if (problem) throw new BadValue(`"${pattern}": ${problem}`);
    const re = compilePathTemplate(pattern);
    return (f) => {
      const p = f.attrs.request?.path;
      return p !== undefined && re.test(p);
    };
  }
  return stringPred(pattern, (f) => f.attrs.request?.path);
}

/** Istio's `HostMatcher`: case-insensitive, `*` is presence; the port is part of the host. */
function hostPred(pattern: string): Pred {
  if (pattern === "*") return (f) => f.attrs.request?.host !== undefined;
  return stringPred(pattern.toLowerCase(), (f) => f.hostLower);
}

/** The `Operation` fields. */
export function operationKind(field: string): AttributeKind | undefined {
  switch (field) {
    case "hosts":
      return { httpOnly: true, value: hostPred };
    case "methods":
      return { httpOnly: true, value: (v) => headerPred(v, (f) => f.attrs.request?.method) };
    case "paths":
      return { httpOnly: true, value: pathPred };
    case "ports":
      return portKind;
    default:
      return undefined;
  }
}
