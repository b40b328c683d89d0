import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  RateLimitDescriptor_EntrySchema,
  RateLimitDescriptorSchema,
} from "@meshlet/api/envoy/extensions/common/ratelimit/v3/ratelimit_pb";
import {
  RateLimitRequestSchema,
  RateLimitResponse_Code,
  RateLimitResponseSchema,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { RATE_LIMITED_HEADER } from "./istio-metrics.js";

// Global rate limiting for a proxyless gRPC server. gRPC has no ratelimit HTTP filter (gRFC A27's
// filters are fault, RBAC and router), so this server interceptor does what Envoy's
// `envoy.filters.http.ratelimit` does with the configuration of Istio's rate-limit task
// (istio.io docs/tasks/policy-enforcement/rate-limit): for each inbound request it asks the
// rate-limit service (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit — here meshlet's
// RateLimitServer in the control plane) about the descriptor `PATH` = the request's `:path`, in
// domain `ratelimit`. OVER_LIMIT refuses the request with RESOURCE_EXHAUSTED (Envoy's
// `rate_limited_as_resource_exhausted`) and the header `x-envoy-ratelimited`; an unreachable
// service lets it through (Envoy's default, `failure_mode_deny: false`).

const SHOULD_RATE_LIMIT = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
/** The domain of Istio's rate-limit task. */
export const RATE_LIMIT_DOMAIN = "ratelimit";

/** A server interceptor asking `address`'s RateLimitService about every request. */
export function rateLimitInterceptor(address: string, timeoutMs = 1000): grpc.ServerInterceptor {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const ask = (path: string) =>
    new Promise<RateLimitResponse_Code>((resolve) => {
      const request = create(RateLimitRequestSchema, {
        domain: RATE_LIMIT_DOMAIN,
        descriptors: [
          create(RateLimitDescriptorSchema, {
            entries: [create(RateLimitDescriptor_EntrySchema, { key: "PATH", value: path })],
          }),
        ],
      });
      client.makeUnaryRequest(
        SHOULD_RATE_LIMIT,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(toBinary(RateLimitRequestSchema, request)),
        { deadline: Date.now() + timeoutMs },
        (error, response) => {
          if (error || response === undefined) resolve(RateLimitResponse_Code.UNKNOWN);
          else resolve(fromBinary(RateLimitResponseSchema, response).overallCode);
        },
      );
    });
  return (method, call) =>
    new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder()
        .withStart((next) =>
          next(
            new grpc.ServerListenerBuilder()
              .withOnReceiveMetadata((metadata, mdNext) => {
                void ask(method.path).then((code) => {
                  if (code !== RateLimitResponse_Code.OVER_LIMIT) {
                    mdNext(metadata);
                    return;
                  }
                  const trailers = new grpc.Metadata();
                  trailers.set(RATE_LIMITED_HEADER, "true");
                  call.sendStatus({
                    code: grpc.status.RESOURCE_EXHAUSTED,
                    details: "rate limited (RateLimitService: OVER_LIMIT)",
                    metadata: trailers,
                  });
                });
              })
              .build(),
          ),
        )
        .build(),
    );
}
