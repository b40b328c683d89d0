#!/usr/bin/env bash
# Installs what meshlet's tests need on a fresh Debian machine, then the npm workspace.
# - Debian packages: the real systems the integration tests run against.
#   python3-grpcio: gRPC C-core with Python bindings, a second real xDS client.
#   etcd-server: a real etcd for @meshlet/config's EtcdSource tests (they start /usr/bin/etcd).
#   openssl, golang-cfssl: chain verification and a real `cfssl serve` for @meshlet/ca.
#   redis-server, prometheus: real servers for @meshlet/adapters (the tests start and stop them).
#   chromium: the browser @meshlet/admin's console test drives with playwright-core (headless).
# - npm ci: the locked dependencies of every package.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-grpcio etcd-server openssl golang-cfssl redis-server prometheus shellcheck chromium)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "setup: please install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
fi

npm ci --no-audit --no-fund
