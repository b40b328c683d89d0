import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type ClientStatusRequest,
  ClientStatusRequestSchema,
  type ClientStatusResponse,
  ClientStatusResponseSchema,
} from "@meshlet/api/envoy/service/status/v3/csds_pb";
import { XdsError } from "../errors.js";
import { AuthorizationGate, type Refusal } from "./authorize.js";
import type { CallHandler, ServerCall } from "./call.js";
import { GrpcStatus } from "./grpc-status.js";
import type { Logger } from "./logger.js";
import { GRPC_PREFIX } from "./responses.js";

const SERVICE = "envoy.service.status.v3.ClientStatusDiscoveryService";

/** gRPC paths of CSDS (envoyproxy/envoy api/envoy/service/status/v3/csds.proto). */
export const csdsPaths = {
  stream: `/${SERVICE}/StreamClientStatus`,
  fetch: `/${SERVICE}/FetchClientStatus`,
} as const;

/** What a CSDS call needs from its server. */
export interface CsdsContext {
  readonly logger: Logger;
  /** The status of the nodes a request selects; throws XdsError on a request it cannot serve. */
  status(request: ClientStatusRequest): ClientStatusResponse;
  /** Decides on the call from its first request (undefined: no hook, allowed at once). */
  authorize(request: ClientStatusRequest, call: ServerCall): Promise<Refusal | undefined> | undefined;
}

/**
 * One CSDS call: StreamClientStatus answers every request with the status it selects;
 * FetchClientStatus answers its one request and ends.
 */
export function csdsCall(call: ServerCall, ctx: CsdsContext, unary: boolean): CallHandler {
  let done = false;
  let received = false;
  const respond = (request: ClientStatusRequest) => {
    if (done) return;
    let response: ClientStatusResponse;
    try {
      response = ctx.status(request);
    } catch (err) {
      done = true;
      const message = err instanceof Error ? err.message : String(err);
      if (!(err instanceof XdsError)) ctx.logger.error("xds: CSDS request failed", { error: err });
      call.finish(err instanceof XdsError ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.INTERNAL, message);
      return;
    }
    call.write(frame(toBinary(ClientStatusResponseSchema, response)), () => {});
    if (unary) {
      done = true;
      call.finish(GrpcStatus.OK, "");
    }
  };
  const gate = new AuthorizationGate<ClientStatusRequest>(
    (first) => ctx.authorize(first, call),
    respond,
    (refusal) => {
      done = true;
      call.finish(refusal.code, refusal.message);
    },
  );
  return {
    message(bytes, ephemeral) {
      if (done || (unary && received)) return;
      received = true;
      let request: ClientStatusRequest;
      try {
        request = fromBinary(
          ClientStatusRequestSchema,
          ephemeral ? Uint8Array.prototype.slice.call(bytes) : bytes,
        );
      } catch (err) {
        done = true;
        call.finish(
          GrpcStatus.INVALID_ARGUMENT,
          `cannot decode a ClientStatusRequest: ${err instanceof Error ? err.message : String(err)}`,
        );
        return;
      }
      gate.push(request);
    },
    end() {
      // A unary call ends once its request is answered; a stream when the client is done.
      if (done || (unary && received)) return;
      done = true;
      if (unary) call.finish(GrpcStatus.INVALID_ARGUMENT, "FetchClientStatus takes one ClientStatusRequest");
      else call.finish(GrpcStatus.OK, "");
    },
    close() {
      done = true;
      gate.close();
    },
  };
}

/** A message behind its 5-byte gRPC prefix. */
function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(GRPC_PREFIX + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, GRPC_PREFIX);
  return out;
}

/** An empty request, for the server's own `clientStatus()`. */
export const allNodes = (): ClientStatusRequest => create(ClientStatusRequestSchema);
