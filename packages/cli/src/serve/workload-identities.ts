import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type CertificateAuthority,
  SdsServer,
  svidRotation$,
  type TrustBundle,
  type X509Svid,
} from "@meshlet/ca";
import {
  type GrpcBootstrap,
  type GrpcBootstrapOptions,
  grpcBootstrap,
  type Registry,
  WORKLOAD_CERT_FILES,
} from "@meshlet/mesh";
import { combineLatest, type Observable, ReplaySubject, type Subscription, share } from "rxjs";

// What istio-agent does for each pod, done by `meshlet serve` for every workload of the config:
// an X.509-SVID for the workload's service account, written as cert-chain.pem, key.pem and
// root-cert.pem (the files of Istio's `OUTPUT_CERTS` that the proxyless `file_watcher` certificate
// provider reads) and renewed at half its lifetime; an Istio-shaped gRPC bootstrap next to them;
// and an SDS server (`default`, `ROOTCA`) on a Unix socket in the same directory, as the agent's
// workload SDS socket.

/** Where a workload's files are. */
export interface WorkloadFiles {
  readonly namespace: string;
  readonly name: string;
  readonly spiffeId: string;
  /** The directory: `<root>/<namespace>/<name>`. */
  readonly dir: string;
  /** `<dir>/grpc-bootstrap.json`. */
  readonly bootstrap: string;
  /** `<dir>/sds.sock` (when SDS is served). */
  readonly sdsSocket: string;
}

/** Options of {@link WorkloadIdentities}. */
export interface WorkloadIdentitiesOptions {
  readonly ca: CertificateAuthority;
  /** Root directory of the per-workload directories. */
  readonly dir: string;
  /** The xDS server clients bootstrap with (`127.0.0.1:15010`). */
  readonly serverUri: string;
  /** Serve SDS per workload on `<dir>/sds.sock` (default true). */
  readonly sds?: boolean;
  /** Settings for every bootstrap written (e.g. `rbac: true` when workloads run grpc-js with GRPC_XDS_EXPERIMENTAL_RBAC=true). */
  readonly bootstrap?: Pick<
    GrpcBootstrapOptions,
    "rbac" | "refreshInterval" | "istioVersion" | "clusterId" | "metadata"
  >;
  /** Reports a failure (minting, writing) without stopping anything. */
  readonly onError: (message: string) => void;
  /** Reports a (re)issued certificate. */
  readonly onIssued?: (files: WorkloadFiles, notAfter: Date) => void;
}

interface Entry {
  readonly files: WorkloadFiles;
  readonly svid$: Observable<X509Svid>;
  readonly subscription: Subscription;
  sds?: { close(): Promise<void> };
  bootstrapJson?: string;
}

let writes = 0;

async function writeAtomically(path: string, content: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${++writes}`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
}

/** Keeps certificates, bootstraps and SDS sockets of the registry's workloads (see the module comment). */
export class WorkloadIdentities {
  readonly #options: WorkloadIdentitiesOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #bundle$: Observable<TrustBundle>;
  #closed = false;
  /** Updates run one at a time, in order: two at once would start two rotations and SDS sockets. */
  #queue: Promise<void> = Promise.resolve();

  constructor(options: WorkloadIdentitiesOptions) {
    this.#options = options;
    this.#bundle$ = options.ca.trustBundle$.pipe(share({ connector: () => new ReplaySubject(1) }));
  }

  /** The files of a workload, when it has an identity. */
  files(namespace: string, name: string): WorkloadFiles | undefined {
    return this.#entries.get(`${namespace}/${name}`)?.files;
  }

  /** Every workload with files. */
  all(): WorkloadFiles[] {
    return [...this.#entries.values()].map((e) => e.files);
  }

  /** The bootstrap of a workload as last written. */
  bootstrap(namespace: string, name: string): GrpcBootstrap | undefined {
    const json = this.#entries.get(`${namespace}/${name}`)?.bootstrapJson;
    return json === undefined ? undefined : (JSON.parse(json) as GrpcBootstrap);
  }

  /**
   * Follows the registry: workloads (Pods, WorkloadEntries) with a service account get files (and
   * rewritten bootstraps when their address or labels change); workloads that left lose them.
   */
  update(registry: Registry): Promise<void> {
    const run = this.#queue.then(() => this.#update(registry));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #update(registry: Registry): Promise<void> {
    if (this.#closed) return;
    const seen = new Set<string>();
    for (const w of registry.workloads()) {
      if (w.identity === "" || w.serviceAccount === "") continue;
      const key = `${w.namespace}/${w.name}`;
      seen.add(key);
      let entry = this.#entries.get(key);
      if (entry !== undefined && entry.files.spiffeId !== w.identity) {
        await this.#remove(key);
        entry = undefined;
      }
      entry ??= await this.#add(w.namespace, w.name, w.identity);
      if (entry === undefined) continue;
      const ip = w.addresses.find((a) => /^[0-9a-fA-F:.]+$/.test(a)) ?? "127.0.0.1";
      const bootstrap = grpcBootstrap({
        ...this.#options.bootstrap,
        serverUri: this.#options.serverUri,
        podName: w.name,
        namespace: w.namespace,
        ip,
        labels: w.labels,
        serviceAccount: w.serviceAccount,
        certDir: entry.files.dir,
      });
      const json = `${JSON.stringify(bootstrap, null, 2)}\n`;
      if (json !== entry.bootstrapJson) {
        try {
          await writeAtomically(entry.files.bootstrap, json);
          entry.bootstrapJson = json;
        } catch (error) {
          this.#options.onError(`cannot write ${entry.files.bootstrap}: ${String(error)}`);
        }
      }
    }
    for (const key of [...this.#entries.keys()]) if (!seen.has(key)) await this.#remove(key);
  }

  async #add(namespace: string, name: string, spiffeId: string): Promise<Entry | undefined> {
    const dir = join(this.#options.dir, namespace, name);
    const files: WorkloadFiles = {
      namespace,
      name,
      spiffeId,
      dir,
      bootstrap: join(dir, "grpc-bootstrap.json"),
      sdsSocket: join(dir, "sds.sock"),
    };
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      this.#options.onError(`cannot create ${dir}: ${String(error)}`);
      return undefined;
    }
    const svid$ = svidRotation$({ ca: this.#options.ca, identity: spiffeId }).pipe(
      share({ connector: () => new ReplaySubject(1) }),
    );
    const subscription = combineLatest([svid$, this.#bundle$]).subscribe({
      next: ([svid, bundle]) => void this.#write(files, svid, bundle),
      error: (error: unknown) =>
        this.#options.onError(`${spiffeId}: certificate rotation failed: ${String(error)}`),
    });
    const entry: Entry = { files, svid$, subscription };
    this.#entries.set(`${namespace}/${name}`, entry);
    if (this.#options.sds ?? true) {
      const sds = new SdsServer({ ca: this.#options.ca, identity: spiffeId, svid$ });
      try {
        await rm(files.sdsSocket, { force: true });
        entry.sds = await sds.listen({ address: `unix:${files.sdsSocket}` });
      } catch (error) {
        sds.close();
        this.#options.onError(`${spiffeId}: SDS on ${files.sdsSocket} failed: ${String(error)}`);
      }
    }
    return entry;
  }

  async #write(files: WorkloadFiles, svid: X509Svid, bundle: TrustBundle): Promise<void> {
    const roots = new Set(bundle.roots);
    try {
      // The key first: a reader that sees the new chain must find its key.
      await writeAtomically(join(files.dir, WORKLOAD_CERT_FILES.privateKey), svid.privateKey, 0o600);
      await writeAtomically(
        join(files.dir, WORKLOAD_CERT_FILES.certificateChain),
        svid.chain.filter((pem, i) => i === 0 || !roots.has(pem)).join(""),
      );
      await writeAtomically(join(files.dir, WORKLOAD_CERT_FILES.rootCertificate), bundle.roots.join(""));
      this.#options.onIssued?.(files, svid.notAfter);
    } catch (error) {
      if (!this.#closed)
        this.#options.onError(
          `cannot write the certificates of ${files.spiffeId} in ${files.dir}: ${String(error)}`,
        );
    }
  }

  async #remove(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    entry.subscription.unsubscribe();
    await entry.sds?.close().catch(() => undefined);
    await rm(entry.files.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Stops rotations and SDS servers; the files stay (a restart rewrites them). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    for (const entry of this.#entries.values()) {
      entry.subscription.unsubscribe();
      await entry.sds?.close().catch(() => undefined);
    }
    this.#entries.clear();
  }
}
