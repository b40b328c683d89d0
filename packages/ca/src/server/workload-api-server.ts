import { create } from "@bufbuild/protobuf";
import {
  Server,
  type ServerWritableStream,
  type ServiceDefinition,
  status,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import {
  SpiffeWorkloadAPI,
  type X509BundlesRequest,
  type X509BundlesResponse,
  X509BundlesResponseSchema,
  type X509SVIDRequest,
  type X509SVIDResponse,
  X509SVIDResponseSchema,
  X509SVIDSchema,
} from "@meshlet/api/spiffe/workload/workload_pb";
import { combineLatest, map, type Observable, of, type Subscription } from "rxjs";
import type { CertificateAuthority, X509Svid } from "../certificate-authority.js";
import { type Logger, silentLogger } from "../logger.js";
import { fromPemOf } from "../pem.js";
import { SpiffeId } from "../spiffe-id.js";
import { type SvidRotationOptions, svidRotation$ } from "../svid-rotation.js";
import { type TrustBundle, toDerBundle } from "../trust-bundle.js";
import { grpcMethod } from "./grpc-method.js";
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
  /** Bundles of federated trust domains, sent as `federated_bundles`. */
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

/**
 * The SPIFFE Workload API (`SpiffeWorkloadAPI`: `FetchX509SVID`, `FetchX509Bundles`) over a Unix
 * socket. Each stream sends the full state first and again on every SVID rotation or trust-bundle
 * change. Calls without `workload.spiffe.io: true` are refused with INVALID_ARGUMENT, per the spec.
 */
export class WorkloadApiServer {
  /** The gRPC service definition (FetchX509SVID, FetchX509Bundles). */
  static readonly definition: ServiceDefinition = {
    FetchX509SVID: grpcMethod(SpiffeWorkloadAPI.method.fetchX509SVID),
    FetchX509Bundles: grpcMethod(SpiffeWorkloadAPI.method.fetchX509Bundles),
  } as unknown as ServiceDefinition;

  private readonly options: WorkloadApiServerOptions;
  private readonly svid$: Observable<X509Svid>;
  private readonly logger: Logger;
  private readonly streams = new Set<Subscription>();

  constructor(options: WorkloadApiServerOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    const identity =
      typeof options.identity === "string" ? SpiffeId.parse(options.identity) : options.identity;
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
                bundles: { ...federated, [bundle.trustDomain]: toDerBundle(bundle) },
              }),
            ),
          ),
        ),
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
      map((bundles) => Object.fromEntries(bundles.map((b) => [b.trustDomain, toDerBundle(b)]))),
    );
  }

  private stream<T>(call: ServerWritableStream<unknown, T>, messages$: Observable<T>): void {
    const header = call.metadata.get(WORKLOAD_API_HEADER)[0];
    if (String(header) !== "true") {
      call.emit("error", {
        code: status.INVALID_ARGUMENT,
        details: `security header missing from request: send metadata '${WORKLOAD_API_HEADER}: true'`,
      });
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
