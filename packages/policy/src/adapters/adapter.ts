import type { Attributes } from "../attributes.js";
import type { ConfigSchema } from "./config-schema.js";

/** Mixer's three templates: authorization (check), quota, and report (metric + logentry). */
export type AdapterKind = "check" | "quota" | "report";

/** What every adapter has: a unique name, its kind, and optionally a config schema. */
export interface AdapterBase<Config = unknown> {
  /** Unique per engine; CUSTOM policies name check adapters by it (`spec.provider.name`). */
  readonly name: string;
  readonly kind: AdapterKind;
  /** Validates the config passed at registration (see {@link ConfigSchema}). */
  readonly configSchema?: ConfigSchema;
  /** Called once at registration with the validated config. */
  configure?(config: Config): void | Promise<void>;
  /** Called by `engine.close()`. */
  close?(): void | Promise<void>;
}

/** What a {@link CheckAdapter} answers: allow or deny, plus what Envoy should do with the request. */
export interface CheckResult {
  allowed: boolean;
  /** HTTP status for a denial (default 403). */
  status?: number;
  /** Body for a denial. */
  body?: string;
  /** On allow: headers to set on the upstream request. */
  requestHeaders?: Record<string, string>;
  /** On allow: request headers to remove. */
  removeRequestHeaders?: string[];
  /** Headers for the response to the client (on deny, or on allow). */
  responseHeaders?: Record<string, string>;
  /** Why: shown in decisions and logs. */
  reason?: string;
}

/**
 * An authorization adapter (Mixer's `authorization` template): the decider behind Istio's CUSTOM
 * action. A CUSTOM AuthorizationPolicy with `provider.name` equal to the adapter's name calls it
 * for every request it matches.
 */
export interface CheckAdapter<Config = unknown> extends AdapterBase<Config> {
  readonly kind: "check";
  check(attributes: Attributes, context: { signal: AbortSignal }): Promise<CheckResult>;
}

/** One counter update: add `hits` to `key`, which expires `expireSeconds` after it was created. */
export interface CounterIncrement {
  key: string;
  hits: number;
  expireSeconds: number;
}

/**
 * A counter backend for rate limits and quota (Mixer's `quota` template): fixed windows kept as
 * counters that expire with their window. `increment` applies all updates atomically enough that
 * N engine replicas sharing the backend share one limit, and returns each counter's value after.
 */
export interface QuotaAdapter<Config = unknown> extends AdapterBase<Config> {
  readonly kind: "quota";
  increment(updates: readonly CounterIncrement[], context: { signal: AbortSignal }): Promise<number[]>;
}

/**
 * One finished request, in Istio's telemetry vocabulary (the attributes Istio's standard metrics
 * are labelled with).
 */
export interface RequestReport {
  attributes: Attributes;
  /** HTTP status code, or gRPC status for gRPC. */
  responseCode: number;
  grpcResponseStatus?: string;
  durationMs: number;
  requestBytes?: number;
  responseBytes?: number;
  /** `http`, `grpc`, `tcp`. */
  protocol?: string;
  reporter?: "source" | "destination" | "waypoint";
  sourceWorkload?: string;
  sourceApp?: string;
  sourceVersion?: string;
  sourceCanonicalService?: string;
  destinationWorkload?: string;
  destinationService?: string;
  destinationServiceName?: string;
  destinationApp?: string;
  destinationVersion?: string;
  destinationCanonicalService?: string;
  /** `mutual_tls` or `none`. */
  connectionSecurityPolicy?: string;
  responseFlags?: string;
}

/** A telemetry adapter (Mixer's `metric` and `logentry` templates). */
export interface ReportAdapter<Config = unknown> extends AdapterBase<Config> {
  readonly kind: "report";
  report(reports: readonly RequestReport[], context: { signal: AbortSignal }): Promise<void>;
}

/** Any of the three adapter kinds. */
export type Adapter = CheckAdapter | QuotaAdapter | ReportAdapter;

/**
 * What happens when an adapter errors or times out: `fail-open` lets the request through,
 * `fail-closed` denies it (check) or treats it as over limit (quota).
 */
export type FailurePolicy = "fail-open" | "fail-closed";

/** Per-adapter registration options. */
export interface AdapterOptions<Config = unknown> {
  /** Validated against the adapter's `configSchema`, then passed to `configure`. */
  config?: Config;
  /** Default 200 ms. */
  timeoutMs?: number;
  /** Default `fail-closed` for check and quota adapters (a security default). */
  failurePolicy?: FailurePolicy;
}

/** An adapter failure, as decisions and `adapterErrors$` report it. */
export interface AdapterFailure {
  adapter: string;
  kind: AdapterKind;
  code: "adapter-timeout" | "adapter-failed";
  message: string;
  failurePolicy: FailurePolicy;
}
