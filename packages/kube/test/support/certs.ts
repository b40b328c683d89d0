import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Certificates made by the real `openssl` command (Debian's), not by the code under test: a CA and
// a serving certificate for the webhook Service's DNS names and 127.0.0.1, as meshletd's CA will
// issue one in the cluster.

export interface TestCa {
  readonly caCert: string;
  issue(commonName: string): { cert: string; key: string };
  cleanup(): void;
}

export function createTestCa(name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "meshlet-kube-certs-"));
  const run = (args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  run([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    `/O=meshlet tests/CN=${name}`,
  ]);
  let serial = 0;
  return {
    caCert: readFileSync(join(dir, "ca.crt"), "utf8"),
    issue(commonName) {
      serial++;
      const base = `leaf${serial}`;
      writeFileSync(
        join(dir, `${base}.ext`),
        "subjectAltName=DNS:meshletd.meshlet-system.svc,DNS:meshletd.meshlet-system.svc.cluster.local,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
      );
      run([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        `${base}.key`,
        "-out",
        `${base}.csr`,
        "-subj",
        `/CN=${commonName}`,
      ]);
      run([
        "x509",
        "-req",
        "-in",
        `${base}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${base}.crt`,
        "-days",
        "1",
        "-extfile",
        `${base}.ext`,
      ]);
      return {
        cert: readFileSync(join(dir, `${base}.crt`), "utf8"),
        key: readFileSync(join(dir, `${base}.key`), "utf8"),
      };
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
