export { VaultPkiSigner, type VaultPkiSignerOptions } from "./vault/vault-pki-signer.js";
