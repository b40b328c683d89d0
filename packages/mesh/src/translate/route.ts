import { create, type JsonObject } from "@bufbuild/protobuf";
import { anyPack, type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  DataSourceSchema,
  type HeaderValueOption,
  HeaderValueOption_HeaderAppendAction,
  HeaderValueOptionSchema,
  HeaderValueSchema,
  type Metadata,
  MetadataSchema,
  RuntimeFractionalPercentSchema,
} from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  DecoratorSchema,
  DirectResponseActionSchema,
  type HeaderMatcher,
  HeaderMatcherSchema,
  type QueryParameterMatcher,
  QueryParameterMatcherSchema,
  RedirectAction_RedirectResponseCode,
  RedirectActionSchema,
  type RetryPolicy,
  RetryPolicy_RetryBackOffSchema,
  RetryPolicy_RetryHostPredicateSchema,
  RetryPolicy_RetryPrioritySchema,
  RetryPolicySchema,
  type Route,
  type RouteAction,
  type RouteAction_HashPolicy,
  RouteAction_HashPolicy_ConnectionPropertiesSchema,
  RouteAction_HashPolicy_CookieSchema,
  RouteAction_HashPolicy_HeaderSchema,
  RouteAction_HashPolicy_QueryParameterSchema,
  RouteAction_HashPolicySchema,
  RouteAction_MaxStreamDurationSchema,
  type RouteAction_RequestMirrorPolicy,
  RouteAction_RequestMirrorPolicySchema,
  RouteActionSchema,
  type RouteMatch,
  RouteMatchSchema,
  RouteSchema,
  type WeightedCluster_ClusterWeight,
  WeightedCluster_ClusterWeightSchema,
  WeightedClusterSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { FaultDelaySchema } from "@meshlet/api/envoy/extensions/filters/common/fault/v3/fault_pb";
import {
  type CorsPolicy,
  CorsPolicySchema,
} from "@meshlet/api/envoy/extensions/filters/http/cors/v3/cors_pb";
import {
  FaultAbortSchema,
  type HTTPFault,
  HTTPFaultSchema,
} from "@meshlet/api/envoy/extensions/filters/http/fault/v3/fault_pb";
import { PreviousPrioritiesConfigSchema } from "@meshlet/api/envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config_pb";
import {
  type MetadataMatcher,
  MetadataMatcher_PathSegmentSchema,
  MetadataMatcherSchema,
} from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import {
  RegexMatchAndSubstituteSchema,
  RegexMatcherSchema,
} from "@meshlet/api/envoy/type/matcher/v3/regex_pb";
import { type StringMatcher, StringMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/string_pb";
import { ListMatcherSchema, ValueMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/value_pb";
import {
  FractionalPercent_DenominatorType,
  FractionalPercentSchema,
} from "@meshlet/api/envoy/type/v3/percent_pb";
import { parseApiVersion, type ResourceKey } from "@meshlet/config";
import { GrpcStatus } from "@meshlet/xds";
import type {
  Destination,
  HttpMatchRequest,
  HttpRoute,
  HttpRouteDestination,
  StringMatch,
} from "../config-access.js";
import type { Service } from "../model/service.js";
import { outboundClusterName, parseSubsetKey } from "../naming/cluster-names.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import { MESH_GATEWAY, type MeshVirtualService } from "../push/virtual-services.js";
import type { ProxyCapabilities } from "./capabilities.js";
import {
  duration,
  type IstioConsistentHash,
  type IstioCorsPolicy,
  type IstioDirectResponse,
  type IstioFault,
  type IstioHeaders,
  type IstioMirrorPolicy,
  type IstioPercent,
  type IstioRedirect,
  type IstioRetry,
  type IstioRewrite,
  type IstioTrafficPolicy,
  integerToFractional,
  num,
  percentToFractional,
  str,
  view,
} from "./istio-fields.js";
import { ignoreWarnings, type WarningSink } from "./warnings.js";

// VirtualService HTTP routes → Envoy routes, as Istio's route builder writes them
// (istio/istio pilot/pkg/networking/core/route/route.go: BuildHTTPRoutesForVirtualService,
// translateRoute, TranslateRouteMatch, applyHTTPRouteDestination, setTimeout, TranslateFault,
// TranslateCORSPolicy, TranslateHeadersOperations, consistentHashToHashPolicy, GetRouteOperation;
// route/retry/retry.go ConvertPolicy). Shared by the Envoy generators and the proxyless gRPC
// generator: `capabilities` says what the proxy accepts, and what it would reject is left out with
// a warning.

/** HTTP filter names Istio uses in `typed_per_filter_config` (Istio `wellknown`). */
export const HttpFilterNames = {
  fault: "envoy.filters.http.fault",
  cors: "envoy.filters.http.cors",
  router: "envoy.filters.http.router",
  rbac: "envoy.filters.http.rbac",
} as const;

/** Istio's name of the route built when no VirtualService applies (`DefaultRouteName`). */
export const DEFAULT_ROUTE_NAME = "default";

/** Istio's cluster for traffic that must fail (`util.BlackHoleCluster`). */
export const BLACK_HOLE_CLUSTER = "BlackHoleCluster";

/** What routes are translated for. */
export interface RouteContext {
  readonly push: PushContext;
  /** The proxy the routes are for (source labels and namespace of matches; the DestinationRules it sees). */
  readonly proxy: Proxy;
  /** The port the routes serve (destination ports default to it; `match.port` is compared with it). */
  readonly listenPort: number;
  /** Gateways the routes are built for; `mesh` (sidecars, proxyless) by default. */
  readonly gateways?: ReadonlySet<string>;
  /** What the proxy accepts. */
  readonly capabilities: ProxyCapabilities;
  /** Where left-out features are reported. */
  readonly warn?: WarningSink;
  /** The listener terminates TLS (gateways): redirects default to `https`. */
  readonly tls?: boolean;
  /** The proxy's labels (default: `push.proxyLabels(proxy)`). */
  readonly proxyLabels?: Readonly<Record<string, string>>;
}

const MESH_ONLY: ReadonlySet<string> = new Set([MESH_GATEWAY]);

/**
 * The routes of one VirtualService for a port (Istio `BuildHTTPRoutesForVirtualService`): each HTTP
 * route becomes one route per match (or one without matches) that applies to the proxy and port;
 * nothing after a catch-all route is kept. Empty when no route applies.
 */
export function buildVirtualServiceRoutes(vs: MeshVirtualService, ctx: RouteContext): Route[] {
  const out: Route[] = [];
  for (const [i, http] of vs.http.entries()) {
    let catchAll = false;
    if (http.match === undefined || http.match.length === 0) {
      const r = translateRoute(vs, http, undefined, ctx, i);
      if (r !== undefined) out.push(r);
      catchAll = true;
    } else {
      for (const match of http.match) {
        const r = translateRoute(vs, http, match, ctx, i);
        if (r === undefined) continue;
        out.push(r);
        if (isCatchAllRoute(r)) {
          catchAll = true;
          break;
        }
      }
    }
    if (catchAll) break;
  }
  return out;
}

/**
 * One HTTP route for one match (Istio `translateRoute`); undefined when the match does not apply to
 * this port, proxy or gateway, or when it matches on something the proxy cannot match on.
 * `index` is the route's position in `spec.http`, for warnings.
 */
export function translateRoute(
  vs: MeshVirtualService,
  http: HttpRoute,
  match: HttpMatchRequest | undefined,
  ctx: RouteContext,
  index = vs.http.indexOf(http),
): Route | undefined {
  const warn = ctx.warn ?? ignoreWarnings;
  const caps = ctx.capabilities;
  const path = `spec.http[${index}]`;
  const left = (what: string, field: string) =>
    warn({
      code: "UNSUPPORTED_BY_CLIENT",
      message: `${what} is not supported by ${caps.client}; left out`,
      config: vs.key,
      path: `${path}.${field}`,
      client: caps.client,
    });
  if (match !== undefined && match.port !== undefined && match.port !== 0 && match.port !== ctx.listenPort) {
    return undefined;
  }
  const labels = ctx.proxyLabels ?? ctx.push.proxyLabels(ctx.proxy);
  if (!sourceMatches(match, labels, ctx.gateways ?? MESH_ONLY, ctx.proxy.namespace)) return undefined;

  const routeMatch = translateRouteMatch(match);
  if (caps.headerMatcher === "legacy") routeMatch.headers = routeMatch.headers.map(legacyHeaderMatcher);
  if (routeMatch.queryParameters.length > 0 && !caps.queryParameterMatch) {
    left("a route matching on query parameters (it would match every request)", "match.queryParams");
    return undefined;
  }
  if (routeMatch.dynamicMetadata.length > 0 && !caps.dynamicMetadataMatch) {
    left("a route matching on JWT claims (@request.auth.claims)", "match.headers");
    return undefined;
  }

  const name =
    match?.name !== undefined && match.name !== "" ? `${http.name ?? ""}.${match.name}` : http.name;
  const route = create(RouteSchema, {
    ...(name !== undefined ? { name } : {}),
    match: routeMatch,
    metadata: configInfoMetadata(vs),
  });
  if (match?.statPrefix !== undefined && match.statPrefix !== "") route.statPrefix = match.statPrefix;

  let authority = "";
  const headers = view<IstioHeaders>(http.headers);
  if (headers !== undefined) {
    const ops = translateHeadersOperations(headers);
    route.requestHeadersToAdd = ops.requestHeadersToAdd;
    route.responseHeadersToAdd = ops.responseHeadersToAdd;
    route.requestHeadersToRemove = ops.requestHeadersToRemove;
    route.responseHeadersToRemove = ops.responseHeadersToRemove;
    authority = ops.authority;
  }

  const redirect = view<IstioRedirect>(http.redirect);
  const direct = view<IstioDirectResponse>(http.directResponse);
  if (redirect !== undefined && !caps.redirect) {
    left("a redirect (the route now fails its requests with UNAVAILABLE)", "redirect");
    blackHole(route, ctx);
  } else if (redirect === undefined && direct !== undefined && !caps.directResponse) {
    left("a direct response (the route now fails its requests with UNAVAILABLE)", "directResponse");
    blackHole(route, ctx);
  } else if (redirect !== undefined) {
    applyRedirect(route, redirect, ctx.listenPort, ctx.tls ?? false);
  } else if (direct !== undefined) {
    applyDirectResponse(route, direct);
  } else {
    applyRouteDestination(route, vs, http, authority, ctx, path);
  }

  route.decorator = create(DecoratorSchema, { operation: routeOperation(route, vs.name, ctx.listenPort) });
  const fault = translateFault(view<IstioFault>(http.fault), warn, vs.key, `${path}.fault`);
  if (fault !== undefined)
    route.typedPerFilterConfig[HttpFilterNames.fault] = anyPack(HTTPFaultSchema, fault);
  const cors = view<IstioCorsPolicy>(http.corsPolicy);
  if (cors !== undefined) {
    if (caps.cors)
      route.typedPerFilterConfig[HttpFilterNames.cors] = anyPack(CorsPolicySchema, translateCorsPolicy(cors));
    else left("a CORS policy", "corsPolicy");
  }
  return route;
}

/** Routes requests to {@link BLACK_HOLE_CLUSTER}: they fail (gRPC UNAVAILABLE, Envoy 503). */
function blackHole(route: Route, ctx: RouteContext): void {
  const action = create(RouteActionSchema, {
    clusterSpecifier: { case: "cluster", value: BLACK_HOLE_CLUSTER },
  });
  setRouteTimeout(action, undefined, ctx.capabilities);
  route.action = { case: "route", value: action };
}

/** Istio `sourceMatchHTTP`: the match's gateways, or its source labels and source namespace. */
function sourceMatches(
  match: HttpMatchRequest | undefined,
  labels: Readonly<Record<string, string>>,
  gateways: ReadonlySet<string>,
  namespace: string,
): boolean {
  if (match === undefined) return true;
  if (match.gateways !== undefined && match.gateways.length > 0)
    return match.gateways.some((g) => gateways.has(g));
  for (const [k, v] of Object.entries(match.sourceLabels ?? {})) if (labels[k] !== v) return false;
  return (
    match.sourceNamespace === undefined || match.sourceNamespace === "" || match.sourceNamespace === namespace
  );
}

/**
 * The route metadata Istio writes (`util.BuildConfigInfoMetadata`):
 * `filter_metadata.istio.config = /apis/<group>/<version>/namespaces/<ns>/virtual-service/<name>`.
 */
export function configInfoMetadata(vs: {
  readonly resource: { readonly apiVersion: string };
  readonly namespace: string;
  readonly name: string;
}): Metadata {
  const { group, version } = parseApiVersion(vs.resource.apiVersion);
  const config = `/apis/${group}/${version}/namespaces/${vs.namespace}/virtual-service/${vs.name}`;
  return create(MetadataSchema, { filterMetadata: { istio: { config } as JsonObject } });
}

/** Istio `util.ConvertToEnvoyMatch`: exact, prefix or `safe_regex`. */
export function toStringMatcher(m: StringMatch): StringMatcher | undefined {
  if (m.exact !== undefined)
    return create(StringMatcherSchema, { matchPattern: { case: "exact", value: m.exact } });
  if (m.prefix !== undefined)
    return create(StringMatcherSchema, { matchPattern: { case: "prefix", value: m.prefix } });
  if (m.regex !== undefined) {
    return create(StringMatcherSchema, {
      matchPattern: { case: "safeRegex", value: create(RegexMatcherSchema, { regex: m.regex }) },
    });
  }
  return undefined;
}

/** Istio `canBeConvertedToPresentMatch`: an empty match or the regex `*` means "present". */
function isPresentMatch(m: StringMatch | undefined): boolean {
  return (
    m === undefined ||
    (m.exact === undefined && m.prefix === undefined && m.regex === undefined) ||
    m.regex === "*"
  );
}

/** Istio `translateHeaderMatch`. */
function headerMatcher(name: string, m: StringMatch | undefined): HeaderMatcher {
  if (isPresentMatch(m))
    return create(HeaderMatcherSchema, { name, headerMatchSpecifier: { case: "presentMatch", value: true } });
  const sm = toStringMatcher(m as StringMatch);
  return create(HeaderMatcherSchema, {
    name,
    ...(sm !== undefined ? { headerMatchSpecifier: { case: "stringMatch" as const, value: sm } } : {}),
  });
}

/**
 * A header matcher in the deprecated form (`exact_match`, `prefix_match`, `safe_regex_match`,
 * `suffix_match`, `contains_match`) when its `string_match` has one, for clients without gRFC A63;
 * other matchers (and `ignore_case` ones, which the old fields cannot express) are returned as they are.
 */
export function legacyHeaderMatcher(m: HeaderMatcher): HeaderMatcher {
  const spec = m.headerMatchSpecifier;
  if (spec.case !== "stringMatch" || spec.value.ignoreCase) return m;
  const p = spec.value.matchPattern;
  const out = create(HeaderMatcherSchema, {
    name: m.name,
    invertMatch: m.invertMatch,
    treatMissingHeaderAsEmpty: m.treatMissingHeaderAsEmpty,
  });
  switch (p.case) {
    case "exact":
      out.headerMatchSpecifier = { case: "exactMatch", value: p.value };
      return out;
    case "prefix":
      out.headerMatchSpecifier = { case: "prefixMatch", value: p.value };
      return out;
    case "suffix":
      out.headerMatchSpecifier = { case: "suffixMatch", value: p.value };
      return out;
    case "contains":
      out.headerMatchSpecifier = { case: "containsMatch", value: p.value };
      return out;
    case "safeRegex":
      out.headerMatchSpecifier = { case: "safeRegexMatch", value: p.value };
      return out;
    default:
      return m;
  }
}

function queryParameterMatcher(name: string, m: StringMatch | undefined): QueryParameterMatcher {
  if (isPresentMatch(m)) {
    return create(QueryParameterMatcherSchema, {
      name,
      queryParameterMatchSpecifier: { case: "presentMatch", value: true },
    });
  }
  const sm = toStringMatcher(m as StringMatch);
  return create(QueryParameterMatcherSchema, {
    name,
    ...(sm !== undefined
      ? { queryParameterMatchSpecifier: { case: "stringMatch" as const, value: sm } }
      : {}),
  });
}

/**
 * The claims of a routing header `@request.auth.claims.a.b` or `@request.auth.claims[a][b]`
 * (Istio `jwt.ToRoutingClaim`); undefined for other header names.
 */
export function routingClaim(name: string): string[] | undefined {
  const prefix = "@request.auth.claims";
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  if (rest.startsWith(".")) {
    const parts = rest.slice(1).split(".");
    return parts.every((p) => p !== "") ? parts : undefined;
  }
  if (rest.startsWith("[")) {
    const parts: string[] = [];
    const re = /\[([^[\]]+)\]/y;
    let at = 0;
    while (at < rest.length) {
      re.lastIndex = at;
      const m = re.exec(rest);
      if (m === null) return undefined;
      parts.push(m[1] as string);
      at = re.lastIndex;
    }
    return parts.length > 0 ? parts : undefined;
  }
  return undefined;
}

/**
 * A dynamic-metadata matcher for JWT claims (Istio `authz.MetadataMatcherForJWTClaims`): the
 * `istio_authn` filter's `request.auth.claims` path, any element of a list claim.
 */
function claimMatcher(claims: readonly string[], m: StringMatch | undefined): MetadataMatcher {
  const sm =
    (m !== undefined && !isPresentMatch(m) ? toStringMatcher(m) : undefined) ??
    create(StringMatcherSchema, {
      matchPattern: { case: "safeRegex", value: create(RegexMatcherSchema, { regex: ".+" }) },
    });
  return create(MetadataMatcherSchema, {
    filter: "istio_authn",
    path: ["request.auth.claims", ...claims].map((key) =>
      create(MetadataMatcher_PathSegmentSchema, { segment: { case: "key", value: key } }),
    ),
    value: create(ValueMatcherSchema, {
      matchPattern: {
        case: "listMatch",
        value: create(ListMatcherSchema, {
          matchPattern: {
            case: "oneOf",
            value: create(ValueMatcherSchema, { matchPattern: { case: "stringMatch", value: sm } }),
          },
        }),
      },
    }),
  });
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * Istio `TranslateRouteMatch`: prefix `/` without a match; header matches (and `withoutHeaders`,
 * inverted) sorted by name, then `:method`, `:authority`, `:scheme`; `case_sensitive` whenever a
 * match is given; query parameters (sorted by name, where Istio keeps map order); JWT claim
 * headers as dynamic metadata.
 */
export function translateRouteMatch(match: HttpMatchRequest | undefined): RouteMatch {
  const out = create(RouteMatchSchema, { pathSpecifier: { case: "prefix", value: "/" } });
  if (match === undefined) return out;
  const headers: HeaderMatcher[] = [];
  for (const [name, m] of Object.entries(match.headers ?? {})) {
    const claims = routingClaim(name);
    if (claims !== undefined) out.dynamicMetadata.push(claimMatcher(claims, m));
    else headers.push(headerMatcher(name, m));
  }
  for (const [name, m] of Object.entries(match.withoutHeaders ?? {})) {
    const claims = routingClaim(name);
    if (claims !== undefined) {
      const matcher = claimMatcher(claims, m);
      matcher.invert = true;
      out.dynamicMetadata.push(matcher);
    } else {
      const matcher = headerMatcher(name, m);
      matcher.invertMatch = true;
      if (!isPresentMatch(m)) matcher.treatMissingHeaderAsEmpty = true;
      headers.push(matcher);
    }
  }
  headers.sort(byName);
  const uri = match.uri;
  if (uri !== undefined) {
    if (uri.exact !== undefined) out.pathSpecifier = { case: "path", value: uri.exact };
    else if (uri.prefix !== undefined) out.pathSpecifier = { case: "prefix", value: uri.prefix };
    else if (uri.regex !== undefined)
      out.pathSpecifier = { case: "safeRegex", value: create(RegexMatcherSchema, { regex: uri.regex }) };
  }
  out.caseSensitive = !(match.ignoreUriCase ?? false);
  if (match.method !== undefined) headers.push(headerMatcher(":method", match.method));
  if (match.authority !== undefined) headers.push(headerMatcher(":authority", match.authority));
  if (match.scheme !== undefined) headers.push(headerMatcher(":scheme", match.scheme));
  out.headers = headers;
  out.queryParameters = Object.entries(match.queryParams ?? {})
    .map(([name, m]) => queryParameterMatcher(name, m))
    .sort(byName);
  return out;
}

/**
 * Istio `IsCatchAllRoute`: prefix `/`, path-separated prefix `/` or regex `.*`, without header,
 * query or metadata matches.
 */
export function isCatchAllRoute(route: Route): boolean {
  const m = route.match;
  if (m === undefined) return false;
  const ps = m.pathSpecifier;
  const catchAll =
    (ps.case === "prefix" && ps.value === "/") ||
    (ps.case === "pathSeparatedPrefix" && ps.value === "/") ||
    (ps.case === "safeRegex" && ps.value.regex === ".*");
  return (
    catchAll && m.headers.length === 0 && m.queryParameters.length === 0 && m.dynamicMetadata.length === 0
  );
}

/** Istio `SortVHostRoutes`: catch-all routes last, the others in their order. */
export function sortVirtualHostRoutes(routes: readonly Route[]): Route[] {
  return [...routes.filter((r) => !isCatchAllRoute(r)), ...routes.filter(isCatchAllRoute)];
}

/**
 * Istio `GetRouteOperation`, the trace decorator: `host:port<path>` when the route has a single
 * cluster with a subset-key name, otherwise `<vs name>:<port><path>`; the path is `prefix*`, the
 * exact path, the regex or `/*`.
 */
export function routeOperation(route: Route, vsName: string, port: number): string {
  let path = "/*";
  const ps = route.match?.pathSpecifier;
  if (ps?.case === "prefix") path = `${ps.value}*`;
  else if (ps?.case === "path") path = ps.value;
  else if (ps?.case === "safeRegex") path = ps.value.regex;
  const action = route.action.case === "route" ? route.action.value : undefined;
  const cluster = action?.clusterSpecifier.case === "cluster" ? action.clusterSpecifier.value : undefined;
  if (cluster !== undefined) {
    const key = parseSubsetKey(cluster);
    if (key !== undefined && key.direction !== "" && key.hostname !== "")
      return `${key.hostname}:${key.port}${path}`;
  }
  return `${vsName}:${port}${path}`;
}

/**
 * Istio `GetDestinationCluster`: `outbound|<port>|<subset>|<host>` with the destination's port, else
 * the only port of the service, else the listener port; an ExternalName service points at its
 * external name.
 */
export function destinationCluster(
  destination: Destination,
  service: Service | undefined,
  listenPort: number,
): string {
  if (destination.host === "") return "UnknownService";
  const host =
    service?.externalName !== undefined && service.externalName !== ""
      ? service.externalName
      : destination.host;
  let port = listenPort;
  if (destination.port?.number !== undefined) port = destination.port.number;
  else if (service !== undefined && service.ports.length === 1)
    port = (service.ports[0] as { port: number }).port;
  return outboundClusterName(host, port, destination.subset ?? "");
}

function applyRouteDestination(
  route: Route,
  vs: MeshVirtualService,
  http: HttpRoute,
  authorityIn: string,
  ctx: RouteContext,
  path: string,
): void {
  const caps = ctx.capabilities;
  const warn = ctx.warn ?? ignoreWarnings;
  const action = create(RouteActionSchema, {});
  let timeout = duration(http.timeout);
  const nonZero = timeout !== undefined && (timeout.seconds > 0n || timeout.nanos > 0);
  if (nonZero && !caps.routeTimeouts) {
    warn({
      code: "UNSUPPORTED_BY_CLIENT",
      message: `route timeouts are not enforced correctly by this version of ${caps.client} (it ends RPCs about 1.7 s early); not sent, the caller's deadline applies`,
      config: vs.key,
      path: `${path}.timeout`,
      client: caps.client,
    });
    timeout = undefined;
  }
  setRouteTimeout(action, timeout, caps);
  route.action = { case: "route", value: action };
  let authority = authorityIn;
  const rewrite = view<IstioRewrite>(http.rewrite);
  if (rewrite !== undefined) {
    const regex = view<{ match?: string; rewrite?: string }>(rewrite.uriRegexRewrite);
    if (regex !== undefined) {
      action.regexRewrite = create(RegexMatchAndSubstituteSchema, {
        pattern: create(RegexMatcherSchema, { regex: regex.match ?? "" }),
        substitution: regex.rewrite ?? "",
      });
    } else if (str(rewrite.uri) !== undefined) {
      action.prefixRewrite = rewrite.uri as string;
    }
    if (str(rewrite.authority) !== undefined) authority = rewrite.authority as string;
  }
  if (authority !== "") action.hostRewriteSpecifier = { case: "hostRewriteLiteral", value: authority };

  const mirrorPercent = mirrorPercentOf(http);
  if (http.mirror !== undefined && mirrorPercent !== undefined) {
    action.requestMirrorPolicies.push(mirrorPolicy(http.mirror, ctx, mirrorPercent));
  }
  for (const m of (http.mirrors ?? []) as readonly IstioMirrorPolicy[]) {
    const mp = mirrorPercentByPolicy(m);
    if (mp !== undefined && m.destination !== undefined)
      action.requestMirrorPolicies.push(mirrorPolicy(m.destination, ctx, mp));
  }

  const retries = view<IstioRetry>(http.retries) ?? view<IstioRetry>(ctx.push.mesh.defaultHttpRetryPolicy);
  const destinations = http.route ?? [];
  let consistentHash = false;
  const hashPolicy = (d: HttpRouteDestination, i: number) => {
    const hash = hashForDestination(ctx, d.destination);
    if (hash === undefined) return;
    const policy = consistentHashToHashPolicy(hash, caps, warn, vs.key, `${path}.route[${i}]`);
    if (policy !== undefined) action.hashPolicy.push(policy);
    return hash;
  };
  if (destinations.length === 1) {
    const d = destinations[0] as HttpRouteDestination;
    const svc = ctx.push.serviceForHostname(ctx.proxy, d.destination.host);
    action.clusterSpecifier = {
      case: "cluster",
      value: destinationCluster(d.destination, svc, ctx.listenPort),
    };
    const dh = view<IstioHeaders>(d.headers);
    if (dh !== undefined) {
      const ops = translateHeadersOperations(dh);
      route.requestHeadersToAdd.push(...ops.requestHeadersToAdd);
      route.requestHeadersToRemove.push(...ops.requestHeadersToRemove);
      route.responseHeadersToAdd.push(...ops.responseHeadersToAdd);
      route.responseHeadersToRemove.push(...ops.responseHeadersToRemove);
      if (ops.authority !== "" && action.hostRewriteSpecifier.case === undefined) {
        action.hostRewriteSpecifier = { case: "hostRewriteLiteral", value: ops.authority };
      }
    }
    consistentHash = hashPolicy(d, 0) !== undefined;
  } else {
    const weighted: WeightedCluster_ClusterWeight[] = [];
    destinations.forEach((d, i) => {
      // Istio drops 0-weight destinations when there are several.
      if ((d.weight ?? 0) === 0) return;
      const svc = ctx.push.serviceForHostname(ctx.proxy, d.destination.host);
      const cw = create(WeightedCluster_ClusterWeightSchema, {
        name: destinationCluster(d.destination, svc, ctx.listenPort),
        weight: d.weight as number,
      });
      const dh = view<IstioHeaders>(d.headers);
      if (dh !== undefined) {
        const ops = translateHeadersOperations(dh);
        cw.requestHeadersToAdd = ops.requestHeadersToAdd;
        cw.requestHeadersToRemove = ops.requestHeadersToRemove;
        cw.responseHeadersToAdd = ops.responseHeadersToAdd;
        cw.responseHeadersToRemove = ops.responseHeadersToRemove;
        if (ops.authority !== "")
          cw.hostRewriteSpecifier = { case: "hostRewriteLiteral", value: ops.authority };
      }
      weighted.push(cw);
      hashPolicy(d, i);
    });
    if (weighted.length === 0) {
      // Every weight is 0 (validation should have refused it): a weighted_clusters with a zero sum
      // is NACKed, so the route fails its requests instead.
      warn({
        code: "INVALID_CONFIG",
        message: "every destination of the route has weight 0; its requests fail",
        config: vs.key,
        path: `${path}.route`,
      });
      action.clusterSpecifier = { case: "cluster", value: BLACK_HOLE_CLUSTER };
    } else {
      action.clusterSpecifier = {
        case: "weightedClusters",
        value: create(WeightedClusterSchema, { clusters: weighted }),
      };
    }
  }
  const retry = translateRetryPolicy(retries, consistentHash);
  if (retry !== undefined) action.retryPolicy = retry;
}

function mirrorPolicy(
  dest: Destination,
  ctx: RouteContext,
  percent: ReturnType<typeof integerToFractional>,
): RouteAction_RequestMirrorPolicy {
  const svc = ctx.push.serviceForHostname(ctx.proxy, dest.host);
  return create(RouteAction_RequestMirrorPolicySchema, {
    cluster: destinationCluster(dest, svc, ctx.listenPort),
    runtimeFraction: create(RuntimeFractionalPercentSchema, { defaultValue: percent }),
    traceSampled: false,
  });
}

/** Istio `MirrorPercent`: `mirrorPercentage` (0 disables), else 100%. */
function mirrorPercentOf(http: HttpRoute) {
  const p = view<IstioPercent>(http.mirrorPercentage);
  if (p !== undefined) return (num(p.value) ?? 0) > 0 ? percentToFractional(p) : undefined;
  const legacy = num((http as { mirrorPercent?: unknown }).mirrorPercent);
  if (legacy !== undefined) return legacy > 0 ? integerToFractional(legacy) : undefined;
  return integerToFractional(100);
}

/** Istio `MirrorPercentByPolicy`. */
function mirrorPercentByPolicy(m: IstioMirrorPolicy) {
  const p = view<IstioPercent>(m.percentage);
  if (p !== undefined) return (num(p.value) ?? 0) > 0 ? percentToFractional(p) : undefined;
  return integerToFractional(100);
}

const ZERO = (): Duration => create(DurationSchema, {});

/**
 * Istio `setTimeout`: `timeout` (0s = none) and, for Envoy, the deprecated `max_grpc_timeout`
 * (0s when there is no timeout, else the timeout); for proxyless gRPC,
 * `max_stream_duration.max_stream_duration` instead (gRPC reads only that, gRFC A31).
 */
export function setRouteTimeout(
  action: RouteAction,
  timeout: Duration | undefined,
  caps: Pick<ProxyCapabilities, "timeout">,
): void {
  action.timeout = timeout ?? ZERO();
  if (caps.timeout === "max_stream_duration") {
    action.maxStreamDuration = create(RouteAction_MaxStreamDurationSchema, {
      maxStreamDuration: action.timeout,
    });
  } else {
    action.maxGrpcTimeout = action.timeout;
  }
}

/**
 * Istio `BuildDefaultHTTPOutboundRoute`: route `default`, prefix `/`, to `cluster`, with the default
 * retry policy (or the mesh's `defaultHttpRetryPolicy`) and no timeout. Istio builds it without a
 * node, so even proxyless clients get `max_grpc_timeout` here.
 */
export function defaultOutboundRoute(
  cluster: string,
  operation: string,
  defaultRetryPolicy?: unknown,
): Route {
  const action = create(RouteActionSchema, { clusterSpecifier: { case: "cluster", value: cluster } });
  const retry = translateRetryPolicy(view<IstioRetry>(defaultRetryPolicy), false);
  if (retry !== undefined) action.retryPolicy = retry;
  setRouteTimeout(action, undefined, { timeout: "max_grpc_timeout" });
  return create(RouteSchema, {
    name: DEFAULT_ROUTE_NAME,
    match: translateRouteMatch(undefined),
    decorator: create(DecoratorSchema, { operation }),
    action: { case: "route", value: action },
  });
}

/** The trace operation of a service port (Istio `telemetry.TraceOperation`): `<host>:<port>/*`. */
export function traceOperation(hostname: string, port: number): string {
  return `${hostname}:${port}/*`;
}

const DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/**
 * Istio `retry.ConvertPolicy`: without a policy, the default (2 retries on
 * `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`, 5 host selection
 * attempts, the `previous_hosts` predicate unless the route hashes consistently; 503 is not
 * retried, `EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY` being on by default); `attempts: 0` disables
 * retries (undefined); otherwise the default overridden by `attempts`, `retryOn` (numbers become
 * `retriable_status_codes`), `perTryTimeout`, `retryIgnorePreviousHosts`,
 * `retryRemoteLocalities` and `backoff`.
 */
export function translateRetryPolicy(
  retry: IstioRetry | undefined,
  consistentHash: boolean,
): RetryPolicy | undefined {
  const out = create(RetryPolicySchema, {
    numRetries: 2,
    retryOn: DEFAULT_RETRY_ON,
    hostSelectionRetryMaxAttempts: 5n,
    retryHostPredicate: consistentHash ? [] : [previousHosts()],
  });
  if (retry === undefined) return out;
  const attempts = num(retry.attempts) ?? 0;
  if (attempts <= 0) return undefined;
  out.numRetries = attempts;
  const retryOn = str(retry.retryOn);
  if (retryOn !== undefined) {
    const codes: number[] = [];
    const words: string[] = [];
    for (const raw of retryOn.split(",")) {
      const part = raw.trim();
      if (part === "") continue;
      if (/^\d+$/.test(part) && HTTP_STATUS_CODES.has(Number(part))) codes.push(Number(part));
      else words.push(part);
    }
    out.retryOn = words.join(",");
    out.retriableStatusCodes = codes;
    if (codes.length > 0 && !out.retryOn.includes("retriable-status-codes"))
      out.retryOn += ",retriable-status-codes";
  }
  const perTry = duration(retry.perTryTimeout);
  if (perTry !== undefined) out.perTryTimeout = perTry;
  if (typeof retry.retryIgnorePreviousHosts === "boolean") {
    out.retryHostPredicate = retry.retryIgnorePreviousHosts ? [previousHosts()] : [];
  }
  if (retry.retryRemoteLocalities === true) {
    out.retryPriority = create(RetryPolicy_RetryPrioritySchema, {
      name: "envoy.retry_priorities.previous_priorities",
      configType: {
        case: "typedConfig",
        value: anyPack(
          PreviousPrioritiesConfigSchema,
          create(PreviousPrioritiesConfigSchema, { updateFrequency: 2 }),
        ),
      },
    });
  }
  const backoff = duration(retry.backoff);
  if (backoff !== undefined)
    out.retryBackOff = create(RetryPolicy_RetryBackOffSchema, { baseInterval: backoff });
  return out;
}

const previousHosts = () =>
  create(RetryPolicy_RetryHostPredicateSchema, { name: "envoy.retry_host_predicates.previous_hosts" });

/** Status codes Go's `http.StatusText` knows (Istio only treats those as retriable codes). */
const HTTP_STATUS_CODES: ReadonlySet<number> = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307,
  308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
  422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

/**
 * gRPC status codes by name (Istio `grpc.SupportedGRPCStatus`): @meshlet/xds's `GrpcStatus` table,
 * re-exported under the name route translation has used since it was committed.
 */
export const GRPC_STATUS_CODES: Readonly<Record<string, number>> = GrpcStatus;

/**
 * Istio `TranslateFault`: a fixed delay (exponential delays are not translated) with its
 * percentage (`percentage` per million, else the deprecated integer `percent`), an abort with an
 * HTTP status or a gRPC status (by name) and its percentage. Undefined when neither remains.
 */
export function translateFault(
  fault: IstioFault | undefined,
  warn: WarningSink = ignoreWarnings,
  config?: ResourceKey,
  path = "fault",
): HTTPFault | undefined {
  if (fault === undefined) return undefined;
  const out = create(HTTPFaultSchema, {});
  const delay = view<NonNullable<IstioFault["delay"]>>(fault.delay);
  if (delay !== undefined) {
    const fixed = duration(delay.fixedDelay);
    if (fixed !== undefined) {
      const pct = view<IstioPercent>(delay.percentage);
      out.delay = create(FaultDelaySchema, {
        faultDelaySecifier: { case: "fixedDelay", value: fixed },
        percentage:
          pct !== undefined ? percentToFractional(pct) : integerToFractional(num(delay.percent) ?? 0),
      });
    } else {
      warn({
        code: "IGNORED_BY_ISTIO",
        message: "only fixedDelay faults are translated",
        ...(config ? { config } : {}),
        path: `${path}.delay`,
      });
    }
  }
  const abort = view<NonNullable<IstioFault["abort"]>>(fault.abort);
  if (abort !== undefined) {
    const pct = view<IstioPercent>(abort.percentage);
    const percentage = pct !== undefined ? { percentage: percentToFractional(pct) } : {};
    const http = num(abort.httpStatus);
    const grpc = abort.grpcStatus !== undefined ? GRPC_STATUS_CODES[abort.grpcStatus] : undefined;
    if (http !== undefined)
      out.abort = create(FaultAbortSchema, { errorType: { case: "httpStatus", value: http }, ...percentage });
    else if (grpc !== undefined)
      out.abort = create(FaultAbortSchema, { errorType: { case: "grpcStatus", value: grpc }, ...percentage });
    else
      warn({
        code: "IGNORED_BY_ISTIO",
        message: "only httpStatus and grpcStatus aborts are translated",
        ...(config ? { config } : {}),
        path: `${path}.abort`,
      });
  }
  return out.delay === undefined && out.abort === undefined ? undefined : out;
}

/**
 * Istio `TranslateCORSPolicy`: origins as string matchers (`allowOrigins`, else the deprecated exact
 * `allowOrigin`), lists joined with `,`, `maxAge` in seconds, the filter enabled at 100%, unmatched
 * preflights forwarded unless `unmatchedPreflights: IGNORE`.
 */
export function translateCorsPolicy(cors: IstioCorsPolicy): CorsPolicy {
  const out = create(CorsPolicySchema, {
    forwardNotMatchingPreflights: cors.unmatchedPreflights !== "IGNORE",
    filterEnabled: create(RuntimeFractionalPercentSchema, {
      defaultValue: create(FractionalPercentSchema, {
        numerator: 100,
        denominator: FractionalPercent_DenominatorType.HUNDRED,
      }),
    }),
    allowHeaders: (cors.allowHeaders ?? []).join(","),
    allowMethods: (cors.allowMethods ?? []).join(","),
    exposeHeaders: (cors.exposeHeaders ?? []).join(","),
  });
  if (cors.allowOrigins !== undefined) {
    out.allowOriginStringMatch = cors.allowOrigins.flatMap((m) => {
      const sm = toStringMatcher(m);
      return sm === undefined ? [] : [sm];
    });
  } else if (cors.allowOrigin !== undefined) {
    out.allowOriginStringMatch = cors.allowOrigin.map((o) =>
      create(StringMatcherSchema, { matchPattern: { case: "exact", value: o } }),
    );
  }
  if (typeof cors.allowCredentials === "boolean") out.allowCredentials = cors.allowCredentials;
  const maxAge = duration(cors.maxAge);
  if (maxAge !== undefined) out.maxAge = String(maxAge.seconds);
  return out;
}

/** Header operations of a route or destination (Istio `HeadersOperations`). */
export interface HeadersOperations {
  readonly requestHeadersToAdd: HeaderValueOption[];
  readonly responseHeadersToAdd: HeaderValueOption[];
  readonly requestHeadersToRemove: string[];
  readonly responseHeadersToRemove: string[];
  /** A `:authority`/`host` set or added (`set` wins): becomes a host rewrite. */
  readonly authority: string;
}

const isInternalHeader = (k: string) => k.startsWith(":") || k.toLowerCase() === "host";
const isAuthorityHeader = (k: string) => k.toLowerCase() === ":authority" || k.toLowerCase() === "host";

function appendHeaders(
  headers: Readonly<Record<string, string>> | undefined,
  append: boolean,
): [HeaderValueOption[], string] {
  let authority = "";
  const out: HeaderValueOption[] = [];
  for (const [key, value] of Object.entries(headers ?? {})) {
    if (isAuthorityHeader(key)) authority = value;
    if (isInternalHeader(key)) continue;
    out.push(
      create(HeaderValueOptionSchema, {
        header: create(HeaderValueSchema, { key, value }),
        appendAction: append
          ? HeaderValueOption_HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD
          : HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
      }),
    );
  }
  out.sort((a, b) =>
    (a.header?.key ?? "") < (b.header?.key ?? "")
      ? -1
      : (a.header?.key ?? "") > (b.header?.key ?? "")
        ? 1
        : 0,
  );
  return [out, authority];
}

/**
 * Istio `TranslateHeadersOperations`: `set` (overwrite) then `add` (append), each sorted by name;
 * pseudo-headers and `host` are not set but a `:authority`/`host` value becomes the authority.
 */
export function translateHeadersOperations(headers: IstioHeaders): HeadersOperations {
  const req = view<NonNullable<IstioHeaders["request"]>>(headers.request);
  const resp = view<NonNullable<IstioHeaders["response"]>>(headers.response);
  const [reqSet, setAuthority] = appendHeaders(req?.set, false);
  const [reqAdd, addAuthority] = appendHeaders(req?.add, true);
  const [respSet] = appendHeaders(resp?.set, false);
  const [respAdd] = appendHeaders(resp?.add, true);
  return {
    requestHeadersToAdd: [...reqSet, ...reqAdd],
    responseHeadersToAdd: [...respSet, ...respAdd],
    requestHeadersToRemove: (req?.remove ?? []).filter((k) => !isInternalHeader(k)),
    responseHeadersToRemove: (resp?.remove ?? []).filter((k) => !isInternalHeader(k)),
    authority: setAuthority !== "" ? setAuthority : addAuthority,
  };
}

const REDIRECT_CODES: Readonly<Record<number, RedirectAction_RedirectResponseCode>> = {
  0: RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  301: RedirectAction_RedirectResponseCode.MOVED_PERMANENTLY,
  302: RedirectAction_RedirectResponseCode.FOUND,
  303: RedirectAction_RedirectResponseCode.SEE_OTHER,
  307: RedirectAction_RedirectResponseCode.TEMPORARY_REDIRECT,
  308: RedirectAction_RedirectResponseCode.PERMANENT_REDIRECT,
};

/**
 * Istio `ApplyRedirect`: host and path redirect, scheme, port (`derivePort: FROM_REQUEST_PORT` is the
 * listener port; 80 for http and 443 for https are left implicit), response code 301 (default),
 * 302, 303, 307 or 308; any other code leaves the route without an action, as Istio does.
 */
export function applyRedirect(route: Route, redirect: IstioRedirect, port: number, tls: boolean): void {
  const action = create(RedirectActionSchema, {
    hostRedirect: redirect.authority ?? "",
    pathRewriteSpecifier: { case: "pathRedirect", value: redirect.uri ?? "" },
  });
  if (str(redirect.scheme) !== undefined)
    action.schemeRewriteSpecifier = { case: "schemeRedirect", value: redirect.scheme as string };
  const explicitPort = num(redirect.port);
  if (redirect.derivePort !== undefined || explicitPort !== undefined) {
    if (explicitPort !== undefined) action.portRedirect = explicitPort;
    else if (redirect.derivePort === "FROM_REQUEST_PORT") action.portRedirect = port;
    const scheme = str(redirect.scheme) ?? (tls ? "https" : "http");
    if (
      (action.portRedirect === 80 && scheme === "http") ||
      (action.portRedirect === 443 && scheme === "https")
    ) {
      action.portRedirect = 0;
    }
  }
  const code = REDIRECT_CODES[num(redirect.redirectCode) ?? 0];
  if (code === undefined) {
    route.action = { case: undefined };
    return;
  }
  action.responseCode = code;
  route.action = { case: "redirect", value: action };
}

/** Istio `ApplyDirectResponse`: the status, and the body as an inline string or bytes. */
export function applyDirectResponse(route: Route, direct: IstioDirectResponse): void {
  const action = create(DirectResponseActionSchema, { status: direct.status });
  const body = view<NonNullable<IstioDirectResponse["body"]>>(direct.body);
  if (body?.string !== undefined)
    action.body = create(DataSourceSchema, { specifier: { case: "inlineString", value: body.string } });
  else if (body?.bytes !== undefined) {
    action.body = create(DataSourceSchema, {
      specifier: { case: "inlineBytes", value: Buffer.from(body.bytes, "base64") },
    });
  }
  route.action = { case: "directResponse", value: action };
}

/**
 * Istio `consistentHashToHashPolicy`: header, cookie (name, path, TTL), source IP or query
 * parameter. A kind the proxy does not honour is left out with a warning (gRPC: header only).
 */
export function consistentHashToHashPolicy(
  hash: IstioConsistentHash,
  caps: Pick<ProxyCapabilities, "hashPolicies" | "client">,
  warn: WarningSink = ignoreWarnings,
  config?: ResourceKey,
  path?: string,
): RouteAction_HashPolicy | undefined {
  let policy: RouteAction_HashPolicy | undefined;
  let kind: "header" | "cookie" | "sourceIp" | "queryParameter" | undefined;
  const cookie = view<NonNullable<IstioConsistentHash["httpCookie"]>>(hash.httpCookie);
  if (str(hash.httpHeaderName) !== undefined) {
    kind = "header";
    policy = create(RouteAction_HashPolicySchema, {
      policySpecifier: {
        case: "header",
        value: create(RouteAction_HashPolicy_HeaderSchema, { headerName: hash.httpHeaderName as string }),
      },
    });
  } else if (cookie !== undefined) {
    kind = "cookie";
    const ttl = duration(cookie.ttl);
    policy = create(RouteAction_HashPolicySchema, {
      policySpecifier: {
        case: "cookie",
        value: create(RouteAction_HashPolicy_CookieSchema, {
          name: cookie.name ?? "",
          path: cookie.path ?? "",
          ...(ttl ? { ttl } : {}),
        }),
      },
    });
  } else if (hash.useSourceIp === true) {
    kind = "sourceIp";
    policy = create(RouteAction_HashPolicySchema, {
      policySpecifier: {
        case: "connectionProperties",
        value: create(RouteAction_HashPolicy_ConnectionPropertiesSchema, { sourceIp: true }),
      },
    });
  } else if (str(hash.httpQueryParameterName) !== undefined) {
    kind = "queryParameter";
    policy = create(RouteAction_HashPolicySchema, {
      policySpecifier: {
        case: "queryParameter",
        value: create(RouteAction_HashPolicy_QueryParameterSchema, {
          name: hash.httpQueryParameterName as string,
        }),
      },
    });
  }
  if (kind !== undefined && !caps.hashPolicies.has(kind)) {
    warn({
      code: "UNSUPPORTED_BY_CLIENT",
      message: `consistent hashing on ${kind} is not supported by ${caps.client} (gRFC A42 hashes on headers only); left out, requests hash randomly`,
      ...(config ? { config } : {}),
      ...(path ? { path } : {}),
      client: caps.client,
    });
    return undefined;
  }
  return policy;
}

function portConsistentHash(
  dest: Destination,
  policy: IstioTrafficPolicy | undefined,
): IstioConsistentHash | undefined {
  const port = dest.port?.number;
  if (port === undefined) return undefined;
  const pls = (policy?.portLevelSettings ?? []).find((p) => p.port?.number === port);
  return view<IstioConsistentHash>(view<{ consistentHash?: unknown }>(pls?.loadBalancer)?.consistentHash);
}

/**
 * Istio `hashForHTTPDestination`: the consistent hash of the DestinationRule the proxy sees for the
 * destination host, the subset's port-level setting winning over the subset's, over the top-level
 * port-level setting, over the top-level one.
 */
export function hashForDestination(
  ctx: Pick<RouteContext, "push" | "proxy">,
  dest: Destination,
): IstioConsistentHash | undefined {
  const svc = ctx.push.serviceForHostname(ctx.proxy, dest.host);
  if (svc === undefined) return undefined;
  const rule = ctx.push.destinationRule(ctx.proxy, svc);
  if (rule === undefined) return undefined;
  const top = view<IstioTrafficPolicy>(rule.spec.trafficPolicy);
  let hash = view<IstioConsistentHash>(view<{ consistentHash?: unknown }>(top?.loadBalancer)?.consistentHash);
  const pls = portConsistentHash(dest, top);
  const subset = (rule.spec.subsets ?? []).find((s) => s.name === dest.subset);
  const subsetPolicy = view<IstioTrafficPolicy>(subset?.trafficPolicy);
  const subsetHash = view<IstioConsistentHash>(
    view<{ consistentHash?: unknown }>(subsetPolicy?.loadBalancer)?.consistentHash,
  );
  const subsetPls = subset !== undefined ? portConsistentHash(dest, subsetPolicy) : undefined;
  hash = subsetPls ?? subsetHash ?? pls ?? hash;
  return hash;
}

/**
 * Istio `hashForService`: the consistent hash of the DestinationRule the proxy sees for a service
 * port (a port-level setting for the port wins), for the default route of a service without
 * VirtualService.
 */
export function hashForService(
  ctx: Pick<RouteContext, "push" | "proxy">,
  service: Service,
  port: number,
): IstioConsistentHash | undefined {
  const rule = ctx.push.destinationRule(ctx.proxy, service);
  if (rule === undefined) return undefined;
  const top = view<IstioTrafficPolicy>(rule.spec.trafficPolicy);
  const pls = (top?.portLevelSettings ?? []).find((p) => p.port?.number === port);
  const portHash = view<IstioConsistentHash>(
    view<{ consistentHash?: unknown }>(pls?.loadBalancer)?.consistentHash,
  );
  return (
    portHash ??
    view<IstioConsistentHash>(view<{ consistentHash?: unknown }>(top?.loadBalancer)?.consistentHash)
  );
}
