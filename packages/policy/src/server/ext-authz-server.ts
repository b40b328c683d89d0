import { create } from "@bufbuild/protobuf";
import { type Server, ServerCredentials, status } from "@grpc/grpc-js";
import {
  HeaderValueOption_HeaderAppendAction,
  HeaderValueOptionSchema,
  HeaderValueSchema,
} from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  Authorization,
  type CheckRequest,
  type CheckResponse,
  CheckResponseSchema,
  DeniedHttpResponseSchema,
  OkHttpResponseSchema,
} from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { HttpStatusSchema, type StatusCode } from "@meshlet/api/envoy/type/v3/http_status_pb";
import { StatusSchema } from "@meshlet/api/google/rpc/status_pb";
import { type Attributes, attributesFromCheckRequest } from "../attributes.js";
import type { Decision } from "../decision.js";
import { type Logger, silentLogger } from "../logger.js";
import type { PolicyEngine } from "../policy-engine.js";
import { grpcServiceDefinition, type ListeningServer, listenGrpc, unaryHandler } from "./grpc-service.js";

/** Options of {@link ExtAuthzServer}. */
export interface ExtAuthzServerOptions {
  engine: PolicyEngine;
  logger?: Logger;
  /** Adjusts attributes built from the request (e.g. set the workload's namespace and labels). */
  enrich?: (attributes: Attributes, request: CheckRequest) => Attributes;
}

function headerOptions(headers: Record<string, string>) {
  return Object.entries(headers).map(([key, value]) =>
    create(HeaderValueOptionSchema, {
      header: create(HeaderValueSchema, { key, value }),
      appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    }),
  );
}

/** Turns a decision into Envoy's ext_authz answer (OK with header mutations, or Denied). */
export function toCheckResponse(d: Decision): CheckResponse {
  const metadata = {
    reason: d.reason,
    ...(d.matched && { policy: d.matched.policy, rule: d.matched.rule }),
    ...(d.audited && { audited: true }),
  };
  if (d.allowed) {
    return create(CheckResponseSchema, {
      status: create(StatusSchema, { code: status.OK }),
      httpResponse: {
        case: "okResponse",
        value: create(OkHttpResponseSchema, {
          headers: headerOptions(d.requestHeaders),
          headersToRemove: d.removeRequestHeaders,
          responseHeadersToAdd: headerOptions(d.responseHeaders),
        }),
      },
      dynamicMetadata: metadata,
    });
  }
  return create(CheckResponseSchema, {
    status: create(StatusSchema, {
      code: d.reason === "jwt-invalid" ? status.UNAUTHENTICATED : status.PERMISSION_DENIED,
      message: d.reason,
    }),
    httpResponse: {
      case: "deniedResponse",
      value: create(DeniedHttpResponseSchema, {
        status: create(HttpStatusSchema, { code: d.status as StatusCode }),
        headers: headerOptions(d.responseHeaders),
        body: d.body,
      }),
    },
    dynamicMetadata: metadata,
  });
}

/**
 * Envoy's external authorization service (`envoy.service.auth.v3.Authorization/Check`) backed by
 * a {@link PolicyEngine}. A malformed request gets `INVALID_ARGUMENT`, an internal failure
 * `INTERNAL`; the server keeps serving everyone else.
 */
export class ExtAuthzServer {
  readonly #engine: PolicyEngine;
  readonly #logger: Logger;
  readonly #enrich: ((a: Attributes, r: CheckRequest) => Attributes) | undefined;

  constructor(options: ExtAuthzServerOptions) {
    this.#engine = options.engine;
    this.#logger = options.logger ?? silentLogger;
    this.#enrich = options.enrich;
  }

  /** The `Check` handler, usable without gRPC (tests, other transports). */
  async check(request: CheckRequest): Promise<CheckResponse> {
    let attrs = attributesFromCheckRequest(request);
    if (this.#enrich) attrs = this.#enrich(attrs, request);
    return toCheckResponse(await this.#engine.check(attrs));
  }

  /** Mounts the Authorization service on an existing grpc-js server. */
  register(server: Server): void {
    server.addService(grpcServiceDefinition(Authorization), {
      check: unaryHandler((request: CheckRequest) => this.check(request), this.#logger, "ext_authz Check"),
    });
  }

  /** Starts a gRPC server of its own (default `127.0.0.1:0`, insecure). */
  listen(options: { address?: string; credentials?: ServerCredentials } = {}): Promise<ListeningServer> {
    return listenGrpc(
      (s) => this.register(s),
      options.address ?? "127.0.0.1:0",
      options.credentials ?? ServerCredentials.createInsecure(),
    );
  }
}
