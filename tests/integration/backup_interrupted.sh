#!/usr/bin/env bash
# Interrupted base backups (`walvault backup`, archiver/backup_taker.cpp, archiver/pruner.cpp).
# walvaultd runs with --backup-chunk-size 1MiB on a ~150 MB database (pgbench -s 10), so the tar
# stream is interrupted with stored chunks behind it.
#
#  1. pg_basebackup is killed with SIGKILL mid-stream: the `walvault backup` client exits 1 and
#     says why (pg_basebackup was killed), `status` shows .backup.phase failed with the error,
#     nothing is listed as stored, no backup.json exists, and walvaultd itself removed the
#     chunks it had written. PostgreSQL ends that backup.
#  2. walvaultd is killed with SIGKILL mid-stream, no complete backup in the repository yet: the
#     client fails; the unfinished directory (stored chunks and the temporary file of the chunk
#     being written, no backup.json) is left; the orphaned pg_basebackup ends by itself (its
#     reader is gone) and PostgreSQL aborts that backup without help; after a restart nothing
#     is listed as stored, and `walvault prune` sweeps every file of the directory.
#  3. A new `walvault backup` succeeds and is listed as stored.
#  4. As 2, now with that complete backup in the repository (prune is allowed to prune WAL too):
#     the sweep removes the unfinished directory and leaves the complete backup alone.
#  5. `walvault restore` of the complete backup (latest) starts and has every row, including
#     rows written after it (WAL replay).
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

PG="$T/pg"
pg_init "$PG" "checkpoint_timeout = 30min"
# shellcheck disable=SC2054  # the comma is part of --allow-uid's value
DARGS=(--allow-uid postgres,root --pg-conninfo "host=$T/pgsock port=${WV_PG_PORT[$PG]} user=postgres"
  --backup-chunk-size 1MiB --prune-interval 0)
daemon_start "${DARGS[@]}"
pg_start "$PG"
# ~150 MB of data: the tar stream takes long enough to be interrupted in the middle.
pgbench_run "$PG" -i -s 10 -q
log "database size: $(psql_q "$PG" "select pg_size_pretty(pg_database_size('postgres'))")"

# --- helpers -----------------------------------------------------------------------------------

# Every file below $REPO/backup, relative, one a line.
backup_files() {
  [ -d "$REPO/backup" ] || return 0
  # Files may come and go while walvaultd works: a vanished one is no error.
  (cd "$REPO/backup" && { find . -type f 2>/dev/null || true; } | sed 's|^\./||' | sort)
}
# The files of backup ID (relative to $REPO/backup), one a line.
files_of() { backup_files | { grep "^$1/" || true; }; }
# Backup ids that have files below $REPO/backup.
ids_with_files() { backup_files | cut -d/ -f1 | sort -u; }

# start_backup NAME: `walvault backup` (as root) in the background; BK_PID, output in
# $T/work/NAME.{out,err,rc}.
start_backup() {
  local name=$1
  rm -f "$T/work/$name".{out,err,rc}
  touch "$T/work/$name.start"
  (
    trap - ERR EXIT
    rc=0
    "$T/bin/walvault" --socket "$SOCK" backup --label "$name" >"$T/work/$name.out" 2>"$T/work/$name.err" || rc=$?
    echo "$rc" >"$T/work/$name.rc"
  ) &
  BK_PID=$!
  bg_register "$BK_PID"
}

# wait_streaming SECONDS NAME CHUNKS: polls every 20 ms until walvaultd has a pg_basebackup
# child and at least CHUNKS chunks of the backup are stored below $REPO/backup (a chunk being
# written is a temporary file until it is complete); sets PGBB_PID.
wait_streaming() {
  local deadline=$((SECONDS + $1)) name=$2 want=$3 n=0 have
  PGBB_PID=""
  while :; do
    PGBB_PID=$(pgrep -P "$WV_DAEMON_PID" -x pg_basebackup | head -n 1 || true)
    if [ -n "$PGBB_PID" ]; then
      have=$({ find "$REPO/backup" -newer "$T/work/$name.start" -type f -name 'chunk-*.tar' 2>/dev/null || true; } | wc -l)
      [ "$have" -ge "$want" ] && return 0
    fi
    [ -f "$T/work/$name.rc" ] && fail "walvault backup ended before the stream could be interrupted: exit $(cat "$T/work/$name.rc"): $(_wv_oneline "$(cat "$T/work/$name.out" "$T/work/$name.err")")"
    n=$((n + 1))
    [ $((n % 25)) -eq 0 ] && check_daemons_alive
    [ "$SECONDS" -lt "$deadline" ] || fail "no pg_basebackup child of walvaultd with $want stored chunk(s) in $REPO/backup after $1 s"
    sleep 0.02
  done
}

# wait_backup_client NAME SECONDS: waits for the background `walvault backup`; sets BK_RC,
# BK_OUT (stdout and stderr).
wait_backup_client() {
  local name=$1 deadline=$((SECONDS + $2))
  while [ ! -f "$T/work/$name.rc" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "walvault backup ($name) still running $2 s after the interruption"
    sleep 0.1
  done
  bg_stop "$BK_PID"
  BK_RC=$(cat "$T/work/$name.rc")
  BK_OUT="$(cat "$T/work/$name.out")
$(cat "$T/work/$name.err")"
}

# No stored backup in `list --backups --json` (a .backup file may exist, without data).
check_none_stored() {
  wv_cli_json list --backups
  check_rc 0 "$1: list --backups --json"
  check_eq "$(jq_out '[.backups[] | select(.stored != null)] | length')" 0 "$1: list --backups shows no stored backup"
}

# The base backup PostgreSQL runs for pg_basebackup is gone: no progress row, no walsender.
# shellcheck disable=SC2317  # called through wait_for
pg_backup_gone() {
  [ "$(psql_q "$PG" "select count(*) from pg_stat_progress_basebackup")" = 0 ] &&
    [ "$(psql_q "$PG" "select count(*) from pg_stat_activity where backend_type = 'walsender'")" = 0 ]
}

# --- 1. pg_basebackup killed mid-stream -----------------------------------------------------
start_backup kill_pgbb
wait_streaming 60 kill_pgbb 2
chunks_seen=$(backup_files | grep -c 'chunk-' || true)
kill -KILL "$PGBB_PID"
log "killed pg_basebackup (pid $PGBB_PID) with $chunks_seen chunk file(s) in the repository"
wait_backup_client kill_pgbb 30
check_eq "$BK_RC" 1 "1: walvault backup exits 1 when pg_basebackup is killed"
check_match 'FAILED' "$BK_OUT" "1: walvault backup says the backup FAILED"
check_match 'pg_basebackup' "$BK_OUT" "1: the failure message names pg_basebackup"
check_match 'signal 9|killed' "$BK_OUT" "1: the failure message says pg_basebackup was killed (signal 9), not only that the stream broke"
log "1: client said: $(_wv_oneline "$BK_OUT")"

wv_cli_json status
check_rc 0 "1: status --json"
id1=$(jq_out '.backup.id')
check_eq "$(jq_out '.backup.phase')" failed "1: status .backup.phase is failed"
err1=$(jq_out '.backup.error')
if [ -n "$err1" ] && [ "$err1" != null ]; then ok "1: status .backup.error is set ($(_wv_oneline "$err1" | cut -c1-120))"; else soft_fail "1: status .backup.error is empty"; fi
check_match 'pg_basebackup' "$err1" "1: status .backup.error names pg_basebackup"
check_contains "$err1" "$BK_OUT" "1: the client's message carries the error status shows"
if [ -n "$id1" ] && [ "$id1" != null ]; then ok "1: status names the failed backup ($id1)"; else fail "1: no backup id in status"; fi
check_none_stored "1"
check_eq "$(backup_files | grep -c 'backup\.json' || true)" 0 "1: no backup.json anywhere in $REPO/backup"
check_eq "$(files_of "$id1" | tr '\n' ' ')" "" "1: the chunks of failed backup $id1 were removed"
wait_for 20 "PostgreSQL to end the killed pg_basebackup's backup" pg_backup_gone
ok "1: PostgreSQL ended the backup of the killed pg_basebackup"

# kill_daemon_round TAG: `walvault backup`, walvaultd killed with SIGKILL once chunks are
# stored, restart, `walvault prune`. Checks the leftovers, the orphaned pg_basebackup and
# PostgreSQL, and that prune sweeps the unfinished directory: its chunk objects and the
# temporary file of the chunk that was being written.
kill_daemon_round() {
  local tag=$1 ids_before id left n_left killed_pgbb
  ids_before=$(ids_with_files)
  start_backup "kill_daemon_$tag"
  wait_streaming 60 "kill_daemon_$tag" 2
  killed_pgbb=$PGBB_PID
  daemon_kill9
  wait_backup_client "kill_daemon_$tag" 30
  if [ "$BK_RC" != 0 ]; then ok "$tag: walvault backup fails when walvaultd dies (exit $BK_RC)"; else soft_fail "$tag: walvault backup exited 0 although walvaultd was killed"; fi
  id=$(comm -13 <(printf '%s\n' "$ids_before" | sed '/^$/d') <(ids_with_files))
  [ "$(printf '%s\n' "$id" | sed '/^$/d' | wc -l)" = 1 ] || fail "$tag: expected one new backup directory with files in $REPO/backup, found: [$(echo "$id" | tr '\n' ' ')]"
  left=$(files_of "$id")
  n_left=$(printf '%s\n' "$left" | sed '/^$/d' | wc -l)
  log "$tag: walvaultd killed during backup $id; left: $(printf '%s\n' "$left" | sed "s|^$id/||" | tr '\n' ' ')"
  if grep -Eq "^$id/chunk-[0-9]+\.tar$" <<<"$left"; then ok "$tag: stored chunks of the interrupted backup $id are left in the repository"; else soft_fail "$tag: no stored chunk of $id left after the kill (the test did not interrupt mid-stream)"; fi
  check_eq "$(printf '%s\n' "$left" | grep -c 'backup\.json' || true)" 0 "$tag: $id has no backup.json"

  # The orphan's reader is gone: it ends on its own (SIGPIPE), and PostgreSQL aborts its backup.
  if _wv_wait_gone "$killed_pgbb" 20; then ok "$tag: the orphaned pg_basebackup (pid $killed_pgbb) ended by itself"; else soft_fail "$tag: pg_basebackup (pid $killed_pgbb) still running 20 s after walvaultd died"; fi
  wait_for 20 "PostgreSQL to abort the orphaned backup" pg_backup_gone
  ok "$tag: PostgreSQL aborted the backup of the orphaned pg_basebackup by itself"

  daemon_start "${DARGS[@]}"
  wv_cli_json list --backups
  # shellcheck disable=SC2016  # $id is jq's variable
  check_eq "$(jq_out --arg id "$id" '[.backups[] | select(.stored != null and .stored.id == $id)] | length')" 0 "$tag: after the restart $id is not listed as stored"
  # Start-up removes the crashed write's temp file (the daemon holds the lock, nothing else can
  # be writing it); the finished chunks stay until prune decides.
  check_eq "$(files_of "$id" | { grep '\.tmp\.' || true; } | tr '\n' ' ')" "" "$tag: start-up removed the temp file of the chunk being written when walvaultd died"
  check_eq "$(files_of "$id" | { grep -v '\.tmp\.' || true; } | sed '/^$/d' | wc -l)" "$(printf '%s\n' "$left" | { grep -v '\.tmp\.' || true; } | sed '/^$/d' | wc -l)" "$tag: the restart leaves the finished chunks for prune"
  wv_cli_json prune
  check_rc 0 "$tag: prune --json"
  check_eq "$(jq_out .error)" null "$tag: prune reports no error"
  log "$tag: prune: allowed $(jq_out .allowed), removed $(jq_out .removed), refusal $(jq_out .refusal)"
  check_eq "$(files_of "$id" | { grep -v '\.tmp\.' || true; } | tr '\n' ' ')" "" "$tag: prune removed the stored chunks of the unfinished backup $id"
  check_eq "$(files_of "$id" | { grep '\.tmp\.' || true; } | tr '\n' ' ')" "" "$tag: prune removed the temporary file of the chunk being written when walvaultd died"
  wv_cli_json list --backups
  # shellcheck disable=SC2016  # $id is jq's variable
  check_eq "$(jq_out --arg id "$id" '[.backups[] | select(.stored != null and .stored.id == $id)] | length')" 0 "$tag: after prune $id is not listed as stored"
}

# --- 2. walvaultd killed mid-stream, no complete backup yet -----------------------------------
kill_daemon_round 2
check_none_stored "2, after prune"

# --- 3. a backup that completes ---------------------------------------------------------------
psql_q "$PG" "create table after_crash (id int primary key)" >/dev/null
psql_q "$PG" "insert into after_crash select generate_series(1, 1234)" >/dev/null
wv_cli -u root backup --label after
assert_rc 0 "3: walvault backup after the interruptions"
check_match 'complete' "$RUN_OUT" "3: walvault backup says complete"
wv_cli_json list --backups
check_eq "$(jq_out '[.backups[] | select(.stored != null)] | length')" 1 "3: list --backups shows one stored backup"
id3=$(jq_out '[.backups[] | select(.stored != null)][0].stored.id')
if [ -f "$REPO/backup/$id3/backup.json" ]; then ok "3: $id3 has its backup.json"; else soft_fail "3: no backup.json for $id3"; fi
files3=$(files_of "$id3" | { grep -v '\.tmp\.' || true; })
wv_cli_json status
check_eq "$(jq_out '.backup.phase')" complete "3: status .backup.phase is complete"

# --- 4. walvaultd killed mid-stream again, now with a complete backup (prune allowed) ----------
kill_daemon_round 4
check_eq "$(files_of "$id3" | { grep -v '\.tmp\.' || true; })" "$files3" "4: the complete backup $id3 keeps all its objects through the crash and the prune"
wv_cli_json list --backups
check_eq "$(jq_out '[.backups[] | select(.stored != null) | .stored.id] | join(" ")')" "$id3" "4: list --backups still shows $id3 as the one stored backup"

# --- 5. restore of the complete backup ---------------------------------------------------------
psql_q "$PG" "insert into after_crash select generate_series(1235, 2000)" >/dev/null
want=$(psql_q "$PG" "select (select count(*) from pgbench_accounts) || ' ' || (select count(*) || ' ' || sum(id) from after_crash)")
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
pg_stop "$PG"

R="$T/restored"
wv_cli -u root restore --pgdata "$R"
assert_rc 0 "5: restore of $id3 (latest)"
check_contains "$id3" "$RUN_OUT" "5: restore used backup $id3"
pg_adopt "$R" "archive_mode = off"
pg_start "$R"
wait_recovery_done "$R" 60
check_eq "$(psql_q "$R" "select (select count(*) from pgbench_accounts) || ' ' || (select count(*) || ' ' || sum(id) from after_crash)")" "$want" \
  "5: the restored cluster has every row (accounts, rows, sum: $want)"
pg_stop "$R"
daemon_stop
finish
