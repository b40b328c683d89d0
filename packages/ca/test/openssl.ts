import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Runs the Debian `openssl` binary; rejects with its stderr. */
export async function openssl(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout, stderr } = await run("openssl", args, { cwd, timeout: 60_000 });
    return stdout + stderr;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr ?? ""}${e.stdout ?? ""}${e.message}`);
  }
}

/**
 * Builds Istio's plugged-in CA layout the way Istio's docs do with openssl: an offline root and a
 * per-cluster intermediate, written as ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem.
 */
export async function makeIstioCaCerts(dir: string, cluster = "cluster1"): Promise<void> {
  await writeFile(
    join(dir, "ext.cnf"),
    [
      "[ intermediate ]",
      "basicConstraints = critical, CA:true, pathlen:0",
      "keyUsage = critical, digitalSignature, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
      "",
    ].join("\n"),
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "root-key.pem",
      "-out",
      "root-cert.pem",
      "-days",
      "3650",
      "-subj",
      "/O=Istio/CN=Root CA",
      "-addext",
      "basicConstraints=critical,CA:true",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await openssl(
    [
      "req",
      "-new",
      ...ec,
      "-keyout",
      "ca-key.pem",
      "-out",
      "ca.csr",
      "-subj",
      `/O=Istio/CN=Intermediate CA/L=${cluster}`,
    ],
    dir,
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "ca.csr",
      "-CA",
      "root-cert.pem",
      "-CAkey",
      "root-key.pem",
      "-CAcreateserial",
      "-out",
      "ca-cert.pem",
      "-days",
      "730",
      "-extfile",
      "ext.cnf",
      "-extensions",
      "intermediate",
    ],
    dir,
  );
  const chain =
    (await readFile(join(dir, "ca-cert.pem"), "utf8")) + (await readFile(join(dir, "root-cert.pem"), "utf8"));
  await writeFile(join(dir, "cert-chain.pem"), chain);
}

/**
 * A self-signed certificate and its key made by `openssl req -x509` in `dir` (`<name>.pem`,
 * `<name>-key.pem`): a CA certificate (cA=true, keyCertSign + cRLSign, both critical) unless
 * `ca: false`. Returns both PEMs.
 */
export async function opensslSelfSigned(
  dir: string,
  name: string,
  options: { subject: string; keyType?: "p256" | "ed25519"; ca?: boolean },
): Promise<{ cert: string; key: string }> {
  const keyArgs =
    options.keyType === "ed25519"
      ? ["-newkey", "ed25519"]
      : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const caArgs =
    options.ca === false
      ? []
      : ["-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign"];
  const [certFile, keyFile] = [`${name}.pem`, `${name}-key.pem`];
  await openssl(
    ["req", "-x509", ...keyArgs, "-nodes", "-keyout", keyFile, "-out", certFile]
      .concat(["-days", "30", "-subj", options.subject])
      .concat(caArgs),
    dir,
  );
  return {
    cert: await readFile(join(dir, certFile), "utf8"),
    key: await readFile(join(dir, keyFile), "utf8"),
  };
}

/**
 * Signs `csrPem` with the CA `<ca>.pem` / `<ca>-key.pem` in `dir` (`openssl x509 -req`), adding
 * `extensions` (openssl extfile lines); a random serial unless one is given. Returns the PEM.
 */
export async function opensslSignCsr(
  dir: string,
  options: { csrPem: string; ca: string; extensions: readonly string[]; days?: number; serial?: string },
): Promise<string> {
  const id = randomUUID();
  await writeFile(join(dir, `${id}.csr`), options.csrPem);
  await writeFile(join(dir, `${id}.ext`), `${options.extensions.join("\n")}\n`);
  const serial = options.serial === undefined ? ["-CAcreateserial"] : ["-set_serial", options.serial];
  await openssl(
    ["x509", "-req", "-in", `${id}.csr`, "-CA", `${options.ca}.pem`, "-CAkey", `${options.ca}-key.pem`]
      .concat(serial)
      .concat(["-days", String(options.days ?? 1), "-extfile", `${id}.ext`, "-out", `${id}.pem`]),
    dir,
  );
  return readFile(join(dir, `${id}.pem`), "utf8");
}
