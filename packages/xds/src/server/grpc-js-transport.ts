import { X509Certificate } from "node:crypto";
import type http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import type { CallHandler, ServerCall } from "./call.js";
import { GrpcStatus } from "./grpc-status.js";
import type { Logger } from "./logger.js";
import type { ResetBudget } from "./reset-budget.js";
import { GRPC_PREFIX } from "./responses.js";

/** One method to mount on a grpc-js Server. */
export interface GrpcJsMethod {
  /** Full path, e.g. /envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources. */
  readonly path: string;
  readonly kind: "bidi" | "unary";
  readonly open: (call: ServerCall) => CallHandler;
}

const identity = (b: Buffer) => b;
const passBytes = (b: Buffer | Uint8Array) =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * Mounts services on a `@grpc/grpc-js` Server (the register() path, and listen() with transport
 * "grpc-js"): each call is handed over as a {@link ServerCall}, as meshlet's own transport does.
 * Messages travel as bytes; the services decode them.
 */
export function mountOnGrpcJs(
  server: grpc.Server,
  services: ReadonlyMap<string, readonly GrpcJsMethod[]>,
  options: { readonly logger: Logger; readonly resets: ResetBudget },
): void {
  for (const methods of services.values()) {
    // biome-ignore lint/suspicious/noExplicitAny: grpc-js method definitions are untyped here; messages are bytes.
    const definition: Record<string, grpc.MethodDefinition<any, any>> = {};
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const method of methods) {
      const key = method.path.slice(method.path.lastIndexOf("/") + 1);
      definition[key] = {
        path: method.path,
        requestStream: method.kind === "bidi",
        responseStream: method.kind === "bidi",
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: passBytes,
        responseDeserialize: identity,
      };
      handlers[key] =
        method.kind === "bidi"
          ? (call: grpc.ServerDuplexStream<Buffer, Buffer>) => serveBidi(call, method, options)
          : (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
              serveUnary(call, callback, method, options);
    }
    server.addService(definition, handlers);
  }
}

type AnyCall = grpc.ServerDuplexStream<Buffer, Buffer> | grpc.ServerUnaryCall<Buffer, Buffer>;

function callInfo(call: AnyCall): Pick<ServerCall, "peer" | "metadata" | "peerCertificate"> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.metadata.getMap())) {
    if (name === "user-agent") continue;
    metadata[name] = Buffer.isBuffer(value) ? value.toString("base64") : value;
  }
  // grpc-js shows the certificate only when TLS verified it (socket.authorized).
  const raw = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  return { peer: call.getPeer(), metadata, peerCertificate: raw ? new X509Certificate(raw) : undefined };
}

function serveBidi(
  call: grpc.ServerDuplexStream<Buffer, Buffer>,
  method: GrpcJsMethod,
  options: { readonly logger: Logger; readonly resets: ResetBudget },
): void {
  const stream = http2StreamOf(call);
  if (stream) options.resets.track(stream);
  else options.resets.untracked("grpc-js call");
  let finished = false;
  const serverCall: ServerCall = {
    ...callInfo(call),
    // grpc-js frames (and copies) each message itself: give it the message without our prefix.
    write: (framed, done) => {
      if (finished || call.cancelled || call.destroyed) {
        process.nextTick(done);
        return;
      }
      call.write(framed.subarray(GRPC_PREFIX), done);
    },
    finish: (code, details) => {
      if (finished) return;
      finished = true;
      if (code === GrpcStatus.OK) call.end();
      else call.emit("error", { code, details, metadata: new grpc.Metadata() });
    },
  };
  const handler = method.open(serverCall);
  call.on("data", (bytes: Buffer) => {
    // Inside grpc-js's own event listener: a throw here would be an uncaught exception that
    // takes the server down. End the call instead (as the built-in transport does).
    try {
      handler.message(bytes, false);
    } catch (err) {
      options.logger.error(`xds: ${method.path} failed`, { error: err });
      handler.close((err as Error).message);
      serverCall.finish(GrpcStatus.INTERNAL, "control plane error");
    }
  });
  call.on("end", () => handler.end());
  call.on("cancelled", () => handler.close("cancelled"));
  call.on("error", (err: Error) => handler.close(err.message));
  call.on("close", () => handler.close());
}

function serveUnary(
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
  callback: grpc.sendUnaryData<Buffer>,
  method: GrpcJsMethod,
  options: { readonly logger: Logger },
): void {
  let response: Buffer | undefined;
  let finished = false;
  const handler = method.open({
    ...callInfo(call),
    write: (framed, done) => {
      response = Buffer.from(framed.subarray(GRPC_PREFIX));
      process.nextTick(done);
    },
    finish: (code, details) => {
      if (finished) return;
      finished = true;
      if (code === GrpcStatus.OK) callback(null, response ?? Buffer.alloc(0));
      else callback({ code, details, metadata: new grpc.Metadata() });
    },
  });
  try {
    handler.message(call.request, false);
    handler.end();
  } catch (err) {
    options.logger.error(`xds: ${method.path} failed`, { error: err });
    if (!finished) callback({ code: GrpcStatus.INTERNAL, details: "control plane error" });
  }
  call.on("cancelled", () => handler.close("cancelled"));
}

/**
 * The HTTP/2 stream under a grpc-js server call, for the reset budget (see ResetBudget). grpc-js
 * has no public accessor: the call's handler chain ends in a call object holding `stream`
 * (grpc-js 1.10 to 1.14). Another shape gives undefined, and the connection is then not rotated
 * before Node's reset limit (the budget still works on listen()'s default transport).
 */
export function http2StreamOf(call: object): http2.ServerHttp2Stream | undefined {
  let node: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && node && typeof node === "object"; depth++) {
    const stream = (node as { stream?: unknown }).stream;
    if (isHttp2Stream(stream)) return stream;
    node = (node as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

function isHttp2Stream(value: unknown): value is http2.ServerHttp2Stream {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { once?: unknown }).once === "function" &&
    typeof (value as { session?: { goaway?: unknown } }).session?.goaway === "function"
  );
}
