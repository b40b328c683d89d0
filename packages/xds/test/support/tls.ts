import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM files made by openssl for one test: a CA, a server certificate and client certificates. */
export interface TestPki {
  readonly ca: Buffer;
  readonly server: { readonly key: Buffer; readonly cert: Buffer };
  /** A client certificate per name, its URI SAN the given SPIFFE ID (or none). */
  client(name: string): { readonly key: Buffer; readonly cert: Buffer };
  /** A client certificate signed by another CA the server does not trust. */
  readonly stranger: { readonly key: Buffer; readonly cert: Buffer };
  remove(): void;
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: "ignore" });
}

/**
 * Makes a throwaway PKI with openssl (EC P-256, one day): `clients` maps a name to the URI SAN of
 * its certificate (a SPIFFE ID), or to undefined for a certificate without one.
 */
export function makePki(clients: Record<string, string | undefined>): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "meshlet-pki-"));
  const at = (f: string) => join(dir, f);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const makeCa = (name: string) =>
    openssl([
      "req",
      "-x509",
      ...ec,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-keyout",
      at(`${name}.key`),
      "-out",
      at(`${name}.pem`),
    ]);
  const issue = (ca: string, name: string, extensions: string) => {
    writeFileSync(at(`${name}.ext`), extensions);
    openssl(["req", ...ec, "-subj", `/CN=${name}`, "-keyout", at(`${name}.key`), "-out", at(`${name}.csr`)]);
    openssl([
      "x509",
      "-req",
      "-in",
      at(`${name}.csr`),
      "-CA",
      at(`${ca}.pem`),
      "-CAkey",
      at(`${ca}.key`),
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      at(`${name}.ext`),
      "-out",
      at(`${name}.pem`),
    ]);
    return { key: readFileSync(at(`${name}.key`)), cert: readFileSync(at(`${name}.pem`)) };
  };
  makeCa("test-ca");
  makeCa("other-ca");
  const server = issue("test-ca", "localhost", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
  const issued = new Map<string, { key: Buffer; cert: Buffer }>();
  for (const [name, uri] of Object.entries(clients)) {
    issued.set(
      name,
      issue("test-ca", name, `${uri ? `subjectAltName=URI:${uri}\n` : ""}extendedKeyUsage=clientAuth\n`),
    );
  }
  const stranger = issue(
    "other-ca",
    "stranger",
    "subjectAltName=URI:spiffe://example.org/stranger\nextendedKeyUsage=clientAuth\n",
  );
  return {
    ca: readFileSync(at("test-ca.pem")),
    server,
    stranger,
    client(name) {
      const c = issued.get(name);
      if (!c) throw new Error(`no client certificate "${name}"`);
      return c;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
