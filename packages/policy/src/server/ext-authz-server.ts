import type http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Server, type ServerCredentials, status } from "@grpc/grpc-js";
import {
  HeaderValueOption_HeaderAppendAction,
  HeaderValueOptionSchema,
  HeaderValueSchema,
} from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  Authorization,
  type CheckRequest,
  CheckRequestSchema,
  type CheckResponse,
  CheckResponseSchema,
  DeniedHttpResponseSchema,
  OkHttpResponseSchema,
} from "@meshlet/api/envoy/service/auth/v3/external_auth_pb";
import { HttpStatusSchema, type StatusCode } from "@meshlet/api/envoy/type/v3/http_status_pb";
import { StatusSchema } from "@meshlet/api/google/rpc/status_pb";
import {
  type Attributes,
  attributesFromCheckRequest,
  CONTEXT_EXTENSION_LABELS,
  CONTEXT_EXTENSION_NAMESPACE,
} from "../attributes.js";
import type { Decision } from "../decision.js";
import { type Logger, silentLogger } from "../logger.js";
import type { PolicyEngine } from "../policy-engine.js";
import { PolicyError } from "../policy-error.js";
import { grpcServiceDefinition, type ListeningServer, listenGrpc, unaryHandler } from "./grpc-service.js";
import { listenUnaryGrpc, type UnaryGrpcServerOptions } from "./unary-grpc-server.js";

/** Options of {@link ExtAuthzServer}. */
export interface ExtAuthzServerOptions {
  engine: PolicyEngine;
  logger?: Logger;
  /**
   * Adjusts the attributes built from the request; trusted code (it may, for example, set the
   * workload from another trusted source). Runs before the workload check.
   */
  enrich?: (attributes: Attributes, request: CheckRequest) => Attributes;
  /**
   * Proxies in front of Envoy trusted to append to `x-forwarded-for` (Envoy's
   * `xff_num_trusted_hops`); unset: `remote.ip` is the direct peer and no forwarded-address header
   * is read. See {@link attributesFromCheckRequest}.
   */
  xffNumTrustedHops?: number;
}

/** Options of `listen()`. */
export interface PolicyListenOptions {
  /** `host:port` (default `127.0.0.1:0`). */
  address?: string;
  /** TLS for the built-in HTTP/2 transport (`key`, `cert`, `ca`, `requestCert` …). */
  tls?: http2.SecureServerOptions;
  /**
   * Serve with `@grpc/grpc-js` and these credentials instead of the built-in HTTP/2 transport
   * (slower; for grpc-js features such as its channelz or interceptors).
   */
  credentials?: ServerCredentials;
  logger?: Logger;
  /** Largest request message the built-in transport accepts, bytes (default 4 MiB). */
  maxReceiveMessageBytes?: number;
}

/** The built-in transport's options from `listen()`'s. */
export function transportOptions(options: PolicyListenOptions, logger: Logger): UnaryGrpcServerOptions {
  return {
    logger: options.logger ?? logger,
    ...(options.tls && { tls: options.tls }),
    ...(options.maxReceiveMessageBytes !== undefined && {
      maxReceiveMessageBytes: options.maxReceiveMessageBytes,
    }),
  };
}

function isEmpty(o: Record<string, string>): boolean {
  for (const _ in o) return false;
  return true;
}

function headerOptions(headers: Record<string, string>) {
  return Object.entries(headers).map(([key, value]) =>
    create(HeaderValueOptionSchema, {
      header: create(HeaderValueSchema, { key, value }),
      appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    }),
  );
}

function denied(
  code: number,
  reason: string,
  httpStatus: number,
  body: string,
  metadata: object,
): CheckResponse {
  return create(CheckResponseSchema, {
    status: create(StatusSchema, { code, message: reason }),
    httpResponse: {
      case: "deniedResponse",
      value: create(DeniedHttpResponseSchema, {
        status: create(HttpStatusSchema, { code: httpStatus as StatusCode }),
        body,
      }),
    },
    dynamicMetadata: metadata as CheckResponse["dynamicMetadata"],
  });
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
  const res = denied(
    d.reason === "jwt-invalid" ? status.UNAUTHENTICATED : status.PERMISSION_DENIED,
    d.reason,
    d.status,
    d.body,
    metadata,
  );
  if (res.httpResponse.case === "deniedResponse")
    res.httpResponse.value.headers = headerOptions(d.responseHeaders);
  return res;
}

/**
 * Envoy's external authorization service (`envoy.service.auth.v3.Authorization/Check`) backed by
 * a {@link PolicyEngine}. It decides on what Envoy asserts only: the workload comes from the
 * context extensions the mesh sets ({@link CONTEXT_EXTENSION_NAMESPACE},
 * {@link CONTEXT_EXTENSION_LABELS}) and a request without them is denied; client headers never
 * name the original client unless `xffNumTrustedHops` says which to trust. A malformed request
 * gets `INVALID_ARGUMENT`, an internal failure `INTERNAL`; the server keeps serving everyone else.
 */
export class ExtAuthzServer {
  readonly #engine: PolicyEngine;
  readonly #logger: Logger;
  readonly #enrich: ((a: Attributes, r: CheckRequest) => Attributes) | undefined;
  readonly #hops: number | undefined;
  readonly #encoded = new Map<string, Uint8Array>();

  constructor(options: ExtAuthzServerOptions) {
    this.#engine = options.engine;
    this.#logger = options.logger ?? silentLogger;
    this.#enrich = options.enrich;
    const hops = options.xffNumTrustedHops;
    if (hops !== undefined && (!Number.isInteger(hops) || hops < 0)) {
      throw new PolicyError("invalid-argument", `xffNumTrustedHops must be an integer >= 0, got ${hops}`);
    }
    this.#hops = hops;
  }

  /** The `Check` handler, usable without gRPC (tests, other transports). */
  async check(request: CheckRequest): Promise<CheckResponse> {
    const r = await this.#decide(request);
    return "allowed" in r ? toCheckResponse(r) : r;
  }

  /** The engine's decision, or the denial of a request that names no workload. */
  async #decide(request: CheckRequest): Promise<Decision | CheckResponse> {
    let attrs: Attributes;
    try {
      attrs = attributesFromCheckRequest(request, {
        ...(this.#hops !== undefined && { xffNumTrustedHops: this.#hops }),
      });
    } catch (e) {
      if (e instanceof PolicyError && e.code === "missing-workload")
        return this.#missingWorkload(e.rawMessage);
      throw e;
    }
    if (this.#enrich) attrs = this.#enrich(attrs, request);
    const dst = attrs.destination;
    if (typeof dst?.namespace !== "string" || dst.namespace === "" || dst.labels === undefined) {
      return this.#missingWorkload(
        `the request names no workload: Envoy's ext_authz context_extensions must carry ${CONTEXT_EXTENSION_NAMESPACE} and ${CONTEXT_EXTENSION_LABELS}`,
      );
    }
    return this.#engine.check(attrs);
  }

  #missingWorkload(why: string): CheckResponse {
    this.#logger.warn(`ext_authz: denied: ${why}`);
    return denied(status.PERMISSION_DENIED, "missing-workload", 403, "RBAC: access denied", {
      reason: "missing-workload",
    });
  }

  /** `Check` on encoded bytes: what the HTTP/2 transport calls. */
  async checkBytes(request: Uint8Array): Promise<Uint8Array> {
    let decoded: CheckRequest;
    try {
      decoded = fromBinary(CheckRequestSchema, request);
    } catch (e) {
      throw new PolicyError("invalid-attributes", `CheckRequest does not decode: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const r = await this.#decide(decoded);
    if (!("allowed" in r)) return toBinary(CheckResponseSchema, r);
    // Serialize once: an answer without header mutations depends only on these fields, and
    // most requests of a workload share a handful of them.
    const plain =
      r.removeRequestHeaders.length === 0 && isEmpty(r.requestHeaders) && isEmpty(r.responseHeaders);
    if (!plain) return toBinary(CheckResponseSchema, toCheckResponse(r));
    const key = `${r.allowed}\u0000${r.reason}\u0000${r.matched?.policy}\u0000${r.matched?.rule}\u0000${r.audited}\u0000${r.status}\u0000${r.body}`;
    let bytes = this.#encoded.get(key);
    if (!bytes) {
      bytes = toBinary(CheckResponseSchema, toCheckResponse(r));
      if (this.#encoded.size >= 4096) this.#encoded.clear();
      this.#encoded.set(key, bytes);
    }
    return bytes;
  }

  /** Mounts the Authorization service on an existing grpc-js server. */
  register(server: Server): void {
    server.addService(grpcServiceDefinition(Authorization), {
      check: unaryHandler((request: CheckRequest) => this.check(request), this.#logger, "ext_authz Check"),
    });
  }

  /**
   * Starts a server of its own (default `127.0.0.1:0`): the built-in HTTP/2 gRPC transport, or
   * grpc-js when `credentials` are given.
   */
  listen(options: PolicyListenOptions = {}): Promise<ListeningServer> {
    const address = options.address ?? "127.0.0.1:0";
    if (options.credentials) return listenGrpc((s) => this.register(s), address, options.credentials);
    return listenUnaryGrpc(
      new Map([[`/${Authorization.typeName}/Check`, (b: Uint8Array) => this.checkBytes(b)]]),
      address,
      transportOptions(options, this.#logger),
    );
  }
}
