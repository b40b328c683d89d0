import * as grpc from "@grpc/grpc-js";
import { Counter, Histogram, Registry } from "prom-client";
import { type PeerMetadata, readPeerMetadata, writePeerMetadata } from "./peer-metadata.js";

// Istio's standard metrics (istio.io docs/reference/config/metrics, istio/istio.io
// content/en/docs/reference/config/metrics/index.md), recorded by gRPC interceptors because
// proxyless gRPC has no Envoy to record them: `istio_requests_total` (COUNTER) and
// `istio_request_duration_milliseconds` (DISTRIBUTION) with Istio's labels, reported by the client
// (`reporter="source"`) and by the server (`reporter="destination"`). The histogram has the buckets
// Envoy's Prometheus histograms have by default, which Istio's are (envoyproxy/envoy
// source/common/stats/histogram_impl.cc `supportedBuckets`).

/** Envoy's default histogram buckets, in milliseconds. */
export const ISTIO_DURATION_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
] as const;

/** The labels of Istio's request metrics, in the order of Istio's docs. */
export const ISTIO_REQUEST_LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;

export type IstioRequestLabel = (typeof ISTIO_REQUEST_LABELS)[number];
export type IstioRequestLabels = Record<IstioRequestLabel, string>;

/** This workload, as its metrics name it. */
export interface LocalWorkload {
  /** The xDS node id (sent as `x-envoy-peer-metadata-id`). */
  readonly nodeId: string;
  readonly metadata: PeerMetadata;
  /** Its SPIFFE ID (from its own certificate). */
  readonly principal: string;
  /** The Service host it serves (`reviews.default.svc.cluster.local`), for servers. */
  readonly serviceHost?: string;
}

/** What one finished request was: the input of {@link requestLabels}. */
export interface RequestOutcome {
  readonly reporter: "source" | "destination";
  /** The other side's metadata, when the exchange gave it. */
  readonly peer?: PeerMetadata;
  /** The other side's SPIFFE ID, from the certificate this side verified (mTLS only). */
  readonly peerPrincipal?: string;
  /** Whether the request went over mTLS (a peer certificate was verified). */
  readonly mtls: boolean;
  /** The Service host the request was for. */
  readonly serviceHost: string;
  readonly grpcStatus: number;
  /** Envoy `%RESPONSE_FLAGS%`: `-`, `FI` (fault injected), `RL` (rate limited). */
  readonly responseFlags: string;
}

const UNKNOWN = "unknown";

/**
 * Istio's label values for one request (the stats plugin's rules): workload, app and version from
 * the metadata exchange, principals from the certificates (the local one only when the request
 * went over mTLS), `connection_security_policy` `mutual_tls`/`none` when the destination reports
 * and `unknown` when the source does, `request_protocol` `grpc`, `response_code` `200` (gRPC
 * carries its errors in `grpc-status` on an HTTP 200 response).
 */
export function requestLabels(local: LocalWorkload, outcome: RequestOutcome): IstioRequestLabels {
  const side = (m: PeerMetadata | undefined, principal: string | undefined) => ({
    workload: m?.workload || UNKNOWN,
    namespace: m?.namespace || UNKNOWN,
    principal: principal ?? UNKNOWN,
    app: m?.labels.app ?? UNKNOWN,
    version: m?.labels.version ?? UNKNOWN,
    canonicalService: m?.labels["service.istio.io/canonical-name"] ?? m?.labels.app ?? UNKNOWN,
    canonicalRevision: m?.labels["service.istio.io/canonical-revision"] ?? m?.labels.version ?? "latest",
    cluster: m?.cluster || UNKNOWN,
  });
  const me = side(local.metadata, outcome.mtls ? local.principal : undefined);
  const peer = side(outcome.peer, outcome.peerPrincipal);
  const [source, destination] = outcome.reporter === "source" ? [me, peer] : [peer, me];
  const [serviceName = UNKNOWN, serviceNamespace = UNKNOWN] = outcome.serviceHost.split(".");
  return {
    reporter: outcome.reporter,
    source_workload: source.workload,
    source_workload_namespace: source.namespace,
    source_principal: source.principal,
    source_app: source.app,
    source_version: source.version,
    source_canonical_service: source.canonicalService,
    source_canonical_revision: source.canonicalRevision,
    source_cluster: source.cluster,
    destination_workload: destination.workload,
    destination_workload_namespace: destination.namespace,
    destination_principal: destination.principal,
    destination_app: destination.app,
    destination_version: destination.version,
    destination_service: outcome.serviceHost,
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_canonical_service: destination.canonicalService,
    destination_canonical_revision: destination.canonicalRevision,
    destination_cluster: destination.cluster,
    request_protocol: "grpc",
    response_code: "200",
    grpc_response_status: String(outcome.grpcStatus),
    response_flags: outcome.responseFlags,
    connection_security_policy:
      outcome.reporter === "source" ? UNKNOWN : outcome.mtls ? "mutual_tls" : "none",
  };
}

/** The URI SAN of a verified peer certificate (its SPIFFE ID). */
export function peerPrincipal(
  auth: { readonly sslPeerCertificate?: { readonly subjectaltname?: string } } | null | undefined,
): string | undefined {
  const san = auth?.sslPeerCertificate?.subjectaltname;
  if (typeof san !== "string") return undefined;
  const uri = san
    .split(",")
    .map((s) => s.trim())
    .find((s) => s.startsWith("URI:"));
  return uri?.slice(4);
}

/** Envoy's ratelimit filter marks the responses it refused with this header. */
export const RATE_LIMITED_HEADER = "x-envoy-ratelimited";
/** What grpc-js-xds's fault filter answers an aborted call with. */
const FAULT_DETAILS = "Fault injected";

/** A workload's Istio metrics and the interceptors that record them. */
export class IstioMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<IstioRequestLabel>;
  readonly #duration: Histogram<IstioRequestLabel>;
  readonly #local: LocalWorkload;

  constructor(local: LocalWorkload) {
    this.#local = local;
    this.#requests = new Counter({
      name: "istio_requests_total",
      help: "Requests handled, Istio's standard metric.",
      labelNames: ISTIO_REQUEST_LABELS,
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: "istio_request_duration_milliseconds",
      help: "Request durations in milliseconds, Istio's standard metric.",
      labelNames: ISTIO_REQUEST_LABELS,
      buckets: [...ISTIO_DURATION_BUCKETS],
      registers: [this.registry],
    });
  }

  /** Records one request. */
  record(outcome: RequestOutcome, ms: number): void {
    const labels = requestLabels(this.#local, outcome);
    this.#requests.inc(labels);
    this.#duration.observe(labels, ms);
  }

  /** A client interceptor for calls to `serviceHost` (reporter `source`), with the metadata exchange. */
  clientInterceptor(serviceHost: string): grpc.Interceptor {
    return (options, nextCall) => {
      const started = performance.now();
      let peer: PeerMetadata | undefined;
      let call: grpc.InterceptingCall | undefined;
      const requester = new grpc.RequesterBuilder()
        .withStart((metadata, listener, next) => {
          writePeerMetadata(metadata, this.#local.nodeId, this.#local.metadata);
          next(
            metadata,
            new grpc.ListenerBuilder()
              .withOnReceiveMetadata((md, mdNext) => {
                peer = readPeerMetadata(md);
                mdNext(md);
              })
              .withOnReceiveStatus((status, statusNext) => {
                peer ??= readPeerMetadata(status.metadata);
                const principal = peerPrincipal(call?.getAuthContext());
                const flags =
                  status.metadata.get(RATE_LIMITED_HEADER).length > 0
                    ? "RL"
                    : status.code !== grpc.status.OK && status.details === FAULT_DETAILS
                      ? "FI"
                      : "-";
                this.record(
                  {
                    reporter: "source",
                    ...(peer !== undefined ? { peer } : {}),
                    ...(principal !== undefined ? { peerPrincipal: principal } : {}),
                    mtls: principal !== undefined,
                    serviceHost,
                    grpcStatus: status.code,
                    responseFlags: flags,
                  },
                  performance.now() - started,
                );
                statusNext(status);
              })
              .build(),
          );
          void listener;
        })
        .build();
      call = new grpc.InterceptingCall(nextCall(options), requester);
      return call;
    };
  }

  /** A server interceptor (reporter `destination`), with the metadata exchange. */
  readonly serverInterceptor: grpc.ServerInterceptor = (_method, call) => {
    const started = performance.now();
    let peer: PeerMetadata | undefined;
    let headersSent = false;
    return new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder()
        .withStart((next) =>
          next(
            new grpc.ServerListenerBuilder()
              .withOnReceiveMetadata((md, mdNext) => {
                peer = readPeerMetadata(md);
                mdNext(md);
              })
              .build(),
          ),
        )
        .withSendMetadata((md, next) => {
          writePeerMetadata(md, this.#local.nodeId, this.#local.metadata);
          headersSent = true;
          next(md);
        })
        .withSendStatus((status, next) => {
          // A trailers-only answer (an error before any message) carries the exchange in the trailers.
          const metadata = status.metadata ?? new grpc.Metadata();
          if (!headersSent) writePeerMetadata(metadata, this.#local.nodeId, this.#local.metadata);
          const principal = peerPrincipal(call.getAuthContext());
          this.record(
            {
              reporter: "destination",
              ...(peer !== undefined ? { peer } : {}),
              ...(principal !== undefined ? { peerPrincipal: principal } : {}),
              mtls: principal !== undefined,
              serviceHost: this.#local.serviceHost ?? UNKNOWN,
              grpcStatus: status.code,
              responseFlags: metadata.get(RATE_LIMITED_HEADER).length > 0 ? "RL" : "-",
            },
            performance.now() - started,
          );
          next({ ...status, metadata });
        })
        .build(),
    );
  };
}
