// Istio's webhook validation for networking.istio.io (istio/istio pkg/config/validation/validation.go
// and virtualservice.go), with the field path of each finding.
import type { Resource } from "../resource.js";
import { checkExportTo, checkLabels, checkWorkloadSelector } from "./common-rules.js";
import { arr, Findings, type Obj, obj, str } from "./findings.js";
import {
  durationProblem,
  fqdnProblem,
  headerNameProblem,
  ipSubnetProblem,
  isDns1123Label,
  isIpAddress,
  partialWildcardProblem,
  portProblem,
  regexProblem,
  unixAddressProblem,
  wildcardDomainProblem,
} from "./values.js";

type Path = Array<string | number>;
const PROTOCOLS = new Set([
  "HTTP",
  "HTTPS",
  "GRPC",
  "GRPC-WEB",
  "HTTP2",
  "MONGO",
  "REDIS",
  "MYSQL",
  "TCP",
  "TLS",
  "UDP",
  "HBONE",
]);
const HTTP_PROTOCOLS = new Set(["HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY"]);
const TLS_PROTOCOLS = new Set(["HTTPS", "TLS"]);
const protocolOf = (p: unknown) => str(p).toUpperCase();

function checkProtocol(f: Findings, path: Path, protocol: unknown): void {
  const p = str(protocol);
  if (p !== "" && !PROTOCOLS.has(p.toUpperCase())) f.error(path, `unsupported protocol: ${p}`);
}

function checkPortName(f: Findings, path: Path, name: unknown): void {
  if (!isDns1123Label(str(name))) f.error(path, `invalid port name: ${str(name)}`);
}

function checkDuration(f: Findings, path: Path, value: unknown): void {
  if (value !== undefined) f.check(path, durationProblem(str(value)));
}

function checkDestination(f: Findings, path: Path, destination: unknown): void {
  if (destination === undefined) return;
  const d = obj(destination);
  const host = str(d.host);
  if (host === "*") f.error([...path, "host"], `invalid destination host ${host}`);
  else f.check([...path, "host"], wildcardDomainProblem(host));
  if (d.subset !== undefined && !isDns1123Label(str(d.subset)))
    f.error([...path, "subset"], `subset name is invalid: ${str(d.subset)}`);
  if (d.port !== undefined)
    f.check([...path, "port", "number"], portProblem(Number(obj(d.port).number ?? 0)));
}

function checkStringMatch(f: Findings, path: Path, match: unknown, where: string): void {
  const m = obj(match);
  if (m.prefix !== undefined && str(m.prefix) === "")
    f.error([...path, "prefix"], `"${where}": prefix string match should not be empty`);
  if (m.regex !== undefined) {
    const problem = regexProblem(str(m.regex));
    if (problem !== undefined) f.error([...path, "regex"], `"${where}": ${problem}`);
  }
}

function checkGatewayNames(f: Findings, path: Path, names: unknown): void {
  arr(names).forEach((raw, i) => {
    const name = str(raw);
    const parts = name.split("/");
    if (parts.length < 2) {
      if (name.includes(".")) {
        const [n, ns] = name.split(".");
        f.warn(
          [...path, i],
          `using legacy gatewayName format "${name}"; prefer the <namespace>/<name> format: "${ns}/${n}"`,
        );
      }
      f.check([...path, i], fqdnProblem(name));
      return;
    }
    const [ns, gw] = [parts[0] as string, parts.slice(1).join("/")];
    if (ns === "" || gw === "") f.error([...path, i], "config namespace and gateway name cannot be empty");
    else {
      if (!isDns1123Label(ns)) f.error([...path, i], `invalid value for namespace: "${ns}"`);
      if (!isDns1123Label(gw)) f.error([...path, i], `invalid value for gateway name: "${gw}"`);
    }
  });
}

function checkHeaderOperations(f: Findings, path: Path, headers: unknown): void {
  for (const side of ["request", "response"] as const) {
    const ops = obj(obj(headers)[side]);
    for (const op of ["set", "add"] as const) {
      for (const name of Object.keys(obj(ops[op]))) {
        const internal = name.startsWith(":") || name.toLowerCase() === "host";
        const authority = name.toLowerCase() === ":authority" || name.toLowerCase() === "host";
        if (name === "") f.error([...path, side, op], "header name cannot be empty");
        else if (side === "request" ? internal && !authority : internal)
          f.error([...path, side, op, name], `invalid header "${name}": header cannot have ":" prefix`);
      }
    }
    arr(ops.remove).forEach((n, i) => {
      const name = str(n);
      if (name === "") f.error([...path, side, "remove", i], "header name cannot be empty");
      else if (name.startsWith(":") || name.toLowerCase() === "host")
        f.error([...path, side, "remove", i], `invalid header "${name}": cannot be removed`);
    });
  }
}

/** Rules of VirtualService beyond its schema. */
export function virtualServiceRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  const hosts = arr(spec.hosts).map(str);
  const gateways = arr(spec.gateways).map(str);
  const delegate = hosts.length === 0;
  if (delegate) {
    if (gateways.length > 0)
      f.error(["spec", "gateways"], "delegate virtual service must have no gateways specified");
    if (arr(spec.tls).length > 0)
      f.error(["spec", "tls"], "delegate virtual service must have no tls route specified");
    if (arr(spec.tcp).length > 0)
      f.error(["spec", "tcp"], "delegate virtual service must have no tcp route specified");
  }
  const appliesToGateway = gateways.length > 0 && !gateways.includes("mesh");
  const appliesToMesh = !appliesToGateway;
  checkGatewayNames(f, ["spec", "gateways"], spec.gateways);
  let allValid = true;
  hosts.forEach((h, i) => {
    const problem = wildcardDomainProblem(h);
    if (problem !== undefined) {
      if (!isIpAddress(h)) {
        f.error(["spec", "hosts", i], problem);
        allValid = false;
      }
    } else if (appliesToMesh && h === "*") {
      f.error(
        ["spec", "hosts", i],
        "wildcard host * is not allowed for virtual services bound to the mesh gateway",
      );
      allValid = false;
    }
  });
  if (allValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (hostsOverlap(hosts[i] as string, hosts[j] as string))
          f.error(["spec", "hosts", j], `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
      }
    }
  }
  if (arr(spec.http).length === 0 && arr(spec.tcp).length === 0 && arr(spec.tls).length === 0)
    f.error(["spec"], "http, tcp or tls must be provided in virtual service");
  arr(spec.http).forEach((raw, i) => {
    checkHttpRoute(f, obj(raw), ["spec", "http", i], delegate, appliesToGateway);
  });
  arr(spec.tls).forEach((raw, i) => {
    const route = obj(raw);
    const at = ["spec", "tls", i];
    if (arr(route.match).length === 0)
      f.error([...at, "match"], "TLS route must have at least one match condition");
    arr(route.match).forEach((m, j) => {
      const match = obj(m);
      arr(match.sniHosts).forEach((s, k) => {
        const sni = str(s);
        const problem = wildcardDomainProblem(sni);
        if (problem !== undefined) {
          if (isIpAddress(sni))
            f.warn(
              [...at, "match", j, "sniHosts", k],
              `using an IP address ("${sni}") goes against SNI spec and most clients do not support this`,
            );
          else f.error([...at, "match", j, "sniHosts", k], problem);
        } else if (!hosts.some((h) => hostCovers(h, sni))) {
          f.error(
            [...at, "match", j, "sniHosts", k],
            `SNI host "${sni}" is not a compatible subset of any of the virtual service hosts: [${hosts.join(", ")}]`,
          );
        }
      });
      checkL4Match(f, match, [...at, "match", j]);
    });
    if (arr(route.route).length === 0) f.error([...at, "route"], "TLS route is required");
    checkRouteDestinations(f, route.route, [...at, "route"]);
  });
  arr(spec.tcp).forEach((raw, i) => {
    const route = obj(raw);
    const at = ["spec", "tcp", i];
    arr(route.match).forEach((m, j) => {
      checkL4Match(f, obj(m), [...at, "match", j]);
    });
    if (arr(route.route).length === 0) f.error([...at, "route"], "TCP route is required");
    checkRouteDestinations(f, route.route, [...at, "route"]);
  });
  checkExportTo(f, resource.metadata.namespace, spec.exportTo, ["spec", "exportTo"]);
  checkUnreachableHttpRules(f, arr(spec.http));
  return f;
}

function checkL4Match(f: Findings, match: Obj, path: Path): void {
  arr(match.destinationSubnets).forEach((s, k) => {
    f.check([...path, "destinationSubnets", k], ipSubnetProblem(str(s)));
  });
  if (match.port !== undefined && Number(match.port) !== 0)
    f.check([...path, "port"], portProblem(Number(match.port)));
  checkLabels(f, match.sourceLabels, [...path, "sourceLabels"]);
  checkGatewayNames(f, [...path, "gateways"], match.gateways);
}

function checkHttpRoute(f: Findings, http: Obj, path: Path, delegate: boolean, gateway: boolean): void {
  const root = !delegate && http.delegate !== undefined;
  if (!gateway) {
    // Claim-based routing needs a gateway's JWT filter (istio/istio ValidateVirtualService).
    arr(http.match).forEach((m, j) => {
      for (const field of ["headers", "withoutHeaders"] as const) {
        for (const key of Object.keys(obj(obj(m)[field]))) {
          if (key.startsWith("@request.auth.claims"))
            f.error(
              [...path, "match", j, field, key],
              `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways`,
            );
        }
      }
    });
  }
  if (root) {
    if (http.redirect !== undefined)
      f.error([...path, "redirect"], `root HTTP route ${str(http.name)} must not specify redirect`);
    if (http.route !== undefined)
      f.error([...path, "route"], `root HTTP route ${str(http.name)} must not specify route`);
  } else {
    if (delegate && http.delegate !== undefined)
      f.error([...path, "delegate"], "delegate HTTP route cannot contain delegate");
    const hasRoute = arr(http.route).length > 0;
    if (http.redirect !== undefined) {
      if (hasRoute) f.error(path, "HTTP route cannot contain both route and redirect");
      if (http.fault !== undefined) f.error(path, "HTTP route cannot contain both fault and redirect");
      if (http.rewrite !== undefined)
        f.error(path, "HTTP route rule cannot contain both rewrite and redirect");
      if (http.directResponse !== undefined)
        f.error(path, "HTTP route cannot contain both redirect and direct_response");
    } else if (http.directResponse !== undefined) {
      if (hasRoute) f.error(path, "HTTP route cannot contain both route and direct_response");
      if (http.fault !== undefined) f.error(path, "HTTP route cannot contain both fault and direct_response");
      if (http.rewrite !== undefined)
        f.error(path, "HTTP route rule cannot contain both rewrite and direct_response");
    } else if (!hasRoute) {
      f.error(path, "HTTP route, redirect or direct_response is required");
    }
  }
  arr(http.match).forEach((raw, j) => {
    const m = obj(raw);
    const at = [...path, "match", j];
    const independent = !delegate && !root;
    for (const field of ["uri", "scheme", "method", "authority"] as const) {
      if (m[field] === undefined) continue;
      if (!independent && obj(m[field]).regex !== undefined)
        f.error(
          [...at, field, "regex"],
          `${field === "uri" ? "url" : field} match does not support regex match for delegating`,
        );
      else checkStringMatch(f, [...at, field], m[field], field);
    }
    for (const field of ["headers", "withoutHeaders", "queryParams"] as const) {
      for (const [name, sm] of Object.entries(obj(m[field]))) {
        if (sm === null) {
          f.error([...at, field, name], `${field} match ${name} cannot be null`);
          continue;
        }
        if (field !== "queryParams" && !name.startsWith("@request.auth.claims"))
          f.check([...at, field, name], headerNameProblem(name));
        if (!independent && obj(sm).regex !== undefined)
          f.error(
            [...at, field, name, "regex"],
            `${field} match ${name} does not support regex match for delegating`,
          );
        else if (field !== "withoutHeaders") checkStringMatch(f, [...at, field, name], sm, field);
      }
    }
    if (m.port !== undefined && Number(m.port) !== 0) f.check([...at, "port"], portProblem(Number(m.port)));
    checkLabels(f, m.sourceLabels, [...at, "sourceLabels"]);
    checkGatewayNames(f, [...at, "gateways"], m.gateways);
    if (m.sourceNamespace !== undefined && !isDns1123Label(str(m.sourceNamespace)))
      f.error([...at, "sourceNamespace"], `sourceNamespace match ${str(m.sourceNamespace)} is invalid`);
  });
  checkHeaderOperations(f, [...path, "headers"], http.headers);
  const cors = obj(http.corsPolicy);
  arr(cors.allowOrigins).forEach((o, k) => {
    checkStringMatch(f, [...path, "corsPolicy", "allowOrigins", k], o, "corsPolicy.allowOrigins");
  });
  arr(cors.allowMethods).forEach((m, k) => {
    if (!["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"].includes(str(m)))
      f.error([...path, "corsPolicy", "allowMethods", k], `"${str(m)}" is not a supported HTTP method`);
  });
  checkDuration(f, [...path, "corsPolicy", "maxAge"], cors.maxAge);
  if (http.fault !== undefined) {
    const fault = obj(http.fault);
    if (fault.abort === undefined && fault.delay === undefined)
      f.error([...path, "fault"], "HTTP fault injection must have an abort and/or a delay");
    for (const kind of ["abort", "delay"] as const) {
      const pct = obj(obj(fault[kind]).percentage);
      if (pct.value !== undefined) {
        const v = Number(pct.value);
        if (v < 0 || v > 100 || (v > 0 && v < 0.0001))
          f.error(
            [...path, "fault", kind, "percentage", "value"],
            `percentage ${v} is neither 0.0, nor in range [0.0001, 100.0]`,
          );
      }
    }
    const abort = obj(fault.abort);
    if (abort.httpStatus !== undefined && (Number(abort.httpStatus) < 200 || Number(abort.httpStatus) > 600))
      f.error(
        [...path, "fault", "abort", "httpStatus"],
        `HTTP status ${Number(abort.httpStatus)} is not in range 200-599`,
      );
    if (abort.http2Error !== undefined)
      f.error([...path, "fault", "abort", "http2Error"], "HTTP/2 abort fault injection not supported yet");
    const delay = obj(fault.delay);
    checkDuration(f, [...path, "fault", "delay", "fixedDelay"], delay.fixedDelay);
    if (delay.exponentialDelay !== undefined)
      f.error([...path, "fault", "delay", "exponentialDelay"], "exponentialDelay not supported yet");
  }
  if (http.mirrorPercent !== undefined) {
    if (Number(http.mirrorPercent) > 100)
      f.error(
        [...path, "mirrorPercent"],
        `mirror_percent must have a max value of 100 (it has ${Number(http.mirrorPercent)})`,
      );
    f.warn(
      [...path, "mirrorPercent"],
      'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
    );
  }
  const mirrorPct = obj(http.mirrorPercentage).value;
  if (mirrorPct !== undefined) {
    const v = Number(mirrorPct);
    if (v > 100)
      f.error(
        [...path, "mirrorPercentage", "value"],
        `mirror_percentage must have a max value of 100 (it has ${v})`,
      );
    if (v < 0)
      f.error(
        [...path, "mirrorPercentage", "value"],
        `mirror_percentage must have a min value of 0 (it has ${v})`,
      );
  }
  checkDestination(f, [...path, "mirror"], http.mirror);
  arr(http.mirrors).forEach((raw, k) => {
    const mirror = obj(raw);
    const at = [...path, "mirrors", k];
    if (mirror.destination === undefined)
      f.error([...at, "destination"], "destination is required for mirrors");
    else checkDestination(f, [...at, "destination"], mirror.destination);
    const v = obj(mirror.percentage).value;
    if (v !== undefined && Number(v) > 100)
      f.error(
        [...at, "percentage", "value"],
        `mirror percentage must have a max value of 100 (it has ${Number(v)})`,
      );
    if (v !== undefined && Number(v) < 0)
      f.error(
        [...at, "percentage", "value"],
        `mirror percentage must have a min value of 0 (it has ${Number(v)})`,
      );
  });
  if (http.redirect !== undefined) {
    const r = obj(http.redirect);
    if (
      r.uri === undefined &&
      r.authority === undefined &&
      r.port === undefined &&
      r.derivePort === undefined &&
      r.scheme === undefined
    )
      f.error([...path, "redirect"], "redirect must specify URI, authority, scheme, or port");
    if (
      r.redirectCode !== undefined &&
      Number(r.redirectCode) !== 0 &&
      (Number(r.redirectCode) < 300 || Number(r.redirectCode) > 399)
    )
      f.error(
        [...path, "redirect", "redirectCode"],
        `${Number(r.redirectCode)} is not a valid redirect code, must be 3xx`,
      );
    if (r.scheme !== undefined && !["http", "https"].includes(str(r.scheme)))
      f.error([...path, "redirect", "scheme"], 'invalid redirect scheme, must be "http" or "https"');
    if (r.port !== undefined) f.check([...path, "redirect", "port"], portProblem(Number(r.port)));
  }
  if (http.directResponse !== undefined) {
    const status = Number(obj(http.directResponse).status);
    if (status < 200 || status > 600)
      f.error([...path, "directResponse", "status"], `HTTP status ${status} is not in range 200-599`);
  }
  if (http.retries !== undefined) {
    const r = obj(http.retries);
    const attempts = Number(r.attempts ?? 0);
    if (attempts < 0) f.error([...path, "retries", "attempts"], "attempts cannot be negative");
    if (
      attempts === 0 &&
      (r.perTryTimeout !== undefined || str(r.retryOn) !== "" || r.retryRemoteLocalities !== undefined)
    )
      f.error([...path, "retries"], "http retry policy configured when attempts are set to 0 (disabled)");
    checkDuration(f, [...path, "retries", "perTryTimeout"], r.perTryTimeout);
    for (const policy of str(r.retryOn)
      .split(",")
      .filter((p) => p !== "")) {
      if (!RETRY_ON.has(policy) && !/^[1-5]\d\d$/.test(policy))
        f.error([...path, "retries", "retryOn"], `"${policy}" is not a valid retryOn policy`);
    }
  }
  if (http.rewrite !== undefined) {
    const rw = obj(http.rewrite);
    const regex = obj(rw.uriRegexRewrite);
    if (rw.uri !== undefined && rw.uriRegexRewrite !== undefined)
      f.error([...path, "rewrite"], "rewrite may only contain one of URI or UriRegexRewrite");
    if (rw.uri === undefined && rw.uriRegexRewrite === undefined && rw.authority === undefined)
      f.error(
        [...path, "rewrite"],
        "rewrite must specify at least one of URI, UriRegexRewrite, or authority",
      );
    if (rw.uriRegexRewrite !== undefined) {
      if (str(regex.match) === "" || str(regex.rewrite) === "")
        f.error(
          [...path, "rewrite", "uriRegexRewrite"],
          "UriRegexRewrite requires both Rewrite and Match fields to be specified",
        );
      else f.check([...path, "rewrite", "uriRegexRewrite", "match"], regexProblem(str(regex.match)));
    }
  }
  checkRouteDestinations(f, http.route, [...path, "route"], true);
  checkDuration(f, [...path, "timeout"], http.timeout);
  // validateAuthorityRewrite: the authority is rewritten in one place only.
  const request = obj(obj(http.headers).request);
  let authority = str(obj(http.rewrite).authority);
  for (const op of ["set", "add"] as const) {
    for (const [name, value] of Object.entries(obj(request[op]))) {
      if (name.toLowerCase() !== ":authority" && name.toLowerCase() !== "host") continue;
      if (authority !== "")
        f.error(
          [...path, "headers", "request", op, name],
          `authority header cannot be set multiple times: have "${authority}", attempting to set "${str(value)}"`,
        );
      authority = str(value);
    }
  }
}

const RETRY_ON = new Set([
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
]);

/** Weights: none negative (above 100 is fine: Istio normalises), and not all zero when there are several. */
function checkRouteDestinations(f: Findings, routes: unknown, path: Path, http = false): void {
  let total = 0;
  const list = arr(routes);
  list.forEach((raw, i) => {
    const r = obj(raw);
    if (r.destination === undefined) f.error([...path, i, "destination"], "destination is required");
    checkDestination(f, [...path, i, "destination"], r.destination);
    const w = Number(r.weight ?? 0);
    if (w < 0) f.error([...path, i, "weight"], `weight ${w} < 0`);
    total += w;
    if (http) checkHeaderOperations(f, [...path, i, "headers"], r.headers);
  });
  if (list.length > 1 && total === 0) f.error(path, "total destination weight = 0");
}

// Istio reports these webhook findings as analysis messages (pkg/config/analysis/msg/messages.yaml).
const IST0130 = "IST0130"; // VirtualServiceUnreachableRule, Warning
const IST0131 = "IST0131"; // VirtualServiceIneffectiveMatch, Info

/** Istio's analyzeUnreachableHTTPRules: a match-less rule that is not last, duplicate matches. */
function checkUnreachableHttpRules(f: Findings, routes: unknown[]): void {
  const seen = new Map<string, number>();
  let emptyAt = -1;
  routes.forEach((raw, i) => {
    const route = obj(raw);
    const name = str(route.name) !== "" ? `"${str(route.name)}"` : `#${i}`;
    const matches = arr(route.match);
    if (matches.length === 0) {
      if (emptyAt >= 0)
        f.warn(
          ["spec", "http", i],
          `VirtualService rule ${name} not used (only the last rule can have no matches).`,
          IST0130,
        );
      emptyAt = i;
      return;
    }
    let duplicates = 0;
    matches.forEach((m, j) => {
      const { name: _n, ...rest } = obj(m);
      const key = stableJson(rest);
      const prior = seen.get(key);
      if (prior !== undefined) {
        const priorRoute = obj(routes[prior]);
        const priorName = str(priorRoute.name) !== "" ? `"${str(priorRoute.name)}"` : `#${prior}`;
        const matchName = str(obj(m).name) !== "" ? `"${str(obj(m).name)}"` : `#${j}`;
        f.info(
          ["spec", "http", i, "match", j],
          `VirtualService rule ${name} match ${matchName} is not used (duplicate/overlapping match in rule ${priorName}).`,
          IST0131,
        );
        duplicates++;
      } else seen.set(key, i);
    });
    if (duplicates === matches.length)
      f.warn(
        ["spec", "http", i],
        `VirtualService rule ${name} not used (all matches used by prior rules).`,
        IST0130,
      );
  });
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Obj)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** host.Name.Matches: the two hosts (each possibly `*.suffix`) can match a common name. */
function hostsOverlap(a: string, b: string): boolean {
  return hostCovers(a, b) || hostCovers(b, a);
}

/** `pattern` matches every name `host` matches (host.Name.SubsetOf, reversed). */
function hostCovers(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*")) return host.endsWith(pattern.slice(1)) && host.length >= pattern.length;
  return pattern === host;
}

/** Rules of DestinationRule beyond its schema. */
export function destinationRuleRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  f.check(["spec", "host"], wildcardDomainProblem(str(spec.host)));
  checkTrafficPolicy(f, spec.trafficPolicy, ["spec", "trafficPolicy"]);
  const names = new Set<string>();
  arr(spec.subsets).forEach((raw, i) => {
    const subset = obj(raw);
    const name = str(subset.name);
    if (names.has(name)) f.error(["spec", "subsets", i, "name"], `duplicate subset names: ${name}`);
    names.add(name);
    if (name === "") f.error(["spec", "subsets", i, "name"], "subset name cannot be empty");
    else if (!isDns1123Label(name))
      f.error(["spec", "subsets", i, "name"], `subset name is invalid: ${name}`);
    checkLabels(f, subset.labels, ["spec", "subsets", i, "labels"]);
    checkTrafficPolicy(f, subset.trafficPolicy, ["spec", "subsets", i, "trafficPolicy"]);
  });
  checkExportTo(f, resource.metadata.namespace, spec.exportTo, ["spec", "exportTo"], {
    destinationRuleWithSelector: spec.workloadSelector !== undefined,
  });
  checkWorkloadSelector(f, spec.workloadSelector, ["spec", "workloadSelector"]);
  return f;
}

function checkTrafficPolicy(f: Findings, policy: unknown, path: Path): void {
  if (policy === undefined) return;
  const p = obj(policy);
  const fields = [
    "outlierDetection",
    "connectionPool",
    "loadBalancer",
    "tls",
    "portLevelSettings",
    "tunnel",
    "proxyProtocol",
  ];
  if (!fields.some((k) => p[k] !== undefined)) {
    f.error(path, "traffic policy must have at least one field");
    return;
  }
  if (p.tunnel !== undefined && p.proxyProtocol !== undefined)
    f.error(path, "tunnel and proxyProtocol must not be set together");
  checkPolicyParts(f, p, path);
  arr(p.portLevelSettings).forEach((raw, i) => {
    const s = obj(raw);
    const at = [...path, "portLevelSettings", i];
    if (s.port === undefined) f.error([...at, "port"], "portTrafficPolicy must have valid port");
    if (!["outlierDetection", "connectionPool", "loadBalancer", "tls"].some((k) => s[k] !== undefined))
      f.error(at, "port traffic policy must have at least one field");
    else checkPolicyParts(f, s, at);
  });
  const tunnel = obj(p.tunnel);
  if (p.tunnel !== undefined) {
    if (tunnel.protocol !== undefined && !["CONNECT", "POST"].includes(str(tunnel.protocol)))
      f.error([...path, "tunnel", "protocol"], 'tunnel protocol must be "CONNECT" or "POST"');
    const target = str(tunnel.targetHost);
    if (fqdnProblem(target) !== undefined && !isIpAddress(target))
      f.error(
        [...path, "tunnel", "targetHost"],
        `tunnel target host must be valid FQDN or IP address: ${target}`,
      );
    f.check([...path, "tunnel", "targetPort"], portProblem(Number(tunnel.targetPort ?? 0)));
  }
  const version = obj(p.proxyProtocol).version;
  if (version !== undefined && !["V1", "V2"].includes(str(version)))
    f.error([...path, "proxyProtocol", "version"], `proxy protocol version is invalid: ${str(version)}`);
}

function checkPolicyParts(f: Findings, p: Obj, path: Path): void {
  const od = obj(p.outlierDetection);
  if (p.outlierDetection !== undefined) {
    checkDuration(f, [...path, "outlierDetection", "baseEjectionTime"], od.baseEjectionTime);
    checkDuration(f, [...path, "outlierDetection", "interval"], od.interval);
    if (od.consecutiveErrors !== undefined && Number(od.consecutiveErrors) !== 0)
      f.warn(
        [...path, "outlierDetection", "consecutiveErrors"],
        "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
      );
    if (od.splitExternalLocalOriginErrors !== true && Number(od.consecutiveLocalOriginFailures ?? 0) > 0)
      f.error(
        [...path, "outlierDetection"],
        "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
      );
    for (const k of ["maxEjectionPercent", "minHealthPercent"]) {
      if (od[k] !== undefined && (Number(od[k]) < 0 || Number(od[k]) > 100))
        f.error([...path, "outlierDetection", k], `percentage ${Number(od[k])} is not in range 0..100`);
    }
  }
  if (p.connectionPool !== undefined) {
    const cp = obj(p.connectionPool);
    if (cp.http === undefined && cp.tcp === undefined)
      f.error([...path, "connectionPool"], "connection pool must have at least one field");
    const http = obj(cp.http);
    checkDuration(f, [...path, "connectionPool", "http", "idleTimeout"], http.idleTimeout);
    if (http.h2UpgradePolicy === "UPGRADE" && http.useClientProtocol === true)
      f.error(
        [...path, "connectionPool", "http"],
        "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
      );
    const tcp = obj(cp.tcp);
    for (const k of ["connectTimeout", "maxConnectionDuration", "idleTimeout"])
      checkDuration(f, [...path, "connectionPool", "tcp", k], tcp[k]);
    const ka = obj(tcp.tcpKeepalive);
    checkDuration(f, [...path, "connectionPool", "tcp", "tcpKeepalive", "time"], ka.time);
    checkDuration(f, [...path, "connectionPool", "tcp", "tcpKeepalive", "interval"], ka.interval);
  }
  if (p.loadBalancer !== undefined) {
    const lb = obj(p.loadBalancer);
    const ch = obj(lb.consistentHash);
    if (lb.consistentHash !== undefined) {
      if (ch.httpCookie !== undefined && str(obj(ch.httpCookie).name) === "")
        f.error(
          [...path, "loadBalancer", "consistentHash", "httpCookie", "name"],
          "name required for HttpCookie",
        );
      if (ch.minimumRingSize !== undefined && Number(ch.minimumRingSize) !== 0) {
        f.warn(
          [...path, "loadBalancer", "consistentHash", "minimumRingSize"],
          "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
        );
        if (ch.maglev !== undefined || ch.ringHash !== undefined)
          f.error(
            [...path, "loadBalancer", "consistentHash"],
            "only one of MinimumRingSize or Maglev/Ringhash can be specified",
          );
      }
      if (ch.maglev !== undefined) {
        const size = Number(obj(ch.maglev).tableSize ?? 0);
        const at = [...path, "loadBalancer", "consistentHash", "maglev", "tableSize"];
        if (size === 0) f.error(at, "tableSize must be set for maglev");
        else if (size >= 5000011) f.error(at, "tableSize must be less than 5000011 for maglev");
        else if (!isPrime(size)) f.error(at, "tableSize must be a prime number for maglev");
      }
    }
    checkLocalityLb(f, lb.localityLbSetting, p.outlierDetection, [
      ...path,
      "loadBalancer",
      "localityLbSetting",
    ]);
    const warmup = obj(lb.warmup);
    // The CRD's rule (istio/istio testdata/crds/destinationrule-invalid.yaml): aggression is at least 1.
    if (warmup.aggression !== undefined && Number(warmup.aggression) < 1)
      f.error([...path, "loadBalancer", "warmup", "aggression"], "warmup aggression must be at least 1.0");
    checkDuration(f, [...path, "loadBalancer", "warmupDurationSecs"], lb.warmupDurationSecs);
  }
  if (p.tls !== undefined) {
    const tls = obj(p.tls);
    const mode = str(tls.mode);
    const at = [...path, "tls"];
    if (tls.insecureSkipVerify === true) {
      if (
        mode === "SIMPLE" &&
        (tls.caCertificates !== undefined ||
          tls.credentialName !== undefined ||
          tls.subjectAltNames !== undefined)
      )
        f.error(
          at,
          "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
        );
      if (mode === "MUTUAL" && (tls.caCertificates !== undefined || tls.subjectAltNames !== undefined))
        f.error(at, "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true");
    }
    if ((mode === "SIMPLE" || mode === "MUTUAL") && str(tls.credentialName) !== "") {
      if (["clientCertificate", "caCertificates", "privateKey", "caCrl"].some((k) => str(tls[k]) !== ""))
        f.error(
          at,
          "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
        );
    } else if (mode === "MUTUAL") {
      if (str(tls.clientCertificate) === "") f.error(at, "client certificate required for mutual tls");
      if (str(tls.privateKey) === "") f.error(at, "private key required for mutual tls");
    }
  }
}

function checkLocalityLb(f: Findings, setting: unknown, outlier: unknown, path: Path): void {
  if (setting === undefined) return;
  const lb = obj(setting);
  const distribute = arr(lb.distribute);
  const failover = arr(lb.failover);
  if (distribute.length > 0 && failover.length > 0) {
    f.error(path, "can not simultaneously specify 'distribute' and 'failover'");
    return;
  }
  distribute.forEach((d, i) => {
    let total = 0;
    for (const w of Object.values(obj(obj(d).to))) {
      const weight = Number(w);
      if (weight <= 0 || weight > 100) {
        f.error([...path, "distribute", i, "to"], "locality weight must be in range [1, 100]");
        return;
      }
      total += weight;
    }
    if (total !== 100) f.error([...path, "distribute", i, "to"], `total locality weight ${total} != 100`);
  });
  if ((failover.length > 0 || arr(lb.failoverPriority).length > 0) && outlier === undefined)
    f.warn(path, "outlier detection policy must be provided for failover");
  failover.forEach((raw, i) => {
    const fo = obj(raw);
    const [from, to] = [str(fo.from), str(fo.to)];
    if (from === to)
      f.error([...path, "failover", i], "locality lb failover settings must specify different regions");
    if (from.includes("/") || to.includes("/"))
      f.error([...path, "failover", i], "locality lb failover only specify region");
    if (from.includes("*") || to.includes("*"))
      f.error([...path, "failover", i], "locality lb failover region should not contain '*' wildcard");
  });
}

/** Envoy's isPrime (source/common/common/utility.cc), which Istio mirrors for Maglev table sizes. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let factor = 3; factor * factor <= x; factor += 2) if (x % factor === 0) return false;
  return true;
}

function checkServerHost(f: Findings, path: Path, host: string, gateway: boolean): void {
  const parts = host.split("/");
  let name = host;
  if (parts.length >= 2) {
    const [ns] = parts as [string];
    name = parts.slice(1).join("/");
    if (ns === "" || name === "") {
      f.error(path, "config namespace and dnsName in host entry cannot be empty");
      return;
    }
    if (ns !== "*" && ns !== "." && !(ns === "~" && !gateway) && !isDns1123Label(ns))
      f.error(path, `invalid namespace value "${ns}" in ${gateway ? "gateway" : "sidecar"}`);
  } else if (!gateway) {
    f.error(path, "host must be of form namespace/dnsName");
    return;
  }
  if (name !== "*" && !name.includes(".")) f.error(path, "short names (non FQDN) are not allowed");
  const problem = wildcardDomainProblem(name);
  if (problem !== undefined && !(gateway && isIpAddress(name))) f.error(path, problem);
  f.check(path, partialWildcardProblem(name));
}

/** Rules of Gateway beyond its schema. */
export function gatewayRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  if (!isDns1123Label(resource.metadata.name))
    f.error(["metadata", "name"], `invalid gateway name: "${resource.metadata.name}"`);
  const servers = arr(spec.servers);
  if (servers.length === 0) f.error(["spec", "servers"], "gateway must have at least one server");
  const portNames = new Set<string>();
  servers.forEach((raw, i) => {
    const s = obj(raw);
    const at = ["spec", "servers", i];
    const hosts = arr(s.hosts);
    if (hosts.length === 0) f.error([...at, "hosts"], "server config must contain at least one host");
    hosts.forEach((h, j) => {
      checkServerHost(f, [...at, "hosts", j], str(h), true);
    });
    const port = obj(s.port);
    const bind = str(s.bind);
    if (s.port === undefined) f.error([...at, "port"], "port is required");
    else {
      const protocol = protocolOf(port.protocol);
      if (!PROTOCOLS.has(protocol))
        f.error(
          [...at, "port", "protocol"],
          `invalid protocol "${str(port.protocol)}", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP`,
        );
      if (Number(port.number ?? 0) > 0 || !bind.startsWith("unix://"))
        f.check([...at, "port", "number"], portProblem(Number(port.number ?? 0)));
      if (Number(port.targetPort ?? 0) > 0)
        f.error([...at, "port", "targetPort"], "targetPort has no impact on Gateways");
      if (str(port.name) === "") f.error([...at, "port", "name"], "port name must be set");
      if (portNames.has(str(port.name)))
        f.error(
          [...at, "port", "name"],
          `port names in servers must be unique: duplicate name ${str(port.name)}`,
        );
      portNames.add(str(port.name));
      const tls = s.tls;
      if (TLS_PROTOCOLS.has(protocol) && tls === undefined)
        f.error([...at, "tls"], "server must have TLS settings for HTTPS/TLS protocols");
      else if (!TLS_PROTOCOLS.has(protocol) && tls !== undefined) {
        const t = obj(tls);
        const redirectOnly =
          ["caCertificates", "privateKey", "serverCertificate"].every((k) => str(t[k]) === "") &&
          (t.mode === undefined || t.mode === "PASSTHROUGH");
        if (!HTTP_PROTOCOLS.has(protocol))
          f.error([...at, "tls"], "server cannot have TLS settings for non HTTPS/TLS ports");
        else if (!redirectOnly)
          f.error([...at, "tls"], "server cannot have TLS settings for plain text HTTP ports");
      }
      if (!HTTP_PROTOCOLS.has(protocol) && obj(tls).httpsRedirect === true)
        f.warn([...at, "tls", "httpsRedirect"], "tls.httpsRedirect should only be used with http servers");
    }
    if (bind !== "" && !bind.startsWith("unix://") && !isIpAddress(bind))
      f.error([...at, "bind"], `${bind} is not a valid IP`);
    if (s.tls !== undefined) checkServerTls(f, obj(s.tls), [...at, "tls"]);
  });
  return f;
}

function checkServerTls(f: Findings, tls: Obj, path: Path): void {
  const mode = str(tls.mode) || "PASSTHROUGH";
  const set = (k: string) => str(tls[k]) !== "";
  if (mode === "ISTIO_MUTUAL") {
    for (const [k, what] of [
      ["serverCertificate", "server certificate"],
      ["privateKey", "private key"],
      ["caCertificates", "CA bundle"],
      ["credentialName", "credentialName"],
    ] as const) {
      if (set(k)) f.error([...path, k], `ISTIO_MUTUAL TLS cannot have associated ${what}`);
    }
    return;
  }
  if (
    (mode === "PASSTHROUGH" || mode === "AUTO_PASSTHROUGH") &&
    ["caCrl", "serverCertificate", "privateKey", "caCertificates", "credentialName"].some(set)
  )
    f.warn(path, `${mode} mode does not use certificates, they will be ignored`);
  const credential = set("credentialName") || arr(tls.credentialNames).length > 0;
  if ((mode === "SIMPLE" || mode === "MUTUAL" || mode === "OPTIONAL_MUTUAL") && credential) return;
  if (mode === "SIMPLE") {
    if (!set("serverCertificate")) f.error(path, "SIMPLE TLS requires a server certificate");
    if (!set("privateKey")) f.error(path, "SIMPLE TLS requires a private key");
  } else if (mode === "MUTUAL" || mode === "OPTIONAL_MUTUAL") {
    if (!set("serverCertificate")) f.error(path, "MUTUAL TLS requires a server certificate");
    if (!set("privateKey")) f.error(path, "MUTUAL TLS requires a private key");
    if (!set("caCertificates")) f.error(path, "MUTUAL TLS requires a client CA bundle");
  }
}

/** Rules of ServiceEntry beyond its schema. */
export function serviceEntryRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  const selector = spec.workloadSelector;
  if (selector !== undefined) {
    for (const [k, v] of Object.entries(obj(obj(selector).labels))) {
      if (k === "" || k.includes("*") || str(v).includes("*"))
        f.error(
          ["spec", "workloadSelector", "labels", k],
          `wildcard or empty key is not supported in selector: "${k}=${str(v)}"`,
        );
    }
    if (Object.keys(obj(obj(selector).labels)).length === 0)
      f.warn(
        ["spec", "workloadSelector"],
        "service entry: workload selector specified without labels, will be applied to all services in namespace",
      );
  }
  if (selector !== undefined && spec.endpoints !== undefined)
    f.error(["spec"], "only one of WorkloadSelector or Endpoints is allowed in Service Entry");
  const hosts = arr(spec.hosts).map(str);
  if (hosts.length === 0) f.error(["spec", "hosts"], "service entry must have at least one host");
  hosts.forEach((h, i) => {
    if (h === "*") f.error(["spec", "hosts", i], `invalid host ${h}`);
    else {
      f.check(["spec", "hosts", i], wildcardDomainProblem(h));
      const partial = partialWildcardProblem(h);
      if (partial !== undefined) f.warn(["spec", "hosts", i], partial);
    }
  });
  let cidr = false;
  arr(spec.addresses).forEach((a, i) => {
    cidr ||= str(a).includes("/");
    f.check(["spec", "addresses", i], ipSubnetProblem(str(a)));
  });
  const resolution = str(spec.resolution) || "NONE";
  if (cidr && resolution !== "NONE" && resolution !== "STATIC")
    f.error(["spec", "resolution"], "CIDR addresses are allowed only for NONE/STATIC resolution types");
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  const ports = arr(spec.ports).map(obj);
  ports.forEach((port, i) => {
    const at = ["spec", "ports", i];
    if (portNames.has(str(port.name)))
      f.error([...at, "name"], `service entry port name "${str(port.name)}" already defined`);
    portNames.add(str(port.name));
    if (portNumbers.has(Number(port.number)))
      f.error([...at, "number"], `service entry port ${Number(port.number)} already defined`);
    portNumbers.add(Number(port.number));
    if (port.targetPort !== undefined && Number(port.targetPort) !== 0)
      f.check([...at, "targetPort"], portProblem(Number(port.targetPort)));
    checkPortName(f, [...at, "name"], port.name);
    checkProtocol(f, [...at, "protocol"], port.protocol);
    f.check([...at, "number"], portProblem(Number(port.number ?? 0)));
  });
  const endpoints = arr(spec.endpoints).map(obj);
  switch (resolution) {
    case "NONE":
      if (endpoints.length > 0)
        f.error(["spec", "endpoints"], "no endpoints should be provided for resolution type none");
      if (selector !== undefined)
        f.warn(
          ["spec", "workloadSelector"],
          "workloadSelector should not be set when resolution mode is NONE",
        );
      break;
    case "STATIC":
      endpoints.forEach((e, i) => {
        checkWorkloadEntry(f, e, ["spec", "endpoints", i], { servicePorts: portNames, allowFqdn: false });
      });
      break;
    case "DNS":
    case "DNS_ROUND_ROBIN":
      if (endpoints.length === 0) {
        hosts.forEach((h, i) => {
          if (fqdnProblem(h) !== undefined)
            f.error(
              ["spec", "hosts", i],
              `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution}`,
            );
        });
      }
      if (resolution === "DNS_ROUND_ROBIN" && endpoints.length > 1)
        f.error(
          ["spec", "endpoints"],
          `there must only be 0 or 1 endpoint for resolution mode ${resolution}`,
        );
      endpoints.forEach((e, i) => {
        const address = str(e.address);
        if (!isIpAddress(address) && fqdnProblem(address) !== undefined)
          f.error(
            ["spec", "endpoints", i, "address"],
            `endpoint address "${address}" is not a valid FQDN or an IP address`,
          );
        checkLabels(f, e.labels, ["spec", "endpoints", i, "labels"]);
        for (const [name, port] of Object.entries(obj(e.ports))) {
          if (!portNames.has(name))
            f.error(
              ["spec", "endpoints", i, "ports", name],
              `endpoint port ${String(port)} is not defined by the service entry`,
            );
          checkPortName(f, ["spec", "endpoints", i, "ports", name], name);
          f.check(["spec", "endpoints", i, "ports", name], portProblem(Number(port)));
        }
      });
      if (selector !== undefined)
        f.warn(
          ["spec", "workloadSelector"],
          `workloadSelector should not be set when resolution mode is ${resolution}`,
        );
      break;
  }
  if (resolution !== "NONE" && hosts.length > 1) {
    const bad = ports.findIndex((p) => {
      const protocol = protocolOf(p.protocol);
      return !HTTP_PROTOCOLS.has(protocol) && !TLS_PROTOCOLS.has(protocol);
    });
    if (bad >= 0) f.error(["spec", "ports", bad], "multiple hosts provided with non-HTTP, non-TLS ports");
  }
  checkExportTo(f, resource.metadata.namespace, spec.exportTo, ["spec", "exportTo"], { serviceEntry: true });
  return f;
}

function checkWorkloadEntry(
  f: Findings,
  we: Obj,
  path: Path,
  options: { servicePorts?: Set<string>; allowFqdn: boolean },
): void {
  const address = str(we.address);
  if (address === "") {
    if (str(we.network) === "") {
      f.error([...path, "address"], "address is required");
      return;
    }
    f.warn([...path, "address"], `address is unset with network "${str(we.network)}"`);
  }
  const ports = Object.entries(obj(we.ports));
  if (address.startsWith("unix://")) {
    f.check([...path, "address"], unixAddressProblem(address.slice("unix://".length)));
    if (ports.length > 0) f.error([...path, "ports"], `unix endpoint ${address} must not include ports`);
    if (options.servicePorts !== undefined && options.servicePorts.size !== 1)
      f.error([...path, "address"], "exactly 1 service port required for unix endpoints");
  } else if (address !== "" && !isIpAddress(address)) {
    if (!options.allowFqdn)
      f.error([...path, "address"], `endpoint address "${address}" is not a valid IP address`);
    else if (fqdnProblem(address) !== undefined)
      f.error([...path, "address"], `endpoint address "${address}" is not a valid FQDN or an IP address`);
  }
  for (const [name, port] of ports) {
    if (options.servicePorts !== undefined && !options.servicePorts.has(name))
      f.error([...path, "ports", name], `endpoint port ${String(port)} is not defined by the service entry`);
    checkPortName(f, [...path, "ports", name], name);
    f.check([...path, "ports", name], portProblem(Number(port)));
  }
  checkLabels(f, we.labels, [...path, "labels"]);
}

/** Rules of WorkloadEntry beyond its schema. */
export function workloadEntryRules(resource: Resource): Findings {
  const f = new Findings();
  checkWorkloadEntry(f, obj(resource.spec), ["spec"], { allowFqdn: true });
  return f;
}

/** Rules of WorkloadGroup beyond its schema. */
export function workloadGroupRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  checkLabels(f, obj(spec.metadata).labels, ["spec", "metadata", "labels"]);
  if (spec.probe !== undefined) {
    const probe = obj(spec.probe);
    for (const k of [
      "periodSeconds",
      "initialDelaySeconds",
      "timeoutSeconds",
      "successThreshold",
      "failureThreshold",
    ]) {
      if (Number(probe[k] ?? 0) < 0) f.error(["spec", "probe", k], `${k} must be non-negative`);
    }
    const methods = ["httpGet", "tcpSocket", "exec"].filter((k) => probe[k] !== undefined);
    if (methods.length === 0) f.error(["spec", "probe"], "a probe needs httpGet, tcpSocket or exec");
    const httpGet = obj(probe.httpGet);
    if (probe.httpGet !== undefined) {
      f.check(["spec", "probe", "httpGet", "port"], portProblem(Number(httpGet.port ?? 0)));
      if (httpGet.scheme !== undefined && !["HTTP", "HTTPS"].includes(str(httpGet.scheme)))
        f.error(["spec", "probe", "httpGet", "scheme"], 'httpGet.scheme must be one of "HTTPS", "HTTP"');
      arr(httpGet.httpHeaders).forEach((h, i) => {
        f.check(["spec", "probe", "httpGet", "httpHeaders", i, "name"], headerNameProblem(str(obj(h).name)));
      });
    }
    if (probe.tcpSocket !== undefined)
      f.check(["spec", "probe", "tcpSocket", "port"], portProblem(Number(obj(probe.tcpSocket).port ?? 0)));
    if (probe.exec !== undefined && arr(obj(probe.exec).command).length === 0)
      f.error(["spec", "probe", "exec", "command"], "exec.command is required");
  }
  return f;
}

/** Rules of Sidecar beyond its schema. */
export function sidecarRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  const selector = spec.workloadSelector;
  if (selector !== undefined) {
    const labels = obj(obj(selector).labels);
    for (const [k, v] of Object.entries(labels)) {
      if (k === "" || k.includes("*") || str(v).includes("*"))
        f.error(
          ["spec", "workloadSelector", "labels", k],
          `wildcard or empty key is not supported in selector: "${k}=${str(v)}"`,
        );
    }
    if (Object.keys(labels).length === 0)
      f.warn(
        ["spec", "workloadSelector"],
        "sidecar: workload selector specified without labels, will be applied to all services in namespace",
      );
  }
  const ingress = arr(spec.ingress).map(obj);
  const egress = arr(spec.egress).map(obj);
  if (
    ingress.length === 0 &&
    egress.length === 0 &&
    spec.outboundTrafficPolicy === undefined &&
    spec.inboundConnectionPool === undefined
  ) {
    f.error(["spec"], "sidecar: empty configuration provided");
    return f;
  }
  const ingressPorts = new Set<number>();
  ingress.forEach((i, n) => {
    const at = ["spec", "ingress", n];
    const port = obj(i.port);
    if (i.port === undefined) {
      f.error([...at, "port"], "sidecar: port is required for ingress listeners");
      return;
    }
    if (port.name !== undefined) checkPortName(f, [...at, "port", "name"], port.name);
    checkProtocol(f, [...at, "port", "protocol"], port.protocol);
    f.check([...at, "port", "number"], portProblem(Number(port.number ?? 0)));
    if (i.bind !== undefined && !isIpAddress(str(i.bind)))
      f.error([...at, "bind"], `${str(i.bind)} is not a valid IP`);
    if (ingressPorts.has(Number(port.number)))
      f.error([...at, "port", "number"], "sidecar: ports on IP bound listeners must be unique");
    ingressPorts.add(Number(port.number));
    const endpoint = str(i.defaultEndpoint);
    if (endpoint !== "" && !endpoint.startsWith("unix://")) {
      const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(endpoint);
      const host = m?.[1] ?? m?.[2];
      if (m === null || (host !== "" && !["127.0.0.1", "0.0.0.0", "::1", "::"].includes(host as string)))
        f.error(
          [...at, "defaultEndpoint"],
          "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset",
        );
      else f.check([...at, "defaultEndpoint"], portProblem(Number(m[3])));
    }
  });
  const egressPorts = new Set<number>();
  egress.forEach((e, n) => {
    const at = ["spec", "egress", n];
    if (e.port === undefined) {
      if (n !== egress.length - 1)
        f.error(at, "sidecar: the egress listener with empty port should be the last listener in the list");
    } else {
      const port = obj(e.port);
      if (port.name !== undefined) checkPortName(f, [...at, "port", "name"], port.name);
      checkProtocol(f, [...at, "port", "protocol"], port.protocol);
      const number = Number(port.number ?? 0);
      if (number === 0) {
        // istio/istio pkg/config/validation/validation.go validateSidecarEgressPortBindAndCaptureMode.
        if (!str(e.bind).startsWith("unix://"))
          f.error([...at, "bind"], "sidecar: ports with 0 value must have a unix domain socket bind address");
        else f.check([...at, "bind"], unixAddressProblem(str(e.bind).slice("unix://".length)));
        if (e.captureMode !== undefined && e.captureMode !== "DEFAULT" && e.captureMode !== "NONE")
          f.error(
            [...at, "captureMode"],
            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
          );
      } else {
        f.check([...at, "port", "number"], portProblem(number));
        if (e.bind !== undefined && !isIpAddress(str(e.bind)))
          f.error([...at, "bind"], `${str(e.bind)} is not a valid IP`);
        if (egressPorts.has(number))
          f.error([...at, "port", "number"], "sidecar: ports on IP bound listeners must be unique");
        egressPorts.add(number);
      }
    }
    const hosts = arr(e.hosts).map(str);
    if (hosts.length === 0)
      f.error([...at, "hosts"], "sidecar: egress listener must contain at least one host");
    hosts.forEach((h, k) => {
      checkServerHost(f, [...at, "hosts", k], h, false);
    });
  });
  const otp = obj(spec.outboundTrafficPolicy);
  if (otp.egressProxy !== undefined) {
    if (otp.mode !== "ALLOW_ANY")
      f.error(
        ["spec", "outboundTrafficPolicy", "egressProxy"],
        "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
      );
    else {
      const proxy = obj(otp.egressProxy);
      f.check(["spec", "outboundTrafficPolicy", "egressProxy", "host"], fqdnProblem(str(proxy.host)));
      if (proxy.port === undefined)
        f.error(
          ["spec", "outboundTrafficPolicy", "egressProxy", "port"],
          "sidecar: egress_proxy port must be non-nil",
        );
      else checkDestination(f, ["spec", "outboundTrafficPolicy", "egressProxy"], proxy);
    }
  }
  return f;
}

/** Rules of ProxyConfig beyond its schema. */
export function proxyConfigRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  checkWorkloadSelector(f, spec.selector, ["spec", "selector"]);
  if (spec.concurrency !== undefined && Number(spec.concurrency) < 0)
    f.error(["spec", "concurrency"], "concurrency must be greater than or equal to 0");
  return f;
}

/** Rules of EnvoyFilter beyond its schema (the CRD's waypoint rules, istio/istio testdata/crds/envoyfilter-invalid.yaml). */
export function envoyFilterRules(resource: Resource): Findings {
  const f = new Findings();
  const spec = obj(resource.spec);
  arr(spec.configPatches).forEach((raw, i) => {
    const match = obj(obj(raw).match);
    const at = ["spec", "configPatches", i, "match"];
    const waypoint = match.context === "WAYPOINT";
    if (match.waypoint !== undefined && !waypoint)
      f.error(at, "only support waypointMatch when context is WAYPOINT");
    if (
      waypoint &&
      (match.listener !== undefined || match.routeConfiguration !== undefined || match.cluster !== undefined)
    )
      f.error(at, "only support waypointMatch when context is WAYPOINT");
    const port = obj(match.waypoint).portNumber;
    if (port !== undefined) f.check([...at, "waypoint", "portNumber"], portProblem(Number(port)));
  });
  checkLabels(f, obj(spec.workloadSelector).labels, ["spec", "workloadSelector", "labels"]);
  return f;
}
