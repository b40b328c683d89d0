import { create, type JsonObject } from "@bufbuild/protobuf";
import {
  Server,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  type JWTBundlesRequest,
  type JWTBundlesResponse,
  JWTBundlesResponseSchema,
  type JWTSVIDRequest,
  type JWTSVIDResponse,
  JWTSVIDResponseSchema,
  JWTSVIDSchema,
  SpiffeWorkloadAPI,
  type ValidateJWTSVIDRequest,
  type ValidateJWTSVIDResponse,
  ValidateJWTSVIDResponseSchema,
  type X509BundlesRequest,
  type X509BundlesResponse,
  X509BundlesResponseSchema,
  type X509SVIDRequest,
  type X509SVIDResponse,
  X509SVIDResponseSchema,
  X509SVIDSchema,
} from "@meshlet/api/spiffe/workload/workload_pb";
import { combineLatest, map, type Observable, of, type Subscription } from "rxjs";
import { CaError } from "../ca-error.js";
import type { CertificateAuthority, X509Svid } from "../certificate-authority.js";
import { toJwtBundleJson } from "../jwt-svid.js";
import { type Logger, silentLogger } from "../logger.js";
import { fromPemOf } from "../pem.js";
import { SpiffeId } from "../spiffe-id.js";
import { type SvidRotationOptions, svidRotation$ } from "../svid-rotation.js";
import { type TrustBundle, toDerBundle } from "../trust-bundle.js";
import { grpcMethod } from "./grpc-method.js";
import { toGrpcStatus } from "./grpc-status.js";
import { type ListeningServer, listenSecurely, type SecureListenOptions } from "./listen.js";

/** The security header every Workload API call must carry (SPIFFE Workload API spec, section 5.1). */
export const WORKLOAD_API_HEADER = "workload.spiffe.io";

/** Options for {@link WorkloadApiServer}. */
export interface WorkloadApiServerOptions {
  readonly ca: CertificateAuthority;
  /**
   * The identity served on this socket. One socket per workload, as Istio's agent does; Node
   * cannot read a Unix peer's credentials, so attestation is the socket's placement.
   */
  readonly identity: SpiffeId | string;
  /** Rotation settings for the served SVID (TTL, renewal fraction, jitter, scheduler). */
  readonly rotation?: Omit<SvidRotationOptions, "ca" | "identity">;
  /** A ready-made SVID stream instead of minting from `ca` (e.g. shared with SDS). */
  readonly svid$?: Observable<X509Svid>;
  /**
   * Bundles of federated trust domains, sent as `federated_bundles` and in `FetchX509Bundles`,
   * keyed `spiffe://<trust-domain>` as SPIRE keys them.
   */
  readonly federatedBundles$?: Observable<readonly TrustBundle[]>;
  readonly logger?: Logger;
}

function svidChainDer(svid: X509Svid, bundle: TrustBundle): Buffer {
  // SPIFFE Workload API: x509_svid is the leaf first, then intermediates; roots travel in `bundle`.
  const ders = svid.chain.flatMap((pem, i) => fromPemOf(pem, "CERTIFICATE", `svid certificate ${i + 1}`));
  const roots = new Set(
    bundle.roots.flatMap((pem) => fromPemOf(pem, "CERTIFICATE", "root")).map((d) => d.toString("base64")),
  );
  return Buffer.concat(ders.filter((der, i) => i === 0 || !roots.has(der.toString("base64"))));
}

/** Bundle map keys are trust domain IDs, `spiffe://<trust-domain>`, as SPIRE's agent sends them. */
const bundleKey = (trustDomain: string) => `spiffe://${trustDomain}`;

/**
 * The SPIFFE Workload API (`SpiffeWorkloadAPI`) over a Unix socket: `FetchX509SVID` and
 * `FetchX509Bundles` (streams: the full state first and again on every SVID rotation or bundle
 * change), `FetchJWTSVID` (a JWT-SVID for the asked audiences, signed by the CA's key),
 * `FetchJWTBundles` (stream of JWT authorities) and `ValidateJWTSVID`. Calls without
 * `workload.spiffe.io: true` are refused with INVALID_ARGUMENT, per the spec.
 */
export class WorkloadApiServer {
  /** The gRPC service definition (all five Workload API methods). */
  static readonly definition: ServiceDefinition = {
    FetchX509SVID: grpcMethod(SpiffeWorkloadAPI.method.fetchX509SVID),
    FetchX509Bundles: grpcMethod(SpiffeWorkloadAPI.method.fetchX509Bundles),
    FetchJWTSVID: grpcMethod(SpiffeWorkloadAPI.method.fetchJWTSVID),
    FetchJWTBundles: grpcMethod(SpiffeWorkloadAPI.method.fetchJWTBundles),
    ValidateJWTSVID: grpcMethod(SpiffeWorkloadAPI.method.validateJWTSVID),
  } as unknown as ServiceDefinition;

  private readonly options: WorkloadApiServerOptions;
  private readonly svid$: Observable<X509Svid>;
  private readonly logger: Logger;
  private readonly streams = new Set<Subscription>();
  private readonly identity: SpiffeId;

  constructor(options: WorkloadApiServerOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    const identity =
      typeof options.identity === "string" ? SpiffeId.parse(options.identity) : options.identity;
    this.identity = identity;
    this.svid$ =
      options.svid$ ?? svidRotation$({ ...options.rotation, ca: options.ca, identity, logger: this.logger });
  }

  /** Mounts the Workload API on a `@grpc/grpc-js` server you own. */
  register(server: Server): void {
    const implementation: UntypedServiceImplementation = {
      FetchX509SVID: (call: ServerWritableStream<X509SVIDRequest, X509SVIDResponse>) =>
        this.stream(
          call,
          combineLatest([this.svid$, this.options.ca.trustBundle$, this.federated$()]).pipe(
            map(([svid, bundle, federated]) =>
              create(X509SVIDResponseSchema, {
                svids: [
                  create(X509SVIDSchema, {
                    spiffeId: svid.spiffeId.toString(),
                    x509Svid: svidChainDer(svid, bundle),
                    x509SvidKey: fromPemOf(svid.privateKey, "PRIVATE KEY", "svid key")[0] as Buffer,
                    bundle: toDerBundle(bundle),
                  }),
                ],
                federatedBundles: federated,
              }),
            ),
          ),
        ),
      FetchX509Bundles: (call: ServerWritableStream<X509BundlesRequest, X509BundlesResponse>) =>
        this.stream(
          call,
          combineLatest([this.options.ca.trustBundle$, this.federated$()]).pipe(
            map(([bundle, federated]) =>
              create(X509BundlesResponseSchema, {
                bundles: { ...federated, [bundleKey(bundle.trustDomain)]: toDerBundle(bundle) },
              }),
            ),
          ),
        ),
      FetchJWTSVID: (
        call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>,
        callback: sendUnaryData<JWTSVIDResponse>,
      ) => this.unary(call, callback, () => this.fetchJwtSvid(call.request)),
      FetchJWTBundles: (call: ServerWritableStream<JWTBundlesRequest, JWTBundlesResponse>) =>
        this.stream(
          call,
          this.options.ca.jwtBundle$.pipe(
            map((bundle) =>
              create(JWTBundlesResponseSchema, {
                bundles: { [bundleKey(bundle.trustDomain)]: toJwtBundleJson(bundle) },
              }),
            ),
          ),
        ),
      ValidateJWTSVID: (
        call: ServerUnaryCall<ValidateJWTSVIDRequest, ValidateJWTSVIDResponse>,
        callback: sendUnaryData<ValidateJWTSVIDResponse>,
      ) => this.unary(call, callback, () => this.validateJwtSvid(call.request)),
    };
    server.addService(WorkloadApiServer.definition, implementation);
  }

  /**
   * Starts a dedicated server on a Unix socket `path` (created with mode 0600, or `mode`), or on
   * any grpc-js `address`. The Workload API hands out private keys: TCP needs TLS `credentials`
   * or an explicit `insecure: true`.
   */
  async listen(
    options: ({ path: string } | { address: string }) & Omit<SecureListenOptions, "address">,
  ): Promise<ListeningServer> {
    const server = new Server();
    this.register(server);
    const address = "path" in options ? `unix:${options.path}` : options.address;
    const listening = await listenSecurely(server, { ...options, address }, "WorkloadApiServer");
    return {
      port: listening.port,
      close: async (graceMs) => {
        for (const s of this.streams) s.unsubscribe();
        this.streams.clear();
        await listening.close(graceMs);
      },
    };
  }

  private federated$(): Observable<Record<string, Uint8Array>> {
    const source = this.options.federatedBundles$;
    if (!source) return of({});
    return source.pipe(
      map((bundles) => Object.fromEntries(bundles.map((b) => [bundleKey(b.trustDomain), toDerBundle(b)]))),
    );
  }

  /** SPIFFE Workload API 5.1: every call carries `workload.spiffe.io: true`. */
  private static hasSecurityHeader(metadata: { get(key: string): unknown[] }): boolean {
    return String(metadata.get(WORKLOAD_API_HEADER)[0]) === "true";
  }

  private static readonly MISSING_HEADER = {
    code: status.INVALID_ARGUMENT,
    details: `security header missing from request: send metadata '${WORKLOAD_API_HEADER}: true'`,
  };

  private async fetchJwtSvid(request: JWTSVIDRequest): Promise<JWTSVIDResponse> {
    if (request.audience.length === 0) {
      throw new CaError("invalid-argument", "audience must be specified");
    }
    // The socket serves one identity; asking for another is not allowed (SPIRE answers the same).
    if (request.spiffeId && !this.identity.equals(request.spiffeId)) {
      throw new CaError("permission-denied", `no identity ${request.spiffeId} on this socket`);
    }
    const svid = await this.options.ca.mintJwtSvid({ identity: this.identity, audience: request.audience });
    return create(JWTSVIDResponseSchema, {
      svids: [create(JWTSVIDSchema, { spiffeId: svid.spiffeId.toString(), svid: svid.token })],
    });
  }

  private async validateJwtSvid(request: ValidateJWTSVIDRequest): Promise<ValidateJWTSVIDResponse> {
    if (!request.audience) throw new CaError("invalid-argument", "audience must be specified");
    if (!request.svid) throw new CaError("invalid-argument", "svid must be specified");
    let validated: Awaited<ReturnType<CertificateAuthority["validateJwtSvid"]>>;
    try {
      validated = await this.options.ca.validateJwtSvid(request.svid, request.audience);
    } catch (error) {
      // ValidateJWTSVID answers INVALID_ARGUMENT for a token that does not validate.
      throw new CaError("invalid-argument", error instanceof Error ? error.message : String(error), {
        cause: error,
      });
    }
    return create(ValidateJWTSVIDResponseSchema, {
      spiffeId: validated.spiffeId.toString(),
      claims: validated.claims as JsonObject,
    });
  }

  private unary<Req, Res>(
    call: ServerUnaryCall<Req, Res>,
    callback: sendUnaryData<Res>,
    handle: () => Promise<Res>,
  ): void {
    if (!WorkloadApiServer.hasSecurityHeader(call.metadata)) {
      callback(WorkloadApiServer.MISSING_HEADER, null);
      return;
    }
    handle().then(
      (response) => callback(null, response),
      (error: unknown) => {
        if (!(error instanceof CaError))
          this.logger.error("Workload API call failed", { error: String(error) });
        callback(toGrpcStatus(error), null);
      },
    );
  }

  private stream<T>(call: ServerWritableStream<unknown, T>, messages$: Observable<T>): void {
    if (!WorkloadApiServer.hasSecurityHeader(call.metadata)) {
      call.emit("error", WorkloadApiServer.MISSING_HEADER);
      return;
    }
    const subscription = messages$.subscribe({
      next: (message) => call.write(message),
      error: (error: unknown) => {
        this.logger.error("Workload API stream failed", { error: String(error) });
        call.emit("error", { code: status.UNAVAILABLE, details: "the workload's identity is unavailable" });
      },
      // The CA closed (shutdown): end the stream so the workload reconnects elsewhere.
      complete: () => call.end(),
    });
    this.streams.add(subscription);
    const stop = () => {
      subscription.unsubscribe();
      this.streams.delete(subscription);
    };
    call.on("cancelled", stop);
    call.on("close", stop);
  }
}
