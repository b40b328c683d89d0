import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { ApiVersion } from "@meshlet/api/envoy/config/core/v3/config_source_pb";
import {
  type RateLimit as RouteRateLimit,
  RateLimitSchema as RouteRateLimitSchema,
} from "@meshlet/api/envoy/config/route/v3/route_components_pb";
import { RateLimitSchema } from "@meshlet/api/envoy/extensions/filters/http/ratelimit/v3/rate_limit_pb";
import type { HttpFilter } from "@meshlet/api/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb";
import { labelsMatch } from "@meshlet/config";
import type { PolicyTarget } from "../push/security-policies.js";
import type { BuildContext, RateLimitBinding } from "./context.js";
import { envoyGrpcService, lookupServiceCluster, parseDuration } from "./external-services.js";
import { httpFilter } from "./filters.js";
import { Wellknown } from "./well-known.js";

// Global rate limiting through an envoyproxy/ratelimit-compatible service (meshlet's
// `RateLimitServer`), configured the way Istio's rate-limit task does it with an EnvoyFilter
// (istio.io content/en/docs/tasks/policy-enforcement/rate-limit): the `envoy.filters.http.ratelimit`
// HTTP filter before the router, pointed at the service over gRPC, and descriptor actions on the
// virtual host.

/** The first rate-limit binding that applies to a workload, with its virtual-host actions. */
export function rateLimitsFor(
  ctx: BuildContext,
  target: PolicyTarget,
  on: "sidecar" | "gateway",
): { readonly binding: RateLimitBinding; readonly actions: RouteRateLimit[] } | undefined {
  const binding = (ctx.options.rateLimits ?? []).find(
    (b) =>
      (b.on ?? "both") !== (on === "sidecar" ? "gateway" : "sidecar") &&
      (b.namespace === undefined || b.namespace === target.namespace) &&
      (b.selector === undefined || labelsMatch(b.selector, target.labels)),
  );
  if (binding === undefined) return undefined;
  type ActionInit = NonNullable<MessageInitShape<typeof RouteRateLimitSchema>["actions"]>[number];
  const actions: ActionInit[] = binding.actions.map((a): ActionInit => {
    if ("requestHeader" in a)
      return {
        actionSpecifier: {
          case: "requestHeaders",
          value: { headerName: a.requestHeader, descriptorKey: a.descriptorKey },
        },
      };
    if ("genericKey" in a)
      return {
        actionSpecifier: {
          case: "genericKey",
          value: {
            descriptorValue: a.genericKey,
            ...(a.descriptorKey !== undefined ? { descriptorKey: a.descriptorKey } : {}),
          },
        },
      };
    return { actionSpecifier: { case: "remoteAddress", value: {} } };
  });
  return { binding, actions: [create(RouteRateLimitSchema, { actions })] };
}

/**
 * `envoy.filters.http.ratelimit` for a binding, calling the rate-limit service over Envoy gRPC;
 * undefined (with a warning) when `rateLimitService` is not set or not reachable as a cluster.
 */
export function rateLimitFilter(ctx: BuildContext, binding: RateLimitBinding): HttpFilter | undefined {
  const svc = ctx.options.rateLimitService;
  const target =
    svc === undefined ? undefined : lookupServiceCluster(ctx, svc.host, svc.port, { http2: true });
  if (target === undefined) {
    ctx.warnings.push({
      code: "unknown-provider",
      message: `rate limit domain "${binding.domain}": the rate-limit service ${svc === undefined ? "is not configured" : `${svc.host}:${svc.port} is not in the registry`}; requests are not rate limited`,
    });
    return undefined;
  }
  return httpFilter(
    Wellknown.rateLimit,
    anyPack(
      RateLimitSchema,
      create(RateLimitSchema, {
        domain: binding.domain,
        failureModeDeny: binding.failureModeDeny ?? false,
        timeout: parseDuration(binding.timeout ?? "1s"),
        rateLimitService: {
          grpcService: envoyGrpcService(target.cluster, target.host),
          transportApiVersion: ApiVersion.V3,
        },
      }),
    ),
  );
}
