import { create } from "@bufbuild/protobuf";
import type { Server } from "@grpc/grpc-js";
import { DataSourceSchema } from "@meshlet/api/envoy/config/core/v3/base_pb";
import {
  CertificateValidationContextSchema,
  TlsCertificateSchema,
} from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/common_pb";
import { type Secret, SecretSchema } from "@meshlet/api/envoy/extensions/transport_sockets/tls/v3/secret_pb";
import { LinearCache, TypeUrl, type XdsEvent, XdsServer } from "@meshlet/xds";
import { type Observable, Subject, type Subscription } from "rxjs";
import type { CertificateAuthority, X509Svid } from "../certificate-authority.js";
import { type Logger, silentLogger } from "../logger.js";
import { SpiffeId } from "../spiffe-id.js";
import { type SvidRotationOptions, svidRotation$ } from "../svid-rotation.js";
import type { TrustBundle } from "../trust-bundle.js";
import { checkTransport, restrictSocket, type SecureListenOptions } from "./listen.js";

/** Istio's SDS resource names: the workload certificate and the trust bundle. */
export const SDS_RESOURCE_NAMES = { workload: "default", root: "ROOTCA" } as const;

/** Options for {@link SdsServer}. */
export interface SdsServerOptions {
  readonly ca: CertificateAuthority;
  /** The workload identity this SDS serves (one SDS per workload, as istio-agent runs per pod). */
  readonly identity: SpiffeId | string;
  /** Rotation of the served SVID: TTL, renewal at `renewFraction` (0.5) with jitter, scheduler, clock. */
  readonly rotation?: Omit<SvidRotationOptions, "ca" | "identity">;
  /** A ready-made SVID stream instead of minting from `ca` (e.g. shared with the Workload API). */
  readonly svid$?: Observable<X509Svid>;
  /** Secret names (default Istio's `default` and `ROOTCA`). */
  readonly names?: { readonly workload?: string; readonly root?: string };
  readonly logger?: Logger;
}

/** Emitted on `secrets$` each time a secret is (re)published to the cache. */
export interface SecretUpdate {
  readonly name: string;
  /** For the workload secret: the SVID's expiry. */
  readonly notAfter?: Date;
}

const inline = (pem: string) =>
  create(DataSourceSchema, { specifier: { case: "inlineBytes", value: Buffer.from(pem) } });

/** The Envoy `Secret` carrying an SVID: certificate chain (leaf first, no root) and private key. */
export function toTlsCertificateSecret(name: string, svid: X509Svid, bundle?: TrustBundle): Secret {
  const roots = new Set(bundle?.roots ?? []);
  const chain = svid.chain.filter((pem, i) => i === 0 || !roots.has(pem));
  return create(SecretSchema, {
    name,
    type: {
      case: "tlsCertificate",
      value: create(TlsCertificateSchema, {
        certificateChain: inline(chain.join("")),
        privateKey: inline(svid.privateKey),
      }),
    },
  });
}

/** The Envoy `Secret` carrying a trust bundle as `validation_context.trusted_ca`. */
export function toValidationContextSecret(name: string, bundle: TrustBundle): Secret {
  return create(SecretSchema, {
    name,
    type: {
      case: "validationContext",
      value: create(CertificateValidationContextSchema, { trustedCa: inline(bundle.roots.join("")) }),
    },
  });
}

/**
 * Envoy's Secret Discovery Service (`envoy.service.secret.v3.SecretDiscoveryService`, SotW and
 * Delta) for one workload, on `@meshlet/xds`'s server: `default` is the workload's SVID (chain +
 * key), `ROOTCA` the trust bundle. The SVID is renewed at half its lifetime with jitter, as Istio's
 * agent does, and the new secret is pushed to connected proxies; trust-bundle changes are pushed too.
 */
export class SdsServer {
  /** The cache holding the secrets (one resource type). */
  readonly cache: LinearCache;
  /** The xDS protocol server. */
  readonly xds: XdsServer;
  /** xDS protocol events (requests, ACKs, NACKs, responses). */
  readonly events$: Observable<XdsEvent>;
  /** Every secret published to the cache. */
  readonly secrets$: Observable<SecretUpdate>;
  /**
   * Resolves once both secrets are in the cache (the first SVID is minted asynchronously); listen
   * after it if proxies must never see `ROOTCA` without `default`.
   */
  readonly ready: Promise<void>;

  private readonly updates = new Subject<SecretUpdate>();
  private readonly subscriptions: Subscription[] = [];
  private readonly names: { workload: string; root: string };

  constructor(options: SdsServerOptions) {
    const logger = options.logger ?? silentLogger;
    const identity =
      typeof options.identity === "string" ? SpiffeId.parse(options.identity) : options.identity;
    this.names = {
      workload: options.names?.workload ?? SDS_RESOURCE_NAMES.workload,
      root: options.names?.root ?? SDS_RESOURCE_NAMES.root,
    };
    this.cache = new LinearCache(TypeUrl.Secret);
    this.xds = new XdsServer({ cache: this.cache, logger });
    this.events$ = this.xds.events$;
    this.secrets$ = this.updates.asObservable();
    const svid$ = options.svid$ ?? svidRotation$({ ...options.rotation, ca: options.ca, identity, logger });
    let bundle: TrustBundle | undefined;
    let markReady: () => void = () => {};
    this.ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    this.subscriptions.push(
      options.ca.trustBundle$.subscribe((b) => {
        bundle = b;
        this.cache.update(toValidationContextSecret(this.names.root, b));
        this.updates.next({ name: this.names.root });
      }),
      svid$.subscribe({
        next: (svid) => {
          this.cache.update(toTlsCertificateSecret(this.names.workload, svid, bundle));
          this.updates.next({ name: this.names.workload, notAfter: svid.notAfter });
          markReady();
          logger.info("SDS secret updated", {
            name: this.names.workload,
            spiffeId: svid.spiffeId.toString(),
          });
        },
        error: (error: unknown) =>
          logger.error("SDS: the workload SVID stream failed", { error: String(error) }),
      }),
    );
  }

  /** Mounts the SDS service (SotW and Delta) on a `@grpc/grpc-js` server you own. */
  register(server: Server): void {
    this.xds.register(server, { services: ["sds"] });
  }

  /**
   * Starts a dedicated server: `unix:/path` as istio-agent's SDS socket (mode 0600, or `mode`), or
   * TCP with TLS `credentials`. SDS hands out the workload's private key, so plaintext TCP needs an
   * explicit `insecure: true`.
   */
  async listen(options: SecureListenOptions): Promise<{ port: number; close(): Promise<void> }> {
    checkTransport(options, "SdsServer");
    const listening = await this.xds.listen({
      address: options.address,
      services: ["sds"],
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    try {
      await restrictSocket(options.address, options.mode);
    } catch (error) {
      await listening.close();
      throw error;
    }
    return {
      port: listening.port,
      close: async () => {
        await listening.close();
        this.close();
      },
    };
  }

  /** Stops rotation and completes `secrets$`. */
  close(): void {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    this.updates.complete();
  }
}
