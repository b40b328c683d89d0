import { exhaustMap, filter, type SchedulerLike, type Subscription, timer } from "rxjs";
import { CaError } from "./ca-error.js";
import { type Duration, toMilliseconds } from "./duration.js";
import { generateKey, type KeyType } from "./key-type.js";
import type { Logger } from "./logger.js";
import { toPem } from "./pem.js";
import { createSelfSignedRoot, createSigningMaterial, type SigningMaterial } from "./signing-material.js";

/** How a self-signed root is rotated. */
export interface RootRotationOptions {
  /**
   * `keep-key` re-issues the root with the same key and a new validity (what istiod does; existing
   * leaves keep verifying). `new-key` rolls a new key in two phases, as SPIRE does and as Istio's
   * multi-root procedure describes: the new root is published in the trust bundle first, signing
   * switches to it after `activateAfter`, and the old root leaves the bundle after `overlap`.
   */
  readonly mode?: "keep-key" | "new-key";
  /**
   * `new-key`: how long the new root is only published (not yet signing), so every peer has it
   * before it meets a leaf it signed. Default: the longest leaf lifetime the CA has issued (at least
   * `defaultTtl`), which covers peers that only learn the bundle when they renew at half-life.
   */
  readonly activateAfter?: Duration;
  /**
   * `new-key`: how long the old root stays in the bundle after signing switched. Never less than
   * the time until the last leaf the old root signed expires (the default).
   */
  readonly overlap?: Duration;
}

/** Options for {@link CertificateAuthority.startRootRotation}. */
export interface RootRotatorOptions extends RootRotationOptions {
  /** How often to check the root's remaining lifetime (default 1h, as istiod). */
  readonly checkInterval?: Duration;
  /** Rotate when less than this fraction of the root's lifetime remains (default 0.2, as istiod). */
  readonly gracePeriodRatio?: number;
}

/**
 * One step of a root rotation, on `rootRotation$`. `keep-key` rotations have one step
 * (`activated`); `new-key` rotations three: `prepared` (new root published, old one signs),
 * `activated` (the new root signs) and `retired` (the old root left the bundle).
 */
export interface RootRotation {
  readonly mode: "keep-key" | "new-key";
  readonly phase: "prepared" | "activated" | "retired";
  /** The root that signed before this rotation, PEM. */
  readonly previousRoot: string;
  /** The new root, PEM. */
  readonly root: string;
  readonly at: Date;
}

/** What the rotator needs from the CA. */
export interface RotationHost {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly rootTtlMs: number;
  readonly backdateMs: number;
  readonly clock: () => number;
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly tasks: Subscription;
  /** The material signing now. */
  material(): SigningMaterial;
  /** Switches signing. */
  use(material: SigningMaterial): void;
  roots(): readonly string[];
  publishRoots(roots: readonly string[]): void;
  /** Longest leaf lifetime issued so far, in ms (at least defaultTtl). */
  longestLeafLifetimeMs(): number;
  /** The latest notAfter of any leaf `material` signed, epoch ms. */
  lastLeafNotAfter(material: SigningMaterial): number;
  /** Persists the signing material and roots (root store), if any. */
  persist(): Promise<void>;
  /** Publishes a rotation step on `rootRotation$`. */
  emit(rotation: RootRotation): void;
}

/**
 * Rotation of a self-signed root (istiod's `SelfSignedCARootCertRotator` for `keep-key`; SPIRE's
 * prepared/active split for `new-key`).
 */
export class RootRotator {
  private readonly host: RotationHost;
  private inFlight = false;

  constructor(host: RotationHost) {
    this.host = host;
  }

  /** Rotates now; for `new-key`, resolves at the `prepared` step and schedules the rest. */
  async rotate(options: RootRotationOptions = {}): Promise<RootRotation> {
    const host = this.host;
    const mode = options.mode ?? "keep-key";
    if (mode === "new-key" && this.inFlight) {
      throw new CaError(
        "ca-material",
        "a new-key root rotation is already in progress; wait for it to finish",
      );
    }
    const current = host.material();
    const key = mode === "keep-key" ? current.key : (await generateKey(host.keyType)).privateKey;
    const now = host.clock();
    const root = await createSelfSignedRoot({
      key,
      trustDomain: host.trustDomain,
      ttl: host.rootTtlMs,
      now,
      backdateMs: host.backdateMs,
    });
    const material = createSigningMaterial(key, root.der, [root.pem], "rotated self-signed root");
    const previousRoot = toPem("CERTIFICATE", current.cert.der);
    const step = (phase: RootRotation["phase"], at = host.clock()): RootRotation => ({
      mode,
      phase,
      previousRoot,
      root: root.pem,
      at: new Date(at),
    });
    if (mode === "keep-key") {
      host.use(material);
      host.publishRoots([root.pem, ...host.roots().filter((r) => r !== previousRoot)]);
      await this.persisted();
      const done = step("activated", now);
      host.logger.info("self-signed root rotated", { mode, trustDomain: host.trustDomain });
      host.emit(done);
      return done;
    }
    // Phase 1: publish the new root, keep signing with the old one.
    this.inFlight = true;
    host.publishRoots([root.pem, ...host.roots()]);
    await this.persisted();
    const prepared = step("prepared", now);
    host.emit(prepared);
    host.logger.info("new root published; signing switches after the propagation wait", {
      trustDomain: host.trustDomain,
    });
    const activateAfter =
      options.activateAfter !== undefined
        ? toMilliseconds(options.activateAfter, "activateAfter")
        : host.longestLeafLifetimeMs();
    host.tasks.add(
      host.scheduler.schedule(
        () => {
          // Phase 2: the new root signs; the old one stays trusted while its leaves live.
          host.use(material);
          void this.persisted();
          host.emit(step("activated"));
          host.logger.info("new root signs now", { trustDomain: host.trustDomain });
          const untilOldLeavesExpire = Math.max(0, host.lastLeafNotAfter(current) - host.clock());
          const requested = options.overlap !== undefined ? toMilliseconds(options.overlap, "overlap") : 0;
          host.tasks.add(
            host.scheduler.schedule(
              () => {
                // Phase 3: the old root leaves the bundle.
                host.publishRoots(host.roots().filter((r) => r !== previousRoot));
                void this.persisted();
                this.inFlight = false;
                host.emit(step("retired"));
                host.logger.info("previous root left the trust bundle", { trustDomain: host.trustDomain });
              },
              Math.max(requested, untilOldLeavesExpire),
            ),
          );
        },
        Math.max(0, activateAfter),
      ),
    );
    return prepared;
  }

  /**
   * Checks the root every `checkInterval` and rotates when less than `gracePeriodRatio` of its
   * lifetime remains, as istiod's self-signed root rotator does.
   */
  start(options: RootRotatorOptions = {}): Subscription {
    const host = this.host;
    const interval = toMilliseconds(options.checkInterval ?? 3_600_000, "checkInterval");
    const ratio = options.gracePeriodRatio ?? 0.2;
    if (!(ratio > 0 && ratio < 1))
      throw new CaError("invalid-argument", "gracePeriodRatio must be between 0 and 1");
    // The decision is taken synchronously at each tick (so virtual time is exact); exhaustMap
    // ignores ticks while a rotation is in flight.
    const subscription = timer(0, interval, host.scheduler)
      .pipe(
        filter(() => {
          if (this.inFlight) return false;
          const cert = host.material().cert;
          const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
          return cert.notAfter.getTime() - host.clock() < lifetime * ratio;
        }),
        exhaustMap(() =>
          this.rotate(options).catch((error: unknown) => {
            host.logger.error("root rotation failed; will retry at the next check", { error: String(error) });
          }),
        ),
      )
      .subscribe();
    host.tasks.add(subscription);
    return subscription;
  }

  private async persisted(): Promise<void> {
    try {
      await this.host.persist();
    } catch (error) {
      this.host.logger.error("could not persist the rotated root; a restart would lose it", {
        error: String(error),
      });
    }
  }
}
