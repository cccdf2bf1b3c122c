#!/usr/bin/env bash
# Builds walvault's container images locally, with no registry access:
#   localhost/walvault:VERSION (and :latest)        walvaultd, walvault, archive-push, archive-get
#   localhost/walvault-postgres15:VERSION           the same Debian + PostgreSQL 15 layer without
#                                                   walvault (the pod test's PostgreSQL container)
# Usage: build-image.sh [BIN_DIR]   (default $WALVAULT_BIN_DIR, else build/bin: a release build)
# The base image comes from make-base.sh (mmdebstrap + podman import) when it does not exist.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
bin_dir=${1:-${WALVAULT_BIN_DIR:-$source_dir/build/bin}}

die() { echo "build-image: $*" >&2; exit 1; }
for b in walvaultd walvault archive-push archive-get; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing: build walvault first (cmake --build build)"
done
# A sanitizer build needs libasan at run time and is several times slower: never ship one.
ldd "$bin_dir/walvaultd" | grep -q 'libasan\|libubsan' && die "$bin_dir holds a sanitizer build; give a release build's bin/"
version=$("$bin_dir/walvaultd" --version | awk '{print $2}')
[ -n "$version" ] || die "cannot read the version from $bin_dir/walvaultd --version"

start=$(date +%s)
bash "$here/make-base.sh"
context=$(mktemp -d /var/tmp/walvault-image.XXXXXX)
trap 'rm -rf "$context"' EXIT
mkdir "$context/bin"
for b in walvaultd walvault archive-push archive-get; do
  # Debug sections stay with the build; the image gets the code.
  objcopy --strip-debug "$bin_dir/$b" "$context/bin/$b"
done
cp "$here/Containerfile" "$here/walvaultd.conf" "$context/"

podman build --quiet --layers --target postgres15 -t "localhost/walvault-postgres15:$version" "$context" >/dev/null
podman build --quiet --layers --build-arg "VERSION=$version" \
  -t "localhost/walvault:$version" -t localhost/walvault:latest "$context" >/dev/null

# What the image must be able to do, checked in the image itself.
missing=$(podman run --rm --entrypoint /usr/bin/ldd "localhost/walvault:$version" \
  /usr/bin/walvaultd /usr/bin/walvault /usr/bin/archive-push /usr/bin/archive-get | grep 'not found' || true)
[ -z "$missing" ] || die "the image lacks libraries: $missing"
got=$(podman run --rm "localhost/walvault:$version" --version)
[ "$got" = "walvaultd $version" ] || die "the image's walvaultd --version says '$got'"
user=$(podman image inspect --format '{{.Config.User}}' "localhost/walvault:$version")
[ "$user" = "10001:10001" ] || die "the image runs as '$user', not 10001:10001"
echo "build-image: localhost/walvault:$version and localhost/walvault-postgres15:$version built in $(( $(date +%s) - start )) s" \
  "($(podman image inspect --format '{{.Size}}' "localhost/walvault:$version" | awk '{printf "%.0f MB", $1/1e6}'))"
