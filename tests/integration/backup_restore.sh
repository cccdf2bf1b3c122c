#!/usr/bin/env bash
# Base backups taken by walvaultd (`walvault backup`) and restored by `walvault restore`, end to
# end with nothing run by hand (no pg_basebackup, no recovery.signal, no restore_command):
#   - backup: --json document, several 1 MiB chunks, `status --json` names it;
#   - an accidental DELETE: restore --target-time just before it brings every row back;
#   - --standby --primary-conninfo: the restored cluster streams from the primary;
#   - list --backups --json and plan --backup ID;
#   - refusals change nothing (non-empty DIR, unreachable target, unknown backup, a running
#     postmaster, --target-action without a target); --force replaces DIR's contents;
#   - the data directory lost (last, as it removes the primary): restore the latest backup as
#     root (files owned by postgres, DIR 0700, manifest verified) and replay to the end of the
#     archived WAL.
# Restored clusters that promote run with archive_mode = off so that their new timeline never
# reaches the archive (a later `latest` restore would otherwise follow it).
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
command -v jq >/dev/null || { echo "$WV_TEST_NAME: jq is needed" >&2; exit 2; }

PG="$T/pg"
pg_init "$PG"
PRIMARY_PORT=${WV_PG_PORT[$PG]}
daemon_start --allow-uid postgres,root \
  --pg-conninfo "host=$T/pgsock port=$PRIMARY_PORT user=postgres" --backup-chunk-size 1MiB
pg_start "$PG"

ROWS="select count(*) || ' ' || md5(string_agg(id || ':' || payload, ',' order by id)) from t"

# A listing of everything under DIR (names, types, modes, owners, sizes, mtimes, contents), to
# prove that a refused restore changed nothing.
dir_snapshot() { # DIR
  (
    cd "$1" || exit 1
    find . -printf '%p %y %m %u:%g %s %T@\n' | LC_ALL=C sort
    find . -type f -exec md5sum {} + | LC_ALL=C sort
  )
}

# Paths under DIR not owned by postgres:postgres (none expected).
not_owned_by_postgres() { find "$1" \( ! -user postgres -o ! -group postgres \) -printf '%p %u:%g\n' | head -n 5; }

wv_cli_json status
check_eq "$(jq_out '.backup')" null "status --json: backup is null before any backup"

psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(1, 30000) g" >/dev/null
at_b1=$(psql_q "$PG" "$ROWS")
before_b1=$(psql_q "$PG" "select clock_timestamp()")
sleep 1

# ---------------------------------------------------------------------------------------------
log "--- walvault backup"
wv_cli -u root --json backup --label first
assert_rc 0 "walvault backup --label first"
printf '%s' "$RUN_OUT" | jq -e 'type == "object"' >/dev/null || fail "backup --json is not one JSON object: $(_wv_oneline "$RUN_OUT")"
check_eq "$(jq_out '[has("id","complete","label","timeline","start_lsn","stop_lsn","backup_file","files","plain_bytes","stored_bytes","chunks","seconds","mb_per_s")] | all')" \
  true "backup --json has every documented key"
B1=$(jq_out '.id')
check_eq "$(jq_out '.complete')" true "backup $B1 is complete"
check_eq "$(jq_out '.label')" first "backup $B1 keeps its label"
check_eq "$(jq_out '.timeline')" 1 "backup $B1 is on timeline 1"
check_match '^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$' "$(jq_out '.backup_file')" "backup $B1 names its .backup file"
check_eq "$(jq_out '.chunks >= 3 and .files > 100 and .plain_bytes > 3000000 and .stored_bytes > 0')" true \
  "backup $B1 has several 1 MiB chunks ($(jq_out '.chunks') chunks, $(jq_out '.files') files, $(jq_out '.plain_bytes') bytes)"
B1_CHUNKS=$(jq_out '.chunks')
wv_cli_json status
check_eq "$(jq_out '.backup.id + " " + .backup.phase')" "$B1 complete" "status --json: backup $B1 complete"
sleep 1 # the .backup file's STOP TIME has whole seconds: a target must be a second past it

# ---------------------------------------------------------------------------------------------
log "--- accidental DELETE, restore --target-time"
psql_q "$PG" "insert into t select g, 'after backup ' || g from generate_series(30001, 35000) g" >/dev/null
pg_switch "$PG" >/dev/null
psql_q "$PG" "insert into t select g, 'after switch ' || g from generate_series(35001, 40000) g" >/dev/null
before_delete=$(psql_q "$PG" "$ROWS")
target=$(psql_q "$PG" "select clock_timestamp()")
log "target time $target (rows: $before_delete)"
sleep 1
psql_q "$PG" "delete from t" >/dev/null
assert_eq "$(psql_q "$PG" "select count(*) from t")" 0 "the accidental DELETE removed every row"
psql_q "$PG" "create table after_delete (x int); insert into after_delete values (1)" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60

R2="$T/r_pitr"
wv_cli -u root --json restore --pgdata "$R2" --target-time "$target"
assert_rc 0 "restore --target-time '$target'"
printf '%s' "$RUN_OUT" | jq -e 'type == "object"' >/dev/null || fail "restore --json is not one JSON object: $(_wv_oneline "$RUN_OUT")"
check_eq "$(jq_out '.backup')" "$B1" "restore --json names backup $B1"
check_eq "$(jq_out '.plan.stored_backup.id')" "$B1" "restore --json: its plan chose stored backup $B1"
check_eq "$(jq_out '.signal')" recovery.signal "restore --json: signal file recovery.signal"
check_eq "$(jq_out '.chunks')" "$B1_CHUNKS" "restore --json: every chunk of $B1 restored"
check_contains "pg_verifybackup" "$(jq_out '.verified')" "restore --json: backup_manifest verified"
check_contains "recovery_target_time" "$(jq_out '.target')" "restore --json names the target"
conf=$(cat "$R2/postgresql.auto.conf")
written=$(sed -n "s/^recovery_target_time = '\(.*\)'$/\1/p" "$R2/postgresql.auto.conf" | tail -n 1)
check_eq "$(psql_q "$PG" "select '$written'::timestamptz = '$target'::timestamptz")" t \
  "postgresql.auto.conf has recovery_target_time, the same instant as the target ('$written')"
check_contains "recovery_target_action = 'promote'" "$conf" "postgresql.auto.conf: target action promote by default"
check_contains "archive-get --socket $SOCK %f %p" "$conf" "postgresql.auto.conf has walvault's restore_command"
pg_adopt "$R2" "archive_mode = off"
pg_start "$R2"
wait_recovery_done "$R2" 60
assert_eq "$(psql_q "$R2" "$ROWS")" "$before_delete" "PITR: every row is back (count and md5 as before the DELETE)"
assert_eq "$(psql_q "$R2" "select count(*) from pg_class where relname = 'after_delete'")" 0 \
  "PITR: recovery stopped before the DELETE (later table absent)"
grep -q "recovery stopping before commit of transaction" "$(pg_logfile "$R2")" ||
  fail "PostgreSQL did not log 'recovery stopping before commit' (target not reached?)"
ok "PITR: PostgreSQL stopped at the recovery target"
pg_stop "$R2"

# The same instant without a zone: walvault reads it as UTC (docs/cli.md), so what it writes
# must mean that instant to PostgreSQL whatever the restored cluster's timezone setting is.
target_utc=$(psql_q "$PG" "select to_char('$target'::timestamptz at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
RTZ="$T/r_tz"
# --archive-get: archive-get as PostgreSQL sees it (a Kubernetes restore Job runs walvault in
# its own container; PostgreSQL finds the client at /walvault/bin).
wv_cli -u root restore --pgdata "$RTZ" --target-time "$target_utc" --archive-get /walvault/bin/archive-get
assert_rc 0 "restore --target-time '$target_utc' (no zone: UTC) --archive-get /walvault/bin/archive-get"
check_contains "restore_command = '/walvault/bin/archive-get --socket $SOCK %f %p'" "$(cat "$RTZ/postgresql.auto.conf")" \
  "restore_command names the --archive-get path"
written=$(sed -n "s/^recovery_target_time = '\(.*\)'\$/\1/p" "$RTZ/postgresql.auto.conf")
[ -n "$written" ] || fail "no recovery_target_time in $RTZ/postgresql.auto.conf"
check_eq "$(psql_q "$PG" "set timezone = 'America/New_York'; select '$written'::timestamptz = '$target'::timestamptz")" t \
  "a zone-less --target-time is written so that PostgreSQL reads it as UTC too (written: '$written')"
rm -rf "$RTZ"

# ---------------------------------------------------------------------------------------------
log "--- restore --standby"
grep -Eq '^(local|host)[[:space:]]+replication[[:space:]]+all[[:space:]].*trust' "$PG/pg_hba.conf" ||
  fail "the primary's pg_hba.conf does not allow local replication connections"
S="$T/work/standby" # restored by the postgres user itself, into a directory it owns
wv_cli -u postgres restore --pgdata "$S" --standby --primary-conninfo "host=$T/pgsock port=$PRIMARY_PORT user=postgres"
assert_rc 0 "restore --standby --primary-conninfo (as postgres)"
if [ ! -f "$S/standby.signal" ] || [ -e "$S/recovery.signal" ]; then
  fail "standby restore: expected standby.signal and no recovery.signal"
fi
ok "standby restore wrote standby.signal (and no recovery.signal)"
check_contains "primary_conninfo = 'host=$T/pgsock port=$PRIMARY_PORT user=postgres'" "$(cat "$S/postgresql.auto.conf")" \
  "postgresql.auto.conf has primary_conninfo"
check_eq "$(not_owned_by_postgres "$S")" "" "standby restore: every file owned by postgres"
pg_adopt "$S" "hot_standby = on"
pg_start "$S"
assert_eq "$(psql_q "$S" "select pg_is_in_recovery()")" t "the standby is in recovery"
wal_receiver_streaming() { [ "$(psql_try "$S" "select status from pg_stat_wal_receiver")" = streaming ]; }
wait_for 60 "the standby's WAL receiver to stream from the primary" wal_receiver_streaming
ok "pg_stat_wal_receiver on the standby: streaming"
psql_q "$PG" "insert into t values (900001, 'streamed to the standby')" >/dev/null
row_on_standby() { [ "$(psql_try "$S" "select count(*) from t where id = 900001")" = 1 ]; }
wait_for 30 "a row inserted on the primary to reach the standby" row_on_standby
ok "a row inserted on the primary afterwards reached the standby (without a WAL switch)"
assert_eq "$(psql_q "$S" "select pg_is_in_recovery()")" t "the standby is still in recovery"
pg_stop "$S"

# ---------------------------------------------------------------------------------------------
log "--- second backup, list --backups, plan --backup"
wv_cli -u root backup --label second
assert_rc 0 "walvault backup --label second"
B2=$(printf '%s' "$RUN_OUT" | sed -n 's/^backup \([^ ]*\) complete:.*/\1/p')
if [ -z "$B2" ] || [ "$B2" = "$B1" ]; then fail "backup text output names no new backup id: $(_wv_oneline "$RUN_OUT")"; fi
ok "second backup $B2: $(_wv_oneline "$RUN_OUT")"
wv_cli_json status
check_eq "$(jq_out '.backup.id + " " + .backup.phase + " " + .backup.label')" "$B2 complete second" "status --json: backup $B2 complete"

wv_cli_json list --backups
assert_rc 0 "list --backups --json"
check_eq "$(jq_out '[.backups[] | .stored.id] | join(" ")')" "$B1 $B2" "list --backups: both backups, each with stored.id"
check_eq "$(jq_out '[.backups[] | .label] | join(" ")')" "first second" "list --backups: labels"
check_eq "$(jq_out '[.backups[] | .timeline == 1 and (.start_lsn | test("^[0-9A-F]+/[0-9A-F]+$")) and .stop_time != null and .stored.chunk_count >= 3 and .stored.plain_bytes > 0 and .stored.files > 100] | all')" \
  true "list --backups: timelines, LSNs, stop times, sizes and chunk counts"
for id in "$B1" "$B2"; do
  wv_cli plan --backup "$id"
  assert_rc 0 "plan --backup $id"
  check_contains "stored by walvault as $id" "$RUN_OUT" "plan --backup $id names the stored backup"
  wv_cli_json plan --backup "$id"
  check_eq "$(jq_out '(.reachable|tostring) + " " + .stored_backup.id + " " + (.stored_backup.chunks | length | tostring)')" \
    "true $id $(jq_out '.stored_backup.chunk_count')" "plan --json --backup $id: reachable, stored backup with its chunks"
done
wv_cli plan --backup NOSUCH
check_rc 1 "plan --backup NOSUCH is refused"
wv_cli_json verify
check_rc 0 "verify: every object and every backup chunk proven"
check_eq "$(jq_out '.backup_chunks > 0')" true "verify covered the stored backups' chunks ($(jq_out .backup_chunks))"
wv_cli_json check --max-disk-usage 100%
check_contains "stored by walvault" "$(jq_out '.checks[] | select(.name == "backup_age") | .message')" \
  "check's backup age is the newest backup walvault stores"
check_eq "$(jq_out '.checks[] | select(.name == "backup_age") | .ok')" true "check: the stored backup is young enough"

# ---------------------------------------------------------------------------------------------
log "--- refusals change nothing; --force"
OCC="$T/occupied"
mkdir -p "$OCC/sub"
echo "precious" >"$OCC/keep.txt"
echo "more" >"$OCC/sub/other"
before=$(dir_snapshot "$OCC")
wv_cli -u root restore --pgdata "$OCC"
check_rc 1 "restore into a non-empty directory without --force"
check_contains "not empty" "$RUN_ERR" "the refusal says the directory is not empty"
check_eq "$(dir_snapshot "$OCC")" "$before" "the non-empty directory is unchanged"
wv_cli -u root restore --pgdata "$OCC" --target-time "$target" --backup "$B2"
check_rc 1 "restore into a non-empty directory without --force (with a target and --backup)"
check_eq "$(dir_snapshot "$OCC")" "$before" "the non-empty directory is still unchanged"

NEW="$T/never/created"
wv_cli -u root restore --pgdata "$NEW" --target-time "$before_b1"
check_rc 1 "restore --target-time before the first backup's stop (unreachable)"
check_match "not reachable|before the oldest" "$RUN_ERR" "the refusal says the target is unreachable"
check_eq "$([ -e "$T/never" ] && echo exists || echo absent)" absent "an unreachable target creates no directory"
wv_cli -u root restore --pgdata "$NEW" --backup NOSUCH
check_rc 1 "restore --backup NOSUCH"
check_contains "NOSUCH" "$RUN_ERR" "the refusal names the unknown backup"
check_eq "$([ -e "$T/never" ] && echo exists || echo absent)" absent "an unknown backup creates no directory"
wv_cli -u root restore --pgdata "$NEW" --target-action pause
check_rc 2 "restore --target-action without a target is a usage error"
check_eq "$([ -e "$T/never" ] && echo exists || echo absent)" absent "a usage error creates no directory"
wv_cli -u root restore --pgdata "$NEW" --target-time "$target" --target-lsn 0/3000000
check_rc 2 "restore with two targets is a usage error"
wv_cli -u root restore --pgdata "$NEW" --primary-conninfo "host=/nonexistent"
check_rc 2 "restore --primary-conninfo without --standby is a usage error"
wv_cli -u root restore --pgdata "$NEW" --archive-get bin/archive-get
check_rc 2 "restore --archive-get with a relative path is a usage error"
check_contains "absolute path" "$RUN_ERR" "the refusal says why"
wv_cli -u root restore --pgdata "$NEW" --archive-get '/opt/my bin/archive-get'
check_rc 2 "restore --archive-get with a space is a usage error"
check_contains "the shell would interpret" "$RUN_ERR" "the refusal says why"
check_eq "$([ -e "$T/never" ] && echo exists || echo absent)" absent "a bad --archive-get creates no directory"
# From a current directory the user cannot enter (a container's WORKDIR of another uid)
# libarchive could write no file at all: refused up front, naming the cause.
mkdir -m 0700 "$T/root-only"
wv_run -u postgres -C "$T/root-only" -- "$T/bin/walvault" --socket "$SOCK" restore --pgdata "$T/work/from-root-only"
check_rc 1 "restore run (as postgres) from a directory postgres cannot enter"
check_contains "run walvault restore from a directory uid $(id -u postgres) can enter" "$RUN_ERR" "the refusal names the current directory and the uid"
check_eq "$([ -e "$T/work/from-root-only" ] && echo exists || echo absent)" absent "... and creates nothing"
wv_cli -u root restore --pgdata "$NEW" --target-time "$before_b1" --force
check_rc 1 "--force does not make an unreachable target reachable"
check_eq "$([ -e "$T/never" ] && echo exists || echo absent)" absent "... and creates no directory"
wv_cli -u root restore --pgdata "$OCC" --force --target-time "$before_b1"
check_rc 1 "restore --force into a non-empty directory with an unreachable target"
check_eq "$(dir_snapshot "$OCC")" "$before" "the unreachable target left the non-empty directory unchanged despite --force"

pg_files_before=$(find "$PG" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ')
wv_cli -u root restore --pgdata "$PG" --force
check_rc 1 "restore --force into the running primary's data directory"
check_contains "PostgreSQL is running" "$RUN_ERR" "the refusal names the running postmaster"
check_eq "$(find "$PG" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ')" "$pg_files_before" "the running primary's data directory keeps its entries"
check_eq "$(psql_q "$PG" "select count(*) from t where id = 900001")" 1 "the primary still answers"

wv_cli -u root --json restore --pgdata "$OCC" --force --backup "$B1" --target-immediate
assert_rc 0 "restore --force --backup $B1 --target-immediate into the non-empty directory"
check_eq "$(jq_out '.backup')" "$B1" "--backup $B1 restored that backup (not the latest)"
check_eq "$([ -e "$OCC/keep.txt" ] || [ -e "$OCC/sub" ] && echo present || echo gone)" gone "--force removed the directory's old contents"
check_eq "$(stat -c '%a %U:%G' "$OCC")" "700 postgres:postgres" "--force: the directory is postgres's, mode 0700"
check_contains "recovery_target = 'immediate'" "$(cat "$OCC/postgresql.auto.conf")" "postgresql.auto.conf has recovery_target = 'immediate'"
pg_adopt "$OCC" "archive_mode = off"
pg_start "$OCC"
wait_recovery_done "$OCC" 60
assert_eq "$(psql_q "$OCC" "$ROWS")" "$at_b1" "--target-immediate on $B1: exactly the rows at backup $B1"
pg_stop "$OCC"

# ---------------------------------------------------------------------------------------------
log "--- the data directory is lost: restore the latest backup"
psql_q "$PG" "insert into t select g, md5('lost ' || g) from generate_series(1, 20000) g" >/dev/null
pg_switch "$PG" >/dev/null
psql_q "$PG" "insert into t select g, 'after the switch ' || g from generate_series(20001, 25000) g; update t set payload = 'updated' where id % 7 = 0" >/dev/null
want=$(psql_q "$PG" "$ROWS")
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
pg_stop "$PG" immediate
rm -rf "$PG"
ok "primary stopped (immediate) and its data directory removed"

NEWPG="$T/restored/pg"
wv_cli -u root restore --pgdata "$NEWPG"
assert_rc 0 "restore --pgdata $NEWPG (latest backup, to the end of the archived WAL)"
check_contains "restored backup $B2 into $NEWPG" "$RUN_OUT" "the latest backup $B2 was restored"
check_contains "pg_verifybackup: backup successfully verified" "$RUN_OUT" "backup_manifest verified by pg_verifybackup"
check_contains "recovery.signal written" "$RUN_OUT" "the output says recovery.signal was written"
check_eq "$(stat -c '%a %U:%G' "$NEWPG")" "700 postgres:postgres" "restored directory: postgres's, mode 0700"
check_eq "$(not_owned_by_postgres "$NEWPG")" "" "every restored file is owned by postgres"
check_eq "$(find "$NEWPG" -mindepth 1 \( -type d ! -perm 700 -o -type f ! -perm 600 \) -printf '%p %m\n' | head -n 5)" "" \
  "restored directories are mode 0700 and files 0600, as PostgreSQL made them"
check_eq "$([ -f "$NEWPG/recovery.signal" ] && [ ! -e "$NEWPG/standby.signal" ] && echo yes || echo no)" yes \
  "recovery.signal (and no standby.signal) before the first start"
check_contains "restore_command = '$T/bin/archive-get --socket $SOCK %f %p'" "$(cat "$NEWPG/postgresql.auto.conf")" \
  "postgresql.auto.conf has walvault's restore_command"
check_eq "$(grep -c '^recovery_target_action' "$NEWPG/postgresql.auto.conf" || true)" 0 "no recovery_target_action without a target"
# Independently of the CLI: the files match the manifest (the two files restore adds aside).
wv_run -u postgres -- "$PGBIN/pg_verifybackup" --no-parse-wal --quiet -i postgresql.auto.conf -i recovery.signal "$NEWPG"
check_rc 0 "pg_verifybackup on the restored directory"
pg_adopt "$NEWPG"
pg_start "$NEWPG"
wait_recovery_done "$NEWPG" 60
assert_eq "$(psql_q "$NEWPG" "$ROWS")" "$want" "data directory lost: every row back (count and md5)"
check_eq "$(psql_q "$NEWPG" "select count(*) from pg_class where relname = 'after_delete'")" 1 "the table created after the DELETE is there too"
pg_stop "$NEWPG"

daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stopped cleanly"
finish
