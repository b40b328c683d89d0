import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Observable } from "rxjs";
import { createVersion, currentVersion, replaceVersion, type VersionFile } from "./atomic-directory.js";
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
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, () => {
        clearTimeout(timer);
        timer = setTimeout(() => subscriber.next(), debounceMs);
      });
    } catch (error) {
      // ENOSPC (inotify limit), ENOENT: an error of the feed, never an exception out of subscribe.
      subscriber.error(CaError.from(error, "root-store", `${dir}: cannot watch`));
      return;
    }
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
 *
 * The files are replaced all at once, as the kubelet writes Secret volumes: each version lives in
 * a hidden directory, `..data` links to the current one and the four names link into `..data` (see
 * `atomic-directory.ts`). A crash or a failed write never leaves a new key beside an old
 * certificate, and a reader never sees half a rotation. A directory of plain files (an operator's
 * `cacerts`, an earlier meshlet) is converted on the first update, its content unchanged.
 * Concurrent writers are not detected: the last `update` wins (the Kubernetes store conflicts).
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
            // A set of files that does not load is read again at the next change.
            () => {},
          );
        },
        error: (error: unknown) => subscriber.error(error),
      }),
    );
  }

  async load(): Promise<StoredRoot | undefined> {
    const f = ISTIO_CA_CERT_FILES;
    // One version's files, read together; a version removed by a concurrent swap is read again.
    for (let attempt = 0; ; attempt++) {
      const base = await currentVersion(this.dir);
      const [key, cert, roots] = await Promise.all([
        readOptional(join(base, f.caKey)),
        readOptional(join(base, f.caCert)),
        readOptional(join(base, f.rootCert)),
      ]);
      if (key === undefined && base !== this.dir && attempt < 3) continue;
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
  }

  async create(root: StoredRoot): Promise<StoredRoot> {
    let created: boolean;
    try {
      created = await createVersion(this.dir, this.files(root));
    } catch (error) {
      throw CaError.from(error, "root-store", `${this.dir}: cannot store the root`);
    }
    if (created) return root;
    // Another replica stored its root first: use that one.
    const winner = await this.load();
    if (!winner) throw new CaError("root-store", `${this.dir}: the stored root vanished`);
    return winner;
  }

  async update(root: StoredRoot): Promise<void> {
    try {
      await replaceVersion(this.dir, this.files(root), () => this.plainFiles());
    } catch (error) {
      throw CaError.from(
        error,
        "root-store",
        `${this.dir}: cannot store the root (the previous one is kept)`,
      );
    }
  }

  private files(root: StoredRoot): VersionFile[] {
    const f = ISTIO_CA_CERT_FILES;
    return [
      { name: f.caKey, content: root.key, mode: 0o600 },
      { name: f.rootCert, content: root.roots.join(""), mode: 0o644 },
      { name: f.certChain, content: root.cert, mode: 0o644 },
      { name: f.caCert, content: root.cert, mode: 0o644 },
    ];
  }

  /** The plain files of a directory without `..data`, to keep as its first version. */
  private async plainFiles(): Promise<VersionFile[]> {
    const out: VersionFile[] = [];
    for (const [name, mode] of [
      [ISTIO_CA_CERT_FILES.caKey, 0o600],
      [ISTIO_CA_CERT_FILES.rootCert, 0o644],
      [ISTIO_CA_CERT_FILES.certChain, 0o644],
      [ISTIO_CA_CERT_FILES.caCert, 0o644],
    ] as const) {
      const content = await readOptional(join(this.dir, name));
      if (content !== undefined) out.push({ name, content, mode });
    }
    return out;
  }
}
