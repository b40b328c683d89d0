import { watch } from "node:fs";
import { link, mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Observable } from "rxjs";
import { CaError } from "./ca-error.js";
import { ISTIO_CA_CERT_FILES } from "./istio-ca-certs.js";
import { certificatesOf } from "./pem.js";
import type { RootStore, StoredRoot } from "./root-store.js";

/**
 * Emits (debounced) whenever something in `dir` changes. Kubernetes updates mounted Secrets by
 * swapping a `..data` symlink, which shows as renames in the directory: watching the directory
 * (not the files) sees both plain writes and those swaps.
 */
export function directoryChanges$(dir: string, debounceMs = 100): Observable<void> {
  return new Observable<void>((subscriber) => {
    let timer: NodeJS.Timeout | undefined;
    const watcher = watch(dir, { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(() => subscriber.next(), debounceMs);
    });
    watcher.on("error", (error) =>
      subscriber.error(CaError.from(error, "root-store", `${dir}: watch failed`)),
    );
    return () => {
      clearTimeout(timer);
      watcher.close();
    };
  });
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw CaError.from(error, "root-store", `${path}: cannot read`);
  }
}

/**
 * Keeps a self-signed root in a directory in Istio's plug-in CA layout (`cacerts`): `ca-cert.pem`
 * (the root that signs), `ca-key.pem` (its key, mode 0600), `root-cert.pem` (every root of the
 * trust bundle) and `cert-chain.pem` (the signing certificate). The same directory can be loaded
 * with `CertificateAuthority.fromIstioCaCerts` or mounted into istiod as `cacerts`.
 */
export class DirectoryRootStore implements RootStore {
  readonly location: string;
  readonly changes$: Observable<StoredRoot>;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.location = dir;
    this.changes$ = new Observable<StoredRoot>((subscriber) =>
      directoryChanges$(dir).subscribe({
        next: () => {
          this.load().then(
            (root) => {
              if (root) subscriber.next(root);
            },
            // A half-written set of files is read again at the next change.
            () => {},
          );
        },
        error: (error: unknown) => subscriber.error(error),
      }),
    );
  }

  async load(): Promise<StoredRoot | undefined> {
    const f = ISTIO_CA_CERT_FILES;
    const [key, cert, roots] = await Promise.all([
      readOptional(join(this.dir, f.caKey)),
      readOptional(join(this.dir, f.caCert)),
      readOptional(join(this.dir, f.rootCert)),
    ]);
    if (key === undefined) return undefined;
    if (cert === undefined) {
      throw new CaError("root-store", `${join(this.dir, f.caCert)}: missing while ${f.caKey} exists`);
    }
    return {
      key,
      cert,
      roots: roots === undefined ? [cert] : certificatesOf(roots, join(this.dir, f.rootCert)),
    };
  }

  async create(root: StoredRoot): Promise<StoredRoot> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.writeCertificates(root);
    // The key is linked into place last and exclusively: the first replica to link it wins, and a
    // reader that sees the key also sees certificates.
    const temp = join(this.dir, `.${ISTIO_CA_CERT_FILES.caKey}.${process.pid}.${Date.now()}`);
    await writeFile(temp, root.key, { mode: 0o600 });
    try {
      await link(temp, join(this.dir, ISTIO_CA_CERT_FILES.caKey));
      return root;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw CaError.from(error, "root-store", `${this.dir}: cannot store the root key`);
      }
      const winner = await this.load();
      if (!winner) throw new CaError("root-store", `${this.dir}: ${ISTIO_CA_CERT_FILES.caKey} vanished`);
      return winner;
    } finally {
      await unlink(temp).catch(() => {});
    }
  }

  async update(root: StoredRoot): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.replace(ISTIO_CA_CERT_FILES.caKey, root.key, 0o600);
    await this.writeCertificates(root);
  }

  private async writeCertificates(root: StoredRoot): Promise<void> {
    const f = ISTIO_CA_CERT_FILES;
    await this.replace(f.rootCert, root.roots.join(""), 0o644);
    await this.replace(f.certChain, root.cert, 0o644);
    await this.replace(f.caCert, root.cert, 0o644);
  }

  /** Writes a file atomically (temp file + rename), so readers never see half a PEM. */
  private async replace(file: string, content: string, mode: number): Promise<void> {
    const temp = join(this.dir, `.${file}.${process.pid}.${Date.now()}`);
    try {
      await writeFile(temp, content, { mode });
      await rename(temp, join(this.dir, file));
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw CaError.from(error, "root-store", `${join(this.dir, file)}: cannot write`);
    }
  }
}
