import * as grpc from "@grpc/grpc-js";

/** The one generic unary method every test backend serves (raw bytes, no proto needed by clients). */
export const ECHO_METHOD = "/meshlet.test.Echo/Echo";

/** A gRPC server on loopback that answers {@link ECHO_METHOD} with its own id. */
export interface Backend {
  /** What the backend answers; clients report it per RPC. */
  readonly id: string;
  /** The bound loopback port. */
  readonly port: number;
  /** How many RPCs this backend has answered. */
  readonly served: () => number;
  /** Stops the server, dropping open connections. Idempotent. */
  close(): Promise<void>;
}

const identity = (value: Buffer): Buffer => value;

/** Starts a backend on 127.0.0.1 with an ephemeral port. */
export async function startBackend(id: string): Promise<Backend> {
  const server = new grpc.Server();
  let served = 0;
  server.addService(
    {
      Echo: {
        path: ECHO_METHOD,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        served++;
        callback(null, Buffer.from(id, "utf8"));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  let closed: Promise<void> | undefined;
  return {
    id,
    port,
    served: () => served,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      });
      return closed;
    },
  };
}

/** Starts one backend per id; if any fails to start, the ones already started are closed. */
export async function startBackends(...ids: string[]): Promise<Backend[]> {
  const started: Backend[] = [];
  try {
    for (const id of ids) started.push(await startBackend(id));
    return started;
  } catch (error) {
    await Promise.all(started.map((backend) => backend.close()));
    throw error;
  }
}
