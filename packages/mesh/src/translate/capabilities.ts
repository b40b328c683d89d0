import type { JsonObject } from "@bufbuild/protobuf";

// What each xDS client accepts. Istio sends proxyless gRPC clients much of what it sends Envoy and
// lets the client reject what it cannot do; a rejected resource is NACKed whole (a RouteConfiguration
// with one redirect, a Cluster with LEAST_REQUEST), so the service breaks. meshlet leaves such
// features out for the clients known to reject them and says so in a warning instead.
//
// Sources per client (see docs/mesh.md, "Proxyless support matrix"):
// - grpc-js-xds 1.14: packages/grpc-js-xds/src/xds-resource-type/{route-config,cluster,listener}-resource-type.ts,
//   http-filter.ts (validateOverrideFilter), environment.ts (GRPC_XDS_EXPERIMENTAL_RBAC);
// - gRPC C-core: src/core/xds/grpc/xds_cluster_parser.cc (ParseLbPolicyConfig), xds_route_config_parser.cc,
//   doc/grpc_xds_features.md (A27-A55);
// - Envoy: everything Istio emits.

/** Which xDS client a proxy is. */
export type XdsClientKind = "envoy" | "grpc-js" | "grpc-c-core" | "grpc-go" | "grpc-java" | "grpc-unknown";

/** An Envoy `Cluster.lb_policy` meshlet may emit. */
export type LbPolicyName = "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "RING_HASH" | "MAGLEV";

/** A `RouteAction.hash_policy` kind (Istio `consistentHash` keys). */
export type HashPolicyKind = "header" | "cookie" | "sourceIp" | "queryParameter";

/**
 * What a proxy accepts, as the "proxy capabilities" parameter of every translation function:
 * features a proxy would NACK (or mis-serve) are left out for it, with a warning.
 */
export interface ProxyCapabilities {
  /** The client these capabilities describe. */
  readonly client: XdsClientKind;
  /**
   * How a route timeout is sent: `max_grpc_timeout` (Envoy: `timeout` plus the deprecated
   * `max_grpc_timeout`, Istio `setTimeout` for non-proxyless nodes) or `max_stream_duration`
   * (gRPC reads only `max_stream_duration.max_stream_duration`, gRFC A31).
   */
  readonly timeout: "max_grpc_timeout" | "max_stream_duration";
  /**
   * Route timeouts are enforced as written. False for gRPC C-core 29 (gRPC 1.51, Debian's
   * python3-grpcio): it ends RPCs about 1.7 s before a route's `max_stream_duration` (observed in
   * meshlet's end-to-end tests: a 3 s timeout fires at 1.25 s, one under ~1.75 s fails every RPC at
   * once), so route timeouts are left out for it, with a warning, and the caller's deadline applies.
   */
  readonly routeTimeouts: boolean;
  /** Route `redirect` action (grpc-js NACKs "unsupported action"; other gRPC clients fail the RPC). */
  readonly redirect: boolean;
  /** Route `direct_response` action (as `redirect`). */
  readonly directResponse: boolean;
  /** Per-route `envoy.filters.http.cors` config (gRPC: unknown non-optional filter, NACK). */
  readonly cors: boolean;
  /** `query_parameters` route matches (gRPC ignores them, so the route would match too much). */
  readonly queryParameterMatch: boolean;
  /** `dynamic_metadata` route matches (JWT claim routing; gRPC has no JWT filter). */
  readonly dynamicMetadataMatch: boolean;
  /**
   * How route and RBAC header matchers are written: Envoy's `string_match`, or the deprecated
   * `exact_match`/`prefix_match`/`safe_regex_match` fields that every gRPC client reads (`string_match`
   * in header matchers is gRFC A63, 2023: gRPC C-core 1.51 NACKs it, "Invalid route header matcher
   * specified").
   */
  readonly headerMatcher: "string_match" | "legacy";
  /** Hash policies the client honours (gRFC A42: header only). */
  readonly hashPolicies: ReadonlySet<HashPolicyKind>;
  /** `Cluster.lb_policy` values the client accepts (gRPC C-core and grpc-js NACK LEAST_REQUEST and MAGLEV). */
  readonly lbPolicies: ReadonlySet<LbPolicyName>;
  /** `Cluster.outlier_detection` as Istio maps `consecutive5xxErrors` (gRFC A50 has no such mode). */
  readonly outlierDetection: boolean;
  /** Default Envoy circuit-breaker thresholds and connect timeout on every cluster (Istio's sidecar clusters). */
  readonly clusterDefaults: boolean;
  /** Server-side RBAC HTTP filters (grpc-js only with GRPC_XDS_EXPERIMENTAL_RBAC=true, gRFC A41). */
  readonly rbac: boolean;
  /**
   * Where TLS certificates come from: SDS secrets `default`/`ROOTCA` (Envoy) or the bootstrap's
   * `certificate_providers` instance `default` (gRPC, gRFC A29).
   */
  readonly secrets: "sds" | "certificate-provider";
}

const ALL_LB: ReadonlySet<LbPolicyName> = new Set([
  "ROUND_ROBIN",
  "LEAST_REQUEST",
  "RANDOM",
  "RING_HASH",
  "MAGLEV",
]);
const ALL_HASH: ReadonlySet<HashPolicyKind> = new Set(["header", "cookie", "sourceIp", "queryParameter"]);

/** Envoy (sidecars and gateways): everything Istio emits. */
export const ENVOY_CAPABILITIES: ProxyCapabilities = Object.freeze({
  client: "envoy",
  timeout: "max_grpc_timeout",
  routeTimeouts: true,
  redirect: true,
  directResponse: true,
  cors: true,
  queryParameterMatch: true,
  dynamicMetadataMatch: true,
  headerMatcher: "string_match",
  hashPolicies: ALL_HASH,
  lbPolicies: ALL_LB,
  outlierDetection: true,
  clusterDefaults: true,
  rbac: true,
  secrets: "sds",
});

/**
 * The node metadata key a proxyless gRPC client sets to `"true"` when it runs with
 * `GRPC_XDS_EXPERIMENTAL_RBAC=true` (grpc-js), so that server listeners carry RBAC filters. It is
 * meshlet's own key: Istio has none, and nothing in a grpc-js node says whether the flag is on.
 */
export const GRPC_RBAC_METADATA_KEY = "GRPC_XDS_EXPERIMENTAL_RBAC";

/** Options of {@link proxylessCapabilities}. */
export interface ProxylessCapabilityOptions {
  /** The client enforces RBAC filters (grpc-js: `GRPC_XDS_EXPERIMENTAL_RBAC=true`). */
  readonly rbac?: boolean;
  /**
   * The C-core version (`Node.user_agent_version` `C-core <major>.…`): C-core 28 and 29 (gRPC 1.50,
   * 1.51) crash in the RING_HASH picker (grpc/grpc#31766, fixed in 1.52), so they get ROUND_ROBIN;
   * C-core 29 also ends RPCs early on route timeouts (see {@link ProxyCapabilities.routeTimeouts}).
   */
  readonly coreMajor?: number;
}

/**
 * What a proxyless gRPC client accepts. Common to every gRPC client: `max_stream_duration`
 * timeouts, no redirect/direct response/CORS/query or metadata matches, header hash policies only,
 * ROUND_ROBIN and RING_HASH only (LEAST_REQUEST is grpc-java's alone, and meshlet cannot tell a
 * grpc-java version that has it), no outlier detection, certificate-provider TLS. RBAC: C-core,
 * grpc-go and grpc-java enforce it (gRFC A41); grpc-js only with its experimental flag; an unknown
 * client is assumed not to.
 */
export function proxylessCapabilities(
  client: Exclude<XdsClientKind, "envoy">,
  options: ProxylessCapabilityOptions = {},
): ProxyCapabilities {
  const rbacByDefault = client === "grpc-c-core" || client === "grpc-go" || client === "grpc-java";
  const core = client === "grpc-c-core" ? options.coreMajor : undefined;
  const ringHashCrashes = core !== undefined && core >= 28 && core <= 29;
  return Object.freeze({
    client,
    timeout: "max_stream_duration",
    routeTimeouts: !(core !== undefined && core <= 29),
    redirect: false,
    directResponse: false,
    cors: false,
    queryParameterMatch: false,
    dynamicMetadataMatch: false,
    headerMatcher: "legacy",
    hashPolicies: new Set<HashPolicyKind>(["header"]),
    lbPolicies: new Set<LbPolicyName>(ringHashCrashes ? ["ROUND_ROBIN"] : ["ROUND_ROBIN", "RING_HASH"]),
    outlierDetection: false,
    clusterDefaults: false,
    rbac: options.rbac ?? rbacByDefault,
    secrets: "certificate-provider",
  });
}

/** The parts of an xDS `Node` that say which client sent it (an `envoy.config.core.v3.Node` fits). */
export interface NodeUserAgent {
  readonly userAgentName?: string;
  readonly userAgentVersionType?: { readonly case?: string; readonly value?: unknown };
  readonly metadata?: JsonObject | undefined;
}

/**
 * Which gRPC library a proxyless node is, from `Node.user_agent_name`: grpc-js sends
 * `gRPC Node Pure JS` (grpc-js-xds `xds-client.ts`), C-core `gRPC C-core <platform>[ <wrapper>]`
 * (`GrpcXdsClient`, e.g. `gRPC C-core linux Python`), grpc-go `gRPC Go`, grpc-java `gRPC Java`.
 * The user agent is client-supplied: it only ever narrows what meshlet sends, never widens what a
 * client is allowed to do.
 */
export function grpcClientOf(node: NodeUserAgent): Exclude<XdsClientKind, "envoy"> {
  const name = node.userAgentName ?? "";
  if (name.startsWith("gRPC Node")) return "grpc-js";
  if (name.startsWith("gRPC C-core")) return "grpc-c-core";
  if (name.startsWith("gRPC Go")) return "grpc-go";
  if (name.startsWith("gRPC Java")) return "grpc-java";
  return "grpc-unknown";
}

/**
 * The capabilities of a node: Envoy unless `proxyless`; otherwise those of its gRPC library
 * ({@link grpcClientOf}) and, for C-core, its version (`user_agent_version` `C-core 29.0.0 Python
 * 1.51.1`), with RBAC on for grpc-js when its metadata sets {@link GRPC_RBAC_METADATA_KEY} to `"true"`.
 */
export function capabilitiesOf(node: NodeUserAgent, proxyless: boolean): ProxyCapabilities {
  if (!proxyless) return ENVOY_CAPABILITIES;
  const client = grpcClientOf(node);
  const flag = node.metadata?.[GRPC_RBAC_METADATA_KEY];
  const rbac = flag === true || flag === "true" ? true : undefined;
  const version =
    node.userAgentVersionType?.case === "userAgentVersion" ? String(node.userAgentVersionType.value) : "";
  const core = /^C-core (\d+)\./.exec(version)?.[1];
  return proxylessCapabilities(client, {
    ...(rbac !== undefined ? { rbac } : {}),
    ...(core !== undefined ? { coreMajor: Number(core) } : {}),
  });
}
