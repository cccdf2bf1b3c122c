#!/usr/bin/env bash
# walvault vs pgBackRest vs raw zstd: a full base backup and a restore of the SAME PostgreSQL 15
# cluster (pgbench -i -s SCALE), in one run. Run on demand (not by ctest), as root, on a quiet
# machine. See tests/bench/README.md.
#
#   tests/bench/bench_backup_restore.sh                      # SCALE=100: about 1.5 GB of data
#   SCALE=5 JOBS=2 OUT=/tmp/br.txt tests/bench/bench_backup_restore.sh
#
# Environment (all optional):
#   SCALE=100              pgbench -i -s SCALE (100: ~1.5 GB; pgbench_accounts has SCALE*100000 rows)
#   JOBS=2                 processes/threads for both tools: walvaultd --workers, walvault
#                          restore --jobs, pgBackRest process-max, zstd -T
#   ORDER="walvault pgbackrest"   which tool goes first in the backup and in the restore phase
#   CHUNK_SIZE             walvaultd --backup-chunk-size (unset: the daemon default, 64MiB)
#   DD=1                   1 = measure the disk's write speed first (dd 1 GiB, conv=fdatasync)
#   OUT=bench-backup-restore.txt   where the results are written (also printed)
#   PHASE_TIMEOUT=3600     seconds allowed for each timed backup / restore / zstd pass
#   INIT_TIMEOUT=3600      seconds allowed for pgbench -i
#   RECOVERY_TIMEOUT=600   seconds allowed for a restored cluster to finish recovery
#   WALVAULT_BIN_DIR (default build/bin), PGBIN (default /usr/lib/postgresql/15/bin), KEEP=1
#
# The cluster archives every WAL file into BOTH archives (archive_command runs walvault's
# archive-push, then `pgbackrest archive-push`; each must succeed), so both backups are complete
# and both restores recover from their own tool's archive. The original cluster is stopped before
# the zstd and restore phases, so nothing else writes meanwhile.
# shellcheck disable=SC2016,SC2034,SC2054,SC2059  # bash -c '...' "$@"; globals read by lib.sh; a conninfo; our printf formats
set -Eeuo pipefail
export LC_ALL=C

SCALE=${SCALE:-100}
JOBS=${JOBS:-2}
ORDER=${ORDER:-"walvault pgbackrest"}
CHUNK_SIZE=${CHUNK_SIZE:-}
DD=${DD:-1}
OUT=${OUT:-bench-backup-restore.txt}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-3600}
INIT_TIMEOUT=${INIT_TIMEOUT:-3600}
RECOVERY_TIMEOUT=${RECOVERY_TIMEOUT:-600}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

usage_die() { echo "bench_backup_restore: $*" >&2; exit 2; }
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || usage_die "SCALE must be a positive integer"
if ! [[ $JOBS =~ ^[1-9][0-9]*$ ]] || ((JOBS > 64)); then usage_die "JOBS must be 1..64"; fi
for t in $ORDER; do [[ $t == walvault || $t == pgbackrest ]] || usage_die "ORDER: unknown tool '$t'"; done
[[ $(wc -w <<<"$ORDER") -eq 2 && $ORDER == *walvault* && $ORDER == *pgbackrest* ]] ||
  usage_die "ORDER must name walvault and pgbackrest once each"
for c in pgbackrest zstd tar jq du ps; do command -v "$c" >/dev/null || usage_die "$c not found"; done
PGBACKREST=$(command -v pgbackrest)

WV_TEST_NAME=bench_backup_restore # read by lib.sh
# shellcheck source=tests/integration/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)/lib.sh"
wv_setup
[ -x "$T/bin/walvault" ] || fail "walvault CLI not found in $WALVAULT_BIN_DIR"
for b in pgbench pg_basebackup pg_verifybackup; do [ -x "$PGBIN/$b" ] || fail "$PGBIN/$b not found"; done
WV_BUILD="$WALVAULT_BIN_DIR ($("$T/bin/walvaultd" --version 2>&1 | head -n 1)), walvaultd built $(date -r "$WALVAULT_BIN_DIR/walvaultd" '+%Y-%m-%d %H:%M:%S'), sha256 $(sha256sum "$T/bin/walvaultd" | cut -c1-12)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- helpers
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / 1e6 / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == "-" || k == "") print "-"; else printf "%.1f", k / 1024 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
data_bytes() { # DIR -> bytes of DIR without pg_wal (du -sb: apparent sizes, directories included)
  local all wal=0
  all=$(du -sb "$1" | cut -f1)
  [ -d "$1/pg_wal" ] && wal=$(du -sb "$1/pg_wal" | cut -f1)
  echo $((all - wal))
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# RSS sampler: every 0.2 s, the VmRSS (ps rss, KiB) of this script's descendants, summed per
# program: walvaultd, pg_basebackup (walvaultd's child), walvault (the CLI), pgbackrest (every
# pgbackrest process: main and its process-max locals).
RSS_PID=""
rss_start() { # FILE
  : >"$1"
  (
    trap - ERR
    set +e
    while [ -e "/proc/$$" ]; do
      ps -e -o pid=,ppid=,rss=,comm= | awk -v root=$$ '
        { pp[$1] = $2; rss[$1] = $3; c[$1] = $4 }
        END {
          inr[root] = 1
          do { ch = 0; for (p in pp) if (!(p in inr) && (pp[p] in inr)) { inr[p] = 1; ch = 1 } } while (ch)
          for (p in inr) s[c[p]] += rss[p]
          printf "%d %d %d %d\n", s["walvaultd"], s["pg_basebackup"], s["walvault"], s["pgbackrest"]
        }' >>"$1"
      sleep 0.2
    done
  ) &
  RSS_PID=$!
  bg_register "$RSS_PID"
}
rss_stop() { # FILE: stops the sampler (in this shell: bg_stop updates lib.sh's list of jobs) and
  # sets RSS_PEAKS = "wvd pgbb cli pgbr wvd+pgbb wvd+cli wvd_first" (KiB, peaks over the samples)
  bg_stop "$RSS_PID"
  RSS_PID=""
  RSS_PEAKS=$(awk 'NR == 1 { first = $1 }
       { for (i = 1; i <= 4; i++) if ($i > m[i]) m[i] = $i
         if ($1 + $2 > a) a = $1 + $2
         if ($1 + $3 > b) b = $1 + $3 }
       END { printf "%d %d %d %d %d %d %d\n", m[1], m[2], m[3], m[4], a, b, first }' "$1")
}

# timed NAME [wv_run options] -- CMD...: sync, then CMD under the RSS sampler; wall time in
# SECS[NAME], peaks in RSS[NAME] (see rss_stop); RUN_* as wv_run leaves them.
declare -A SECS=() RSS=()
timed() {
  local name=$1 f
  shift
  f="$T/work/rss.$name"
  sync
  rss_start "$f"
  wv_run "$@"
  rss_stop "$f"
  RSS[$name]=$RSS_PEAKS
  SECS[$name]=$RUN_SECS
  log "$name: exit $RUN_RC in ${RUN_SECS}s"
}

# ---------------------------------------------------------------- machine
DISK="not measured (DD=0)"
if [ "$DD" = 1 ]; then
  log "disk write speed: dd bs=16M count=64 conv=fdatasync"
  dd_out=$(dd if=/dev/zero of="$T/work/dd.bin" bs=16M count=64 conv=fdatasync 2>&1 | tail -n 1) || true
  rm -f "$T/work/dd.bin"
  DISK="dd 1 GiB conv=fdatasync: $(sed -E 's/.*, ([0-9.]+ [kMG]?B\/s)$/\1/' <<<"$dd_out")"
fi

# ---------------------------------------------------------------- cluster + both archives
PG="$T/pg"
PGBR="$T/pgbr"
PGBR_CONF="$PGBR/pgbackrest.conf"
install -d -o postgres -g postgres -m 755 "$PGBR" "$PGBR/repo" "$PGBR/log" "$PGBR/lock" "$PGBR/spool"

# Both archives must take every file. pgBackRest's backup insists that archive_command contains
# "pgbackrest" (error 068 otherwise), so the two commands stand in it as they are, not in a script.
ARCHIVE_CMD="$T/bin/archive-push --socket $SOCK %p && $PGBACKREST --config=$PGBR_CONF --stanza=bench archive-push %p"
pg_init "$PG" "archive_command = '$ARCHIVE_CMD'" "log_checkpoints = on"
PGPORT=${WV_PG_PORT[$PG]}

cat >"$PGBR_CONF" <<EOF
[global]
repo1-path=$PGBR/repo
repo1-retention-full=1
log-path=$PGBR/log
lock-path=$PGBR/lock
spool-path=$PGBR/spool
log-level-console=warn
log-level-stderr=warn
log-level-file=info
compress-type=zst
compress-level=3
process-max=$JOBS
start-fast=y
archive-async=n

[bench]
pg1-path=$PG
pg1-port=$PGPORT
pg1-socket-path=$T/pgsock
EOF
chmod 644 "$PGBR_CONF"
pgbr() { wv_run -u postgres -- timeout "$PHASE_TIMEOUT" "$PGBACKREST" --config="$PGBR_CONF" --stanza=bench "$@"; }

# The stanza must exist before PostgreSQL archives anything (a failing archive_command backs off).
pgbr --no-online stanza-create
assert_rc 0 "pgbackrest stanza-create --no-online"

daemon_args=(--allow-uid postgres,root --pg-conninfo "host=$T/pgsock port=$PGPORT user=postgres" --workers "$JOBS")
[ -z "$CHUNK_SIZE" ] || daemon_args+=(--backup-chunk-size "$CHUNK_SIZE")
daemon_start "${daemon_args[@]}"
pg_start "$PG"

log "pgbench -i -s $SCALE"
t0=$(now)
runuser -u postgres -- timeout "$INIT_TIMEOUT" "$PGBIN/pgbench" -h "$T/pgsock" -p "$PGPORT" -i -s "$SCALE" -q postgres \
  >"$T/logs/pgbench-init.out" 2>&1 || fail "pgbench -i -s $SCALE failed: $(tail -n 3 "$T/logs/pgbench-init.out" | tr '\n' '|')"
INIT_SECS=$(elapsed "$t0")
psql_q "$PG" "checkpoint" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 900
fails=$(psql_q "$PG" "select failed_count from pg_stat_archiver")
check_eq "$fails" 0 "archive_command (walvault + pgBackRest) never failed during pgbench -i"
ROWS_WANT=$((SCALE * 100000))
DATA=$(data_bytes "$PG")
log "pgbench -i took ${INIT_SECS}s; PGDATA without pg_wal: $DATA bytes ($(mb "$DATA") MB)"

# ---------------------------------------------------------------- backups
backup_walvault() {
  timed backup-walvault -- timeout "$PHASE_TIMEOUT" "$T/bin/walvault" --socket "$SOCK" --json --timeout "$PHASE_TIMEOUT" backup --label bench
  if [ "$RUN_RC" -ne 0 ]; then
    soft_fail "walvault backup exited $RUN_RC: $(_wv_oneline "$RUN_ERR $RUN_OUT")"
    return
  fi
  WV_BACKUP_JSON=$RUN_OUT
  if [ "$(jq -r '.complete' <<<"$RUN_OUT")" = true ]; then ok "walvault backup complete"; else soft_fail "walvault backup: $(_wv_oneline "$RUN_OUT")"; fi
}
backup_pgbackrest() {
  timed backup-pgbackrest -u postgres -- timeout "$PHASE_TIMEOUT" "$PGBACKREST" --config="$PGBR_CONF" --stanza=bench --type=full backup
  if [ "$RUN_RC" -ne 0 ]; then
    soft_fail "pgbackrest backup exited $RUN_RC: $(_wv_oneline "$RUN_ERR $RUN_OUT")"
    return
  fi
  [ -z "$RUN_ERR" ] || log "pgbackrest backup stderr: $(_wv_oneline "$RUN_ERR")"
  pgbr --output=json info
  PGBR_INFO=$RUN_OUT
  check_eq "$(jq -r '.[0].backup | length' <<<"$PGBR_INFO")" 1 "pgbackrest info lists one backup"
}
WV_BACKUP_JSON="" PGBR_INFO=""
for tool in $ORDER; do
  psql_q "$PG" "checkpoint" >/dev/null
  log "backup: $tool"
  "backup_$tool"
done
fails=$(psql_q "$PG" "select failed_count from pg_stat_archiver")
check_eq "$fails" 0 "archive_command never failed"
pg_stop "$PG" fast

# ---------------------------------------------------------------- raw zstd -3 (the codec's limit)
log "raw zstd: tar | zstd -3 -T$JOBS > /dev/null"
zstd_pipe() { # OUTFILE
  wv_run -- timeout "$PHASE_TIMEOUT" bash -c 'set -o pipefail; tar -cf - -C "$1" --exclude=./pg_wal . | zstd -q -3 -T"$2" >"$3"' _ "$PG" "$JOBS" "$1"
}
sync
zstd_pipe /dev/null
[ "$RUN_RC" -eq 0 ] || fail "tar | zstd failed: $(_wv_oneline "$RUN_ERR")"
SECS[backup-zstd]=$RUN_SECS
zstd_pipe "$T/work/data.tar.zst" # untimed: the input of the decompression pass
ZSTD_STORED=$(stat -c %s "$T/work/data.tar.zst")
ZSTD_PLAIN=$(zstd -q -d -c "$T/work/data.tar.zst" | wc -c)
install -d -o postgres -g postgres -m 700 "$T/restore-zstd"
sync
wv_run -- timeout "$PHASE_TIMEOUT" bash -c 'set -o pipefail; zstd -q -d -c "$1" | tar -xf - -C "$2" && sync -f "$2"' _ "$T/work/data.tar.zst" "$T/restore-zstd"
[ "$RUN_RC" -eq 0 ] || fail "zstd -d | tar -x failed: $(_wv_oneline "$RUN_ERR")"
SECS[restore-zstd]=$RUN_SECS
rm -rf "$T/restore-zstd" "$T/work/data.tar.zst"

# ---------------------------------------------------------------- restores
declare -A RESTORED=() RECOVERY_SECS=() COUNT=()
# check_started TOOL DIR: the restored cluster gets its own port and no archiving, starts,
# finishes recovery, and holds every pgbench_accounts row.
check_started() {
  local tool=$1 dir=$2 t0 n
  RESTORED[$tool]=$(data_bytes "$dir")
  if awk -v a="${RESTORED[$tool]}" -v b="$DATA" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.02 * b) }'; then
    ok "$tool: restored data directory is ${RESTORED[$tool]} bytes (source $DATA, within 2%)"
  else
    soft_fail "$tool: restored data directory is ${RESTORED[$tool]} bytes, source $DATA (more than 2% apart)"
  fi
  pg_adopt "$dir" "archive_mode = off"
  t0=$(now)
  pg_start "$dir"
  wait_recovery_done "$dir" "$RECOVERY_TIMEOUT"
  RECOVERY_SECS[$tool]=$(elapsed "$t0")
  n=$(psql_q "$dir" "select count(*) from pgbench_accounts")
  COUNT[$tool]=$n
  check_match 'restored log file "[0-9A-F]{24}" from archive' "$(cat "$(pg_logfile "$dir")")" \
    "$tool: recovery fetched WAL through its own restore_command"
  check_eq "$n" "$ROWS_WANT" "$tool: restored cluster started; pgbench_accounts has $ROWS_WANT rows"
  pg_stop "$dir" fast
  [ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}
restore_walvault() {
  local dir="$T/restore-walvault"
  timed restore-walvault -- timeout "$PHASE_TIMEOUT" "$T/bin/walvault" --socket "$SOCK" --json --timeout "$PHASE_TIMEOUT" restore --pgdata "$dir" --jobs "$JOBS"
  if [ "$RUN_RC" -ne 0 ]; then
    soft_fail "walvault restore exited $RUN_RC: $(_wv_oneline "$RUN_ERR $RUN_OUT")"
    return
  fi
  WV_RESTORE_JSON=$RUN_OUT
  ok "walvault restore exit 0 ($(jq -r '.verified' <<<"$RUN_OUT"))"
  check_started walvault "$dir"
}
restore_pgbackrest() {
  local dir="$T/restore-pgbackrest"
  install -d -o postgres -g postgres -m 700 "$dir"
  timed restore-pgbackrest -u postgres -- timeout "$PHASE_TIMEOUT" "$PGBACKREST" --config="$PGBR_CONF" --stanza=bench --pg1-path="$dir" restore
  if [ "$RUN_RC" -ne 0 ]; then
    soft_fail "pgbackrest restore exited $RUN_RC: $(_wv_oneline "$RUN_ERR $RUN_OUT")"
    return
  fi
  ok "pgbackrest restore exit 0"
  PGBR_RESTORE_CMD=$(grep -E '^restore_command' "$dir/postgresql.auto.conf" | tail -n 1 || true)
  check_started pgbackrest "$dir"
}
WV_RESTORE_JSON="" PGBR_RESTORE_CMD=""
for tool in $ORDER; do
  log "restore: $tool"
  "restore_$tool"
done
check_daemons_alive

# ---------------------------------------------------------------- report
# walvault figures
wv_plain=- wv_stored=- wv_files=- wv_chunks=- wv_own=-
if [ -n "$WV_BACKUP_JSON" ]; then
  read -r wv_plain wv_stored wv_files wv_chunks wv_own < <(jq -r '"\(.plain_bytes) \(.stored_bytes) \(.files) \(.chunks) \(.mb_per_s)"' <<<"$WV_BACKUP_JSON")
fi
wvr_bytes=- wvr_secs=- wvr_extract=- wvr_own=- wvr_files=-
if [ -n "$WV_RESTORE_JSON" ]; then
  read -r wvr_bytes wvr_secs wvr_extract wvr_own wvr_files < <(jq -r '"\(.bytes) \(.seconds) \(.extract_seconds) \(.mb_per_s) \(.files)"' <<<"$WV_RESTORE_JSON")
fi
# pgBackRest figures (info: size = database bytes, repository.size = stored bytes)
pb_plain=- pb_stored=- pb_secs_own=-
if [ -n "$PGBR_INFO" ]; then
  read -r pb_plain pb_stored pb_secs_own < <(jq -r '.[0].backup[-1] | "\(.info.size) \(.info.repository.size) \(.timestamp.stop - .timestamp.start)"' <<<"$PGBR_INFO")
fi
sec() { echo "${SECS[$1]:--}"; }
rate_of() { [ -n "${SECS[$1]:-}" ] && mbps "$DATA" "${SECS[$1]}" || echo -; }
rss_field() { # NAME FIELD(1..7)
  [ -n "${RSS[$1]:-}" ] || { echo -; return; }
  mib "$(awk -v f="$2" '{ print $f }' <<<"${RSS[$1]}")"
}
b_wv=$(rate_of backup-walvault) b_pb=$(rate_of backup-pgbackrest) b_z=$(rate_of backup-zstd)
r_wv=$(rate_of restore-walvault) r_pb=$(rate_of restore-pgbackrest) r_z=$(rate_of restore-zstd)
num1() { awk -v x="$1" 'BEGIN { if (x ~ /^[0-9.eE+-]+$/ && x != "-") printf "%.1f", x; else print "-" }'; }
num2() { awk -v x="$1" 'BEGIN { if (x ~ /^[0-9.eE+-]+$/ && x != "-") printf "%.2f", x; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.0f%%", 100 * a / b; else print "-" }'; }

{
  echo "walvault backup/restore benchmark  $(date -u '+%Y-%m-%d %H:%M:%SZ')"
  echo "host: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
  echo "disk: $DISK (filesystem of $T: $(df -PT "$T" | awk 'NR == 2 { print $2 }'))"
  echo "data: pgbench -i -s $SCALE on PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') (took ${INIT_SECS}s);"
  echo "      PGDATA without pg_wal = $DATA bytes ($(mb "$DATA") MB, du -sb); MB/s below = that / 10^6 / wall seconds"
  echo "JOBS=$JOBS: walvaultd --workers $JOBS, walvault restore --jobs $JOBS, pgBackRest process-max=$JOBS, zstd -T$JOBS; order: $ORDER"
  echo
  fmt='%-9s %14s %16s %12s %18s %10s %10s\n'
  printf "$fmt" phase "walvault MB/s" "pgBackRest MB/s" "wv/pgBR" "zstd -3 limit MB/s" "wv/limit" "pgBR/limit"
  printf "$fmt" backup "$b_wv" "$b_pb" "$(ratio "$b_wv" "$b_pb")x" "$b_z" "$(pct "$b_wv" "$b_z")" "$(pct "$b_pb" "$b_z")"
  printf "$fmt" restore "$r_wv" "$r_pb" "$(ratio "$r_wv" "$r_pb")x" "$r_z" "$(pct "$r_wv" "$r_z")" "$(pct "$r_pb" "$r_z")"
  printf "$fmt" "seconds" "" "" "" "" "" ""
  printf "$fmt" backup "$(sec backup-walvault)" "$(sec backup-pgbackrest)" "" "$(sec backup-zstd)" "" ""
  printf "$fmt" restore "$(sec restore-walvault)" "$(sec restore-pgbackrest)" "" "$(sec restore-zstd)" "" ""
  echo "(wall seconds of the whole command; above 1x = walvault faster)"
  echo
  fmt2='%-26s %22s %22s %22s\n'
  printf "$fmt2" "" walvault pgBackRest "zstd -3 (tar stream)"
  printf "$fmt2" "plain bytes (tool's own)" "$wv_plain" "$pb_plain" "$ZSTD_PLAIN"
  printf "$fmt2" "stored bytes" "$wv_stored" "$pb_stored" "$ZSTD_STORED"
  printf "$fmt2" "compression ratio" "$(ratio "$wv_plain" "$wv_stored")" "$(ratio "$pb_plain" "$pb_stored")" "$(ratio "$ZSTD_PLAIN" "$ZSTD_STORED")"
  printf "$fmt2" "backup MB/s (own bytes)" "$(mbps "$wv_plain" "$(sec backup-walvault)")" "$(mbps "$pb_plain" "$(sec backup-pgbackrest)")" "$(mbps "$ZSTD_PLAIN" "$(sec backup-zstd)")"
  printf "$fmt2" "peak RSS backup MiB" "$(rss_field backup-walvault 1) daemon" "$(rss_field backup-pgbackrest 4) (sum)" "-"
  printf "$fmt2" "peak RSS restore MiB" "$(rss_field restore-walvault 1) daemon" "$(rss_field restore-pgbackrest 4) (sum)" "-"
  printf "$fmt2" "  restore client MiB" "$(rss_field restore-walvault 3) CLI" "" ""
  printf "$fmt2" "restored bytes (du -sb)" "${RESTORED[walvault]:--}" "${RESTORED[pgbackrest]:--}" ""
  printf "$fmt2" "recovery to promoted, s" "${RECOVERY_SECS[walvault]:--}" "${RECOVERY_SECS[pgbackrest]:--}" ""
  printf "$fmt2" "pgbench_accounts rows" "${COUNT[walvault]:--}" "${COUNT[pgbackrest]:--}" "(want $ROWS_WANT)"
  echo
  echo "walvault: walvaultd ${daemon_args[*]}"
  echo "          binaries copied from $WV_BUILD"
  echo "          backup: $wv_files files in $wv_chunks chunk(s); daemon's own figure $(num1 "$wv_own") MB/s;"
  echo "                  peak RSS: daemon $(rss_field backup-walvault 1) MiB (at start $(rss_field backup-walvault 7)), pg_basebackup $(rss_field backup-walvault 2) MiB, daemon+pg_basebackup $(rss_field backup-walvault 5) MiB"
  echo "          restore: $wvr_files files, $wvr_bytes bytes, $(num2 "$wvr_secs")s in the CLI (extract $(num2 "$wvr_extract")s, then pg_verifybackup + syncfs); CLI's own figure $(num1 "$wvr_own") MB/s (extract only)"
  echo "                  peak RSS: daemon $(rss_field restore-walvault 1) MiB, CLI $(rss_field restore-walvault 3) MiB, daemon+CLI $(rss_field restore-walvault 6) MiB"
  echo "pgbackrest: $(pgbackrest version), posix repo, compress-type=zst, compress-level=3, process-max=$JOBS, start-fast=y, archive-async=n;"
  echo "          backup --type=full (its own timestamps: ${pb_secs_own}s); restore --pg1-path=DIR; RSS = sum over every pgbackrest process"
  echo "          restored cluster: ${PGBR_RESTORE_CMD:-?}"
  echo "zstd: $(zstd -V | grep -oE 'v[0-9.]+' | head -1); backup limit = tar -cf - -C PGDATA --exclude=./pg_wal . | zstd -3 -T$JOBS > /dev/null;"
  echo "      restore limit = zstd -d -c data.tar.zst | tar -xf - -C DIR && sync -f DIR (syncfs)"
  echo "load average: at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg) (compare tools within one run; prefer a quiet host)"
  [ "$WV_FAILURES" -eq 0 ] || echo "FAILED checks: $WV_FAILURES (see the 'not ok' lines above)"
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
finish
