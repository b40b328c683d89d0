export {
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReview,
  admissionResponse,
  type ParsedAdmissionReview,
  parseAdmissionReview,
} from "./admission/admission-review.js";
export { type AdmissionHandler, createInjectionWebhook } from "./admission/injection-webhook.js";
export { createValidationWebhook, type ValidationWebhookOptions } from "./admission/validation-webhook.js";
export type { WebhookEvent } from "./admission/webhook-event.js";
export {
  type ServingCertificate,
  WebhookServer,
  type WebhookServerOptions,
} from "./admission/webhook-server.js";
export { Annotation, Label, validateAnnotations } from "./inject/annotations.js";
export { type DeployMeta, deployMetaFromPod } from "./inject/deploy-meta.js";
export {
  BUILTIN_TEMPLATES,
  type InjectionResult,
  type InjectPodOptions,
  injectPod,
  parseInjectEnvs,
} from "./inject/inject-pod.js";
export { type InjectionDecision, injectionRequired } from "./inject/injection-policy.js";
export {
  DEFAULT_CONTROL_PLANE_HOST,
  DEFAULT_INJECTOR_CONFIG,
  IGNORED_NAMESPACES,
  type InjectorConfig,
  type InjectorConfigInput,
  type ProxyResources,
  resolveInjectorConfig,
} from "./inject/injector-config.js";
export type { JsonPatchOperation } from "./inject/json-patch.js";
export { type LabelSelector, matchesLabelSelector } from "./inject/label-selector.js";
export type { Container, ObjectMeta, Pod, PodSpec } from "./inject/pod-model.js";
export {
  mergeProxyConfig,
  type ProxyConfig,
  parseProxyConfig,
  proxyConfigToJson,
} from "./inject/proxy-config.js";
export type { InjectionTemplate, PodOverlay, TemplateContext } from "./inject/templates/template-context.js";
export {
  DEFAULT_ISTIO_HUB,
  DEFAULT_ISTIO_PROXY_VERSION,
  type IstioProxyVersion,
  isSupportedIstioProxyVersion,
  istioProxyImage,
  SUPPORTED_ISTIO_PROXY_VERSIONS,
} from "./istio-proxy-versions.js";
export { KubeError, type KubeErrorCode } from "./kube-error.js";
export { CA_SECRETS, webhookConfigurationNames } from "./manifests/control-plane.js";
export { azureServiceAnnotations } from "./manifests/ingress-gateway.js";
export type { IstioTelemetry, KubeObject } from "./manifests/kube-object.js";
export {
  injectorConfigFromValues,
  meshConfigFromValues,
  OTEL_TRACING_PROVIDER,
} from "./manifests/mesh-config.js";
export { MESHLETD_PORTS, type MeshletNames, meshletNames } from "./manifests/names.js";
export { renderManifests, toJsonList, toYamlDocuments } from "./manifests/render-manifests.js";
export { validateManifests } from "./manifests/validate-manifests.js";
export {
  checkValues,
  defaultValues,
  type MeshletValues,
  type ResourceValues,
  setValue,
  VALUE_KEYS,
  valuesFromSets,
} from "./manifests/values.js";
export { canonicalQuantity, cpuCores, parseQuantity, type Quantity } from "./quantity.js";
export {
  type PublishRootCertOptions,
  publishRootCert,
  ROOT_CERT_CONFIGMAP,
  ROOT_CERT_IGNORED_NAMESPACES,
  ROOT_CERT_KEY,
  ROOT_CERT_LABELS,
  type RootCertBundle,
  type RootCertEvent,
  type RootCertPublisher,
} from "./root-cert/publish-root-cert.js";
