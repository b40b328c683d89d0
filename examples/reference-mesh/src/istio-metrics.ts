import * as grpc from "@grpc/grpc-js";
import { createPrometheusReportAdapter } from "@meshlet/adapters/prometheus";
import type { RequestReport } from "@meshlet/policy";
import type { Registry } from "prom-client";
import { type PeerMetadata, readPeerMetadata, writePeerMetadata } from "./peer-metadata.js";

// Istio's standard metrics (istio.io docs/reference/config/metrics, istio/istio.io
// content/en/docs/reference/config/metrics/index.md), recorded by gRPC interceptors because
// proxyless gRPC has no Envoy to record them: each finished request becomes a `RequestReport`
// (reported by the client, `reporter="source"`, and by the server, `reporter="destination"`) for
// @meshlet/adapters' Prometheus report adapter, which keeps `istio_requests_total` (COUNTER) and
// `istio_request_duration_milliseconds` (DISTRIBUTION) with Istio's labels and buckets.

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

/** What one finished request was: the input of {@link requestReport}. */
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
  readonly durationMs: number;
}

const withoutScheme = (principal: string | undefined) => principal?.replace(/^spiffe:\/\//, "");

/**
 * The report of one request, with the values Istio's stats plugin gives: workload, app and version
 * from the metadata exchange, principals from the certificates (the local one only when the
 * request went over mTLS), `connection_security_policy` `mutual_tls`/`none` when the destination
 * reports and `unknown` when the source does, protocol `grpc`, response code `200` (gRPC carries
 * its errors in `grpc-status` on an HTTP 200 response) and the gRPC status.
 */
export function requestReport(local: LocalWorkload, outcome: RequestOutcome): RequestReport {
  const me = { metadata: local.metadata, principal: outcome.mtls ? local.principal : undefined };
  const peer = { metadata: outcome.peer, principal: outcome.peerPrincipal };
  const [source, destination] = outcome.reporter === "source" ? [me, peer] : [peer, me];
  const side = (s: typeof me | typeof peer) => ({
    ...(withoutScheme(s.principal) !== undefined ? { principal: withoutScheme(s.principal) } : {}),
    ...(s.metadata?.namespace ? { namespace: s.metadata.namespace } : {}),
    ...(s.metadata !== undefined ? { labels: { ...s.metadata.labels } } : {}),
  });
  const canonical = (m: PeerMetadata | undefined) =>
    m?.labels["service.istio.io/canonical-name"] ?? m?.labels.app;
  const report: RequestReport = {
    attributes: { source: side(source), destination: side(destination) },
    reporter: outcome.reporter,
    protocol: "grpc",
    responseCode: 200,
    grpcResponseStatus: String(outcome.grpcStatus),
    responseFlags: outcome.responseFlags,
    durationMs: outcome.durationMs,
    destinationService: outcome.serviceHost,
    destinationServiceName: outcome.serviceHost.split(".")[0] ?? outcome.serviceHost,
    connectionSecurityPolicy:
      outcome.reporter === "source" ? "unknown" : outcome.mtls ? "mutual_tls" : "none",
  };
  const optional: Partial<RequestReport> = {
    sourceWorkload: source.metadata?.workload || undefined,
    sourceApp: source.metadata?.labels.app,
    sourceVersion: source.metadata?.labels.version,
    sourceCanonicalService: canonical(source.metadata),
    destinationWorkload: destination.metadata?.workload || undefined,
    destinationApp: destination.metadata?.labels.app,
    destinationVersion: destination.metadata?.labels.version,
    destinationCanonicalService: canonical(destination.metadata),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(report, { [k]: v });
  return report;
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
  readonly #adapter: ReturnType<typeof createPrometheusReportAdapter>;
  readonly #local: LocalWorkload;

  constructor(local: LocalWorkload) {
    this.#local = local;
    this.#adapter = createPrometheusReportAdapter({ cluster: local.metadata.cluster || "Kubernetes" });
  }

  /** The Prometheus registry to serve at /metrics. */
  get registry(): Registry {
    return this.#adapter.registry;
  }

  /** Records one request. */
  record(outcome: Omit<RequestOutcome, "durationMs">, ms: number): void {
    // The adapter records synchronously; its promise only says it is done.
    void this.#adapter.report([requestReport(this.#local, { ...outcome, durationMs: ms })], {
      signal: new AbortController().signal,
    });
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
              serviceHost: this.#local.serviceHost ?? "unknown",
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
