import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  CertificateAuthority,
  inClusterConnection,
  type KubernetesConnection,
  KubernetesSecretRootStore,
  KubernetesTokenReviewVerifier,
} from "@meshlet/ca";
import { type ConfigSource, KubernetesSource } from "@meshlet/config";
import { type InjectorConfig, resolveInjectorConfig } from "@meshlet/kube";
import type { ControlPlaneOptions } from "./control-plane.js";
import type { MeshletdExtensionOptions } from "./meshletd-extension.js";

// `meshlet serve --kubernetes`: the settings meshletd runs with on a cluster, from the rendered
// Deployment's environment (packages/kube/src/manifests/control-plane.ts, "meshletd's contract"
// in docs/aks.md) and flags, turned into control-plane options and the meshletd extension.

/** Where the CA's signing key comes from (the manifests' `MESHLET_CA_MODE`). */
export type CaMode = "self-signed" | "plugged" | "vault";

/**
 * `ca.mode=vault`: Vault's PKI engine signs, meshletd logs in with Vault's Kubernetes auth (the
 * manifests' `VAULT_ADDR` and `MESHLET_VAULT_*`).
 */
export interface VaultCaSettings {
  /** `VAULT_ADDR`. */
  readonly address: string;
  /** PKI mount (`MESHLET_VAULT_PKI_MOUNT`, default `pki_int`). */
  readonly pkiMount?: string;
  /** Role that signs workload SVIDs, URI SAN only (`MESHLET_VAULT_PKI_ROLE`, default `meshlet-workloads`). */
  readonly role?: string;
  /**
   * Role that signs meshletd's serving certificates: meshletd's SPIFFE ID plus exactly its DNS
   * names (`MESHLET_VAULT_SERVING_ROLE`, default `meshletd-serving`).
   */
  readonly servingRole?: string;
  /** Kubernetes auth mount (`MESHLET_VAULT_AUTH_MOUNT`, default `kubernetes`). */
  readonly authMount?: string;
  /** Kubernetes auth role (`MESHLET_VAULT_AUTH_ROLE`, default `meshletd`). */
  readonly authRole?: string;
  /** Projected token, audience `vault` (`MESHLET_VAULT_TOKEN_PATH`, default `/var/run/secrets/vault/token`). */
  readonly tokenPath?: string;
  /** Vault Enterprise namespace (`VAULT_NAMESPACE`). */
  readonly namespace?: string;
}

/** What `meshlet serve --kubernetes` needs to know; see {@link kubernetesControlPlane}. */
export interface KubernetesModeSettings {
  /** A kubeconfig file; without it, the pod's in-cluster service account. */
  readonly kubeconfig?: string;
  /** The control plane's namespace (`POD_NAMESPACE`; in a pod, the service account's namespace file). */
  readonly namespace?: string;
  /** The control plane's service account (`SERVICE_ACCOUNT`, default `meshletd`). */
  readonly serviceAccount?: string;
  readonly trustDomain: string;
  /** The Service host the agents dial (`MESHLET_SERVICE_HOST`, default `meshletd.<namespace>.svc`). */
  readonly serviceHost?: string;
  /** More DNS names for the serving certificates. */
  readonly dnsNames?: readonly string[];
  /** `/etc/meshlet` (`MESHLET_CONFIG_DIR`): `injector.json`. */
  readonly configDir?: string;
  readonly caMode?: CaMode;
  /** Vault's settings, for `caMode: "vault"`. */
  readonly vault?: VaultCaSettings;
  /** Where `ca.mode=plugged` reads Istio's `cacerts` layout (default `/etc/cacerts`). */
  readonly cacertsDir?: string;
  readonly mutatingWebhook?: string;
  readonly validatingWebhook?: string;
  /** Webhook address (`0.0.0.0:15017`), or false. */
  readonly webhook: string | false;
  /** How often the webhook configurations' `caBundle` is checked again (default 60 s). */
  readonly caBundleResyncMs?: number;
  /** Health address (`0.0.0.0:8080`), or false. */
  readonly health: string | false;
  /** Extra config sources (files given with `--config`), before the cluster's. */
  readonly extraSources?: readonly ConfigSource[];
  readonly onError?: (message: string) => void;
  /** In-cluster credentials directory (tests; default the kubelet's mount). */
  readonly serviceAccountDir?: string;
}

/**
 * The names meshletd's serving certificates carry: its Service (`meshletd.meshlet-system.svc`, the
 * host of the discovery address and `CA_ADDR` the injector writes, which istio-agent verifies) and,
 * as istiod's certificate does, `istiod.istio-system.svc` (pilot/pkg/bootstrap: the DNS names
 * istiod signs for), so agents configured with Istio's default address verify it too.
 */
export function servingDnsNames(serviceHost: string, extra: readonly string[] = []): string[] {
  return [...new Set([serviceHost, "istiod.istio-system.svc", ...extra])];
}

async function loadKubeConfig(
  settings: KubernetesModeSettings,
): Promise<{ kubeConfig: KubeConfig; connection: KubernetesConnection; namespace: string | undefined }> {
  const k8s = await import("@kubernetes/client-node");
  const kubeConfig = new k8s.KubeConfig();
  if (settings.kubeconfig === undefined) {
    // In a pod: client-node's in-cluster config for the watches, and the same mounted token (read
    // again per request: the kubelet rotates it) and CA for TokenReview and the root Secret.
    const connection = await inClusterConnection(settings.serviceAccountDir);
    kubeConfig.loadFromCluster();
    return { kubeConfig, connection, namespace: connection.namespace };
  }
  kubeConfig.loadFromFile(settings.kubeconfig);
  const cluster = kubeConfig.getCurrentCluster();
  const user = kubeConfig.getCurrentUser();
  if (cluster === null) throw new Error(`${settings.kubeconfig}: no current cluster`);
  if (user?.token === undefined || user.token === "")
    throw new Error(
      `${settings.kubeconfig}: the current user needs a bearer token (TokenReview and the CA Secret are called with it); client certificates and exec plugins are not supported here`,
    );
  let caCert: string | undefined;
  if (cluster.caData !== undefined) caCert = Buffer.from(cluster.caData, "base64").toString("utf8");
  else if (cluster.caFile !== undefined) caCert = await readFile(cluster.caFile, "utf8");
  const namespace = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
  return {
    kubeConfig,
    connection: {
      apiServer: cluster.server,
      bearerToken: user.token,
      ...(caCert !== undefined ? { caCert } : {}),
    },
    namespace,
  };
}

/**
 * Two CAs over Vault's PKI engine, sharing one Kubernetes-auth login: workloads through the
 * URI-only role, meshletd's own serving certificates (SPIFFE ID + DNS names) through the serving
 * role. Both publish Vault's `ca/pem`; each leaf Vault returns is still validated as an SVID.
 */
async function vaultCas(
  vault: VaultCaSettings | undefined,
  trustDomain: string,
): Promise<{ ca: CertificateAuthority; servingCa: CertificateAuthority }> {
  if (vault === undefined || vault.address === "")
    throw new Error("ca mode vault needs VAULT_ADDR (the manifests' ca.vault.address)");
  const { VaultKubernetesAuth, VaultPkiSigner } = await import("@meshlet/adapters/vault");
  const auth = new VaultKubernetesAuth({
    address: vault.address,
    role: vault.authRole ?? "meshletd",
    mount: vault.authMount ?? "kubernetes",
    tokenPath: vault.tokenPath ?? "/var/run/secrets/vault/token",
    ...(vault.namespace !== undefined ? { namespace: vault.namespace } : {}),
  });
  const signer = (role: string) =>
    new VaultPkiSigner({
      address: vault.address,
      token: (o) => auth.token(o),
      mount: vault.pkiMount ?? "pki_int",
      role,
      ...(vault.namespace !== undefined ? { namespace: vault.namespace } : {}),
    });
  const ca = await CertificateAuthority.fromSigner(signer(vault.role ?? "meshlet-workloads"), {
    trustDomain,
  });
  try {
    const servingCa = await CertificateAuthority.fromSigner(signer(vault.servingRole ?? "meshletd-serving"), {
      trustDomain,
    });
    return { ca, servingCa };
  } catch (error) {
    ca.close();
    throw error;
  }
}

async function loadInjectorConfig(configDir: string | undefined): Promise<InjectorConfig> {
  if (configDir === undefined) return resolveInjectorConfig({});
  const file = join(configDir, "injector.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return resolveInjectorConfig({});
    throw error;
  }
  try {
    return resolveInjectorConfig(JSON.parse(text));
  } catch (error) {
    throw new Error(`${file}: not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Turns the settings into `startControlPlane` options and the meshletd extension: the cluster's
 * config and registry (`KubernetesSource`), TokenReview authentication (audience `istio-ca`), the
 * CA root shared through Secret `istio-ca-secret` (or Istio's plug-in `cacerts`), the serving
 * identity and DNS names, no workload files (each pod's agent asks the CA API itself).
 */
export async function kubernetesControlPlane(settings: KubernetesModeSettings): Promise<{
  options: Pick<
    ControlPlaneOptions,
    | "config"
    | "tokenVerifier"
    | "rootStore"
    | "ca"
    | "servingCa"
    | "identity"
    | "servingDnsNames"
    | "trustDomain"
  >;
  extension: MeshletdExtensionOptions;
  namespace: string;
}> {
  const { kubeConfig, connection, namespace: found } = await loadKubeConfig(settings);
  const namespace = settings.namespace ?? found;
  if (namespace === undefined || namespace === "")
    throw new Error("the control plane's namespace is unknown: set POD_NAMESPACE or --namespace");
  const trustDomain = settings.trustDomain;
  const serviceHost = settings.serviceHost ?? `meshletd.${namespace}.svc`;
  const identity = `spiffe://${trustDomain}/ns/${namespace}/sa/${settings.serviceAccount ?? "meshletd"}`;
  const dnsNames = servingDnsNames(serviceHost, settings.dnsNames);
  const caMode = settings.caMode ?? "self-signed";
  let ca: CertificateAuthority | undefined;
  let servingCa: CertificateAuthority | undefined;
  if (caMode === "plugged")
    ca = await CertificateAuthority.fromIstioCaCerts(settings.cacertsDir ?? "/etc/cacerts", {
      trustDomain,
      watch: true,
    });
  else if (caMode === "vault") ({ ca, servingCa } = await vaultCas(settings.vault, trustDomain));
  const injector = await loadInjectorConfig(settings.configDir);
  return {
    namespace,
    options: {
      trustDomain,
      config: { sources: [...(settings.extraSources ?? []), new KubernetesSource({ kubeConfig })] },
      tokenVerifier: new KubernetesTokenReviewVerifier({ ...connection, trustDomain }),
      ...(ca !== undefined
        ? { ca }
        : { rootStore: new KubernetesSecretRootStore({ ...connection, namespace }) }),
      ...(servingCa !== undefined ? { servingCa } : {}),
      identity,
      servingDnsNames: dnsNames,
    },
    extension: {
      kubeConfig,
      health: settings.health,
      ...(settings.caBundleResyncMs !== undefined ? { caBundleResyncMs: settings.caBundleResyncMs } : {}),
      webhook:
        settings.webhook === false
          ? false
          : {
              address: settings.webhook,
              identity,
              dnsNames,
              injector,
              ...(servingCa !== undefined ? { servingCa } : {}),
              ...(settings.mutatingWebhook !== undefined
                ? { mutatingConfiguration: settings.mutatingWebhook }
                : {}),
              ...(settings.validatingWebhook !== undefined
                ? { validatingConfiguration: settings.validatingWebhook }
                : {}),
            },
      ...(settings.onError !== undefined ? { onError: settings.onError } : {}),
    },
  };
}
