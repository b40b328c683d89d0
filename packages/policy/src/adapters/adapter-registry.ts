import { Subject } from "rxjs";
import { PolicyError } from "../policy-error.js";
import type { Adapter, AdapterFailure, AdapterKind, AdapterOptions, FailurePolicy } from "./adapter.js";
import { validateConfig } from "./config-schema.js";

/** A registered adapter with its resolved options. */
export interface RegisteredAdapter<A extends Adapter = Adapter> {
  adapter: A;
  timeoutMs: number;
  failurePolicy: FailurePolicy;
  /**
   * The adapter answers from memory in this process (the built-in counters): no timer races it,
   * which would cost more than the call itself on every rate-limit check.
   */
  inProcess?: boolean;
}

/** The signal of calls that cannot time out. */
const NEVER_ABORTED = new AbortController().signal;

/** The outcome of one adapter call: a value, or the failure that replaced it. */
export type AdapterCallResult<T> = { ok: true; value: T } | { ok: false; failure: AdapterFailure };

/**
 * Holds adapters by name, validates their config, and calls them under a timeout; every failure
 * is reported on `failures$` (and returned to the caller, which applies the failure policy).
 */
export class AdapterRegistry {
  readonly #adapters = new Map<string, RegisteredAdapter>();
  readonly #failures = new Subject<AdapterFailure>();
  /** Every adapter error and timeout, as it happens. */
  readonly failures$ = this.#failures.asObservable();

  /**
   * Registers an adapter after validating `options.config` against its schema.
   * @throws PolicyError `invalid-adapter-config` listing every problem, or when the name is taken.
   */
  async register<A extends Adapter>(adapter: A, options: AdapterOptions = {}): Promise<void> {
    if (!adapter || typeof adapter.name !== "string" || adapter.name === "") {
      throw new PolicyError("invalid-adapter-config", "an adapter needs a non-empty name");
    }
    if (!["check", "quota", "report"].includes(adapter.kind)) {
      throw new PolicyError(
        "invalid-adapter-config",
        `adapter ${adapter.name}: kind must be check, quota or report`,
      );
    }
    if (this.#adapters.has(adapter.name)) {
      throw new PolicyError("invalid-adapter-config", `adapter ${adapter.name} is already registered`);
    }
    const timeoutMs = options.timeoutMs ?? 200;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      throw new PolicyError("invalid-adapter-config", `adapter ${adapter.name}: timeoutMs must be > 0`);
    }
    const failurePolicy = options.failurePolicy ?? "fail-closed";
    if (failurePolicy !== "fail-open" && failurePolicy !== "fail-closed") {
      throw new PolicyError(
        "invalid-adapter-config",
        `adapter ${adapter.name}: failurePolicy must be "fail-open" or "fail-closed"`,
      );
    }
    if (adapter.configSchema) {
      const problems = validateConfig(adapter.configSchema, options.config ?? {});
      if (problems.length > 0) {
        throw new PolicyError(
          "invalid-adapter-config",
          `adapter ${adapter.name}: invalid config:\n  ${problems.join("\n  ")}`,
        );
      }
    }
    await adapter.configure?.(options.config ?? {});
    this.#adapters.set(adapter.name, { adapter, timeoutMs, failurePolicy });
  }

  /** The adapter registered under `name`, checked to be of `kind`. */
  get<K extends AdapterKind>(
    name: string,
    kind: K,
  ): RegisteredAdapter<Extract<Adapter, { kind: K }>> | undefined {
    const reg = this.#adapters.get(name);
    if (!reg || reg.adapter.kind !== kind) return undefined;
    return reg as RegisteredAdapter<Extract<Adapter, { kind: K }>>;
  }

  /** All adapters of one kind, in registration order. */
  ofKind<K extends AdapterKind>(kind: K): RegisteredAdapter<Extract<Adapter, { kind: K }>>[] {
    return [...this.#adapters.values()].filter((r) => r.adapter.kind === kind) as RegisteredAdapter<
      Extract<Adapter, { kind: K }>
    >[];
  }

  /** Calls an adapter under its timeout; never throws. */
  async call<T>(
    reg: RegisteredAdapter,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<AdapterCallResult<T>> {
    if (reg.inProcess) {
      try {
        return { ok: true, value: await fn(NEVER_ABORTED) };
      } catch (e) {
        return this.#fail(reg, "adapter-failed", e instanceof Error ? e.message : String(e));
      }
    }
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), reg.timeoutMs);
    });
    try {
      const result = await Promise.race([fn(controller.signal).then((value) => ({ value })), timeout]);
      if (result === "timeout") {
        controller.abort();
        return this.#fail(reg, "adapter-timeout", `no answer within ${reg.timeoutMs} ms`);
      }
      return { ok: true, value: result.value };
    } catch (e) {
      return this.#fail(reg, "adapter-failed", e instanceof Error ? e.message : String(e));
    } finally {
      clearTimeout(timer);
    }
  }

  #fail(
    reg: RegisteredAdapter,
    code: AdapterFailure["code"],
    message: string,
  ): { ok: false; failure: AdapterFailure } {
    const failure: AdapterFailure = {
      adapter: reg.adapter.name,
      kind: reg.adapter.kind,
      code,
      message,
      failurePolicy: reg.failurePolicy,
    };
    this.#failures.next(failure);
    return { ok: false, failure };
  }

  /** Closes every adapter (errors are collected, not thrown one by one). */
  async close(): Promise<void> {
    const regs = [...this.#adapters.values()];
    this.#adapters.clear();
    await Promise.allSettled(regs.map((r) => r.adapter.close?.()));
    this.#failures.complete();
  }
}
