import { create } from "@bufbuild/protobuf";
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  IstioCertificateRequestSchema,
  type IstioCertificateResponse,
  IstioCertificateService as IstioCertificateServiceDesc,
} from "@meshlet/api/istio/security/v1alpha1/ca_pb";
import { grpcMethod } from "./grpc-method.js";

const createCertificate = grpcMethod(IstioCertificateServiceDesc.method.createCertificate);

/**
 * A minimal client for the Istio CA API — what istio-agent does on a workload: send a CSR, get the
 * chain. Useful for agents written with meshlet, tests and benchmarks.
 */
export class IstioCertificateClient {
  private readonly client: Client;

  constructor(address: string, credentials: ChannelCredentials, options: ChannelOptions = {}) {
    this.client = new Client(address, credentials, options);
  }

  /**
   * Calls CreateCertificate. `validitySeconds` 0 asks for the CA's default; `bearerToken` adds
   * `authorization: Bearer …`. Rejects with the gRPC `ServiceError` (its `code` is the status).
   */
  createCertificate(request: {
    csr: string;
    validitySeconds?: number;
    bearerToken?: string;
    deadlineMs?: number;
  }): Promise<string[]> {
    const metadata = new Metadata();
    if (request.bearerToken) metadata.set("authorization", `Bearer ${request.bearerToken}`);
    const message = create(IstioCertificateRequestSchema, {
      csr: request.csr,
      validityDuration: BigInt(request.validitySeconds ?? 0),
    });
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        createCertificate.path,
        createCertificate.requestSerialize,
        createCertificate.responseDeserialize,
        message,
        metadata,
        { deadline: Date.now() + (request.deadlineMs ?? 30_000) },
        (error: ServiceError | null, response?: IstioCertificateResponse) => {
          if (error) reject(error);
          else resolve(response?.certChain ?? []);
        },
      );
    });
  }

  /** Closes the channel. */
  close(): void {
    this.client.close();
  }
}
