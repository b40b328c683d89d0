import { createPublicKey, X509Certificate } from "node:crypto";
import { lstat, mkdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { filter, firstValueFrom } from "rxjs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CaError,
  CertificateAuthority,
  DirectoryRootStore,
  ISTIO_CA_SECRET,
  KubernetesSecretRootStore,
  type StoredRoot,
} from "../src/index.js";
import { tempDir } from "./helpers.js";
import { openssl, opensslSelfSigned } from "./openssl.js";
import { KubeSecretsServer } from "./support/kube-secrets-server.js";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;

const verifies = (leaf: string, root: string) =>
  new X509Certificate(leaf).verify(new X509Certificate(root).publicKey);

describe("selfSigned with a DirectoryRootStore (Istio's plug-in cacerts layout)", () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("stores the root in the cacerts layout, and a restart or a second replica signs with the same root", async () => {
    const tmp = await tempDir("root-dir");
    cleanups.push(() => tmp.cleanup());
    const dir = join(tmp.dir, "cacerts");
    const first = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: new DirectoryRootStore(dir),
    });
    cleanups.push(() => first.close());
    const root = first.trustBundle.roots[0] as string;
    for (const file of ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"]) {
      expect((await stat(join(dir, file))).isFile()).toBe(true);
    }
    expect((await stat(join(dir, "ca-key.pem"))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, "root-cert.pem"), "utf8")).toBe(root);
    // openssl agrees the key belongs to the certificate.
    const pub = await openssl(["x509", "-in", "ca-cert.pem", "-noout", "-pubkey"], dir);
    expect(await openssl(["pkey", "-in", "ca-key.pem", "-pubout"], dir)).toBe(pub);

    const leaf = (await first.mintSvid({ identity: WEB })).chain[0] as string;
    const restarted = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: new DirectoryRootStore(dir),
    });
    cleanups.push(() => restarted.close());
    expect(restarted.trustBundle.roots).toEqual([root]);
    expect(verifies((await restarted.mintSvid({ identity: WEB })).chain[0] as string, root)).toBe(true);
    expect(verifies(leaf, restarted.trustBundle.roots[0] as string)).toBe(true);
    // The same directory is a valid plug-in CA for fromIstioCaCerts (and for istiod's cacerts).
    const plugged = await CertificateAuthority.fromIstioCaCerts(dir, { trustDomain: TD });
    cleanups.push(() => plugged.close());
    expect(plugged.trustBundle.roots).toEqual([root]);
  });

  it("an update that cannot complete leaves the stored key and certificate a matching pair", async () => {
    // A crash or a failed write halfway through replacing four files must not leave the new key
    // beside the old certificate: the CA would refuse to start (key-mismatch). A non-empty
    // directory where cert-chain.pem belongs makes the write fail partway, even for root.
    const tmp = await tempDir("root-dir-partial");
    cleanups.push(() => tmp.cleanup());
    const dir = join(tmp.dir, "cacerts");
    const store = new DirectoryRootStore(dir);
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, store });
    ca.close();
    // The next root, made by openssl (not the CA's code).
    const next = await opensslSelfSigned(tmp.dir, "next", { subject: `/O=${TD}` });
    await rm(join(dir, "cert-chain.pem"));
    await mkdir(join(dir, "cert-chain.pem"));
    await writeFile(join(dir, "cert-chain.pem", "obstacle"), "");
    await expect(store.update({ ...next, roots: [next.cert] })).rejects.toBeInstanceOf(CaError);
    const stored = (await store.load()) as StoredRoot;
    const certKey = new X509Certificate(stored.cert).publicKey.export({ format: "der", type: "spki" });
    const key = createPublicKey(stored.key).export({ format: "der", type: "spki" });
    expect(key.equals(certKey)).toBe(true);
    await rm(join(dir, "cert-chain.pem"), { recursive: true });
    const restarted = await CertificateAuthority.selfSigned({ trustDomain: TD, store });
    restarted.close();
  });

  it("a directory of plain files (an operator's cacerts) is rotated into the symlinked layout, its files still readable by name", async () => {
    const tmp = await tempDir("root-dir-plain");
    cleanups.push(() => tmp.cleanup());
    const plain = await opensslSelfSigned(tmp.dir, "operator", { subject: `/O=${TD}` });
    await writeFile(join(tmp.dir, "ca-cert.pem"), plain.cert);
    await writeFile(join(tmp.dir, "ca-key.pem"), plain.key, { mode: 0o600 });
    const ca = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: new DirectoryRootStore(tmp.dir),
    });
    cleanups.push(() => ca.close());
    const rotation = await ca.rotateRoot({ mode: "keep-key" });
    // Kubernetes AtomicWriter layout: the names link into ..data, which links to one version.
    for (const file of ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"]) {
      expect((await lstat(join(tmp.dir, file))).isSymbolicLink()).toBe(true);
      expect(await readlink(join(tmp.dir, file))).toBe(`..data/${file}`);
    }
    expect(await readFile(join(tmp.dir, "ca-cert.pem"), "utf8")).toBe(rotation.root);
    expect((await stat(join(tmp.dir, "ca-key.pem"))).mode & 0o777).toBe(0o600);
    const pub = await openssl(["x509", "-in", "ca-cert.pem", "-noout", "-pubkey"], tmp.dir);
    expect(await openssl(["pkey", "-in", "ca-key.pem", "-pubout"], tmp.dir)).toBe(pub);
  });

  it("a replica follows a rotation another replica stored", async () => {
    const tmp = await tempDir("root-dir-follow");
    cleanups.push(() => tmp.cleanup());
    const a = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: new DirectoryRootStore(tmp.dir),
    });
    const b = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: new DirectoryRootStore(tmp.dir),
    });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const seen = firstValueFrom(b.trustBundle$.pipe(filter((bundle) => bundle.sequence > 1)));
    const rotation = await a.rotateRoot({ mode: "keep-key" });
    expect((await seen).roots).toEqual([rotation.root]);
    expect(b.signingCertificate).toBe(rotation.root);
  });
});

describe("selfSigned with a KubernetesSecretRootStore (istiod's istio-ca-secret)", () => {
  const TOKEN = "ca-service-account-token";
  let api: KubeSecretsServer;
  beforeAll(async () => {
    api = await new KubeSecretsServer(TOKEN).start();
  });
  afterAll(() => api.stop());
  const store = (namespace: string) =>
    new KubernetesSecretRootStore({ apiServer: api.url, bearerToken: TOKEN, namespace });

  it("two replicas starting together share one root: one creates the Secret, the other loads it", async () => {
    const [a, b] = await Promise.all([
      CertificateAuthority.selfSigned({ trustDomain: TD, store: store("istio-system") }),
      CertificateAuthority.selfSigned({ trustDomain: TD, store: store("istio-system") }),
    ]);
    expect(a.trustBundle.roots).toEqual(b.trustBundle.roots);
    const posts = api.requests.filter(
      (r) => r.method === "POST" && r.path.startsWith("/api/v1/namespaces/istio-system/"),
    );
    expect(posts).toHaveLength(2); // one 201, one 409 AlreadyExists
    const secret = api.secrets.get(`istio-system/${ISTIO_CA_SECRET.name}`) as {
      type: string;
      data: Record<string, string>;
    };
    // istio/istio security/pkg/pki/ca/ca.go: Secret "istio-ca-secret", type "istio.io/ca-root",
    // keys ca-cert.pem, ca-key.pem, cert-chain.pem, key.pem, root-cert.pem.
    expect(secret.type).toBe("istio.io/ca-root");
    expect(Object.keys(secret.data).sort()).toEqual([
      "ca-cert.pem",
      "ca-key.pem",
      "cert-chain.pem",
      "key.pem",
      "root-cert.pem",
    ]);
    const decode = (k: string) => Buffer.from(secret.data[k] as string, "base64").toString();
    expect(decode("ca-cert.pem")).toBe(a.trustBundle.roots[0]);
    expect(decode("root-cert.pem")).toBe(a.trustBundle.roots[0]);
    expect(decode("ca-key.pem")).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const restarted = await CertificateAuthority.selfSigned({
      trustDomain: TD,
      store: store("istio-system"),
    });
    expect(restarted.trustBundle.roots).toEqual(a.trustBundle.roots);
    expect(
      verifies((await b.mintSvid({ identity: WEB })).chain[0] as string, a.trustBundle.roots[0] as string),
    ).toBe(true);
    for (const ca of [a, b, restarted]) ca.close();
  });

  it("loads a Secret istiod created (RSA root, PKCS#1 key, empty cert-chain.pem and key.pem)", async () => {
    const tmp = await tempDir("istiod-secret");
    try {
      // What istiod's self-signed CA writes: an RSA-2048 root with O=<trust domain>, its key in
      // PKCS#1 ("RSA PRIVATE KEY"), root-cert.pem = ca-cert.pem.
      await openssl(["genrsa", "-traditional", "-out", "ca-key.pem", "2048"], tmp.dir);
      await openssl(
        [
          "req",
          "-x509",
          "-new",
          "-key",
          "ca-key.pem",
          "-out",
          "ca-cert.pem",
          "-days",
          "3650",
          "-subj",
          `/O=${TD}`,
          "-addext",
          "basicConstraints=critical,CA:true",
          "-addext",
          "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
        tmp.dir,
      );
      const cert = await readFile(join(tmp.dir, "ca-cert.pem"), "utf8");
      const key = await readFile(join(tmp.dir, "ca-key.pem"), "utf8");
      expect(key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
      const b64 = (s: string) => Buffer.from(s).toString("base64");
      api.put("from-istiod", {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "istio-ca-secret" },
        type: "istio.io/ca-root",
        data: {
          "ca-cert.pem": b64(cert),
          "ca-key.pem": b64(key),
          "root-cert.pem": b64(cert),
          "cert-chain.pem": "",
          "key.pem": "",
        },
      });
      const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, store: store("from-istiod") });
      const chain = (await ca.mintSvid({ identity: WEB })).chain;
      await writeFile(join(tmp.dir, "leaf.pem"), chain[0] as string);
      expect(
        await openssl(["verify", "-x509_strict", "-CAfile", "ca-cert.pem", "leaf.pem"], tmp.dir),
      ).toContain("leaf.pem: OK");
      ca.close();
    } finally {
      await tmp.cleanup();
    }
  });

  it("a rotation rewrites the Secret with the resourceVersion it read", async () => {
    const ca = await CertificateAuthority.selfSigned({ trustDomain: TD, store: store("rotating") });
    const created = api.secrets.get(`rotating/${ISTIO_CA_SECRET.name}`) as {
      metadata: { resourceVersion: string };
    };
    const read = created.metadata.resourceVersion;
    const rotation = await ca.rotateRoot({ mode: "keep-key" });
    const secret = api.secrets.get(`rotating/${ISTIO_CA_SECRET.name}`) as { data: Record<string, string> };
    expect(Buffer.from(secret.data["ca-cert.pem"] as string, "base64").toString()).toBe(rotation.root);
    const puts = api.requests.filter((r) => r.method === "PUT" && r.path.includes("/rotating/"));
    // Kubernetes "API Concepts": an update carrying metadata.resourceVersion succeeds only if the
    // object is unchanged since; without it the write would silently overwrite another replica's.
    expect(puts).toEqual([{ method: "PUT", path: expect.any(String), resourceVersion: read }]);
    ca.close();
  });
});
