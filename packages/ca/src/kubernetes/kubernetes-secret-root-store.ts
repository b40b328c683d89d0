import { createPrivateKey } from "node:crypto";
import {
  asyncScheduler,
  distinctUntilChanged,
  filter,
  from,
  map,
  type Observable,
  type SchedulerLike,
  switchMap,
  timer,
} from "rxjs";
import { CaError } from "../ca-error.js";
import { type Duration, toMilliseconds } from "../duration.js";
import { ISTIO_CA_CERT_FILES } from "../istio-ca-certs.js";
import { certificatesOf } from "../pem.js";
import type { RootStore, StoredRoot } from "../root-store.js";
import { type KubernetesConnection, kubeRequest } from "./kube-request.js";

/** istiod's self-signed root Secret: name and type (istio/istio security/pkg/pki/ca/ca.go). */
export const ISTIO_CA_SECRET = { name: "istio-ca-secret", type: "istio.io/ca-root" } as const;

/** Options for {@link KubernetesSecretRootStore}. */
export interface KubernetesSecretRootStoreOptions extends KubernetesConnection {
  /** Namespace of the Secret (istiod's: `istio-system`). */
  readonly namespace: string;
  /** Secret name (default `istio-ca-secret`, istiod's). */
  readonly name?: string;
  /** How often `changes$` reads the Secret to follow other replicas (default 60s). */
  readonly pollInterval?: Duration;
  readonly scheduler?: SchedulerLike;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const unb64 = (value: unknown) =>
  typeof value === "string" ? Buffer.from(value, "base64").toString("utf8") : "";

/**
 * Keeps a self-signed root in a Kubernetes Secret laid out as istiod's `istio-ca-secret` (type
 * `istio.io/ca-root`; data `ca-cert.pem`, `ca-key.pem`, `root-cert.pem`, `cert-chain.pem` and
 * `key.pem`, the last two empty, as istiod writes them), through the Kubernetes REST API
 * (`GET`/`POST`/`PUT /api/v1/namespaces/<ns>/secrets[/<name>]`). Replicas share the root: the
 * first `POST` wins, the others get `409 AlreadyExists` and load the winner's; updates carry the
 * `resourceVersion` they read, so concurrent rotations conflict instead of overwriting each other.
 *
 * The CA's service account needs `get`, `create` and `update` on this Secret.
 */
export class KubernetesSecretRootStore implements RootStore {
  readonly location: string;
  readonly changes$: Observable<StoredRoot>;
  private readonly options: KubernetesSecretRootStoreOptions;
  private readonly name: string;
  private resourceVersion: string | undefined;

  constructor(options: KubernetesSecretRootStoreOptions) {
    this.options = options;
    this.name = options.name ?? ISTIO_CA_SECRET.name;
    this.location = `${options.namespace}/${this.name}`;
    const interval = toMilliseconds(options.pollInterval ?? 60_000, "pollInterval");
    this.changes$ = timer(interval, interval, options.scheduler ?? asyncScheduler).pipe(
      switchMap(() => from(this.read().catch(() => undefined))),
      filter((read): read is { root: StoredRoot; resourceVersion: string } => read !== undefined),
      distinctUntilChanged((a, b) => a.resourceVersion === b.resourceVersion),
      map(({ root }) => root),
    );
  }

  private get path(): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.options.namespace)}/secrets`;
  }

  private async read(): Promise<{ root: StoredRoot; resourceVersion: string } | undefined> {
    const { status, json } = await kubeRequest(
      this.options,
      "GET",
      `${this.path}/${encodeURIComponent(this.name)}`,
      undefined,
      "root-store",
    );
    if (status === 404) return undefined;
    if (status !== 200 || !json) throw this.failure("GET", status, json);
    const data = (json.data ?? {}) as Record<string, unknown>;
    const f = ISTIO_CA_CERT_FILES;
    const key = unb64(data[f.caKey]);
    const cert = unb64(data[f.caCert]);
    if (!key || !cert) {
      throw new CaError("root-store", `Secret ${this.location}: needs ${f.caCert} and ${f.caKey}`);
    }
    const roots = certificatesOf(unb64(data[f.rootCert]), `Secret ${this.location} ${f.rootCert}`);
    const resourceVersion = String(
      (json.metadata as Record<string, unknown> | undefined)?.resourceVersion ?? "",
    );
    this.resourceVersion = resourceVersion;
    return { root: { key, cert, roots: roots.length > 0 ? roots : [cert] }, resourceVersion };
  }

  async load(): Promise<StoredRoot | undefined> {
    return (await this.read())?.root;
  }

  async create(root: StoredRoot): Promise<StoredRoot> {
    const { status, json } = await kubeRequest(
      this.options,
      "POST",
      this.path,
      this.secret(root),
      "root-store",
    );
    if (status === 201 || status === 200) {
      this.resourceVersion = String(
        (json?.metadata as Record<string, unknown> | undefined)?.resourceVersion ?? "",
      );
      return root;
    }
    if (status === 409) {
      const winner = await this.read();
      if (winner) return winner.root;
    }
    throw this.failure("POST", status, json);
  }

  async update(root: StoredRoot): Promise<void> {
    const body = this.secret(root, this.resourceVersion);
    const { status, json } = await kubeRequest(
      this.options,
      "PUT",
      `${this.path}/${encodeURIComponent(this.name)}`,
      body,
      "root-store",
    );
    if (status !== 200) throw this.failure("PUT", status, json);
    this.resourceVersion = String(
      (json?.metadata as Record<string, unknown> | undefined)?.resourceVersion ?? "",
    );
  }

  private secret(root: StoredRoot, resourceVersion?: string): Record<string, unknown> {
    const f = ISTIO_CA_CERT_FILES;
    // ca-key.pem as PKCS#8, which istiod reads as well as PKCS#1/SEC1.
    const key = createPrivateKey(root.key).export({ format: "pem", type: "pkcs8" }) as string;
    return {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: this.name,
        namespace: this.options.namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      type: ISTIO_CA_SECRET.type,
      data: {
        [f.caCert]: b64(root.cert),
        [f.caKey]: b64(key),
        [f.rootCert]: b64(root.roots.join("")),
        [f.certChain]: "",
        "key.pem": "",
      },
    };
  }

  private failure(method: string, status: number, json: Record<string, unknown> | undefined): CaError {
    const message = typeof json?.message === "string" ? json.message : "";
    const hint =
      status === 403
        ? "; grant the CA's service account get/create/update on this Secret"
        : status === 409
          ? "; another replica changed it, reload and retry"
          : "";
    return new CaError(
      "root-store",
      `Secret ${this.location}: ${method} answered ${status}${message ? ` (${message})` : ""}${hint}`,
    );
  }
}
