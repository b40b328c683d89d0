#!/usr/bin/env bash
# Prepares HashiCorp Vault to be meshletd's external CA: an intermediate PKI mount whose role signs
# workload certificates (SPIFFE URI SANs only), and a Kubernetes auth role that lets meshletd's
# service account — and nothing else — use it. meshletd then signs through Vault with
# `VaultPkiSigner` (@meshlet/adapters; `POST /v1/<mount>/sign/<role>` with the CSR and `uri_sans`),
# rendered with:
#   meshlet manifest generate --set ca.mode=vault --set ca.vault.address=$VAULT_ADDR
# Run it with a Vault token allowed to mount engines and write policies (VAULT_ADDR, VAULT_TOKEN set),
# from a machine with kubectl access to the cluster. See docs/aks.md, "External CA on Vault".
#
# Settings: TRUST_DOMAIN (cluster.local), PKI_ROOT (pki), PKI_MOUNT (pki_int), PKI_ROLE
# (meshlet-workloads), SERVING_ROLE (meshletd-serving), AUTH_MOUNT (kubernetes), AUTH_ROLE (meshletd), MESHLET_NAMESPACE
# (meshlet-system), MAX_TTL (48h).
set -euo pipefail

TRUST_DOMAIN="${TRUST_DOMAIN:-cluster.local}"
PKI_ROOT="${PKI_ROOT:-pki}"
PKI_MOUNT="${PKI_MOUNT:-pki_int}"
PKI_ROLE="${PKI_ROLE:-meshlet-workloads}"
SERVING_ROLE="${SERVING_ROLE:-meshletd-serving}"
AUTH_MOUNT="${AUTH_MOUNT:-kubernetes}"
AUTH_ROLE="${AUTH_ROLE:-meshletd}"
MESHLET_NAMESPACE="${MESHLET_NAMESPACE:-meshlet-system}"
MAX_TTL="${MAX_TTL:-48h}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

for tool in vault kubectl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "vault-setup.sh: $tool is not installed" >&2; exit 1; }
done
: "${VAULT_ADDR:?set VAULT_ADDR}"

# A root CA in Vault (skip if your organisation's root signs the intermediate instead).
if ! vault secrets list -format=json | grep -q "\"$PKI_ROOT/\""; then
  vault secrets enable -path="$PKI_ROOT" pki
  vault secrets tune -max-lease-ttl=87600h "$PKI_ROOT"
  vault write -field=certificate "$PKI_ROOT/root/generate/internal" \
    common_name="meshlet root CA ($TRUST_DOMAIN)" ttl=87600h > "$WORK/root.pem"
fi

# The intermediate that signs workloads: its certificate chain is what proxies are given.
if ! vault secrets list -format=json | grep -q "\"$PKI_MOUNT/\""; then
  vault secrets enable -path="$PKI_MOUNT" pki
  vault secrets tune -max-lease-ttl=43800h "$PKI_MOUNT"
  vault write -field=csr "$PKI_MOUNT/intermediate/generate/internal" \
    common_name="meshlet intermediate CA ($TRUST_DOMAIN)" > "$WORK/intermediate.csr"
  vault write -field=certificate "$PKI_ROOT/root/sign-intermediate" \
    csr=@"$WORK/intermediate.csr" format=pem_bundle ttl=43800h > "$WORK/intermediate.pem"
  vault write "$PKI_MOUNT/intermediate/set-signed" certificate=@"$WORK/intermediate.pem"
fi

# Workload certificates carry only the SPIFFE ID meshletd authorized (spiffe://<trust domain>/ns/<ns>/sa/<sa>):
# no common name, no DNS or IP SANs, both server and client use.
vault write "$PKI_MOUNT/roles/$PKI_ROLE" \
  allowed_uri_sans="spiffe://$TRUST_DOMAIN/ns/*/sa/*" \
  allow_any_name=false allowed_domains="" allow_bare_domains=false allow_subdomains=false \
  allow_ip_sans=false enforce_hostnames=false require_cn=false \
  use_csr_common_name=false use_csr_sans=false \
  server_flag=true client_flag=true key_type=any max_ttl="$MAX_TTL"

# meshletd's own serving certificates (15012 xDS/CA, 15017 webhooks): its SPIFFE ID and exactly the
# DNS names agents and the API server verify, taken from the CSR meshletd makes for its own key.
vault write "$PKI_MOUNT/roles/$SERVING_ROLE" \
  allowed_uri_sans="spiffe://$TRUST_DOMAIN/ns/$MESHLET_NAMESPACE/sa/meshletd" \
  allowed_domains="meshletd.$MESHLET_NAMESPACE.svc,istiod.istio-system.svc" \
  allow_bare_domains=true allow_subdomains=false allow_glob_domains=false allow_any_name=false \
  allow_ip_sans=false enforce_hostnames=true require_cn=false \
  use_csr_common_name=false use_csr_sans=true \
  server_flag=true client_flag=true key_type=any max_ttl="$MAX_TTL"

cat > "$WORK/policy.hcl" <<HCL
path "$PKI_MOUNT/sign/$PKI_ROLE" {
  capabilities = ["update"]
}
path "$PKI_MOUNT/sign/$SERVING_ROLE" {
  capabilities = ["update"]
}
path "$PKI_MOUNT/ca/pem" {
  capabilities = ["read"]
}
HCL
vault policy write meshletd-pki "$WORK/policy.hcl"

# Kubernetes auth: Vault reviews the token meshletd presents (a projected token, audience "vault").
if ! vault auth list -format=json | grep -q "\"$AUTH_MOUNT/\""; then
  vault auth enable -path="$AUTH_MOUNT" kubernetes
fi
KUBE_HOST="$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
vault write "auth/$AUTH_MOUNT/config" kubernetes_host="$KUBE_HOST"
vault write "auth/$AUTH_MOUNT/role/$AUTH_ROLE" \
  bound_service_account_names=meshletd \
  bound_service_account_namespaces="$MESHLET_NAMESPACE" \
  audience=vault \
  token_policies=meshletd-pki \
  token_ttl=1h

echo "Vault is ready: mount $PKI_MOUNT, roles $PKI_ROLE and $SERVING_ROLE, auth role $AUTH_ROLE for $MESHLET_NAMESPACE/meshletd."
echo "Render with: meshlet manifest generate --set ca.mode=vault --set ca.vault.address=$VAULT_ADDR"
