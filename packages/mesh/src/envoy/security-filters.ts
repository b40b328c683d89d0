import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, DurationSchema } from "@bufbuild/protobuf/wkt";
import { ApiVersion } from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import type { Filter } from "@meshlet/api/envoy/config/listener/v3/listener_components_pb";
import { RBAC_Action, RBACSchema as RbacRulesSchema } from "@meshlet/api/envoy/config/rbac/v3/rbac_pb";
import {
  ExtAuthzPerRouteSchema,
  ExtAuthzSchema,
} from "@meshlet/api/envoy/extensions/filters/http/ext_authz/v3/ext_authz_pb";
import {
  JwtAuthenticationSchema,
  type JwtProvider,
  JwtProviderSchema,
  type JwtRequirement,
  JwtRequirementSchema,
} from "@meshlet/api/envoy/extensions/filters/http/jwt_authn/v3/config_pb";
import { RBACSchema as HttpRbacSchema } from "@meshlet/api/envoy/extensions/filters/http/rbac/v3/rbac_pb";
import { ExtAuthzSchema as NetworkExtAuthzSchema } from "@meshlet/api/envoy/extensions/filters/network/ext_authz/v3/ext_authz_pb";
import type { HttpFilter } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { RBACSchema as NetworkRbacSchema } from "@meshlet/api/envoy/extensions/filters/network/rbac/v3/rbac_pb";
import { MetadataMatcherSchema } from "@meshlet/api/envoy/type/matcher/v3/metadata_pb";
import type { AuthorizationPolicy, RequestAuthentication } from "@meshlet/config";
import { resourceKeyOf } from "@meshlet/config";
import { CONTEXT_EXTENSION_LABELS, CONTEXT_EXTENSION_NAMESPACE, toEnvoyRbac } from "@meshlet/policy";
import type { PolicyTarget } from "../push/security-policies.js";
import type { BuildContext } from "./context.js";
import { envoyGrpcService, lookupServiceCluster, parseDuration } from "./external-services.js";
import { httpFilter, networkFilter } from "./filters.js";
import { Wellknown } from "./well-known.js";

// The security filters of an inbound (sidecar) or gateway HTTP connection manager and TCP chain, in
// Istio's order (istio/istio pilot/pkg/networking/core/listener_builder.go
// `buildHTTPConnectionManager`, networkfilter.go `buildCompleteNetworkFilters`): CUSTOM authorization
// (an RBAC marker then ext_authz), authentication (jwt_authn), then AUDIT/DENY/ALLOW RBAC. RBAC
// configs come from @meshlet/policy's `toEnvoyRbac`, which follows Istio's generator
// (pilot/pkg/security/authz/builder); ext_authz from MeshConfig extension providers
// (pilot/pkg/security/authz/builder/extauthz.go); jwt_authn from RequestAuthentication
// (pilot/pkg/security/authn/policy_applier.go `convertToEnvoyJwtConfig`).

/** The security filters of one workload, HTTP and TCP. */
export interface SecurityFilters {
  readonly http: HttpFilter[];
  readonly network: Filter[];
  /** Whether an ext_authz filter is present (routes then carry the workload's context extensions). */
  readonly extAuthz: boolean;
}

const RBAC_DENY_ALL_CUSTOM = "default-deny-all-due-to-bad-CUSTOM-action";

/** An RBAC (DENY) that matches every request: Istio's answer to a CUSTOM policy it cannot serve. */
function denyAllRbac(kind: "http" | "tcp"): HttpFilter | Filter {
  const rules = create(RbacRulesSchema, {
    action: RBAC_Action.DENY,
    policies: {
      [RBAC_DENY_ALL_CUSTOM]: {
        permissions: [{ rule: { case: "any", value: true } }],
        principals: [{ identifier: { case: "any", value: true } }],
      },
    },
  });
  return kind === "http"
    ? httpFilter(Wellknown.httpRbac, anyPack(HttpRbacSchema, create(HttpRbacSchema, { rules })))
    : networkFilter(
        Wellknown.networkRbac,
        anyPack(NetworkRbacSchema, create(NetworkRbacSchema, { rules, statPrefix: "tcp." })),
      );
}

/** Istio's `generateFilterMatcher`: ext_authz runs only when the CUSTOM marker RBAC matched. */
function extAuthzEnabledMetadata(filter: string) {
  return create(MetadataMatcherSchema, {
    filter,
    path: [{ segment: { case: "key", value: "istio_ext_authz_shadow_effective_policy_id" } }],
    value: {
      matchPattern: {
        case: "stringMatch",
        value: { matchPattern: { case: "prefix", value: "istio-ext-authz" } },
      },
    },
  });
}

/**
 * The authorization and authentication filters for a workload (a sidecar's inbound or a gateway).
 * A CUSTOM policy whose provider is unknown, not an ext_authz provider, or whose service is not in
 * the registry becomes a deny-all RBAC, as Istio does; policies @meshlet/policy cannot translate
 * (CEL conditions) also deny all, with a warning naming the policy.
 */
export function securityFilters(ctx: BuildContext, target: PolicyTarget): SecurityFilters {
  const policies = ctx.push.authorizationPolicies(target);
  const all = [...policies.custom, ...policies.audit, ...policies.deny, ...policies.allow];
  const http: HttpFilter[] = [];
  const network: Filter[] = [];
  let extAuthz = false;
  let rbac: ReturnType<typeof toEnvoyRbac> = { http: [], network: [] };
  try {
    rbac = toEnvoyRbac(all, {
      rootNamespace: ctx.mesh.rootNamespace,
    });
  } catch (cause) {
    ctx.warnings.push({
      code: "unsupported-policy",
      message: `AuthorizationPolicies for ${target.namespace} cannot be expressed as Envoy RBAC (${cause instanceof Error ? cause.message : String(cause)}); all requests are denied`,
      ...(all[0] !== undefined ? { source: resourceKeyOf(all[0]) } : {}),
    });
    return {
      http: [denyAllRbac("http") as HttpFilter],
      network: [denyAllRbac("tcp") as Filter],
      extAuthz: false,
    };
  }

  // CUSTOM: the marker RBAC per provider, then its ext_authz.
  const providers = [...new Set(policies.custom.map((p) => providerName(p)))].sort();
  const customHttp = rbac.http.filter((f) => f.action === "CUSTOM");
  const customTcp = rbac.network.filter((f) => f.action === "CUSTOM");
  providers.forEach((name, i) => {
    const built = buildExtAuthz(ctx, name);
    const source = policies.custom.find((p) => providerName(p) === name);
    if (built === undefined) {
      ctx.warnings.push({
        code: "unknown-provider",
        message: `CUSTOM AuthorizationPolicy provider "${name}" is not an ext_authz provider in MeshConfig extensionProviders, or its service is not in the registry; requests it covers are denied`,
        ...(source !== undefined ? { source: resourceKeyOf(source) } : {}),
      });
      http.push(denyAllRbac("http") as HttpFilter);
      network.push(denyAllRbac("tcp") as Filter);
      return;
    }
    const markerHttp =
      customHttp.find((f) => (f as { provider?: string }).provider === name) ?? customHttp[i];
    const markerTcp = customTcp.find((f) => (f as { provider?: string }).provider === name) ?? customTcp[i];
    if (markerHttp !== undefined)
      http.push(httpFilter(markerHttp.name, anyPack(HttpRbacSchema, markerHttp.config)));
    http.push(built.http);
    extAuthz = true;
    if (built.tcp !== undefined) {
      if (markerTcp !== undefined)
        network.push(networkFilter(markerTcp.name, anyPack(NetworkRbacSchema, markerTcp.config)));
      network.push(built.tcp);
    }
  });

  const jwt = jwtAuthnFilter(ctx, ctx.push.requestAuthentications(target));
  if (jwt !== undefined) http.push(jwt);

  for (const f of rbac.http)
    if (f.action !== "CUSTOM") http.push(httpFilter(f.name, anyPack(HttpRbacSchema, f.config)));
  for (const f of rbac.network)
    if (f.action !== "CUSTOM") network.push(networkFilter(f.name, anyPack(NetworkRbacSchema, f.config)));
  return { http, network, extAuthz };
}

function providerName(p: AuthorizationPolicy): string {
  const spec = p.spec as { provider?: { name?: unknown } };
  return typeof spec.provider?.name === "string" ? spec.provider.name : "";
}

function buildExtAuthz(ctx: BuildContext, name: string): { http: HttpFilter; tcp?: Filter } | undefined {
  const p = ctx.mesh.extensionProviders.find((x) => x.name === name);
  const grpc = p?.envoyExtAuthzGrpc;
  const httpProvider = p?.envoyExtAuthzHttp;
  const cfg = grpc ?? httpProvider;
  if (cfg === undefined) return undefined;
  const target = lookupServiceCluster(ctx, cfg.service, cfg.port, { http2: grpc !== undefined });
  if (target === undefined) return undefined;
  const status = cfg.statusOnError !== undefined ? Number(cfg.statusOnError) : undefined;
  const statusOnError =
    status !== undefined && Number.isInteger(status) ? { statusOnError: { code: status } } : {};
  if (grpc !== undefined) {
    // Istio replaces `|` (invalid in an authority) in the cluster name for the gRPC authority.
    const service = envoyGrpcService(target.cluster, target.cluster.replaceAll("|", "_."), grpc.timeout);
    const httpCfg = create(ExtAuthzSchema, {
      services: { case: "grpcService", value: service },
      transportApiVersion: ApiVersion.V3,
      failureModeAllow: grpc.failOpen ?? false,
      filterEnabledMetadata: extAuthzEnabledMetadata(Wellknown.httpRbac),
      ...statusOnError,
    });
    const tcpCfg = create(NetworkExtAuthzSchema, {
      statPrefix: "tcp.",
      grpcService: service,
      transportApiVersion: ApiVersion.V3,
      failureModeAllow: grpc.failOpen ?? false,
      filterEnabledMetadata: extAuthzEnabledMetadata(Wellknown.networkRbac),
    });
    return {
      http: httpFilter(Wellknown.httpExtAuthz, anyPack(ExtAuthzSchema, httpCfg)),
      tcp: networkFilter(Wellknown.networkExtAuthz, anyPack(NetworkExtAuthzSchema, tcpCfg)),
    };
  }
  const h = httpProvider as NonNullable<typeof httpProvider>;
  const headers = (names: readonly string[] | undefined) =>
    names !== undefined && names.length > 0
      ? { patterns: names.map((n) => ({ matchPattern: { case: "exact" as const, value: n } })) }
      : undefined;
  const allowed = headers(h.includeRequestHeadersInCheck);
  const upstream = headers(h.headersToUpstreamOnAllow);
  const client = headers(h.headersToDownstreamOnDeny);
  const httpCfg = create(ExtAuthzSchema, {
    services: {
      case: "httpService",
      value: {
        pathPrefix: h.pathPrefix ?? "",
        serverUri: {
          uri: `http://${target.host}`,
          httpUpstreamType: { case: "cluster", value: target.cluster },
          timeout: create(DurationSchema, { seconds: 600n }),
        },
        ...(allowed !== undefined ? { authorizationRequest: { allowedHeaders: allowed } } : {}),
        ...(upstream !== undefined || client !== undefined
          ? {
              authorizationResponse: {
                ...(upstream !== undefined ? { allowedUpstreamHeaders: upstream } : {}),
                ...(client !== undefined ? { allowedClientHeaders: client } : {}),
              },
            }
          : {}),
      },
    },
    transportApiVersion: ApiVersion.V3,
    failureModeAllow: h.failOpen ?? false,
    filterEnabledMetadata: extAuthzEnabledMetadata(Wellknown.httpRbac),
    ...statusOnError,
  });
  return { http: httpFilter(Wellknown.httpExtAuthz, anyPack(ExtAuthzSchema, httpCfg)) };
}

/**
 * The per-route ext_authz settings of a workload's routes: `context_extensions` naming the workload
 * (namespace and labels), which meshlet's ExtAuthzServer trusts because only the control plane
 * writes them (see @meshlet/policy `CONTEXT_EXTENSION_NAMESPACE`).
 */
export function extAuthzPerRoute(target: PolicyTarget) {
  const labels = Object.fromEntries(
    Object.entries(target.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return anyPack(
    ExtAuthzPerRouteSchema,
    create(ExtAuthzPerRouteSchema, {
      override: {
        case: "checkSettings",
        value: {
          contextExtensions: {
            [CONTEXT_EXTENSION_NAMESPACE]: target.namespace,
            [CONTEXT_EXTENSION_LABELS]: JSON.stringify(labels),
          },
        },
      },
    }),
  );
}

interface JwtRuleView {
  issuer: string;
  audiences: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders: Array<{ name: string; prefix: string }>;
  fromParams: string[];
  fromCookies: string[];
  outputPayloadToHeader: string;
  forwardOriginalToken: boolean;
  outputClaimToHeaders: Array<{ header: string; claim: string }>;
  timeout?: string;
}

function jwtRules(ra: RequestAuthentication): JwtRuleView[] {
  const rules = (ra.spec as { jwtRules?: unknown }).jwtRules;
  if (!Array.isArray(rules)) return [];
  const strs = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  return rules.flatMap((r: Record<string, unknown>) => {
    const issuer = str(r.issuer);
    if (issuer === undefined || issuer === "") return [];
    const jwksUri = str(r.jwksUri);
    const jwks = str(r.jwks);
    const timeout = str(r.timeout);
    return [
      {
        issuer,
        audiences: strs(r.audiences),
        ...(jwksUri !== undefined ? { jwksUri } : {}),
        ...(jwks !== undefined ? { jwks } : {}),
        fromHeaders: (Array.isArray(r.fromHeaders) ? r.fromHeaders : []).flatMap(
          (h: Record<string, unknown>) =>
            typeof h?.name === "string" ? [{ name: h.name, prefix: str(h.prefix) ?? "" }] : [],
        ),
        fromParams: strs(r.fromParams),
        fromCookies: strs(r.fromCookies),
        outputPayloadToHeader: str(r.outputPayloadToHeader) ?? "",
        forwardOriginalToken: r.forwardOriginalToken === true,
        outputClaimToHeaders: (Array.isArray(r.outputClaimToHeaders) ? r.outputClaimToHeaders : []).flatMap(
          (h: Record<string, unknown>) =>
            typeof h?.header === "string" && typeof h?.claim === "string"
              ? [{ header: h.header, claim: h.claim }]
              : [],
        ),
        ...(timeout !== undefined ? { timeout } : {}),
      },
    ];
  });
}

/**
 * A JWKS no token verifies against (an RSA key with a fixed modulus nobody holds the private key
 * of), for a provider whose keys cannot be located: tokens of that issuer are rejected, requests
 * without a token are not (Istio `CreateFakeJwks` has the same effect).
 */
const UNVERIFIABLE_JWKS = JSON.stringify({
  keys: [
    {
      kty: "RSA",
      kid: "meshlet-unresolved-jwks",
      alg: "RS256",
      e: "AQAB",
      n: "xtMzgkgCRlFVrRw8rDHjXaHN7ShtCSCfbdeAw1pBqiGFA1jEIcKKzdgUGkQTwU9zgSgtKYG9TXDFkzewJ0iE8jfAavbrZ9RZ2qZTffT1BCLnlbRG1M6Mt1plwavQnpd-QG3-1QCP6_9Hb3_R9DIcD9kpNf6lwIrRxIcvcffD8WdDD6MUN3qhuj9oDhpJuahOZuoQmAlCVW8shwhMF9AyonB4G8c7_DxW7bS2YK_rIsr6c0Kz9h3DMGLT4CU4KFB6-8HHlLVGnp0WHCbY_eXkzo8dhiy6VE6B7QOi3NWV8uDNbz4NT3qU2-U4mbeKOjw0vf8owaE6TQgd7KUsUgcFsiKmcWQ",
    },
  ],
});

/**
 * `envoy.filters.http.jwt_authn` for the RequestAuthentications of a workload (Istio
 * `convertToEnvoyJwtConfig`): rules sorted by issuer, one provider `origins-<i>` each, the payload
 * in the filter's metadata under `payload`; a request with an invalid token is rejected, one
 * without a token passes (AuthorizationPolicy decides). Keys: `jwks` inline; `jwksUri` fetched by
 * Envoy from the cluster of its host (Istio's remote mode) when the host is a registry service;
 * otherwise an unverifiable key set, with a warning (meshlet does not fetch JWKS at generation time).
 */
export function jwtAuthnFilter(
  ctx: BuildContext,
  policies: readonly RequestAuthentication[],
): HttpFilter | undefined {
  const rules = policies.flatMap((p) => jwtRules(p).map((r) => ({ rule: r, source: p })));
  if (rules.length === 0) return undefined;
  rules.sort((a, b) => (a.rule.issuer < b.rule.issuer ? -1 : a.rule.issuer > b.rule.issuer ? 1 : 0));
  const providers: Record<string, JwtProvider> = {};
  const inner: JwtRequirement[] = [];
  const outer: JwtRequirement[] = [];
  rules.forEach(({ rule, source }, i) => {
    const name = `origins-${i}`;
    const timeout =
      rule.timeout !== undefined ? parseDuration(rule.timeout) : create(DurationSchema, { seconds: 5n });
    let jwksSourceSpecifier: NonNullable<MessageInitShape<typeof JwtProviderSchema>["jwksSourceSpecifier"]>;
    if (rule.jwks !== undefined && rule.jwks !== "") {
      jwksSourceSpecifier = {
        case: "localJwks",
        value: { specifier: { case: "inlineString", value: rule.jwks } },
      };
    } else {
      const uri = rule.jwksUri !== undefined ? safeUrl(rule.jwksUri) : undefined;
      const port =
        uri === undefined ? 0 : uri.port !== "" ? Number(uri.port) : uri.protocol === "http:" ? 80 : 443;
      const target =
        uri === undefined ? undefined : lookupServiceCluster(ctx, uri.hostname, port, { http2: false });
      if (target !== undefined && rule.jwksUri !== undefined) {
        jwksSourceSpecifier = {
          case: "remoteJwks",
          value: {
            httpUri: {
              uri: rule.jwksUri,
              httpUpstreamType: { case: "cluster", value: target.cluster },
              timeout,
            },
            cacheDuration: create(DurationSchema, { seconds: 300n }),
          },
        };
      } else {
        ctx.warnings.push({
          code: "unresolved-jwks",
          message: `RequestAuthentication issuer "${rule.issuer}": jwksUri ${rule.jwksUri ?? "(none)"} is not a service in the registry; tokens of this issuer are rejected`,
          source: resourceKeyOf(source),
        });
        jwksSourceSpecifier = {
          case: "localJwks",
          value: { specifier: { case: "inlineString", value: UNVERIFIABLE_JWKS } },
        };
      }
    }
    providers[name] = create(JwtProviderSchema, {
      issuer: rule.issuer,
      audiences: rule.audiences,
      forward: rule.forwardOriginalToken,
      forwardPayloadHeader: rule.outputPayloadToHeader,
      payloadInMetadata: "payload",
      normalizePayloadInMetadata: { spaceDelimitedClaims: ["permission", "scope"] },
      claimToHeaders: rule.outputClaimToHeaders.map((c) => ({ headerName: c.header, claimName: c.claim })),
      fromHeaders: rule.fromHeaders.map((h) => ({ name: h.name, valuePrefix: h.prefix })),
      fromParams: rule.fromParams,
      fromCookies: rule.fromCookies,
      jwksSourceSpecifier,
    });
    inner.push(
      create(JwtRequirementSchema, {
        requiresType: {
          case: "requiresAny",
          value: {
            requirements: [
              { requiresType: { case: "providerName", value: name } },
              { requiresType: { case: "allowMissing", value: {} } },
            ],
          },
        },
      }),
    );
    outer.push(create(JwtRequirementSchema, { requiresType: { case: "providerName", value: name } }));
  });
  const requires =
    inner.length === 1
      ? (inner[0] as JwtRequirement)
      : create(JwtRequirementSchema, {
          requiresType: {
            case: "requiresAny",
            value: {
              requirements: [
                ...outer,
                { requiresType: { case: "requiresAll", value: { requirements: inner } } },
              ],
            },
          },
        });
  const cfg = create(JwtAuthenticationSchema, {
    providers,
    rules: [
      {
        match: { pathSpecifier: { case: "prefix", value: "/" } },
        requirementType: { case: "requires", value: requires },
      },
    ],
    bypassCorsPreflight: true,
  });
  return httpFilter(Wellknown.jwtAuthn, anyPack(JwtAuthenticationSchema, cfg));
}

function safeUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
