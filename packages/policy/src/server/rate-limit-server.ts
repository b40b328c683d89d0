import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import type { Server } from "@grpc/grpc-js";
import { HeaderValueSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  type RateLimitRequest,
  RateLimitRequestSchema,
  type RateLimitResponse,
  RateLimitResponse_Code,
  RateLimitResponse_DescriptorStatusSchema,
  RateLimitResponse_RateLimit_Unit,
  RateLimitResponse_RateLimitSchema,
  RateLimitResponseSchema,
  RateLimitService,
} from "@meshlet/api/envoy/service/ratelimit/v3/rls_pb";
import { RateLimitUnit as EnvoyUnit } from "@meshlet/api/envoy/type/v3/ratelimit_unit_pb";
import { type Logger, silentLogger } from "../logger.js";
import type { PolicyEngine } from "../policy-engine.js";
import { PolicyError } from "../policy-error.js";
import type { RateLimitUnit } from "../ratelimit/rate-limit-config.js";
import type { RateLimitCheck, RateLimitDecision } from "../ratelimit/rate-limiter.js";
import { type PolicyListenOptions, transportOptions } from "./ext-authz-server.js";
import { grpcServiceDefinition, type ListeningServer, listenGrpc, unaryHandler } from "./grpc-service.js";
import { listenUnaryGrpc } from "./unary-grpc-server.js";

/** `WEEK` (7) is newer than the generated enums: Envoy's rls.proto and ratelimit accept it. */
const WEEK = 7;
const FROM_ENVOY: Partial<Record<number, RateLimitUnit>> = {
  [EnvoyUnit.SECOND]: "second",
  [EnvoyUnit.MINUTE]: "minute",
  [EnvoyUnit.HOUR]: "hour",
  [EnvoyUnit.DAY]: "day",
  [WEEK]: "week",
  [EnvoyUnit.MONTH]: "month",
  [EnvoyUnit.YEAR]: "year",
};
const TO_ENVOY: Record<RateLimitUnit, RateLimitResponse_RateLimit_Unit> = {
  second: RateLimitResponse_RateLimit_Unit.SECOND,
  minute: RateLimitResponse_RateLimit_Unit.MINUTE,
  hour: RateLimitResponse_RateLimit_Unit.HOUR,
  day: RateLimitResponse_RateLimit_Unit.DAY,
  week: WEEK as RateLimitResponse_RateLimit_Unit,
  month: RateLimitResponse_RateLimit_Unit.MONTH,
  year: RateLimitResponse_RateLimit_Unit.YEAR,
};

/**
 * Converts Envoy's `RateLimitRequest` to a {@link RateLimitCheck}.
 * @throws PolicyError `invalid-attributes` when the domain is empty, a descriptor has no entries,
 *   or an override uses an unsupported unit.
 */
export function fromRateLimitRequest(req: RateLimitRequest): RateLimitCheck {
  if (!req.domain)
    throw new PolicyError(
      "invalid-attributes",
      "RateLimitRequest.domain is empty: set domain in Envoy's rate limit filter",
    );
  return {
    domain: req.domain,
    hitsAddend: req.hitsAddend,
    descriptors: req.descriptors.map((d, i) => {
      if (d.entries.length === 0) {
        throw new PolicyError("invalid-attributes", `RateLimitRequest.descriptors[${i}] has no entries`);
      }
      const entries = d.entries.map((e) => ({ key: e.key, value: e.value }));
      if (!d.limit) return { entries };
      const unit = FROM_ENVOY[d.limit.unit];
      if (!unit) {
        throw new PolicyError(
          "invalid-attributes",
          `RateLimitRequest.descriptors[${i}].limit.unit ${EnvoyUnit[d.limit.unit] ?? d.limit.unit} is not a unit (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, YEAR)`,
        );
      }
      return { entries, limit: { requestsPerUnit: d.limit.requestsPerUnit, unit } };
    }),
  };
}

/** Converts a {@link RateLimitDecision} to Envoy's `RateLimitResponse`. */
export function toRateLimitResponse(d: RateLimitDecision): RateLimitResponse {
  const code = (c: "OK" | "OVER_LIMIT") =>
    c === "OK" ? RateLimitResponse_Code.OK : RateLimitResponse_Code.OVER_LIMIT;
  return create(RateLimitResponseSchema, {
    overallCode: code(d.overallCode),
    statuses: d.statuses.map((s) =>
      create(RateLimitResponse_DescriptorStatusSchema, {
        code: code(s.code),
        limitRemaining: s.limitRemaining,
        ...(s.currentLimit && {
          currentLimit: create(RateLimitResponse_RateLimitSchema, {
            name: s.currentLimit.name ?? "",
            requestsPerUnit: s.currentLimit.requestsPerUnit,
            unit: TO_ENVOY[s.currentLimit.unit],
          }),
          durationUntilReset: create(DurationSchema, { seconds: BigInt(s.durationUntilResetSeconds) }),
        }),
      }),
    ),
    responseHeadersToAdd: Object.entries(d.headers).map(([key, value]) =>
      create(HeaderValueSchema, { key, value }),
    ),
  });
}

/** Options of {@link RateLimitServer}. */
export interface RateLimitServerOptions {
  engine: PolicyEngine;
  logger?: Logger;
  /** Send draft-03 `RateLimit-*` headers (default true). */
  rateLimitHeaders?: boolean;
}

/**
 * Envoy's global rate-limit service (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`)
 * over the engine's {@link RateLimiter}. Bad requests get `INVALID_ARGUMENT`.
 */
export class RateLimitServer {
  readonly #engine: PolicyEngine;
  readonly #logger: Logger;
  readonly #headers: boolean;

  constructor(options: RateLimitServerOptions) {
    this.#engine = options.engine;
    this.#logger = options.logger ?? silentLogger;
    this.#headers = options.rateLimitHeaders ?? true;
  }

  /** The `ShouldRateLimit` handler, usable without gRPC. */
  async shouldRateLimit(request: RateLimitRequest): Promise<RateLimitResponse> {
    const decision = await this.#engine.rateLimiter.shouldRateLimit(fromRateLimitRequest(request));
    return toRateLimitResponse(this.#headers ? decision : { ...decision, headers: {} });
  }

  /** Mounts the RateLimitService on an existing grpc-js server. */
  register(server: Server): void {
    server.addService(grpcServiceDefinition(RateLimitService), {
      shouldRateLimit: unaryHandler(
        (request: RateLimitRequest) => this.shouldRateLimit(request),
        this.#logger,
        "ShouldRateLimit",
      ),
    });
  }

  /** `ShouldRateLimit` on encoded bytes: what the HTTP/2 transport calls. */
  async shouldRateLimitBytes(request: Uint8Array): Promise<Uint8Array> {
    let decoded: RateLimitRequest;
    try {
      decoded = fromBinary(RateLimitRequestSchema, request);
    } catch (e) {
      throw new PolicyError(
        "invalid-attributes",
        `RateLimitRequest does not decode: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    return toBinary(RateLimitResponseSchema, await this.shouldRateLimit(decoded));
  }

  /**
   * Starts a server of its own (default `127.0.0.1:0`): the built-in HTTP/2 gRPC transport, or
   * grpc-js when `credentials` are given.
   */
  listen(options: PolicyListenOptions = {}): Promise<ListeningServer> {
    const address = options.address ?? "127.0.0.1:0";
    if (options.credentials) return listenGrpc((s) => this.register(s), address, options.credentials);
    return listenUnaryGrpc(
      new Map([
        [`/${RateLimitService.typeName}/ShouldRateLimit`, (b: Uint8Array) => this.shouldRateLimitBytes(b)],
      ]),
      address,
      transportOptions(options, this.#logger),
    );
  }
}
