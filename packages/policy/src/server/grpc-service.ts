import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import {
  type MethodDefinition,
  Server,
  type ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import { PolicyError } from "../policy-error.js";

/**
 * A grpc-js service definition for a protobuf-es service: method paths come from the service
 * descriptor (`/<package>.<Service>/<Method>`), (de)serialization is protobuf-es binary. Unary
 * methods only (both Envoy services used here are unary).
 */
export function grpcServiceDefinition(service: {
  typeName: string;
  methods: readonly {
    name: string;
    localName: string;
    methodKind: string;
    input: DescMessage;
    output: DescMessage;
  }[];
}): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    if (m.methodKind !== "unary") {
      throw new TypeError(
        `${service.typeName}/${m.name} is ${m.methodKind}: only unary methods are supported here`,
      );
    }
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (msg: unknown) => Buffer.from(toBinary(m.input, msg as MessageShape<DescMessage>)),
      requestDeserialize: (buf: Buffer) => fromBinary(m.input, buf),
      responseSerialize: (msg: unknown) => Buffer.from(toBinary(m.output, msg as MessageShape<DescMessage>)),
      responseDeserialize: (buf: Buffer) => fromBinary(m.output, buf),
      originalName: m.localName,
    };
  }
  return def as ServiceDefinition;
}

/**
 * A grpc-js unary handler around an async function. It never throws out of the handler: invalid
 * attributes become INVALID_ARGUMENT, anything else INTERNAL (and is logged), so one bad request
 * never takes the server down.
 */
export function unaryHandler<Req, Res>(
  handle: (request: Req) => Promise<Res>,
  logger: Logger,
  what: string,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    handle(call.request).then(
      (res) => callback(null, res),
      (e: unknown) => {
        const invalid = e instanceof PolicyError && e.code === "invalid-attributes";
        if (!invalid) logger.error(`${what} failed`, { error: e instanceof Error ? e.message : String(e) });
        callback({
          code: invalid ? status.INVALID_ARGUMENT : status.INTERNAL,
          details: e instanceof Error ? e.message : String(e),
        });
      },
    );
  };
}

/** A running server started by `listen()`. */
export interface ListeningServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Stops accepting, lets in-flight calls finish (up to `graceMs`, default 5 s), then forces. */
  close(graceMs?: number): Promise<void>;
}

/** Binds a grpc-js server on `address` and starts it. */
export async function listenGrpc(
  register: (server: Server) => void,
  address: string,
  creds: ServerCredentials,
): Promise<ListeningServer> {
  const server = new Server();
  register(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, creds, (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
