#!/usr/bin/env bash
# Deploys meshlet's reference mesh to Azure Kubernetes Service, from an Azure subscription to the
# demo's traffic: resource group, Azure Container Registry and AKS cluster (created, or reused),
# images built in ACR, Istio's CRDs from Istio's base chart, meshletd and the ingress gateway
# (`meshlet manifest generate`), the demo, optional Azure Monitor managed Prometheus, and the
# gateway's address. Walkthrough and rollback: docs/aks.md. Every step is idempotent: run it again
# after a failure.
#
# Settings (environment variables):
#   RESOURCE_GROUP   resource group                         (meshlet-demo)
#   LOCATION         Azure region                           (westeurope)
#   CLUSTER          AKS cluster name                       (meshlet-aks)
#   ACR_NAME         registry name, globally unique         (required)
#   NODE_COUNT       nodes, when the cluster is created     (3)
#   NODE_VM_SIZE     node size, when the cluster is created (Standard_D4s_v5)
#   ISTIO_VERSION    Istio proxy and CRDs: 1.26.8 or 1.27.9 (1.27.9)
#   IMAGE_TAG        tag of the images built                (the git commit)
#   INTERNAL_LB      "true": internal Azure load balancer   (false)
#   MANAGED_PROMETHEUS  "true": Azure Monitor workspace + metrics addon + scrape config (false)
#   MONITOR_WORKSPACE   Azure Monitor workspace name        (meshlet-metrics)
#   EXTRA_SETS       more `--set key=value` for meshlet manifest generate, space-separated
set -euo pipefail

RESOURCE_GROUP="${RESOURCE_GROUP:-meshlet-demo}"
LOCATION="${LOCATION:-westeurope}"
CLUSTER="${CLUSTER:-meshlet-aks}"
ACR_NAME="${ACR_NAME:-}"
NODE_COUNT="${NODE_COUNT:-3}"
NODE_VM_SIZE="${NODE_VM_SIZE:-Standard_D4s_v5}"
ISTIO_VERSION="${ISTIO_VERSION:-1.27.9}"
INTERNAL_LB="${INTERNAL_LB:-false}"
MANAGED_PROMETHEUS="${MANAGED_PROMETHEUS:-false}"
MONITOR_WORKSPACE="${MONITOR_WORKSPACE:-meshlet-metrics}"
EXTRA_SETS="${EXTRA_SETS:-}"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
IMAGE_TAG="${IMAGE_TAG:-$(git -C "$REPO_ROOT" rev-parse --short HEAD)}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'deploy.sh: %s\n' "$*" >&2; exit 1; }

for tool in az kubectl helm git node npx tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (docs/aks.md lists the tools)"
done
[ -n "$ACR_NAME" ] || die "set ACR_NAME to a globally unique registry name (5-50 letters and digits)"
case "$ISTIO_VERSION" in
  1.26.8|1.27.9) ;;
  *) die "ISTIO_VERSION=$ISTIO_VERSION is not a supported Istio proxy version (1.26.8, 1.27.9)" ;;
esac

say "Azure subscription"
az account show --query '{subscription: name, id: id, user: user.name}' -o table \
  || die "not logged in: run az login (and az account set --subscription …)"

say "Resource group $RESOURCE_GROUP in $LOCATION"
az group create --name "$RESOURCE_GROUP" --location "$LOCATION" --output none

say "Container registry $ACR_NAME"
if ! az acr show --name "$ACR_NAME" --resource-group "$RESOURCE_GROUP" --output none 2>/dev/null; then
  az acr create --name "$ACR_NAME" --resource-group "$RESOURCE_GROUP" --sku Basic --output none
fi
ACR_SERVER="$(az acr show --name "$ACR_NAME" --resource-group "$RESOURCE_GROUP" --query loginServer -o tsv)"

say "AKS cluster $CLUSTER"
if az aks show --name "$CLUSTER" --resource-group "$RESOURCE_GROUP" --output none 2>/dev/null; then
  # The AKS Istio add-on runs its own istiod and webhooks: two control planes would fight over the
  # same pods and CRDs (docs/aks.md, "Why not beside the AKS Istio add-on").
  MESH_MODE="$(az aks show --name "$CLUSTER" --resource-group "$RESOURCE_GROUP" --query 'serviceMeshProfile.mode' -o tsv 2>/dev/null || true)"
  if [ "$MESH_MODE" = "Istio" ]; then
    die "the AKS Istio add-on is enabled on $CLUSTER; disable it first (az aks mesh disable -g $RESOURCE_GROUP -n $CLUSTER) or use another cluster"
  fi
  echo "reusing the existing cluster; attaching $ACR_NAME"
  az aks update --name "$CLUSTER" --resource-group "$RESOURCE_GROUP" --attach-acr "$ACR_NAME" --output none
else
  az aks create \
    --name "$CLUSTER" \
    --resource-group "$RESOURCE_GROUP" \
    --location "$LOCATION" \
    --node-count "$NODE_COUNT" \
    --node-vm-size "$NODE_VM_SIZE" \
    --network-plugin azure \
    --network-plugin-mode overlay \
    --enable-managed-identity \
    --attach-acr "$ACR_NAME" \
    --generate-ssh-keys \
    --output none
fi
az aks get-credentials --name "$CLUSTER" --resource-group "$RESOURCE_GROUP" --overwrite-existing
kubectl get nodes -o wide

say "Images (built in ACR from git HEAD $IMAGE_TAG)"
# Only committed files travel: uncommitted changes are not in the images.
mkdir -p "$WORK/ctx"
git -C "$REPO_ROOT" archive --format=tar HEAD | tar -x -C "$WORK/ctx"
az acr build --registry "$ACR_NAME" --image "meshletd:$IMAGE_TAG" \
  --file "$WORK/ctx/examples/reference-mesh/aks/Dockerfile.meshletd" "$WORK/ctx"
az acr build --registry "$ACR_NAME" --image "meshlet-demo:$IMAGE_TAG" \
  --file "$WORK/ctx/examples/reference-mesh/aks/Dockerfile.demo" "$WORK/ctx/examples/reference-mesh/aks"

say "Istio $ISTIO_VERSION CRDs (from Istio's base chart; only the CRDs)"
helm repo add istio https://istio-release.storage.googleapis.com/charts --force-update >/dev/null
helm pull istio/base --version "$ISTIO_VERSION" --untar --untardir "$WORK/istio-base"
CRDS=""
for candidate in "$WORK/istio-base/base/files/crd-all.gen.yaml" "$WORK/istio-base/base/crds/crd-all.gen.yaml"; do
  if [ -f "$candidate" ]; then CRDS="$candidate"; break; fi
done
[ -n "$CRDS" ] || die "crd-all.gen.yaml not found in istio/base $ISTIO_VERSION"
kubectl apply --server-side --force-conflicts -f "$CRDS"
kubectl wait --for=condition=Established --timeout=120s crd/virtualservices.networking.istio.io crd/authorizationpolicies.security.istio.io

say "meshletd and the ingress gateway"
SETS=(--set "meshletd.image=$ACR_SERVER/meshletd:$IMAGE_TAG" --set "global.proxyVersion=$ISTIO_VERSION")
if [ "$INTERNAL_LB" = "true" ]; then SETS+=(--set gateway.service.azureInternal=true); fi
for extra in $EXTRA_SETS; do SETS+=(--set "$extra"); done
(cd "$REPO_ROOT" && npx meshlet manifest generate "${SETS[@]}") > "$WORK/meshlet.yaml"
kubectl apply --server-side -f "$WORK/meshlet.yaml"
kubectl -n meshlet-system rollout status deployment/meshletd --timeout=5m

# meshletd writes its CA into the webhook configurations once it serves; until then pods are created
# without sidecars (failurePolicy Ignore), so the demo waits for it.
printf 'waiting for meshletd to publish the webhook CA bundle'
for _ in $(seq 1 60); do
  BUNDLE="$(kubectl get mutatingwebhookconfiguration meshlet-sidecar-injector -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null || true)"
  if [ -n "$BUNDLE" ]; then break; fi
  printf '.'; sleep 5
done
echo
[ -n "${BUNDLE:-}" ] || die "meshletd has not patched the webhook CA bundle after 5 minutes: kubectl -n meshlet-system logs deploy/meshletd"
kubectl -n istio-ingress rollout status deployment/istio-ingressgateway --timeout=5m

say "The demo"
sed "s#__DEMO_IMAGE__#$ACR_SERVER/meshlet-demo:$IMAGE_TAG#g" "$HERE/demo/demo.yaml" > "$WORK/demo.yaml"
kubectl apply -f "$WORK/demo.yaml"
for d in frontend catalog-v1 catalog-v2 ratings loadgen; do
  kubectl -n demo rollout status "deployment/$d" --timeout=5m
done
# Every demo pod must carry the injected istio-proxy.
MISSING="$(kubectl -n demo get pods -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.containers[*].name}{"\n"}{end}' | grep -v istio-proxy || true)"
[ -z "$MISSING" ] || die "pods without a sidecar (was meshletd up when they started? kubectl -n demo rollout restart deployment): $MISSING"

if [ "$MANAGED_PROMETHEUS" = "true" ]; then
  say "Azure Monitor managed Prometheus ($MONITOR_WORKSPACE)"
  WORKSPACE_ID="$(az monitor account show --name "$MONITOR_WORKSPACE" --resource-group "$RESOURCE_GROUP" --query id -o tsv 2>/dev/null \
    || az monitor account create --name "$MONITOR_WORKSPACE" --resource-group "$RESOURCE_GROUP" --location "$LOCATION" --query id -o tsv)"
  az aks update --name "$CLUSTER" --resource-group "$RESOURCE_GROUP" --enable-azure-monitor-metrics \
    --azure-monitor-workspace-resource-id "$WORKSPACE_ID" --output none
  kubectl create configmap ama-metrics-prometheus-config -n kube-system \
    --from-file=prometheus-config="$HERE/observability/azure-monitor/prometheus-config" --dry-run=client -o yaml | kubectl apply -f -
fi

say "Gateway address"
ADDRESS=""
for _ in $(seq 1 60); do
  ADDRESS="$(kubectl -n istio-ingress get service istio-ingressgateway -o jsonpath='{.status.loadBalancer.ingress[0].ip}' 2>/dev/null || true)"
  if [ -n "$ADDRESS" ]; then break; fi
  sleep 5
done
[ -n "$ADDRESS" ] || die "the gateway Service has no address after 5 minutes: kubectl -n istio-ingress describe service istio-ingressgateway"
echo "The demo answers at http://$ADDRESS/"
echo "  curl -s http://$ADDRESS/ | head -c 400"
