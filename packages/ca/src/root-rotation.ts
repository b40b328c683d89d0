import { exhaustMap, filter, type SchedulerLike, Subscription, timer } from "rxjs";
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
   * `defaultTtl`), which covers peers that only learn the bundle when they renew at half-life; with
   * a root store, `maxTtl`, because a previous process or another replica may have issued longer
   * leaves than this process saw.
   */
  readonly activateAfter?: Duration;
  /**
   * `new-key`: how long the old root stays in the bundle after signing switched. Never less than
   * the time until the last leaf the old root signed expires (the default; with a root store,
   * `maxTtl` after the switch, for leaves other processes signed).
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
  /**
   * Longest lifetime, in ms, of a leaf the current root may have signed that a peer may still
   * hold (what this process issued, at least `defaultTtl`; `maxTtl` when the root came from a
   * store, because a previous process or another replica may have issued leaves unseen here).
   */
  longestLeafLifetimeMs(): number;
  /** The latest notAfter, epoch ms, of any leaf `material` may have signed (same reasoning). */
  lastLeafNotAfter(material: SigningMaterial): number;
  /**
   * Stores `material` and `roots` in the root store. `undefined` when there is no store (nothing
   * to wait for); a promise that rejects when the store refuses (a 409 conflict, no permission).
   */
  persist(material: SigningMaterial, roots: readonly string[]): Promise<void> | undefined;
  /** Publishes a rotation step on `rootRotation$`. */
  emit(rotation: RootRotation): void;
}

/** How long a step whose root could not be stored waits before trying again. */
const STORE_RETRY_MS = 30_000;

/** A `new-key` rotation between `prepared` and `retired`. */
interface InFlight {
  /** The new root, PEM: while the bundle holds it, the rotation goes on. */
  readonly root: string;
  /** The rotation's scheduled steps, cancelled when it is abandoned. */
  readonly tasks: Subscription;
}

/**
 * Rotation of a self-signed root (istiod's `SelfSignedCARootCertRotator` for `keep-key`; SPIRE's
 * prepared/active split for `new-key`).
 *
 * With a root store, every step is stored before it takes effect: a rotation the store refuses
 * (another replica changed the root: 409) changes nothing and rejects, and a later step that cannot
 * be stored is retried. A rotation whose new root disappears from a followed store (an operator or
 * another replica replaced it) is abandoned rather than switching signing to a root nobody trusts.
 */
export class RootRotator {
  private readonly host: RotationHost;
  /** A rotation is being prepared (between the call and the `prepared` step). */
  private busy = false;
  private inFlight: InFlight | undefined;

  constructor(host: RotationHost) {
    this.host = host;
  }

  /** Rotates now; for `new-key`, resolves at the `prepared` step and schedules the rest. */
  async rotate(options: RootRotationOptions = {}): Promise<RootRotation> {
    const mode = options.mode ?? "keep-key";
    if (this.busy || this.inFlight) {
      // A keep-key rotation in the middle of a new-key one would replace the root the rotation
      // retires later, leaving the re-issued one in the bundle for good.
      throw new CaError(
        "ca-material",
        "a root rotation is already in progress; wait for it to finish (rootRotation$ emits retired)",
      );
    }
    this.busy = true;
    try {
      return await this.rotateNow(mode, options);
    } finally {
      this.busy = false;
    }
  }

  /** Called with the roots each time the CA followed a change of its root store. */
  followed(roots: readonly string[]): void {
    const rotation = this.inFlight;
    if (!rotation || roots.includes(rotation.root)) return;
    rotation.tasks.unsubscribe();
    this.inFlight = undefined;
    this.host.logger.warn(
      "the stored root changed under a new-key rotation and no longer holds its new root; the rotation is abandoned",
      { trustDomain: this.host.trustDomain },
    );
  }

  private async rotateNow(mode: "keep-key" | "new-key", options: RootRotationOptions): Promise<RootRotation> {
    const host = this.host;
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
      const roots = [root.pem, ...host.roots().filter((r) => r !== previousRoot)];
      await this.store(material, roots, "the re-issued root");
      host.use(material);
      host.publishRoots(roots);
      const done = step("activated", now);
      host.logger.info("self-signed root rotated", { mode, trustDomain: host.trustDomain });
      host.emit(done);
      return done;
    }
    // Phase 1: publish the new root, keep signing with the old one.
    const prepared = [root.pem, ...host.roots()];
    await this.store(current, prepared, "the new root");
    const rotation: InFlight = { root: root.pem, tasks: new Subscription() };
    this.inFlight = rotation;
    host.tasks.add(rotation.tasks);
    host.publishRoots(prepared);
    host.emit(step("prepared", now));
    host.logger.info("new root published; signing switches after the propagation wait", {
      trustDomain: host.trustDomain,
    });
    const activateAfter =
      options.activateAfter !== undefined
        ? toMilliseconds(options.activateAfter, "activateAfter")
        : host.longestLeafLifetimeMs();
    const requestedOverlap = options.overlap !== undefined ? toMilliseconds(options.overlap, "overlap") : 0;
    // Phase 3: the old root leaves the bundle.
    const retire = () =>
      this.whenStored(
        rotation,
        material,
        host.roots().filter((r) => r !== previousRoot),
        (roots) => {
          host.publishRoots(roots);
          this.inFlight = undefined;
          rotation.tasks.unsubscribe();
          host.emit(step("retired"));
          host.logger.info("previous root left the trust bundle", { trustDomain: host.trustDomain });
        },
      );
    // Phase 2: the new root signs; the old one stays trusted while its leaves live.
    const activate = () =>
      this.whenStored(rotation, material, host.roots(), () => {
        host.use(material);
        host.emit(step("activated"));
        host.logger.info("new root signs now", { trustDomain: host.trustDomain });
        const untilOldLeavesExpire = Math.max(0, host.lastLeafNotAfter(current) - host.clock());
        this.schedule(rotation, retire, Math.max(requestedOverlap, untilOldLeavesExpire));
      });
    this.schedule(rotation, activate, Math.max(0, activateAfter));
    return step("prepared", now);
  }

  private schedule(rotation: InFlight, work: () => void, delay: number): void {
    rotation.tasks.add(this.host.scheduler.schedule(work, delay));
  }

  /**
   * Stores `material` and `roots`, then runs `apply` — at once when there is no store (so virtual
   * time stays exact) — or retries the whole step later when the store refuses.
   */
  private whenStored(
    rotation: InFlight,
    material: SigningMaterial,
    roots: readonly string[],
    apply: (roots: readonly string[]) => void,
  ): void {
    const stored = this.host.persist(material, roots);
    if (stored === undefined) {
      apply(roots);
      return;
    }
    stored.then(
      () => {
        if (this.inFlight === rotation) apply(roots);
      },
      (error: unknown) => {
        if (this.inFlight !== rotation) return;
        this.host.logger.error("could not store the rotation's next step; retrying", {
          error: String(error),
          retryInMs: STORE_RETRY_MS,
        });
        this.schedule(
          rotation,
          () => this.whenStored(rotation, material, this.host.roots(), apply),
          STORE_RETRY_MS,
        );
      },
    );
  }

  /** Stores a rotation's first step; a refusal aborts the rotation before anything changed. */
  private async store(material: SigningMaterial, roots: readonly string[], what: string): Promise<void> {
    try {
      await this.host.persist(material, roots);
    } catch (error) {
      throw new CaError(
        "root-store",
        `root rotation abandoned, nothing changed: ${what} could not be stored (${error instanceof Error ? error.message : String(error)}); the CA follows the stored root, rotate again later`,
        { cause: error },
      );
    }
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
          if (this.busy || this.inFlight) return false;
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
}
