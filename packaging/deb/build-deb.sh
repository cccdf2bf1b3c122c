#!/usr/bin/env bash
# Builds walvault_<version>_<arch>.deb with dpkg-buildpackage, in a copy of the source tree
# (never in the tree itself: no obj-*/ or debian/walvault/ left there), and copies the .deb
# into OUTDIR.
#   packaging/deb/build-deb.sh OUTDIR
# The copy holds the files git tracks, as they are in the working tree (uncommitted edits are
# built too), plus files not yet added under debian/ and packaging/deb/ (the package's own);
# other untracked files are not part of the source.
# ccache: used when installed (WALVAULT_DEB_CCACHE=0: not), cache in $CCACHE_DIR, default
# /var/tmp/walvault-ccache. The copy is always made at the same path, so that the compiler's
# command lines (dpkg-buildflags' -ffile-prefix-map=<build dir>=.) are the same from one
# build to the next and ccache can hit; a lock keeps two builds apart.
# DEB_BUILD_OPTIONS: as given, else parallel=<nproc>.
set -euo pipefail

out=${1:?usage: build-deb.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n '1s/^walvault (\([^)]*\)).*/\1/p' "$src/debian/changelog")
upstream=${version%-*}
work=/var/tmp/walvault-deb-build

exec 9>"$work.lock"
flock 9
rm -rf "$work"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/walvault-$upstream"
{ git -C "$src" ls-files -z --cached; git -C "$src" ls-files -z --others --exclude-standard -- debian packaging/deb; } |
  (cd "$src" && while IFS= read -r -d '' f; do if [ -f "$f" ]; then printf '%s\0' "$f"; fi; done) |
  (cd "$src" && tar --null -T - -cf -) | tar -C "$work/walvault-$upstream" -xf -

if [ "${WALVAULT_DEB_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache   # CMake reads it as the launcher's default
  export CCACHE_DIR=${CCACHE_DIR:-/var/tmp/walvault-ccache}
  export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-2G}
  ccache --zero-stats >/dev/null
fi
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-parallel=$(nproc)}

(cd "$work/walvault-$upstream" && dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1 || {
  tail -n 60 "$work/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (last 60 lines above)" >&2
  exit 1
}
if [ -n "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]; then
  ccache --print-stats 2>/dev/null | awk -F'\t' '$1=="direct_cache_hit"||$1=="preprocessed_cache_hit"||$1=="cache_miss"{printf "%s=%s ", $1, $2} END{print ""}' |
    sed 's/^/build-deb: ccache: /' >&2
fi
cp "$work"/walvault_"$version"_*.deb "$out"/
ls "$out"/walvault_"$version"_*.deb
