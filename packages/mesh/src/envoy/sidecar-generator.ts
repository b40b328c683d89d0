import type { Cluster } from "@meshlet/api/envoy/config/cluster/v3/cluster_pb";
import type { ClusterLoadAssignment } from "@meshlet/api/envoy/config/endpoint/v3/endpoint_pb";
import { MeshError } from "../mesh-error.js";
import { serviceSourceKey } from "../model/service.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import { proxyLocality } from "../translate/endpoints.js";
import { carriedResult, labelsKey, objectKey, routingLabelsKey } from "../translate/shared-results.js";
import { outboundClusters } from "./clusters.js";
import { type BuildContext, buildContext, type EnvoyGeneratorOptions, sharedBuild } from "./context.js";
import { buildInbound } from "./inbound.js";
import { buildOutbound } from "./outbound-listeners.js";
import { outboundRouteConfig } from "./outbound-routes.js";
import { type EnvoyResources, finishResources } from "./resources.js";
import { blackHoleCluster, inboundPassthroughCluster, passthroughCluster } from "./special-clusters.js";
import { tracingKey } from "./telemetry.js";

/**
 * The xDS resources of an Envoy sidecar, named as Istio names them (Istio's LDS/RDS/CDS/EDS
 * generators for a `sidecar` node): outbound listeners per service port plus `virtualOutbound`
 * (15001) and `virtualInbound` (15006); route configurations `<port>` (and `<fqdn>:<port>` for
 * sniffed ports); clusters `outbound|<port>|<subset>|<fqdn>` for every service in the proxy's
 * scope (Sidecar, exportTo), `inbound|<port>||` for the ports the workload serves, and
 * `BlackHoleCluster`, `PassthroughCluster`, `InboundPassthroughCluster`; load assignments of the
 * EDS clusters. Everything is sorted by name. Certificates (`default`, `ROOTCA`) come from the
 * Istio agent's SDS, not from here.
 * @throws MeshError `INVALID_ARGUMENT` for a proxy that is not a sidecar.
 */
export function generateEnvoySidecar(
  proxy: Proxy,
  push: PushContext,
  options: EnvoyGeneratorOptions = {},
): EnvoyResources {
  if (proxy.kind !== "sidecar") {
    throw new MeshError(
      "INVALID_ARGUMENT",
      `generateEnvoySidecar: ${proxy.id} is a ${proxy.kind} proxy, not a sidecar`,
    );
  }
  const ctx = buildContext(proxy, push, options);
  const shared = sharedBuild(ctx, SIDECARS, sidecarKey(ctx), buildSidecar);
  return { ...shared, warnings: ctx.warnings };
}

const SIDECARS = Symbol("shared sidecar resources");
const HEADLESS = Symbol("scope has headless services");

/**
 * Everything the sidecar generator reads of a proxy, as a key: sidecars with equal keys get equal
 * resources (replicas of a workload, typically), so they are generated once per push and shared.
 * The proxy's scope, namespace, interception mode and DNS domain; its full labels and service
 * targets (inbound: policies select on labels); the labels its routes and clusters can depend on;
 * its locality (load assignments); its canonical service when tracing is on; its IP when a headless
 * service in its scope could list it.
 */
function sidecarKey(ctx: BuildContext): string {
  const { proxy, push } = ctx;
  const scope = push.sidecarScope(proxy);
  const headless = carriedResult(push, HEADLESS, scope, "", undefined, () =>
    scope.services.some((s) => s.resolution === "Passthrough"),
  );
  return [
    objectKey(push, ctx.options),
    objectKey(push, scope),
    proxy.namespace,
    proxy.interceptionMode,
    proxy.dnsDomain,
    labelsKey(ctx.labels),
    routingLabelsKey(push, proxy, ctx.labels),
    push
      .serviceTargets(proxy)
      .map(
        (t) =>
          `${serviceSourceKey(t.service)}:${t.port.name}:${t.port.port}:${t.port.protocol}:${t.targetPort}`,
      )
      .join(","),
    proxyLocality(push, proxy),
    tracingKey(ctx),
    headless ? proxy.ipAddresses.join(",") : "",
  ].join("|");
}

function buildSidecar(ctx: BuildContext): EnvoyResources {
  const { proxy, push } = ctx;
  const inbound = buildInbound(ctx);
  const outbound = buildOutbound(ctx);
  const routes = outbound.routeNames.map((n) => outboundRouteConfig(ctx, n));
  const clusters: Cluster[] = [
    blackHoleCluster(ctx),
    passthroughCluster(ctx),
    inboundPassthroughCluster(ctx),
    ...inbound.clusters,
  ];
  const endpoints: ClusterLoadAssignment[] = [];
  const scope = push.sidecarScope(proxy);
  for (const svc of scope.services) {
    for (const port of svc.ports) {
      const set = outboundClusters(ctx, svc, port);
      clusters.push(...set.clusters);
      endpoints.push(...set.endpoints);
    }
  }
  // Services filters reach that the scope does not import (ext_authz, collectors).
  const have = new Set(clusters.map((c) => c.name));
  for (const [name, ref] of ctx.referencedServices) {
    if (have.has(name)) continue;
    const port = ref.service.ports.find((p) => p.port === ref.port);
    if (port === undefined) continue;
    const set = outboundClusters(ctx, ref.service, port);
    clusters.push(...set.clusters);
    endpoints.push(...set.endpoints);
  }
  clusters.push(...ctx.extraClusters.values());
  return finishResources(
    { listeners: [...outbound.listeners, inbound.listener], routes, clusters, endpoints, secrets: [] },
    ctx.warnings,
  );
}
