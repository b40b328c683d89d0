import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, type ServiceError } from "@grpc/grpc-js";

/** A tiny unary client for tests: calls `/<service>/<method>` on loopback with protobuf-es codecs. */
export class TestGrpcClient {
  readonly client: Client;
  constructor(port: number) {
    this.client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  }

  call<I extends DescMessage, O extends DescMessage>(
    path: string,
    input: I,
    output: O,
    message: MessageShape<I>,
  ): Promise<MessageShape<O>> {
    return this.raw(path, Buffer.from(toBinary(input, message)), output);
  }

  /** Sends raw bytes as the request (to test how a server handles garbage). */
  raw<O extends DescMessage>(path: string, bytes: Buffer, output: O): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        path,
        (b: Buffer) => b,
        (b: Buffer) => fromBinary(output, b),
        bytes,
        { deadline: Date.now() + 30_000 },
        (err: ServiceError | null, res?: MessageShape<O>) =>
          err ? reject(err) : resolve(res as MessageShape<O>),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
