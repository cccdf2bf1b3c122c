#!/usr/bin/env bash
# packaging.deb: the Debian package, built and installed for real.
#  1. builds walvault_<version>_amd64.deb with dpkg-buildpackage in a copy of the source tree
#     (packaging/deb/build-deb.sh; or takes $WALVAULT_DEB), checks its contents, runs lintian
#     (any error or warning fails; every override must carry a comment saying why);
#  2. makes a clean Debian 12 root filesystem (mmdebstrap --variant=apt bookworm) and installs
#     the .deb in it with `apt-get install -y ./walvault_*.deb`, so its Depends come from the
#     mirror;
#  3. checks the installed system: user walvault (no shell, member of group postgres),
#     /var/lib/walvault, the config file's owner and mode, walvaultd --check-config with the
#     shipped config as walvault and as root, the programs' --help, man pages, the unit
#     (User=walvault, not enabled); then starts walvaultd with the shipped config as walvault
#     and asks it for status as root and as postgres over the socket (walvault:postgres 0660);
#  4. purges with the repository walvaultd made still there (kept, with a message), then
#     installs again, purges with nothing left and checks that nothing of the package
#     remains (dpkg -L before, files after), and that no process runs in the root filesystem.
# Prints the time of each step. Needs root, dpkg-dev, debhelper, help2man, lintian, mmdebstrap
# and the Debian mirror (deb.debian.org).
set -euo pipefail

src=${WALVAULT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mirror=${WALVAULT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${WALVAULT_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}

skip() { echo "SKIP: $*"; exit 77; }   # ctest: skipped (SKIP_RETURN_CODE), not passed
[ "$(id -u)" -eq 0 ] || skip "needs root (chroot and mmdebstrap's root mode)"
# A missing tool is a failure, not a skip: scripts/install-deps.sh installs every one.
missing_tool() { echo "FAIL: $1 is not installed (scripts/install-deps.sh installs it)"; exit 1; }
for tool in mmdebstrap lintian dpkg-deb chroot flock curl; do
  command -v "$tool" >/dev/null || missing_tool "$tool"
done
if [ -z "${WALVAULT_DEB:-}" ]; then
  for tool in dpkg-buildpackage dh help2man; do
    command -v "$tool" >/dev/null || missing_tool "$tool"
  done
fi
curl -sfI --max-time 15 "$mirror/dists/bookworm/InRelease" >/dev/null ||
  skip "the Debian mirror $mirror is not reachable (mmdebstrap and apt-get need it)"

failures=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

tmp=$(mktemp -d /var/tmp/walvault-deb-test.XXXXXX)
root=$tmp/root
daemon_pid=""
mounted_proc=0
cleanup() {
  set +e
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill -TERM "$daemon_pid"; wait "$daemon_pid"; fi
  [ "$mounted_proc" = 1 ] && umount "$root/proc"
  if findmnt -rn -o TARGET | grep -q "^$root"; then
    echo "deb.sh: something is still mounted below $root; left $tmp in place" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT   # a ctest timeout still cleans up

t_all=$(date +%s)
t_step=$t_all
step_done() { local now; now=$(date +%s); echo "time: $1: $((now - t_step)) s"; t_step=$now; }
# Every command in the root filesystem is bounded: a hung maintainer script must not hang the test.
in_root() { timeout 120 chroot "$root" "$@"; }

# --- 1. the .deb and lintian ---------------------------------------------------------------
if [ -n "${WALVAULT_DEB:-}" ]; then
  deb=$WALVAULT_DEB
  [ -f "$deb" ] || { echo "FAIL: WALVAULT_DEB=$deb is not a file"; exit 1; }
  echo "deb.sh: using $deb (WALVAULT_DEB)"
else
  timeout 780 bash "$src/packaging/deb/build-deb.sh" "$tmp/out" >"$tmp/build.out"
  deb=$(ls "$tmp"/out/walvault_*.deb)
  step_done "dpkg-buildpackage -b (in a copy of the tree)"
  artefacts=$(cd "$src" && ls -d obj-* debian/walvault debian/tmp debian/.debhelper debian/files debian/man \
    debian/debhelper-build-stamp debian/*.substvars debian/*.debhelper.log 2>/dev/null || true)
  check "the build left nothing in the source tree (${artefacts:-nothing})" test -z "$artefacts"
fi
version=$(sed -n '1s/^walvault (\([^)]*\)).*/\1/p' "$src/debian/changelog")
check "the package is walvault_${version}_amd64.deb" test "$(basename "$deb")" = "walvault_${version}_amd64.deb"
contents=$(dpkg-deb -c "$deb")
for path in usr/bin/walvaultd usr/bin/walvault usr/bin/archive-push usr/bin/archive-get \
    lib/systemd/system/walvaultd.service usr/share/man/man8/walvaultd.8.gz usr/share/man/man8/walvault.8.gz \
    usr/share/man/man1/archive-push.1.gz usr/share/man/man1/archive-get.1.gz \
    usr/share/doc/walvault/README.Debian.gz usr/share/doc/walvault/operator-guide.md usr/share/doc/walvault/copyright; do
  check "the .deb holds /$path" grep -q " \./$path\$" <<<"$contents"
done
check "the .deb holds /etc/walvault/walvaultd.conf as -rw-r----- root/root" \
  grep -Eq '^-rw-r----- root/root .* \./etc/walvault/walvaultd\.conf$' <<<"$contents"
check "the .deb holds nothing in /var/lib/walvault (postinst makes it)" bash -c '! grep -q "var/lib/walvault" <<<"$1"' _ "$contents"
fields=$(dpkg-deb -f "$deb" Depends Section Priority Maintainer)
echo "$fields" | sed 's/^/deb.sh: /'
for dep in postgresql-client-15 postgresql-common adduser libarchive13 libcurl4 libzstd1 libsqlite3-0; do
  check "Depends names $dep" grep -Eq "(^|[ ,])$dep( |,|$)" <<<"$(dpkg-deb -f "$deb" Depends)"
done

overrides=$src/debian/walvault.lintian-overrides
if [ -f "$overrides" ]; then
  # Every override line must follow a comment line that says why.
  unexplained=$(awk '/^[[:space:]]*$/ {prev=""; next} /^#/ {prev="#"; next} { if (prev != "#" && prev != "tag") print; prev="tag" }' "$overrides")
  check "every lintian override carries a comment" test -z "$unexplained"
  [ -z "$unexplained" ] || echo "$unexplained" | sed 's/^/deb.sh: override without a comment: /'
fi
# The verdict: no error or warning that is not overridden (info tags are shown, and are
# overridden too). --show-overrides is only for the log: with it lintian counts overridden
# tags for --fail-on.
set +e
lintian --fail-on error,warning --display-info "$deb" >"$tmp/lintian.out" 2>&1
lintian_rc=$?
set -e
{ grep -v '^running with root privileges' "$tmp/lintian.out" || true; } | sed 's/^/lintian: /'
check "lintian --fail-on error,warning exits 0" test "$lintian_rc" -eq 0
check "lintian reports no tag that is not overridden (E:, W: or I:)" bash -c '! grep -Eq "^[EWI]: " "$1"' _ "$tmp/lintian.out"
lintian --show-overrides "$deb" 2>/dev/null | grep '^O: ' | sed 's/^/lintian (overridden, debian\/walvault.lintian-overrides says why): /' || true
step_done "contents and lintian"

# --- 2. a clean bookworm root filesystem, the .deb installed with apt-get -------------------
cp "$deb" "$tmp/"
debname=$(basename "$deb")
set +e
timeout 300 mmdebstrap --variant=apt --mode=root \
  --customize-hook="date +%s > '$tmp/t_bootstrapped'" \
  --customize-hook="copy-in '$tmp/$debname' /tmp" \
  --customize-hook="chroot \"\$1\" sh -c 'cd /tmp && DEBIAN_FRONTEND=noninteractive apt-get install -y ./$debname'" \
  --customize-hook="rm -f \"\$1/tmp/$debname\"" \
  bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" "deb $security bookworm-security main" \
  >"$tmp/mmdebstrap.out" 2>&1 </dev/null
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  tail -n 40 "$tmp/mmdebstrap.out"
  bad "mmdebstrap with apt-get install -y ./$debname (exit $rc)"
  exit 1
fi
t_boot=$(cat "$tmp/t_bootstrapped")
echo "time: mmdebstrap --variant=apt bookworm: $((t_boot - t_step)) s"
t_step=$t_boot
{ grep -E 'newly installed|^Setting up walvault' "$tmp/mmdebstrap.out" || true; } | sed 's/^/apt: /'
step_done "apt-get install -y ./$debname (Depends from the mirror)"
check "apt-get installed walvault $version" test "$(in_root dpkg-query -W -f='${Status} ${Version}' walvault)" = "install ok installed $version"
for dep in postgresql-client-15 postgresql-common; do
  check "its dependency $dep came along" test "$(in_root dpkg-query -W -f='${Status}' "$dep")" = "install ok installed"
done

# --- 3. the installed system ---------------------------------------------------------------
IFS=: read -r _ _ uid gid _ home shell <<<"$(in_root getent passwd walvault)"
check "user walvault exists as a system user (uid $uid < 1000)" test -n "$uid" -a "${uid:-1000}" -lt 1000
check "user walvault has no login shell ($shell)" test "$shell" = /usr/sbin/nologin
check "user walvault's home is /var/lib/walvault" test "$home" = /var/lib/walvault
check "group walvault is its primary group" test "$(in_root getent group walvault | cut -d: -f3)" = "$gid"
check "user walvault is in group postgres (in the root filesystem)" \
  grep -Eq '^postgres:[^:]*:[0-9]+:(.*,)?walvault(,|$)' "$root/etc/group"
check "/var/lib/walvault is walvault:walvault 0750" test "$(in_root stat -c '%U:%G %a' /var/lib/walvault)" = "walvault:walvault 750"
check "/etc/walvault/walvaultd.conf is root:walvault 0640" \
  test "$(in_root stat -c '%U:%G %a' /etc/walvault/walvaultd.conf)" = "root:walvault 640"
check "a statoverride keeps that mode across upgrades" \
  grep -q "^root walvault 640 /etc/walvault/walvaultd.conf$" <(in_root dpkg-statoverride --list)
check "the config file is a conffile" grep -q '^ /etc/walvault/walvaultd.conf ' <(in_root dpkg-query -W -f='${Conffiles}\n' walvault)
check "the shipped config names repo = /var/lib/walvault/repo" grep -qx 'repo = /var/lib/walvault/repo' "$root/etc/walvault/walvaultd.conf"

check_config() {
  local who=$1; shift
  local out rc=0
  out=$(timeout 30 chroot "$@" "$root" /usr/bin/walvaultd --check-config --config /etc/walvault/walvaultd.conf 2>&1) || rc=$?
  echo "$out" | sed "s/^/walvaultd --check-config ($who): /"
  check "walvaultd --check-config with the shipped config exits 0 as $who" test "$rc" -eq 0
  check "... and says 'configuration OK' ($who)" grep -q 'configuration OK' <<<"$out"
}
check_config walvault --userspec=walvault:walvault
check_config root

for prog in walvaultd walvault archive-push archive-get; do
  check "$prog --version says $prog ${version%-*}" test "$(in_root "/usr/bin/$prog" --version)" = "$prog ${version%-*}"
done
check "walvault --help prints its usage" grep -q '^Usage: walvault ' <(in_root /usr/bin/walvault --help)
check "archive-push --help prints its usage" grep -q '^Usage: archive-push ' <(in_root /usr/bin/archive-push --help)
check "archive-get --help prints its usage" grep -q '^Usage: archive-get ' <(in_root /usr/bin/archive-get --help)
for page in man8/walvaultd.8 man8/walvault.8 man1/archive-push.1 man1/archive-get.1; do
  name=$(basename "$page"); name=${name%.*}; section=${page##*.}
  check "man page /usr/share/man/$page.gz is a page for $name($section)" \
    bash -c 'zcat "$1" | grep -q "^\.TH \"\?${2^^}\"\? \"\?$3\"\?"' _ "$root/usr/share/man/$page.gz" "$name" "$section"
done
check "walvaultd(8) lists the options from --help (--repo, --allow-uid)" \
  bash -c 'zcat "$1" | grep -q -- "repo" && zcat "$1" | grep -q -- "allow\\\\-uid"' _ "$root/usr/share/man/man8/walvaultd.8.gz"
unit=$root/lib/systemd/system/walvaultd.service
check "the unit is /lib/systemd/system/walvaultd.service" test -f "$unit"
check "the unit runs as User=walvault" grep -qx 'User=walvault' "$unit"
check "the unit starts walvaultd with /etc/walvault/walvaultd.conf" \
  grep -qx 'ExecStart=/usr/bin/walvaultd --config /etc/walvault/walvaultd.conf' "$unit"
check "the unit is not enabled (no multi-user.target.wants link)" test ! -e "$root/etc/systemd/system/multi-user.target.wants/walvaultd.service"
check "README.Debian says why it is not started" bash -c 'zcat "$1" | grep -q "not started on install"' _ "$root/usr/share/doc/walvault/README.Debian.gz"
step_done "checks of the installed package"

# walvaultd with the shipped config, as the unit runs it (systemd would make /run/walvault:
# RuntimeDirectory, 0755). /proc is needed by a running daemon only.
mount -t proc proc "$root/proc"
mounted_proc=1
install -d -m 0755 "$root/run/walvault"
in_root chown walvault:walvault /run/walvault
chroot --userspec=walvault:walvault --groups=walvault,postgres "$root" \
  /usr/bin/walvaultd --config /etc/walvault/walvaultd.conf >"$tmp/walvaultd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do [ -S "$root/run/walvault/walvault.sock" ] && break; kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
check "walvaultd started with the shipped config as walvault and made its socket" test -S "$root/run/walvault/walvault.sock"
if [ -S "$root/run/walvault/walvault.sock" ]; then
  check "the socket is walvault:postgres 0660" test "$(in_root stat -c '%U:%G %a' /run/walvault/walvault.sock)" = "walvault:postgres 660"
  check "walvault status answers root" timeout 30 chroot "$root" /usr/bin/walvault status >"$tmp/status.root" 2>&1
  check "walvault status answers postgres" timeout 30 chroot --userspec=postgres:postgres "$root" /usr/bin/walvault status >"$tmp/status.pg" 2>&1
  sed 's/^/walvault status (postgres): /' "$tmp/status.pg" | head -n 6
  check "walvaultd made the repository /var/lib/walvault/repo" test -f "$root/var/lib/walvault/repo/walvault.repo"
else
  sed 's/^/walvaultd: /' "$tmp/walvaultd.log" | tail -n 20
fi
if kill -0 "$daemon_pid" 2>/dev/null; then
  kill -TERM "$daemon_pid"
  rc=0; wait "$daemon_pid" || rc=$?
  check "walvaultd stops on SIGTERM with exit 0" test "$rc" -eq 0
fi
daemon_pid=""
rm -rf "$root/run/walvault"
step_done "walvaultd started and stopped with the shipped config"

# --- 4. purge -------------------------------------------------------------------------------
package_paths() { in_root dpkg-query -L walvault | grep '^/' | sort -u; }
package_paths >"$tmp/paths.before"
check "dpkg -L walvault lists the package's files" test "$(wc -l <"$tmp/paths.before")" -gt 10

# First purge with the repository walvaultd made: it must be kept, and purge must say so.
rc=0; DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y walvault >"$tmp/purge1.out" 2>&1 || rc=$?
{ grep -A3 "^walvault: purge keeps" "$tmp/purge1.out" || true; } | sed "s/^/purge: /"
check "apt-get purge -y walvault exits 0 (repository present)" test "$rc" -eq 0
check "purge keeps a repository with data and says why" grep -q 'purge keeps /var/lib/walvault' "$tmp/purge1.out"
check "... the repository's identity is still there" test -f "$root/var/lib/walvault/repo/walvault.repo"
check "... the config file is gone" test ! -e "$root/etc/walvault/walvaultd.conf"

# The operator removes the repository; the package goes on again (its dependencies are still
# there, so dpkg -i needs no mirror) and is purged with nothing of its own left.
rm -rf "$root/var/lib/walvault"
cp "$deb" "$root/tmp/"
rc=0; in_root dpkg -i "/tmp/$debname" >"$tmp/reinstall.out" 2>&1 || rc=$?
rm -f "$root/tmp/$debname"
check "dpkg -i again after a purge (user walvault already there) exits 0" test "$rc" -eq 0
check "... /var/lib/walvault is made again, walvault:walvault 0750" \
  test "$(in_root stat -c '%U:%G %a' /var/lib/walvault 2>/dev/null)" = "walvault:walvault 750"
rc=0; DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y walvault >"$tmp/purge2.out" 2>&1 || rc=$?
check "apt-get purge -y walvault exits 0" test "$rc" -eq 0
check "walvault is no longer known to dpkg" bash -c '! chroot "$1" dpkg-query -W walvault >/dev/null 2>&1' _ "$root"
left=()
while IFS= read -r path; do
  [ -e "$root$path" ] || [ -L "$root$path" ] || continue
  # A directory that is still there holds what other packages put in it (/usr/bin, /etc, /lib
  # a symlink to usr/lib): dpkg removes a directory of the package's own once it is empty. Any
  # file, link or empty directory of the package that is still there is left over.
  if [ -d "$root$path" ] && [ -n "$(ls -A "$root$path")" ]; then continue; fi
  left+=("$path")
done <"$tmp/paths.before"
check "nothing the package installed is left (${#left[@]} of $(wc -l <"$tmp/paths.before") paths: ${left[*]:-none})" test "${#left[@]}" -eq 0
check "/etc/walvault is gone" test ! -e "$root/etc/walvault"
named=$(find "$root" -xdev -name '*walvault*' -printf '/%P\n' | head -n 20)
check "no file named *walvault* is left anywhere (${named:-none})" test -z "$named"
check "/var/lib/walvault is gone" test ! -e "$root/var/lib/walvault"
check "the statoverride is gone" bash -c '! chroot "$1" dpkg-statoverride --list | grep -q walvault' _ "$root"
check "no systemd state of walvaultd is left" bash -c '! find "$1/etc/systemd" "$1/var/lib/systemd" -name "walvaultd*" 2>/dev/null | grep -q .' _ "$root"
check "user walvault is kept, as README.Debian says, still without a shell" \
  test "$(in_root getent passwd walvault | cut -d: -f7)" = /usr/sbin/nologin
check "... and no longer in group postgres" bash -c '! grep -Eq "^postgres:[^:]*:[0-9]+:(.*,)?walvault(,|$)" "$1/etc/group"' _ "$root"

umount "$root/proc"
mounted_proc=0
procs=()
for p in /proc/[0-9]*; do
  r=$(readlink "$p/root" 2>/dev/null) || continue
  case "$r" in "$root"|"$root"/*) procs+=("${p#/proc/}:$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)") ;; esac
done
check "no process is left running in the root filesystem (${procs[*]:-none})" test "${#procs[@]}" -eq 0
step_done "purge twice and the checks of what is left"

echo "time: whole test: $(( $(date +%s) - t_all )) s"
if [ "$failures" -ne 0 ]; then
  echo "deb.sh: $failures check(s) failed"
  exit 1
fi
echo "deb.sh: all checks passed"
