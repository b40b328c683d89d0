export { AdminError, type AdminErrorCode } from "./admin-error.js";
export { type AdminClient, type AdminClientOptions, createAdminClient } from "./client.js";
export { buildConfigDump, type ConfigDumpSelection, configDumpJson } from "./config-dump.js";
export {
  EventFeed,
  type EventFeedOptions,
  type EventInit,
  type SubscriberStats,
} from "./event-feed.js";
export {
  type AdminControllerSource,
  type AdminXdsSource,
  type CertificateNotice,
  type CertificateServiceEventLike,
  createMeshAdmin,
  type DecisionLike,
  type MeshAdminOptions,
  type MeshAdminService,
} from "./mesh-admin.js";
export {
  ISTIO_REQUESTS_TOTAL,
  MeshGraph,
  type MeshGraphOptions,
  type MetricsSource,
  registryMetrics,
  scrapeMetrics,
} from "./metrics/mesh-graph.js";
export { type MetricSample, parseSamples } from "./metrics/prometheus-text.js";
export { REDACTED, redact } from "./redact.js";
export { bearerMatches, bearerTokenInterceptor, isLoopbackHost } from "./server/auth.js";
export {
  type AdminRequestHandler,
  type AdminServer,
  DEFAULT_ADMIN_ADDRESS,
  type ListenAdminOptions,
  listenAdmin,
  type MountAdminOptions,
  mountAdmin,
} from "./server/listen-admin.js";
export { syncStatusOf, type TypeState, worstStatus } from "./sync-tracker.js";
