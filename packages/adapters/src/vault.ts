export {
  VaultKubernetesAuth,
  type VaultKubernetesAuthOptions,
} from "./vault/vault-kubernetes-auth.js";
export {
  VaultPkiSigner,
  type VaultPkiSignerOptions,
  type VaultTokenProvider,
} from "./vault/vault-pki-signer.js";
