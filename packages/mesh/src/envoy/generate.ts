import type { SnapshotInput } from "@meshlet/xds";
import { MeshError } from "../mesh-error.js";
import type { Proxy } from "../proxy/proxy.js";
import type { PushContext } from "../push/push-context.js";
import type { EnvoyGeneratorOptions } from "./context.js";
import { generateEnvoyGateway } from "./gateway.js";
import type { EnvoyResources } from "./resources.js";
import { generateEnvoySidecar } from "./sidecar-generator.js";

/**
 * The Envoy generator for a proxy: {@link generateEnvoySidecar} for `sidecar` proxies,
 * {@link generateEnvoyGateway} for gateways (`router~…` nodes).
 * @throws MeshError `INVALID_ARGUMENT` for a proxyless gRPC proxy (served by the gRPC generator).
 */
export function generateEnvoy(
  proxy: Proxy,
  push: PushContext,
  options: EnvoyGeneratorOptions = {},
): EnvoyResources {
  if (proxy.kind === "sidecar") return generateEnvoySidecar(proxy, push, options);
  if (proxy.kind === "gateway") return generateEnvoyGateway(proxy, push, options);
  throw new MeshError(
    "INVALID_ARGUMENT",
    `generateEnvoy: ${proxy.id} is a proxyless gRPC client; use the gRPC generator`,
  );
}

/** The resources as `Snapshot.create` input of @meshlet/xds (pass `envoyRegistry` as its registry). */
export function envoySnapshotInput(resources: EnvoyResources): SnapshotInput {
  return {
    listeners: resources.listeners,
    routes: resources.routes,
    clusters: resources.clusters,
    endpoints: resources.endpoints,
    secrets: resources.secrets,
  };
}
