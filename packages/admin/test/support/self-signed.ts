import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A self-signed P-256 certificate for `localhost` and 127.0.0.1, made by the real `openssl` (as an
 * operator would make one for the admin listener), written to `<dir>/key.pem` and `<dir>/cert.pem`.
 */
export function selfSignedLocalhost(dir: string): {
  key: Buffer;
  cert: Buffer;
  keyFile: string;
  certFile: string;
} {
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"],
      ...["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      ...["-keyout", keyFile, "-out", certFile],
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(keyFile), cert: readFileSync(certFile), keyFile, certFile };
}
