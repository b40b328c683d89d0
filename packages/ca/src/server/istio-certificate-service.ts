import { create } from "@bufbuild/protobuf";
import {
  Server,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  IstioCertificateResponseSchema,
  IstioCertificateService as IstioCertificateServiceDesc,
} from "@meshlet/api/istio/security/v1alpha1/ca_pb";
import { type Observable, Subject } from "rxjs";
import type { Authenticator, Caller } from "../auth/authenticator.js";
import { CaError } from "../ca-error.js";
import type { CertificateAuthority } from "../certificate-authority.js";
import { type Logger, silentLogger } from "../logger.js";
import { grpcMethod } from "./grpc-method.js";
import { toGrpcStatus } from "./grpc-status.js";
import { type ListeningServer, listenSecurely, type SecureListenOptions } from "./listen.js";

/** Decides whether an authenticated caller may get a certificate; return false to refuse. */
export type Authorizer = (caller: Caller, request: IstioCertificateRequest) => boolean | Promise<boolean>;

/** Options for {@link IstioCertificateService}. */
export interface IstioCertificateServiceOptions {
  readonly ca: CertificateAuthority;
  /** Tried in order; the first that recognises a credential decides. */
  readonly authenticators: readonly Authenticator[];
  /** Extra policy after authentication (default: every authenticated caller may ask for its own ID). */
  readonly authorize?: Authorizer;
  readonly logger?: Logger;
}

/** One CreateCertificate outcome, for metrics and audit. */
export type CertificateServiceEvent =
  | {
      readonly type: "issued";
      readonly spiffeId: string;
      readonly authenticator: string;
      readonly peer: string;
    }
  | { readonly type: "refused"; readonly code: string; readonly reason: string; readonly peer: string };

/**
 * The Istio CA API (`istio.v1.auth.IstioCertificateService/CreateCertificate`) on `@grpc/grpc-js`:
 * what istio-agent and istio-proxy call to get workload certificates. The caller is authenticated
 * (client certificate, bearer JWT, …), the certificate's SAN comes from that identity, and the
 * response's `cert_chain` is leaf first, root last. Bad callers get `UNAUTHENTICATED`,
 * `PERMISSION_DENIED` or `INVALID_ARGUMENT`; they never get a certificate and never stop the server.
 */
export class IstioCertificateService {
  /** The gRPC service definition, for mounting on your own server. */
  static readonly definition: ServiceDefinition = {
    CreateCertificate: grpcMethod(IstioCertificateServiceDesc.method.createCertificate),
  } as unknown as ServiceDefinition;

  /** Every issued or refused request. */
  readonly events$: Observable<CertificateServiceEvent>;
  private readonly events = new Subject<CertificateServiceEvent>();
  private readonly options: IstioCertificateServiceOptions;
  private readonly logger: Logger;

  constructor(options: IstioCertificateServiceOptions) {
    if (options.authenticators.length === 0) {
      throw new CaError("invalid-argument", "IstioCertificateService needs at least one authenticator");
    }
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    this.events$ = this.events.asObservable();
  }

  /** Mounts the service on a `@grpc/grpc-js` server you own. */
  register(server: Server): void {
    const implementation: UntypedServiceImplementation = {
      CreateCertificate: (
        call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
        callback: sendUnaryData<IstioCertificateResponse>,
      ) => {
        this.createCertificate(call).then(
          (response) => callback(null, response),
          (error: unknown) => {
            const reason = error instanceof Error ? error.message : String(error);
            this.events.next({
              type: "refused",
              code: error instanceof CaError ? error.code : "internal",
              reason,
              peer: call.getPeer(),
            });
            if (!(error instanceof CaError)) this.logger.error("CreateCertificate failed", { error: reason });
            callback(toGrpcStatus(error), null);
          },
        );
      },
    };
    server.addService(IstioCertificateService.definition, implementation);
  }

  /**
   * Starts a dedicated server on `address`; pass TLS `credentials` for mTLS authentication.
   * Plaintext TCP needs `insecure: true`; Unix sockets are created with mode 0600 (or `mode`).
   */
  async listen(options: SecureListenOptions): Promise<ListeningServer> {
    const server = new Server();
    this.register(server);
    return listenSecurely(server, options, "IstioCertificateService");
  }

  private async createCertificate(
    call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
  ): Promise<IstioCertificateResponse> {
    const peer = call.getPeer();
    const peerCertificate = call.getAuthContext()?.sslPeerCertificate;
    const context = { metadata: call.metadata, peer, ...(peerCertificate ? { peerCertificate } : {}) };
    let caller: Caller | undefined;
    for (const authenticator of this.options.authenticators) {
      caller = await authenticator.authenticate(context);
      if (caller) break;
    }
    if (!caller) {
      throw new CaError(
        "unauthenticated",
        `no credential from ${peer}: present a client certificate or 'authorization: Bearer <token>'`,
      );
    }
    const request = call.request;
    if (this.options.authorize && !(await this.options.authorize(caller, request))) {
      throw new CaError("permission-denied", `${caller.identities.join(", ")} may not request certificates`);
    }
    const seconds = request.validityDuration;
    if (seconds < 0n) throw new CaError("invalid-ttl", "validity_duration must not be negative");
    const { chain, spiffeId: id } = await this.options.ca.signCsr({
      csr: request.csr,
      identities: caller.identities,
      ...(seconds > 0n ? { ttl: Number(seconds) * 1000 } : {}),
    });
    const spiffeId = id.toString();
    this.events.next({ type: "issued", spiffeId, authenticator: caller.authenticator, peer });
    this.logger.info("certificate issued", { spiffeId, peer, authenticator: caller.authenticator });
    return create(IstioCertificateResponseSchema, { certChain: chain });
  }
}
