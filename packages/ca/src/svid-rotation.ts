import {
  asyncScheduler,
  catchError,
  defer,
  expand,
  type Observable,
  type SchedulerLike,
  shareReplay,
  switchMap,
  timer,
} from "rxjs";
import type { CertificateAuthority, X509Svid } from "./certificate-authority.js";
import type { Duration } from "./duration.js";
import type { KeyType } from "./key-type.js";
import { type Logger, silentLogger } from "./logger.js";
import type { SpiffeId } from "./spiffe-id.js";

/** Options for {@link svidRotation$}. */
export interface SvidRotationOptions {
  readonly ca: CertificateAuthority;
  readonly identity: SpiffeId | string;
  /** Lifetime of each SVID (default: the CA's default, 24h). */
  readonly ttl?: Duration;
  readonly keyType?: KeyType;
  /**
   * Extra DNS SANs in every SVID, for a serving certificate (e.g. `istiod.istio-system.svc`, the
   * name istio-agent verifies); local signing keys only (see `CertificateAuthority.issue`).
   */
  readonly dnsNames?: readonly string[];
  /** Renew when this fraction of the lifetime has passed (default 0.5, Istio's grace period ratio). */
  readonly renewFraction?: number;
  /** Spread renewals by up to this fraction earlier, so a fleet does not renew at once (default 0.1). */
  readonly jitter?: number;
  /** Delay before retrying a failed renewal, in milliseconds (default 5s). */
  readonly retryDelayMs?: number;
  readonly scheduler?: SchedulerLike;
  /** Wall clock in epoch milliseconds (default: the scheduler's `now()`). */
  readonly clock?: () => number;
  /** Uniform random in [0, 1) for jitter (default `Math.random`); inject for deterministic tests. */
  readonly random?: () => number;
  readonly logger?: Logger;
}

/** When an SVID should be renewed: at `renewFraction` of its lifetime, minus jitter. */
export function renewalTime(
  svid: X509Svid,
  renewFraction: number,
  jitter: number,
  random: () => number,
): number {
  const start = svid.notBefore.getTime();
  const lifetime = svid.notAfter.getTime() - start;
  return start + lifetime * renewFraction * (1 - jitter * random());
}

/**
 * A workload's X509-SVID over time: mints one now, then a fresh key and certificate at half its
 * lifetime (with jitter), as Istio's agent rotates workload certificates. Shared and replayed, so
 * late subscribers get the current SVID; unsubscribing everyone stops the timers.
 */
export function svidRotation$(options: SvidRotationOptions): Observable<X509Svid> {
  const scheduler = options.scheduler ?? asyncScheduler;
  const clock = options.clock ?? (() => scheduler.now());
  const random = options.random ?? Math.random;
  const logger = options.logger ?? silentLogger;
  const fraction = options.renewFraction ?? 0.5;
  const jitter = options.jitter ?? 0.1;
  const mint = (): Observable<X509Svid> =>
    defer(() =>
      options.ca.mintSvid({
        identity: options.identity,
        ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
        ...(options.keyType ? { keyType: options.keyType } : {}),
        ...(options.dnsNames !== undefined && options.dnsNames.length > 0
          ? { dnsNames: options.dnsNames }
          : {}),
      }),
    ).pipe(
      catchError((error: unknown) => {
        logger.warn("SVID renewal failed; retrying", {
          identity: String(options.identity),
          error: String(error),
        });
        return timer(options.retryDelayMs ?? 5_000, scheduler).pipe(switchMap(() => mint()));
      }),
    );
  return mint().pipe(
    expand((svid) => {
      const delay = Math.max(0, renewalTime(svid, fraction, jitter, random) - clock());
      return timer(delay, scheduler).pipe(switchMap(() => mint()));
    }),
    shareReplay({ bufferSize: 1, refCount: true }),
  );
}
