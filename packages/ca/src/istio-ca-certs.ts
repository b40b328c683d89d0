import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { currentVersion } from "./atomic-directory.js";
import { CaError } from "./ca-error.js";
import { fromPem, fromPemOf, toPem } from "./pem.js";
import { createSigningMaterial, type SigningMaterial, toX509 } from "./signing-material.js";
import { parseCertificate } from "./x509/certificate.js";

/** File names of Istio's plugged-in CA layout (the `cacerts` secret). */
export const ISTIO_CA_CERT_FILES = {
  caCert: "ca-cert.pem",
  caKey: "ca-key.pem",
  rootCert: "root-cert.pem",
  certChain: "cert-chain.pem",
} as const;

async function readRequired(dir: string, file: string, base = dir): Promise<string> {
  const path = join(dir, file);
  try {
    return await readFile(join(base, file), "utf8");
  } catch (error) {
    throw CaError.from(
      error,
      "ca-material",
      `${path}: cannot read Istio CA file (plugged-in CA layout needs ${file})`,
    );
  }
}

async function readOptional(dir: string, file: string, base = dir): Promise<string | undefined> {
  try {
    return await readFile(join(base, file), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw CaError.from(error, "ca-material", `${join(dir, file)}: cannot read`);
  }
}

function checkValidity(der: Buffer, where: string, now: number): void {
  const cert = parseCertificate(der, where);
  if (now > cert.notAfter.getTime()) {
    throw new CaError(
      "ca-expired",
      `${where}: certificate expired at ${cert.notAfter.toISOString()}; plug in a renewed certificate`,
    );
  }
  if (now < cert.notBefore.getTime()) {
    throw new CaError(
      "ca-expired",
      `${where}: certificate is not valid before ${cert.notBefore.toISOString()}; check the clock or the certificate`,
    );
  }
}

/** Loaded and cross-checked plugged-in CA material. */
export interface IstioCaCerts {
  readonly material: SigningMaterial;
  /** The roots valid now, PEM (expired ones are left out). */
  readonly roots: readonly string[];
  /** What was left out of `root-cert.pem` and why (an expired root of a rotation, …). */
  readonly skippedRoots: readonly string[];
}

function validityProblem(der: Buffer, where: string, now: number): string | undefined {
  try {
    checkValidity(der, where, now);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Loads Istio's plugged-in CA layout from `dir`: `ca-cert.pem` (the signing certificate, usually a
 * per-cluster intermediate), `ca-key.pem`, `root-cert.pem` (one or more roots) and the optional
 * `cert-chain.pem` (from `ca-cert` up to the root, as Istio's `cacerts` secret has it). Checks
 * PEM, key/certificate match, validity at `now`, and that the chain verifies up to a root.
 */
export async function loadIstioCaCerts(dir: string, now: number): Promise<IstioCaCerts> {
  const f = ISTIO_CA_CERT_FILES;
  // A Kubernetes Secret mount (or a DirectoryRootStore) swaps `..data` to replace every file at
  // once: read all four from the version it points to now, never two versions mixed.
  const base = await currentVersion(dir).catch(() => dir);
  const [certText, keyText, rootText, chainText] = await Promise.all([
    readRequired(dir, f.caCert, base),
    readRequired(dir, f.caKey, base),
    readRequired(dir, f.rootCert, base),
    readOptional(dir, f.certChain, base),
  ]);
  const where = (file: string) => join(dir, file);
  const certs = fromPemOf(certText, "CERTIFICATE", where(f.caCert));
  if (certs.length !== 1) {
    throw new CaError("ca-material", `${where(f.caCert)}: expected one certificate, found ${certs.length}`);
  }
  const certDer = certs[0] as Buffer;
  const keyBlock = fromPem(keyText, where(f.caKey))[0] as { label: string };
  if (!/PRIVATE KEY$/.test(keyBlock.label)) {
    throw new CaError(
      "ca-material",
      `${where(f.caKey)}: expected a PRIVATE KEY block, found ${keyBlock.label}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (error) {
    throw CaError.from(
      error,
      "ca-material",
      `${where(f.caKey)}: cannot decode the private key (PKCS#8, PKCS#1 or SEC1 PEM)`,
    );
  }
  const roots = fromPemOf(rootText, "CERTIFICATE", where(f.rootCert));
  const chain = chainText === undefined ? [certDer] : fromPemOf(chainText, "CERTIFICATE", where(f.certChain));

  checkValidity(certDer, where(f.caCert), now);
  for (const [i, der] of chain.entries())
    checkValidity(der, `${where(f.certChain)} certificate ${i + 1}`, now);
  // Several roots are the normal state of a rotation (old + new); one of them may have expired
  // already. Expired roots leave the bundle; at least one must be valid.
  const skippedRoots: string[] = [];
  const validRoots = roots.filter((der, i) => {
    const problem = validityProblem(der, `${where(f.rootCert)} certificate ${i + 1}`, now);
    if (problem) skippedRoots.push(problem);
    return problem === undefined;
  });
  if (validRoots.length === 0) checkValidity(roots[0] as Buffer, `${where(f.rootCert)} certificate 1`, now);

  if (!(chain[0] as Buffer).equals(certDer)) {
    throw new CaError("ca-material", `${where(f.certChain)}: must start with the certificate in ${f.caCert}`);
  }
  // Every link must be signed by the next one, and the last by (or be) a root.
  const x509Chain = chain.map((der, i) => toX509(der, `${where(f.certChain)} certificate ${i + 1}`));
  const x509Roots = validRoots.map((der, i) => toX509(der, `${where(f.rootCert)} certificate ${i + 1}`));
  for (let i = 0; i + 1 < x509Chain.length; i++) {
    const child = x509Chain[i]!;
    const parent = x509Chain[i + 1]!;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new CaError(
        "ca-material",
        `${where(f.certChain)}: certificate ${i + 1} is not signed by certificate ${i + 2}; order it leaf-to-root`,
      );
    }
  }
  const last = x509Chain[x509Chain.length - 1]!;
  const anchored = x509Roots.some(
    (root) => root.raw.equals(last.raw) || (last.checkIssued(root) && last.verify(root.publicKey)),
  );
  if (!anchored) {
    throw new CaError(
      "ca-material",
      `${where(f.certChain)}: the chain does not lead to a root in ${f.rootCert}; add the missing intermediate or root`,
    );
  }
  const rootPems = validRoots.map((der) => toPem("CERTIFICATE", der));
  const chainPem = chain.map((der) => toPem("CERTIFICATE", der));
  if (!x509Roots.some((root) => root.raw.equals(last.raw))) {
    // Istio's CreateCertificate answers leaf-first with the root last.
    const issuer = x509Roots.find((root) => last.checkIssued(root))!;
    chainPem.push(toPem("CERTIFICATE", issuer.raw));
  }
  return {
    material: createSigningMaterial(key, certDer, chainPem, where(f.caCert)),
    roots: rootPems,
    skippedRoots,
  };
}
