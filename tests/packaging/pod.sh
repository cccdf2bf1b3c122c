#!/usr/bin/env bash
# The shipped Kubernetes StatefulSet and restore Job, played for real with podman (Debian's)
# on locally built images (packaging/container/build-image.sh; no registry):
#   1. PostgreSQL 15 (uid 999) archives through the walvaultd sidecar (uid 10001) across the
#      socket in their shared emptyDir; /healthz answers; look-ahead reads the read-only PGDATA;
#   2. `walvault backup` in the sidecar takes a base backup; more rows are committed after it;
#   3. the pod goes, the data volume is destroyed;
#   4. the restore Job's own command (walvault restore ... --archive-get /walvault/bin/...)
#      brings PGDATA back; the StatefulSet's pod starts again, replays the archive through
#      restore_command and promotes: every row is there.
# podman 4.3 cannot play a StatefulSet, a Job, native sidecars or fsGroup:
# tests/packaging/kube_to_podman.py rewrites those fields (and says which, and why).
# Needs root, podman, runc, catatonit and mmdebstrap (scripts/install-deps.sh); the images are
# kept afterwards for the next run (podman image rm localhost/walvault localhost/walvault-postgres15).
set -euo pipefail
# A skip exits 77: ctest reports it as skipped (SKIP_RETURN_CODE), never as passed.
here=$(cd "$(dirname "$0")" && pwd)
src=${WALVAULT_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
bin=${WALVAULT_BIN_DIR:-$src/build/bin}
export CONTAINERS_CONF=$src/packaging/container/containers.conf
STARTED=$(date +%s)

say() { echo "[pod $(( $(date +%s) - STARTED ))s] $*"; }
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check_eq() { if [ "$1" = "$2" ]; then ok "$3 ($1)"; else bad "$3: got '$1', expected '$2'"; fi; }
die() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || { echo "SKIP: podman pods with two uids and named volumes need root here"; exit 77; }
for tool in podman runc catatonit mmdebstrap nsenter curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh installs it)"
done
podman info >/dev/null 2>&1 || { echo "SKIP: podman cannot run on this machine: $(podman info 2>&1 | tail -1)"; exit 77; }
if ldd "$bin/walvaultd" | grep -q libasan; then
  echo "SKIP: $bin is a sanitizer build; the image is made from a release build (the release pass runs this test)"
  exit 77
fi

version=$("$bin/walvaultd" --version | awk '{print $2}')
image=localhost/walvault:$version
pg_image=localhost/walvault-postgres15:$version
id=wvt$$
pod=$id-postgres
restore_pod=$id-restore
T=$(mktemp -d /var/tmp/walvault-pod.XXXXXX)
cleanup() {
  set +e
  [ "${KEEP:-0}" = 1 ] && { echo "kept $T, the pods and the volumes $id-*"; return; }
  for f in "$T"/*.pod.yaml; do [ -e "$f" ] && podman kube down "$f" >/dev/null 2>&1; done
  podman pod rm -f "$pod" "$restore_pod" >/dev/null 2>&1
  for v in $(podman volume ls --quiet --filter "name=^$id-"); do podman volume rm -f "$v" >/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

say "building the images"
bash "$src/packaging/container/build-image.sh" "$bin"

k8s=$src/packaging/kubernetes/base
# The ConfigMap the manifests mount at /etc/walvault, from the shipped file, unchanged.
python3 - "$k8s/walvaultd.conf" > "$T/configmap.yaml" <<'PY'
import sys, yaml
yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "walvaultd-config"},
                "data": {"walvaultd.conf": open(sys.argv[1]).read()}}, sys.stdout)
PY
convert() {  # manifest pod-name [--env ...]
  local manifest=$1 name=$2
  shift 2
  python3 "$here/kube_to_podman.py" "$manifest" --pod "$name" --claim-prefix "$id-" \
    --image "$image" --pg-image "$pg_image" "$@"
}
convert "$k8s/statefulset.yaml" "$pod" > "$T/postgres.pod.yaml"
# The Job's command is played as shipped; --connect-timeout is in it for the classic variant too.
convert "$k8s/restore-job.yaml" "$restore_pod" > "$T/restore.pod.yaml"

play() {  # file
  podman kube play --network none --configmap "$T/configmap.yaml" "$1" >"$T/play.log" 2>&1 ||
    { cat "$T/play.log"; die "podman kube play $1"; }
}
in_pg() { podman exec "$pod-postgres" "$@"; }
sql() { in_pg psql -h /var/run/postgresql -U postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
wait_for() {  # seconds description command...
  local limit=$1 what=$2
  shift 2
  local until=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$until" ]; then
      echo "--- postgres log"; podman logs "$pod-postgres" 2>&1 | tail -20
      echo "--- walvaultd log"; podman logs "$pod-walvaultd" 2>&1 | tail -20
      die "timed out after ${limit}s waiting for $what"
    fi
    sleep 1
  done
}
healthz() {  # the probe's request, from inside the pod's network namespace (no host port)
  local pid
  pid=$(podman inspect --format '{{.State.Pid}}' "$pod-walvaultd")
  nsenter -t "$pid" -n curl -fsS --max-time 5 http://127.0.0.1:9187/healthz
}

say "playing the StatefulSet's pod"
play "$T/postgres.pod.yaml"
wait_for 120 "PostgreSQL to accept connections" in_pg pg_isready -q -h /var/run/postgresql
wait_for 60 "walvaultd's /healthz" healthz
check_eq "$(podman exec "$pod-postgres" id -u)" 999 "PostgreSQL runs as uid 999"
check_eq "$(podman exec "$pod-walvaultd" id -u)" 10001 "walvaultd runs as uid 10001"
check_eq "$(podman exec "$pod-walvaultd" stat -c '%u:%g %a' /run/walvault/walvault.sock)" "10001:999 660" \
  "the socket in the shared emptyDir belongs to walvaultd, group 999 (fsGroup), mode 0660"
check_eq "$(podman exec "$pod-walvaultd" sh -c 'touch /var/lib/postgresql/data/x 2>&1 >/dev/null | grep -c "Read-only file system"')" 1 \
  "PGDATA is read-only in the sidecar"

sql "create table t (id int primary key, note text)"
sql "insert into t select g, 'before the backup' from generate_series(1, 1000) g"
sql "select pg_switch_wal()" >/dev/null
archived_ok() { [ "$(sql "select failed_count = 0 and last_archived_wal is not null from pg_stat_archiver")" = t ]; }
wait_for 60 "PostgreSQL to archive through the sidecar" archived_ok
ok "archive_command (/walvault/bin/archive-push, uid 999) stored WAL through walvaultd (uid 10001)"

say "walvault backup in the sidecar"
podman exec "$pod-walvaultd" walvault backup --label podman-test > "$T/backup.out" 2>&1 ||
  { cat "$T/backup.out"; die "walvault backup failed in the sidecar"; }
ok "walvault backup ran in the sidecar: $(tail -1 "$T/backup.out")"
sql "insert into t select g, 'after the backup' from generate_series(1001, 1500) g"
# pg_walfile_name of what pg_switch_wal returns is the segment it just finished.
last_wal=$(sql "select pg_walfile_name(pg_switch_wal())")
archived_past() { [[ ! "$(sql "select last_archived_wal from pg_stat_archiver")" < "$last_wal" ]]; }
wait_for 60 "the WAL after the backup to be archived" archived_past
rows=$(sql "select count(*) from t")
check_eq "$rows" 1500 "1500 rows committed, 500 of them after the backup"
# PGDATA did not exist when walvaultd started (initdb ran after it): look-ahead finds pg_wal at
# its next rescan (10 s), through the read-only mount and the group (initdb --allow-group-access).
look_ahead_problem() {
  podman exec "$pod-walvaultd" walvault --json status |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["look_ahead"].get("problem") or "none")'
}
look_ahead_ok() { [ "$(look_ahead_problem)" = none ]; }
wait_for 30 "look-ahead to read pg_wal" look_ahead_ok
ok "look-ahead reads pg_wal through the read-only mount (group access)"

say "the pod goes, and the data volume with it"
podman kube down "$T/postgres.pod.yaml" >/dev/null
podman volume rm "$id-data-postgres-0" >/dev/null
podman volume create "$id-data-postgres-0" >/dev/null
ok "data volume destroyed and created again empty"

say "playing the restore Job"
play "$T/restore.pod.yaml"
restore_rc=$(timeout 300 podman wait "$restore_pod-restore" || echo timeout)
podman logs "$restore_pod-restore" > "$T/restore.log" 2>&1 || true
check_eq "$restore_rc" 0 "the restore Job's command exited 0"
[ "$restore_rc" = 0 ] || { cat "$T/restore.log"; podman logs "$restore_pod-walvaultd" 2>&1 | tail -20; }
grep -q "/walvault/bin/archive-get --socket /run/walvault/walvault.sock %f %p" "$T/restore.log" &&
  ok "walvault restore wrote restore_command with the postgres container's archive-get (--archive-get)" ||
  { cat "$T/restore.log"; bad "walvault restore did not report restore_command = /walvault/bin/archive-get ..."; }
grep -q "backup successfully verified" "$T/restore.log" && ok "pg_verifybackup (in the walvault image) verified the restored PGDATA" ||
  bad "the restore log does not show pg_verifybackup's verification"
podman kube down "$T/restore.pod.yaml" >/dev/null

say "playing the StatefulSet's pod on the restored data"
play "$T/postgres.pod.yaml"
wait_for 180 "PostgreSQL to accept connections after the restore" in_pg pg_isready -q -h /var/run/postgresql
promoted() { [ "$(sql "select pg_is_in_recovery()")" = f ]; }
wait_for 180 "recovery to end (promotion)" promoted
check_eq "$(sql "select count(*) from t")" "$rows" "every row is back, the 500 after the backup replayed from the archive"
check_eq "$(sql "select count(*) from t where note = 'after the backup'")" 500 "rows committed after the backup"
served=$(podman logs "$pod-walvaultd" 2>&1 | grep -c '"restored\|restored ' || true)
[ "$served" -gt 0 ] && ok "walvaultd served $served segment(s) to restore_command (archive-get)" ||
  bad "walvaultd's log shows no segment served to archive-get"
timeline=$(sql "select timeline_id from pg_control_checkpoint()")
[ "$timeline" -ge 2 ] && ok "promoted onto timeline $timeline" || bad "still on timeline $timeline after recovery"

say "done: $fails failure(s)"
[ "$fails" = 0 ]
