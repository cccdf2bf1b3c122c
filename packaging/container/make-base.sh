#!/usr/bin/env bash
# Makes the Debian 12 (bookworm) base image walvault's image builds on, locally, without a
# registry: mmdebstrap --variant=minbase into a tarball, then `podman import`. Idempotent: an
# existing image is kept (WALVAULT_REBUILD_BASE=1 makes it again).
#   WALVAULT_BASE_IMAGE   name of the image (default localhost/debian:bookworm-minbase)
#   WALVAULT_DEBIAN_MIRROR  mirror for mmdebstrap (default: the host's apt sources)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
image=${WALVAULT_BASE_IMAGE:-localhost/debian:bookworm-minbase}

if [ "${WALVAULT_REBUILD_BASE:-0}" != 1 ] && podman image exists "$image"; then
  echo "make-base: $image exists"
  exit 0
fi
for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "make-base: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/walvault-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
mirror=()
[ -n "${WALVAULT_DEBIAN_MIRROR:-}" ] && mirror=("$WALVAULT_DEBIAN_MIRROR")
# minbase: essential packages and apt, nothing else; no recommends, and apt lists dropped
# (every build runs apt-get update first).
mmdebstrap --quiet --variant=minbase --aptopt='APT::Install-Recommends "false"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/rootfs.tar" "${mirror[@]}"
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "make-base: $image made in $(( $(date +%s) - start )) s ($(du -h "$work/rootfs.tar" | cut -f1) tarball)"
