export type {
  Destination,
  DestinationRuleSpec,
  GatewayServer,
  GatewaySpec,
  HttpMatchRequest,
  HttpRoute,
  HttpRouteDestination,
  ServiceEntryPort,
  SidecarEgressListener,
  StringMatch,
  Subset,
  TcpRoute,
  TlsRoute,
  TrafficPolicy,
  VirtualServiceSpec,
} from "./config-access.js";
export {
  type AuthorizeDecision,
  type XdsAuthorize,
  xdsAuthorizeInterceptor,
} from "./controller/authorize-interceptor.js";
export { changedConfigKeys } from "./controller/config-diff.js";
export {
  type GeneratedResources,
  type GenerateRequest,
  type ProxyGenerator,
  type ProxyGenerators,
  proxylessGenerator,
  updateLoadAssignments,
} from "./controller/generator.js";
export {
  type ConfigInput,
  type MeshAuthorizeRequest,
  MeshController,
  type MeshControllerOptions,
  type MeshStatus,
  type ProxyStatus,
  type PushCause,
  type PushEvent,
  type RefusedNode,
} from "./controller/mesh-controller.js";
export {
  type AnalyzeMeshOptions,
  type AnalyzerLevel,
  analyzeMesh,
  IstioAnalyzerCode,
  type MeshFinding,
} from "./diagnostics/analyze-mesh.js";
export type {
  EnvoyGeneratorOptions,
  EnvoyGeneratorWarning,
  RateLimitBinding,
  ServiceRef,
} from "./envoy/context.js";
export { envoyGenerators, envoyProxyGenerator, toTranslationWarning } from "./envoy/controller-generator.js";
export { generateEnvoyGateway } from "./envoy/gateway.js";
export { envoySnapshotInput, generateEnvoy } from "./envoy/generate.js";
export { envoyRegistry } from "./envoy/istio-extensions.js";
export { type EnvoyResources, referencedEnvoyClusters } from "./envoy/resources.js";
export { generateEnvoySidecar } from "./envoy/sidecar-generator.js";
export {
  type ConfigRef,
  type ConnectedProxy,
  ExplainError,
  type ExplainHop,
  type ExplainInput,
  type ExplainOutcome,
  type ExplainRequest,
  type ExplainStep,
  type ExplainStepKind,
  type Explanation,
  explain,
  explanationJson,
  formatExplanation,
  resolveProxy,
} from "./explain/explain.js";
export { evaluateRbac, type RbacOutcome, type RbacRequest } from "./explain/rbac.js";
export {
  type Call,
  type CallMode,
  type CallProtocol,
  type CallTls,
  clusterEndpoints,
  type RbacDecision,
  type UpstreamEndpoint,
  type WalkError,
  type WalkResult,
  type WeightedTarget,
  walk,
  type XdsResources,
} from "./explain/walker.js";
export {
  type GrpcBootstrap,
  type GrpcBootstrapOptions,
  grpcBootstrap,
  WORKLOAD_CERT_FILES,
  workloadNodeId,
} from "./grpc/bootstrap.js";
export {
  clientHttpFilters,
  clientListener,
  type ServerListenerInput,
  serverListener,
  serverMtlsMode,
} from "./grpc/listeners.js";
export {
  generateProxyless,
  type ProxylessGenerateOptions,
  type ProxylessResources,
  referencedClusters,
} from "./grpc/proxyless-generator.js";
export { type GrpcRbac, GrpcRbacFilterNames, grpcRbac, grpcRbacPolicyName } from "./grpc/rbac.js";
export { buildRouteConfiguration, type RouteConfigInput, virtualHostDomains } from "./grpc/routes.js";
export { MeshError, type MeshErrorCode } from "./mesh-error.js";
export {
  hostSubsetOf,
  hostsOverlap,
  isWildcardHost,
  mostSpecificHostMatch,
  resolveGatewayName,
  resolveShortname,
} from "./model/host.js";
export {
  isGrpcProtocol,
  isHttp2Protocol,
  isHttpProtocol,
  isTcpProtocol,
  isTlsProtocol,
  type Protocol,
  parseProtocol,
  protocolOfKubernetesPort,
} from "./model/protocol.js";
export {
  type HealthStatus,
  type IstioEndpoint,
  LOCALITY_LABEL,
  NETWORK_LABEL,
  type Resolution,
  type Service,
  type ServiceInstance,
  type ServicePort,
  type ServiceRegistryKind,
  type ServiceTarget,
  serviceKey,
  TLS_MODE_LABEL,
  UNSPECIFIED_IP,
} from "./model/service.js";
export {
  dnsSrvSubsetKey,
  inboundClusterName,
  outboundClusterName,
  outboundSni,
  parseSubsetKey,
  type SubsetKey,
  subsetKey,
  type TrafficDirection,
} from "./naming/cluster-names.js";
export { parseWorkloadIdentity, workloadIdentity } from "./naming/identity.js";
export {
  DEFAULT_PROXY_INBOUND_LISTEN_PORT,
  DEFAULT_PROXY_LISTEN_PORT,
  gatewayRouteConfigName,
  IstioNames,
  inboundVirtualHostName,
  listenerName,
  sidecarOutboundRouteName,
  virtualHostName,
} from "./naming/listener-names.js";
export {
  expandProxylessShortName,
  joinHostPort,
  PROXYLESS_SERVER_LISTENER_PREFIX,
  PROXYLESS_SERVER_LISTENER_TEMPLATE,
  type ProxylessListenerRequest,
  parseProxylessServerListenerName,
  proxylessListenerRequests,
  proxylessRouteConfigName,
  proxylessServerListenerName,
  splitHostPort,
} from "./naming/proxyless-names.js";
export { type NodeMetadata, type PodPort, parseNodeMetadata } from "./proxy/node-metadata.js";
export {
  checkProxyIdentity,
  type InterceptionMode,
  type IstioVersion,
  MAX_ISTIO_VERSION,
  type NodeLike,
  type NodeType,
  type ParseProxyOptions,
  type Proxy,
  type ProxyKind,
  type ProxyLocality,
  parseIstioVersion,
  parseProxy,
} from "./proxy/proxy.js";
export type { ProxyDependencies } from "./push/dependencies.js";
export { type ConsolidatedDestinationRule, subsetLabels } from "./push/destination-rules.js";
export { type ExtensionProvider, type MeshConfig, meshConfig } from "./push/mesh-config.js";
export { PushContext, type PushContextInit, type WorkloadRef } from "./push/push-context.js";
export {
  composePeerAuthentication,
  type EffectivePeerAuthentication,
  type MtlsMode,
  mtlsModeForPort,
  type PolicyTarget,
  type WorkloadAuthorizationPolicies,
} from "./push/security-policies.js";
export type { EgressListenerScope, SidecarScope } from "./push/sidecar-scope.js";
export {
  MESH_GATEWAY,
  type MeshVirtualService,
  virtualServiceDestinations,
} from "./push/virtual-services.js";
export { Registry, type RegistryOptions, registry$, toRegistry } from "./registry/registry.js";
export type { WorkloadInstance } from "./registry/workload.js";
export {
  AUTO_REGISTRATION_GROUP_ANNOTATION,
  autoRegisteredWorkloadEntryName,
  workloadEntryFromGroup,
} from "./registry/workload-group.js";
export {
  capabilitiesOf,
  ENVOY_CAPABILITIES,
  GRPC_RBAC_METADATA_KEY,
  grpcClientOf,
  type HashPolicyKind,
  type LbPolicyName,
  type NodeUserAgent,
  type ProxyCapabilities,
  type ProxylessCapabilityOptions,
  proxylessCapabilities,
  type XdsClientKind,
} from "./translate/capabilities.js";
export {
  applyConnectionPool,
  applyLoadBalancer,
  applyOutlierDetection,
  applyRingHashLoadBalancer,
  applyTrafficPolicy,
  applyUpstreamTls,
  buildOutboundCluster,
  type ClusterBuild,
  type ClusterContext,
  clusterTrafficPolicy,
  edsCluster,
  finishCluster,
  HTTP_PROTOCOL_OPTIONS_KEY,
  isHttp2Cluster,
  mergeTrafficPolicy,
  type OutboundClusterInput,
  serviceAccountsFor,
  setH2Options,
  type TrafficPolicyOptions,
} from "./translate/cluster.js";
export {
  applyLocalityLoadBalancer,
  buildLoadAssignment,
  type LoadAssignmentInput,
  localityMatch,
  proxyLocality,
} from "./translate/endpoints.js";
export type {
  IstioClientTls,
  IstioConnectionPool,
  IstioConsistentHash,
  IstioCorsPolicy,
  IstioDirectResponse,
  IstioFault,
  IstioHeaders,
  IstioLoadBalancer,
  IstioLocalityLbSetting,
  IstioOutlierDetection,
  IstioRedirect,
  IstioRetry,
  IstioRewrite,
  IstioTrafficPolicy,
} from "./translate/istio-fields.js";
export {
  applyDirectResponse,
  applyRedirect,
  BLACK_HOLE_CLUSTER,
  buildVirtualServiceRoutes,
  configInfoMetadata,
  consistentHashToHashPolicy,
  DEFAULT_ROUTE_NAME,
  defaultOutboundRoute,
  destinationCluster,
  GRPC_STATUS_CODES,
  type HeadersOperations,
  HttpFilterNames,
  hashForDestination,
  hashForService,
  isCatchAllRoute,
  type RouteContext,
  routeOperation,
  routingClaim,
  setRouteTimeout,
  sortVirtualHostRoutes,
  toStringMatcher,
  traceOperation,
  translateCorsPolicy,
  translateFault,
  translateHeadersOperations,
  translateRetryPolicy,
  translateRoute,
  translateRouteMatch,
} from "./translate/route.js";
export {
  Alpn,
  CERTIFICATE_PROVIDER_INSTANCE,
  certificateProviderTlsContext,
  credentialSecretConfig,
  downstreamMtlsContext,
  exactMatchers,
  SdsNames,
  sdsSecretConfig,
  TLS_TRANSPORT_SOCKET,
  tlsTransportSocket,
  type UpstreamTlsOptions,
  type UpstreamTlsResult,
  upstreamTlsContext,
} from "./translate/tls.js";
export {
  ignoreWarnings,
  type TranslationWarning,
  type TranslationWarningCode,
  type WarningSink,
} from "./translate/warnings.js";
