import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { connect, createServer } from "node:tls";
import { VirtualTimeScheduler } from "rxjs";
import { describe, expect, it } from "vitest";
import {
  CertificateAuthority,
  checkSpiffeId,
  type RootRotationOptions,
  SpiffeId,
  spiffeIdOf,
  type X509Svid,
} from "../src/index.js";

const TD = "example.org";
const HOUR = 3_600_000;
const STEP = 5 * 60_000;

/**
 * A workload as istio-agent runs it, in the worst case for a rotation: it learns the trust bundle
 * only when it renews its SVID (no push), and renews at half the SVID's lifetime.
 */
interface Peer {
  readonly id: SpiffeId;
  svid: X509Svid;
  roots: readonly string[];
  renewAt: number;
  /** Which root signed its current leaf: "old" or "new". */
  signedBy: string;
}

/** One real mTLS handshake (node:tls) from `client` to `server`; resolves with the failure, if any. */
async function handshake(client: Peer, server: Peer): Promise<string | undefined> {
  const tlsServer = createServer(
    {
      key: server.svid.privateKey,
      cert: server.svid.chain.slice(0, -1).join(""),
      ca: server.roots.join(""),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (socket) => {
      const peer = spiffeIdOf(socket.getPeerCertificate());
      socket.end(peer?.equals(client.id) ? "ok" : "wrong peer");
    },
  );
  const serverError = new Promise<string>((resolve) =>
    tlsServer.on("tlsClientError", (e: Error) => resolve(`server: ${e.message}`)),
  );
  tlsServer.listen(0, "127.0.0.1");
  await once(tlsServer, "listening");
  try {
    const socket = connect({
      host: "127.0.0.1",
      port: (tlsServer.address() as AddressInfo).port,
      key: client.svid.privateKey,
      cert: client.svid.chain.slice(0, -1).join(""),
      ca: client.roots.join(""),
      checkServerIdentity: checkSpiffeId(server.id),
    });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    // events.once rejects when the socket emits 'error' first: that is the client's verdict.
    const clientOutcome = once(socket, "end").then(
      () => (Buffer.concat(chunks).toString() === "ok" ? undefined : "no answer"),
      (e: Error) => `client: ${e.message}`,
    );
    const outcome = await Promise.race([clientOutcome, serverError]);
    socket.destroy();
    return outcome;
  } finally {
    tlsServer.close();
  }
}

/**
 * Drives two peers through a new-key root rotation in virtual time, renewing each at half its
 * SVID's lifetime and doing real mTLS handshakes both ways every 5 virtual minutes. TLS checks
 * validity against the real clock, so the CA backdates notBefore by 12h: every certificate of the
 * 8-hour virtual walk is valid in real time, and the walk's expiries are the virtual ones.
 */
async function walkThroughRotation(rotation: RootRotationOptions) {
  const scheduler = new VirtualTimeScheduler();
  const base = Date.now();
  const clock = () => base + scheduler.now();
  const ca = await CertificateAuthority.selfSigned({
    trustDomain: TD,
    clock,
    scheduler,
    defaultTtl: "1h",
    maxTtl: "2h",
    backdate: "12h",
  });
  const oldRoot = ca.trustBundle.roots[0] as string;
  const renew = async (peer: Pick<Peer, "id"> & Partial<Peer>): Promise<Peer> => {
    const svid = await ca.mintSvid({ identity: peer.id, ttl: "1h" });
    const root = svid.chain[svid.chain.length - 1] as string;
    return Object.assign(peer, {
      svid,
      roots: ca.trustBundle.roots,
      renewAt: clock() + HOUR / 2,
      signedBy: root === oldRoot ? "old" : "new",
    }) as Peer;
  };
  const advanceTo = (t: number) => {
    // Virtual time only moves to scheduled actions (delays are relative to the current frame).
    scheduler.schedule(() => {}, t - scheduler.now());
    scheduler.maxFrames = t;
    scheduler.flush();
  };
  const phases: string[] = [];
  ca.rootRotation$.subscribe((r) => phases.push(r.phase));
  const a = await renew({ id: SpiffeId.istio(TD, "shop", "frontend") });
  advanceTo(20 * 60_000);
  const b = await renew({ id: SpiffeId.istio(TD, "shop", "backend") });
  const failures: string[] = [];
  const pairs = new Set<string>();
  for (let t = 20 * 60_000; t <= 8 * HOUR; t += STEP) {
    advanceTo(t);
    if (t === 65 * 60_000) await ca.rotateRoot({ mode: "new-key", ...rotation });
    for (const peer of [a, b]) if (clock() >= peer.renewAt) await renew(peer);
    for (const [client, server] of [
      [a, b],
      [b, a],
    ] as const) {
      const failure = await handshake(client, server);
      pairs.add(`${client.signedBy}->${server.signedBy}`);
      if (failure) failures.push(`t=${t / 60_000}min ${client.id.path} -> ${server.id.path}: ${failure}`);
    }
  }
  ca.close();
  return { failures, phases, pairs, roots: ca.trustBundle.roots.length };
}

describe("new-key root rotation that peers survive", () => {
  it("two peers that learn the bundle only when they renew handshake at every step of a two-phase rotation", async () => {
    const { failures, phases, pairs } = await walkThroughRotation({});
    expect(failures).toEqual([]);
    expect(phases).toEqual(["prepared", "activated", "retired"]);
    // The walk did cross the dangerous states: old-leaf and new-leaf holders talking both ways.
    expect(pairs).toContain("old->new");
    expect(pairs).toContain("new->old");
    expect(pairs).toContain("new->new");
  }, 120_000);

  it("the same peers fail when signing switches at once (control: the walk detects a broken rotation)", async () => {
    const { failures } = await walkThroughRotation({ activateAfter: 0 });
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.join("\n")).toMatch(/certificate|alert|verify/i);
  }, 120_000);
});
