#!/usr/bin/env bash
# Removes what deploy.sh installed. By default it keeps the cluster and Istio's CRDs and removes the
# demo, meshletd, the gateway and the scrape config; --crds also removes Istio's CRDs (and with them
# every Istio resource in the cluster); --all deletes the whole resource group (cluster, registry,
# monitor workspace). Settings: RESOURCE_GROUP, CLUSTER, ISTIO_VERSION as for deploy.sh.
set -euo pipefail

RESOURCE_GROUP="${RESOURCE_GROUP:-meshlet-demo}"
CLUSTER="${CLUSTER:-meshlet-aks}"
ISTIO_VERSION="${ISTIO_VERSION:-1.27.9}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
MODE="${1:-}"

case "$MODE" in
  "") ;;
  --crds|--all) ;;
  *) echo "usage: teardown.sh [--crds | --all]" >&2; exit 2 ;;
esac

if [ "$MODE" = "--all" ]; then
  echo "Deleting resource group $RESOURCE_GROUP (cluster, registry, workspace); this runs in the background."
  az group delete --name "$RESOURCE_GROUP" --yes --no-wait
  exit 0
fi

az aks get-credentials --name "$CLUSTER" --resource-group "$RESOURCE_GROUP" --overwrite-existing >/dev/null

echo "Removing the demo"
kubectl delete namespace demo --ignore-not-found --wait=true

echo "Removing meshletd, its webhooks and the ingress gateway"
# The webhook configurations go first, so no pod creation waits on a control plane being removed.
kubectl delete mutatingwebhookconfiguration -l app.kubernetes.io/part-of=meshlet --ignore-not-found
kubectl delete validatingwebhookconfiguration -l app.kubernetes.io/part-of=meshlet --ignore-not-found
(cd "$REPO_ROOT" && npx meshlet manifest generate) | kubectl delete --ignore-not-found -f -
# meshletd's CA material and the root certificate it published in every namespace.
kubectl -n meshlet-system delete secret istio-ca-secret --ignore-not-found 2>/dev/null || true
kubectl delete configmap --all-namespaces --field-selector metadata.name=istio-ca-root-cert --ignore-not-found
kubectl -n kube-system delete configmap ama-metrics-prometheus-config --ignore-not-found

if [ "$MODE" = "--crds" ]; then
  echo "Removing Istio's CRDs (and every Istio resource with them)"
  kubectl get crd -o name | grep -E '\.istio\.io$' | xargs -r kubectl delete
fi
echo "Done. The cluster $CLUSTER is still there; teardown.sh --all deletes the resource group. Istio version: $ISTIO_VERSION"
