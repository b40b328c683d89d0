export type { ConfigWatcher, SubscribedNames } from "./cache/config-watcher.js";
export { LinearCache, type LinearCacheOptions } from "./cache/linear-cache.js";
export { MuxCache, type MuxCacheOptions } from "./cache/mux-cache.js";
export { SnapshotCache, type SnapshotCacheOptions } from "./cache/snapshot-cache.js";
export type { NodeStatus, TypeStatus } from "./cache/status.js";
export { CachedResource } from "./cached-resource.js";
export { type Clock, systemClock } from "./clock.js";
export { durationFromMs, msFromDuration } from "./duration.js";
export {
  type DanglingReference,
  type FieldViolation,
  InconsistentSnapshotError,
  ResourceValidationError,
  XdsError,
  type XdsErrorCode,
} from "./errors.js";
export type {
  AckEvent,
  NackEvent,
  RequestEvent,
  ResponseEvent,
  StreamCloseEvent,
  StreamOpenEvent,
  XdsEvent,
  XdsProtocol,
} from "./events.js";
export * as resources from "./resources/index.js";
export type { AuthorizeHook, AuthorizeRequest, Refusal } from "./server/authorize.js";
export type { CallHandler, ServerCall } from "./server/call.js";
export { GrpcStatus, type GrpcStatusCode } from "./server/grpc-status.js";
export { consoleLogger, type Logger, silentLogger } from "./server/logger.js";
export { allXdsServices, type ServiceName, type XdsServiceName } from "./server/services.js";
export { isSpiffeId, spiffeIdOf } from "./server/spiffe-id.js";
export {
  DEFAULT_MAX_RESOURCE_NAMES_PER_TYPE,
  type ListeningServer,
  type ListenOptions,
  type RegisterOptions,
  type WaitForAckOptions,
  XdsServer,
  type XdsServerOptions,
} from "./server/xds-server.js";
export {
  defaultResourcePool,
  type MergeOptions,
  type ResourceInput,
  ResourcePool,
  type ResourcePoolStats,
  type ResourceSet,
  resourceName,
  Snapshot,
  type SnapshotInput,
  type SnapshotOptions,
} from "./snapshot.js";
/** The scriptable test client, also importable from "@meshlet/xds/testing". */
export * as testing from "./testing.js";
export {
  adsOrder,
  fullStateTypes,
  TypeUrl,
  type TypeUrlString,
  typeShortName,
  typeUrlOf,
  xdsRegistry,
} from "./type-url.js";
export { fieldRuleViolations } from "./validation/validate-resource.js";
