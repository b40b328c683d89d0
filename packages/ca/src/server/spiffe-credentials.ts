import { experimental, type ServerCredentials } from "@grpc/grpc-js";
import type { Observable, Subscription } from "rxjs";
import type { X509Svid } from "../certificate-authority.js";
import type { TrustBundle } from "../trust-bundle.js";

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/**
 * A grpc-js certificate provider fed by observables: the trust bundle and the server's own SVID.
 * Rotations reach new connections without restarting the server.
 */
class ObservableCertificateProvider implements experimental.CertificateProvider {
  private ca: experimental.CaCertificateUpdate | null = null;
  private identity: experimental.IdentityCertificateUpdate | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  readonly subscriptions: Subscription[] = [];

  constructor(trustBundle$: Observable<TrustBundle>, svid$: Observable<X509Svid>) {
    this.subscriptions.push(
      trustBundle$.subscribe((bundle) => {
        this.ca = { caCertificate: Buffer.from(bundle.roots.join("")) };
        for (const l of this.caListeners) l(this.ca);
      }),
      svid$.subscribe((svid) => {
        this.identity = {
          certificate: Buffer.from(svid.chain.join("")),
          privateKey: Buffer.from(svid.privateKey),
        };
        for (const l of this.identityListeners) l(this.identity);
      }),
    );
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // grpc-js registers its watcher after adding the listener: deliver the current value afterwards.
    queueMicrotask(() => {
      if (this.ca && this.caListeners.has(listener)) listener(this.ca);
    });
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identity && this.identityListeners.has(listener)) listener(this.identity);
    });
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/**
 * gRPC server credentials for a SPIFFE workload (istiod itself, a Workload API over TCP, …): serves
 * the latest SVID from `svid$`, trusts the latest roots from `trustBundle$`, and requests a client
 * certificate. With `requireClientCertificate: false` (default) clients without one can still
 * connect and authenticate with a bearer token, as on Istio's CA port; a presented certificate is
 * exposed to handlers only when it verifies.
 */
export function createSpiffeServerCredentials(options: {
  trustBundle$: Observable<TrustBundle>;
  svid$: Observable<X509Svid>;
  requireClientCertificate?: boolean;
}): { credentials: ServerCredentials; close(): void } {
  const provider = new ObservableCertificateProvider(options.trustBundle$, options.svid$);
  return {
    credentials: experimental.createCertificateProviderServerCredentials(
      provider,
      provider,
      options.requireClientCertificate ?? false,
    ),
    close: () => {
      for (const s of provider.subscriptions) s.unsubscribe();
    },
  };
}
