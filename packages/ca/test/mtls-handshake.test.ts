import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type TLSSocket } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { CertificateAuthority, checkSpiffeId, SpiffeId, spiffeIdOf, type X509Svid } from "../src/index.js";

const TD = "example.org";
const FRONTEND = SpiffeId.istio(TD, "shop", "frontend");
const BACKEND = SpiffeId.istio(TD, "shop", "backend");

/**
 * A real mTLS handshake with node:tls between two workloads whose certificates the CA issued; each
 * side authenticates the other by SPIFFE ID (not DNS), as Envoy does with Istio certificates.
 */
describe("mTLS between two workloads with CA-issued SVIDs", () => {
  let ca: CertificateAuthority;
  let frontend: X509Svid;
  let backend: X509Svid;
  const servers: Server[] = [];
  const sockets: TLSSocket[] = [];

  beforeAll(async () => {
    ca = await CertificateAuthority.selfSigned({ trustDomain: TD, keyType: "rsa-2048" });
    frontend = await ca.mintSvid({ identity: FRONTEND });
    backend = await ca.mintSvid({ identity: BACKEND, keyType: "ecdsa-p256" });
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    for (const s of servers.splice(0)) s.close();
  });

  async function startBackend(allowed: SpiffeId) {
    const seen: string[] = [];
    const server = createServer(
      {
        key: backend.privateKey,
        cert: backend.chain.join(""),
        ca: ca.trustBundle.roots.join(""),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
      },
      (socket) => {
        const peer = spiffeIdOf(socket.getPeerCertificate());
        seen.push(String(peer));
        // Authorization by SPIFFE ID: only the allowed caller gets an answer.
        socket.end(peer?.equals(allowed) ? `hello ${peer}` : "denied");
      },
    );
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return { port: (server.address() as AddressInfo).port, seen, server };
  }

  async function call(port: number, svid: X509Svid, expectedServer: SpiffeId, roots = ca.trustBundle.roots) {
    const socket = connect({
      host: "127.0.0.1",
      port,
      key: svid.privateKey,
      cert: svid.chain.join(""),
      ca: roots.join(""),
      checkServerIdentity: checkSpiffeId(expectedServer),
    });
    sockets.push(socket);
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    await Promise.race([once(socket, "end"), once(socket, "error").then(([e]) => Promise.reject(e))]);
    return { text: Buffer.concat(chunks).toString(), socket };
  }

  it("both sides verify the chain and see each other's SPIFFE ID", async () => {
    const backendServer = await startBackend(FRONTEND);
    const { text, socket } = await call(backendServer.port, frontend, BACKEND);
    expect(text).toBe(`hello ${FRONTEND}`);
    expect(socket.authorized).toBe(true);
    expect(String(spiffeIdOf(socket.getPeerCertificate()))).toBe(String(BACKEND));
    expect(backendServer.seen).toEqual([String(FRONTEND)]);
  });

  it("the client refuses a server whose SPIFFE ID is not the one it expects", async () => {
    const backendServer = await startBackend(FRONTEND);
    await expect(call(backendServer.port, frontend, SpiffeId.istio(TD, "shop", "payments"))).rejects.toThrow(
      /not the expected SPIFFE ID/,
    );
  });

  it("the handshake fails for a workload whose certificate another CA issued", async () => {
    const rogueCa = await CertificateAuthority.selfSigned({ trustDomain: TD });
    const rogue = await rogueCa.mintSvid({ identity: FRONTEND });
    const backendServer = await startBackend(FRONTEND);
    const rejected = once(backendServer.server, "tlsClientError");
    // With TLS 1.3 the client may finish its side before the server's alert arrives, so the client
    // either errors or reads nothing; the server's verdict is the event that decides.
    const outcome = await call(backendServer.port, rogue, BACKEND).then(
      (r) => r.text,
      (e: Error) => `error: ${e.message}`,
    );
    const [error] = (await rejected) as [Error];
    expect(error).toBeInstanceOf(Error);
    expect(outcome).not.toContain("hello");
    expect(backendServer.seen).toEqual([]);
  });
});
