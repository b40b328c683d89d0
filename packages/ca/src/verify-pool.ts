import { Worker } from "node:worker_threads";
import { CaError } from "./ca-error.js";
import type { SignatureCheck, SignatureVerifier } from "./x509/csr.js";

// The worker is a few lines of CommonJS evaluated from a string, so it works the same from the ESM
// and CJS builds without a separate file. It imports the key and verifies: the two steps that cost
// most of a CSR's handling for EC keys and would otherwise run on the main thread.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createPublicKey, verify } = require("node:crypto");
parentPort.on("message", ({ id, check, encode }) => {
  let ok = false;
  let error;
  let spki;
  try {
    const key = createPublicKey(check.key);
    ok = verify(check.digest, check.data, key, check.signature);
    if (ok && encode) spki = key.export({ format: "der", type: "spki" });
  } catch (e) {
    error = String(e && e.message || e);
  }
  parentPort.postMessage({ id, ok, error, spki });
});
`;

interface Pending {
  resolve(result: { ok: boolean; spki?: Uint8Array }): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  inFlight: number;
}

/**
 * CSR signature verification on worker threads: key import and verification leave the main event
 * loop, so a busy CA keeps accepting calls and uses more than one core for the expensive part of
 * EC CSRs. Workers stay referenced only while they have work, so an idle pool never keeps a
 * process alive.
 */
export class VerifyPool implements SignatureVerifier {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(size: number) {
    if (!(Number.isInteger(size) && size > 0)) {
      throw new CaError("invalid-argument", `verifyThreads must be a positive integer, got ${size}`);
    }
    this.slots = Array.from({ length: size }, () => this.spawn());
  }

  /** Verifies on the least busy worker. */
  async verify(check: SignatureCheck): Promise<boolean> {
    return (await this.run(check, false)).ok;
  }

  /** Verifies and re-encodes the key as SPKI DER on the least busy worker. */
  async verifyAndEncode(check: SignatureCheck): Promise<{ ok: boolean; spki: Buffer }> {
    const { ok, spki } = await this.run(check, true);
    return { ok, spki: Buffer.from(spki ?? []) };
  }

  private run(check: SignatureCheck, encode: boolean): Promise<{ ok: boolean; spki?: Uint8Array }> {
    if (this.closed) return Promise.reject(new CaError("invalid-argument", "the verify pool is closed"));
    const slot = this.slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (slot.inFlight++ === 0) slot.worker.ref();
      slot.worker.postMessage({ id, check, encode });
    });
  }

  /** Stops the workers; verifications in flight are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values())
      p.reject(new CaError("invalid-argument", "the verify pool was closed"));
    this.pending.clear();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, inFlight: 0 };
    worker.unref();
    worker.on("message", (message: { id: number; ok: boolean; error?: string; spki?: Uint8Array }) => {
      const pending = this.pending.get(message.id);
      if (--slot.inFlight === 0) worker.unref();
      if (!pending) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) pending.reject(new Error(message.error));
      else pending.resolve(message);
    });
    worker.on("error", (error) => {
      // A crashed worker fails its callers; replace it so the pool keeps serving.
      for (const [id, p] of this.pending) {
        p.reject(error);
        this.pending.delete(id);
      }
      if (!this.closed) {
        const index = this.slots.indexOf(slot);
        if (index >= 0) this.slots[index] = this.spawn();
      }
    });
    return slot;
  }
}
