export { isPathTemplate, pathTemplateProblem } from "@meshlet/config";
export type {
  Adapter,
  AdapterBase,
  AdapterFailure,
  AdapterKind,
  AdapterOptions,
  CheckAdapter,
  CheckResult,
  CounterIncrement,
  FailurePolicy,
  QuotaAdapter,
  ReportAdapter,
  RequestReport,
} from "./adapters/adapter.js";
export { type ConfigSchema, validateConfig } from "./adapters/config-schema.js";
export {
  type Attributes,
  attributesFromCheckRequest,
  attributeValues,
  type CheckRequestAttributesOptions,
  CONTEXT_EXTENSION_LABELS,
  CONTEXT_EXTENSION_NAMESPACE,
  namespaceOfPrincipal,
  normalizePrincipal,
  type RequestAuth,
  serviceAccountOfPrincipal,
} from "./attributes.js";
export {
  type AuthorizationAction,
  type AuthorizationPolicy,
  type AuthorizationPolicySpec,
  type Condition,
  DRY_RUN_ANNOTATION,
  type IstioCondition,
  isDryRun,
  type ObjectMeta,
  type Operation,
  type PolicyTargetReference,
  policyId,
  type Rule,
  type Source,
  type WorkloadSelector,
} from "./authz/authorization-policy.js";
export { type CelOutcome, type CompiledCel, compileCel } from "./authz/cel/cel-condition.js";
export { CEL_ENVIRONMENT } from "./authz/cel/cel-environment.js";
export type { CelCheckType } from "./authz/cel/cel-types.js";
export { type CelCheckAdapterOptions, createCelCheckAdapter } from "./authz/cel-check-adapter.js";
export { ipInCidr } from "./authz/ip-match.js";
export { compilePathTemplate } from "./authz/path-template.js";
export {
  type MatchOptions,
  matchCondition,
  matchOperation,
  matchRule,
  matchSource,
} from "./authz/rule-match.js";
export { appliesTo, GATEWAY_NAME_LABEL, type Workload } from "./authz/scope.js";
export { matchHost, matchPath, matchString } from "./authz/string-match.js";
export { type Clock, systemClock } from "./clock.js";
export * from "./config-rules.js";
export type { Decision, DecisionReason, DryRunResult, PolicyRef } from "./decision.js";
export type { FetchLike } from "./jwt/jwks-cache.js";
export type { JwtHeader, JwtRule, RequestAuthentication } from "./jwt/request-authentication.js";
export { consoleLogger, type Logger, silentLogger } from "./logger.js";
export type {
  PolicyDiagnostic,
  PolicyOrigins,
  RefusalEffect,
  SetPoliciesOptions,
} from "./policy-diagnostic.js";
export { PolicyEngine, type PolicyEngineOptions } from "./policy-engine.js";
export { PolicyError, type PolicyErrorCode } from "./policy-error.js";
export { createMemoryQuotaAdapter } from "./ratelimit/memory-quota-adapter.js";
export {
  parseRateLimitConfig,
  type RateLimitConfig,
  type RateLimitConfigOptions,
  type RateLimitDescriptorConfig,
  type RateLimitPolicy,
  type RateLimitUnit,
  UNIT_SECONDS,
  validateRateLimitConfig,
} from "./ratelimit/rate-limit-config.js";
export {
  type AppliedLimit,
  type DescriptorRequest,
  type DescriptorStatus,
  type QuotaGrant,
  type QuotaRequest,
  type RateLimitCheck,
  type RateLimitDecision,
  RateLimiter,
} from "./ratelimit/rate-limiter.js";
export {
  type EnvoyRbac,
  ISTIO_AUTHN_FILTER,
  JWT_AUTHN_FILTER,
  parseRbacPolicyName,
  type RbacFilter,
  rbacPolicyName,
  stringMatcher,
  type ToEnvoyRbacOptions,
  toEnvoyRbac,
} from "./rbac/to-envoy-rbac.js";
export {
  ExtAuthzServer,
  type ExtAuthzServerOptions,
  type PolicyListenOptions,
  toCheckResponse,
} from "./server/ext-authz-server.js";
export { grpcServiceDefinition, type ListeningServer } from "./server/grpc-service.js";
export {
  fromRateLimitRequest,
  RateLimitServer,
  type RateLimitServerOptions,
  toRateLimitResponse,
} from "./server/rate-limit-server.js";
