import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import {
  type FractionalPercent,
  FractionalPercent_DenominatorType,
  FractionalPercentSchema,
} from "@meshlet/api/envoy/type/v3/percent_pb";
import type { Destination, StringMatch } from "../config-access.js";

// Typed, read-only views of the Istio fields @meshlet/config keeps as open objects (fault, retries,
// rewrite, redirect, CORS, load balancer, connection pool, outlier detection, TLS): the shapes are
// istio/api networking/v1alpha3 virtual_service.proto and destination_rule.proto, in their YAML
// (protojson) spelling. Readers tolerate a field of the wrong JSON type by treating it as unset; the
// config package is where such input is refused.

/** Istio `Percent` (`{ value: 12.5 }`). */
export interface IstioPercent {
  readonly value?: number;
}

/** Istio `HTTPFaultInjection`. */
export interface IstioFault {
  readonly delay?: {
    readonly percentage?: IstioPercent;
    /** Deprecated integer percent. */
    readonly percent?: number;
    readonly fixedDelay?: string;
    readonly exponentialDelay?: string;
  };
  readonly abort?: {
    readonly percentage?: IstioPercent;
    readonly httpStatus?: number;
    readonly grpcStatus?: string;
    readonly http2Error?: string;
  };
}

/** Istio `HTTPRetry`. */
export interface IstioRetry {
  readonly attempts?: number;
  readonly perTryTimeout?: string;
  readonly retryOn?: string;
  readonly retryRemoteLocalities?: boolean;
  readonly retryIgnorePreviousHosts?: boolean;
  readonly backoff?: string;
}

/** Istio `HTTPRewrite`. */
export interface IstioRewrite {
  readonly uri?: string;
  readonly authority?: string;
  readonly uriRegexRewrite?: { readonly match?: string; readonly rewrite?: string };
}

/** Istio `HTTPRedirect`. */
export interface IstioRedirect {
  readonly uri?: string;
  readonly authority?: string;
  readonly port?: number;
  readonly derivePort?: "FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT";
  readonly scheme?: string;
  readonly redirectCode?: number;
}

/** Istio `HTTPDirectResponse`. */
export interface IstioDirectResponse {
  readonly status: number;
  readonly body?: { readonly string?: string; readonly bytes?: string };
}

/** Istio `CorsPolicy`. */
export interface IstioCorsPolicy {
  readonly allowOrigins?: readonly StringMatch[];
  /** Deprecated exact origins. */
  readonly allowOrigin?: readonly string[];
  readonly allowMethods?: readonly string[];
  readonly allowHeaders?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly maxAge?: string;
  readonly allowCredentials?: boolean;
  readonly unmatchedPreflights?: "UNSPECIFIED" | "FORWARD" | "IGNORE";
}

/** Istio `Headers.HeaderOperations`. */
export interface IstioHeaderOperations {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

/** Istio `Headers`. */
export interface IstioHeaders {
  readonly request?: IstioHeaderOperations;
  readonly response?: IstioHeaderOperations;
}

/** Istio `HTTPMirrorPolicy`. */
export interface IstioMirrorPolicy {
  readonly destination: Destination;
  readonly percentage?: IstioPercent;
}

/** Istio `LoadBalancerSettings.ConsistentHashLB`. */
export interface IstioConsistentHash {
  readonly httpHeaderName?: string;
  readonly httpCookie?: { readonly name?: string; readonly path?: string; readonly ttl?: string };
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: { readonly minimumRingSize?: number | string };
  readonly maglev?: { readonly tableSize?: number | string };
  /** Deprecated. */
  readonly minimumRingSize?: number | string;
}

/** Istio `LocalityLoadBalancerSetting`. */
export interface IstioLocalityLbSetting {
  readonly distribute?: ReadonlyArray<{
    readonly from?: string;
    readonly to?: Readonly<Record<string, number>>;
  }>;
  readonly failover?: ReadonlyArray<{ readonly from?: string; readonly to?: string }>;
  readonly failoverPriority?: readonly string[];
  readonly enabled?: boolean;
}

/** Istio `LoadBalancerSettings`. */
export interface IstioLoadBalancer {
  readonly simple?: "UNSPECIFIED" | "LEAST_CONN" | "RANDOM" | "PASSTHROUGH" | "ROUND_ROBIN" | "LEAST_REQUEST";
  readonly consistentHash?: IstioConsistentHash;
  readonly localityLbSetting?: IstioLocalityLbSetting;
  readonly warmupDurationSecs?: string;
}

/** Istio `ConnectionPoolSettings`. */
export interface IstioConnectionPool {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    readonly maxConnectionDuration?: string;
    readonly idleTimeout?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
    readonly h2UpgradePolicy?: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE";
    readonly useClientProtocol?: boolean;
    readonly maxConcurrentStreams?: number;
  };
}

/** Istio `OutlierDetection`. */
export interface IstioOutlierDetection {
  readonly consecutiveErrors?: number;
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly consecutiveLocalOriginFailures?: number;
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

/** Istio `ClientTLSSettings`. */
export interface IstioClientTls {
  readonly mode?: "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL";
  readonly clientCertificate?: string;
  readonly privateKey?: string;
  readonly caCertificates?: string;
  readonly credentialName?: string;
  readonly subjectAltNames?: readonly string[];
  readonly sni?: string;
  readonly insecureSkipVerify?: boolean;
  readonly caCrl?: string;
}

/** Istio `TrafficPolicy.PortTrafficPolicy`. */
export interface IstioPortTrafficPolicy {
  readonly port?: { readonly number?: number };
  readonly loadBalancer?: IstioLoadBalancer;
  readonly connectionPool?: IstioConnectionPool;
  readonly outlierDetection?: IstioOutlierDetection;
  readonly tls?: IstioClientTls;
}

/** Istio `TrafficPolicy`. */
export interface IstioTrafficPolicy {
  readonly loadBalancer?: IstioLoadBalancer;
  readonly connectionPool?: IstioConnectionPool;
  readonly outlierDetection?: IstioOutlierDetection;
  readonly tls?: IstioClientTls;
  readonly portLevelSettings?: readonly IstioPortTrafficPolicy[];
  readonly tunnel?: object;
  readonly proxyProtocol?: { readonly version?: string };
}

/**
 * A config value seen through one of the views above. The config package keeps these fields as
 * open objects; a value that is not an object reads as unset.
 */
export function view<T>(value: unknown): T | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as T) : undefined;
}

/** A number, or undefined for anything else (a wrong JSON type reads as unset). */
export function num(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** A non-empty string, or undefined. */
export function str(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

const UNIT_NANOS: Readonly<Record<string, bigint>> = {
  h: 3_600_000_000_000n,
  m: 60_000_000_000n,
  s: 1_000_000_000n,
  ms: 1_000_000n,
  us: 1_000n,
  µs: 1_000n,
  ns: 1n,
};

/**
 * Parses an Istio duration (Go `time.ParseDuration` as Istio's CRDs accept it: `1.5s`, `100ms`,
 * `1h30m`) into nanoseconds; undefined when it does not parse.
 */
export function durationNanos(text: string): bigint | undefined {
  const re = /(\d+)(?:\.(\d+))?(h|ms|m|s|us|µs|ns)/y;
  let total = 0n;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (m === null) return undefined;
    const unit = UNIT_NANOS[m[3] as string] as bigint;
    total += BigInt(m[1] as string) * unit;
    if (m[2] !== undefined) {
      const frac = m[2];
      total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    }
    at = re.lastIndex;
  }
  return text.length === 0 ? undefined : total;
}

/** A protobuf `Duration` from nanoseconds. */
export function durationOfNanos(nanos: bigint): Duration {
  return create(DurationSchema, { seconds: nanos / 1_000_000_000n, nanos: Number(nanos % 1_000_000_000n) });
}

/** A protobuf `Duration` from an Istio duration string; undefined when absent or unparsable. */
export function duration(text: unknown): Duration | undefined {
  if (typeof text !== "string") return undefined;
  const nanos = durationNanos(text);
  return nanos === undefined ? undefined : durationOfNanos(nanos);
}

/** Whole seconds of a duration string (Istio `GetSeconds()`); undefined when absent or unparsable. */
export function durationSeconds(text: unknown): bigint | undefined {
  return duration(text)?.seconds;
}

/** Istio `translatePercentToFractionalPercent`: `value * 10000` per MILLION. */
export function percentToFractional(p: IstioPercent | undefined): FractionalPercent {
  return create(FractionalPercentSchema, {
    numerator: Math.trunc((num(p?.value) ?? 0) * 10000),
    denominator: FractionalPercent_DenominatorType.MILLION,
  });
}

/** Istio `translateIntegerToFractionalPercent`: an integer per HUNDRED. */
export function integerToFractional(p: number): FractionalPercent {
  return create(FractionalPercentSchema, {
    numerator: Math.trunc(p),
    denominator: FractionalPercent_DenominatorType.HUNDRED,
  });
}
