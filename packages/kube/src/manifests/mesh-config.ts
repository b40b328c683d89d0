import { type InjectorConfigInput, resolveInjectorConfig } from "../inject/injector-config.js";
import { istioProxyImage } from "../istio-proxy-versions.js";
import { meshletNames } from "./names.js";
import type { MeshletValues } from "./values.js";

/** The provider name meshletd's MeshConfig gives the OpenTelemetry collector. */
export const OTEL_TRACING_PROVIDER = "otel-tracing";

/**
 * Istio's MeshConfig (istio/api mesh/v1alpha1/config.proto, JSON form) for these values: the trust
 * domain, the agents' default ProxyConfig (discovery at meshletd) and, with a collector, an
 * `opentelemetry` extension provider used for tracing by default. meshletd reads it from
 * `/etc/meshlet/mesh.yaml`.
 */
export function meshConfigFromValues(values: MeshletValues): Record<string, unknown> {
  const names = meshletNames(values);
  const mesh: Record<string, unknown> = {
    trustDomain: values.global.trustDomain,
    rootNamespace: values.namespace,
    enablePrometheusMerge: true,
    defaultConfig: {
      discoveryAddress: `${names.serviceHost}:15012`,
      ...(values.proxy.holdApplicationUntilProxyStarts ? { holdApplicationUntilProxyStarts: true } : {}),
      ...(values.global.meshId !== "" ? { meshId: values.global.meshId } : {}),
    },
  };
  if (values.telemetry.otelCollector !== "") {
    const [service = "", port = "4317"] = values.telemetry.otelCollector.split(":");
    mesh.extensionProviders = [
      { name: OTEL_TRACING_PROVIDER, opentelemetry: { service, port: Number(port) } },
    ];
    mesh.defaultProviders = { tracing: [OTEL_TRACING_PROVIDER] };
  }
  return mesh;
}

/**
 * The injector's configuration for these values (`resolveInjectorConfig` input): what meshletd
 * passes to `createInjectionWebhook`, read from `/etc/meshlet/injector.json`.
 */
export function injectorConfigFromValues(values: MeshletValues): InjectorConfigInput {
  const names = meshletNames(values);
  const address = `${names.serviceHost}:15012`;
  const config = resolveInjectorConfig({
    proxyImage: istioProxyImage(values.global.proxyVersion, values.global.hub),
    ...(values.global.imagePullPolicy !== "" ? { imagePullPolicy: values.global.imagePullPolicy } : {}),
    imagePullSecrets: values.global.imagePullSecrets,
    caAddress: address,
    defaultProxyConfig: meshConfigFromValues(values).defaultConfig as Record<string, unknown>,
    revision: values.revision,
    clusterDomain: values.global.clusterDomain,
    clusterId: values.global.clusterId,
    trustDomain: values.global.trustDomain,
    ...(values.global.meshId !== "" ? { meshId: values.global.meshId } : {}),
    ...(values.global.network !== "" ? { network: values.global.network } : {}),
    rewriteAppHTTPProbe: values.injection.rewriteAppHTTPProbe,
    proxy: {
      resources: values.proxy.resources,
      logLevel: values.proxy.logLevel,
      componentLogLevel: values.proxy.componentLogLevel,
      holdApplicationUntilProxyStarts: values.proxy.holdApplicationUntilProxyStarts,
      includeIPRanges: values.proxy.includeIPRanges,
      excludeIPRanges: values.proxy.excludeIPRanges,
      excludeInboundPorts: values.proxy.excludeInboundPorts,
      excludeOutboundPorts: values.proxy.excludeOutboundPorts,
    },
  });
  return config;
}
