/**
 * The Istio proxy (`proxyv2`: Envoy plus Istio's agent, `pilot-agent`) releases meshlet's injector
 * and manifests are written for. The sidecar the webhook injects follows Istio's injection template
 * (istio/istio `manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`, the
 * classic layout where `istio-proxy` is an ordinary container and `istio-init` sets up iptables);
 * the agents of these releases read exactly the environment, arguments and volumes that template
 * produces. Newer lines are expected to work but their templates must be compared first (see
 * docs/aks.md "Supported Istio proxy versions").
 */
export const SUPPORTED_ISTIO_PROXY_VERSIONS = ["1.26.8", "1.27.9"] as const;

/** One of {@link SUPPORTED_ISTIO_PROXY_VERSIONS}. */
export type IstioProxyVersion = (typeof SUPPORTED_ISTIO_PROXY_VERSIONS)[number];

/** The proxy version rendered manifests and the injector use unless told otherwise. */
export const DEFAULT_ISTIO_PROXY_VERSION: IstioProxyVersion = "1.27.9";

/** Where Istio publishes its images (`docker.io/istio/proxyv2:<version>`). */
export const DEFAULT_ISTIO_HUB = "docker.io/istio";

/** `<hub>/proxyv2:<version>`, the image reference Istio's charts build. */
export function istioProxyImage(
  version: string = DEFAULT_ISTIO_PROXY_VERSION,
  hub: string = DEFAULT_ISTIO_HUB,
): string {
  return `${hub}/proxyv2:${version}`;
}

/** Whether `version` is one of the pinned, supported proxy releases. */
export function isSupportedIstioProxyVersion(version: string): version is IstioProxyVersion {
  return (SUPPORTED_ISTIO_PROXY_VERSIONS as readonly string[]).includes(version);
}
