#!/usr/bin/env bash
# `walvault plan` and `walvault list --backups` against a real point-in-time recovery: a base
# backup, rows written after it, a time T noted just before an accidental DELETE. The plan for
# --target-time T names the backup PostgreSQL archived (its .backup file) and the segments a
# restore replays; a restore with exactly recovery_target_time = T brings the rows back and
# fetches exactly the segments the plan named. Unreachable targets (after the newest commit,
# before the backup) exit 1 with the reason; a malformed time is refused naming the bad value.
# The backup's start/stop LSNs in `list --backups` are the ones in PostgreSQL's .backup file.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"

psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
psql_q "$PG" "insert into t select g, 'before backup ' || g from generate_series(1, 1000) g" >/dev/null
pg_basebackup_to "$PG" "$T/backup"
mapfile -t backup_files < <(cd "$PG/pg_wal" && ls -- *.backup 2>/dev/null)
assert_eq "${#backup_files[@]}" 1 "PostgreSQL wrote one backup history file in pg_wal"
backup_file=${backup_files[0]}
cp "$PG/pg_wal/$backup_file" "$T/work/$backup_file"

psql_q "$PG" "insert into t select g, 'after backup ' || g from generate_series(1001, 1500) g" >/dev/null
pg_switch "$PG" >/dev/null
psql_q "$PG" "insert into t select g, 'after switch ' || g from generate_series(1501, 2000) g" >/dev/null
want=$(psql_q "$PG" "select count(*) || ' ' || md5(string_agg(id || payload, ',' order by id)) from t")
IFS='|' read -r target target_seg <<<"$(psql_q "$PG" "select clock_timestamp(), pg_walfile_name(pg_current_wal_insert_lsn())")"
log "target time: $target (WAL insert position in $target_seg; rows: $want)"
sleep 1
psql_q "$PG" "delete from t" >/dev/null
delete_seg=$(psql_q "$PG" "select pg_walfile_name(pg_current_wal_insert_lsn())")
psql_q "$PG" "create table after_delete (x int); insert into after_delete values (1)" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 90
pg_stop "$PG" immediate

# --- plan --target-time T
wv_cli_json plan --target-time "$target"
assert_rc 0 "plan --target-time '$target' --json"
plan_json=$RUN_OUT
check_eq "$(jq_out .reachable)" true "plan: reachable"
check_eq "$(jq_out .backup.name)" "$backup_file" "plan: the base backup is PostgreSQL's $backup_file"
check_eq "$(jq_out .timeline)" 1 "plan: target timeline 1"
first_seg=$(jq_out .first_segment)
last_seg=$(jq_out .last_segment)
check_eq "$first_seg" "${backup_file:0:24}" "plan: first_segment is the backup's start segment"
if is_segment_name "$last_seg" && [[ ! "$last_seg" < "$target_seg" && ! "$last_seg" > "$delete_seg" ]]; then
  ok "plan: last_segment $last_seg holds the first commit after T (between $target_seg and $delete_seg)"
else
  soft_fail "plan: last_segment '$last_seg' is not between $target_seg (at T) and $delete_seg (the DELETE)"
fi
check_eq "$(jq_out .segment_count)" "$(seg_range "$first_seg" "$last_seg" | wc -l)" "plan: segment_count covers first..last"
check_eq "$(jq_out '.missing | length')" 0 "plan: nothing missing"

wv_cli plan --target-time "$target"
assert_rc 0 "plan --target-time (text)"
check_match '^reachable: yes' "$RUN_OUT" "plan text says reachable: yes"
check_contains "$backup_file" "$RUN_OUT" "plan text names the backup file"

# --- the restore the plan describes
R="$T/pitr"
pg_restore_setup "$T/backup" "$R" "recovery_target_time = '$target'" "recovery_target_action = 'promote'"
pg_start "$R"
wait_recovery_done "$R" 120
got=$(psql_q "$R" "select count(*) || ' ' || md5(string_agg(id || payload, ',' order by id)) from t")
assert_eq "$got" "$want" "every row is back after PITR to T (count and md5)"
assert_eq "$(psql_q "$R" "select count(*) from pg_class where relname = 'after_delete'")" 0 "recovery stopped before the DELETE"
# PostgreSQL's restore log shows which segments replay needed. (Reading ahead, it may also ask for
# the segment after the target's, but that one was never archived: the cluster stopped right
# after the switch.)
mapfile -t restored < <(grep -oE 'restored log file "[0-9A-F]{24}" from archive' "$(pg_logfile "$R")" | grep -oE '[0-9A-F]{24}' | sort -u)
[ "${#restored[@]}" -ge 1 ] || fail "the restore fetched no segment from the archive"
check_eq "${restored[0]}" "$first_seg" "the first segment PostgreSQL fetched is the plan's first_segment"
check_eq "${restored[${#restored[@]} - 1]}" "$last_seg" "the last segment PostgreSQL fetched is the plan's last_segment"
pg_stop "$R"

# --- unreachable targets
future=$(date -u -d '+1 hour' '+%Y-%m-%d %H:%M:%S+00')
wv_cli plan --target-time "$future"
assert_rc 1 "plan --target-time one hour in the future exits 1"
check_contains "after the newest" "$RUN_OUT$RUN_ERR" "the reason says the target is after the newest archived commit"
wv_cli_json plan --target-time "$future"
check_rc 1 "plan --json --target-time in the future exits 1"
check_eq "$(jq_out .reachable)" false "plan --json: reachable false for a future time"
check_contains "after the newest" "$(jq_out .reason)" "plan --json: reason says 'after the newest'"

wv_cli plan --target-lsn 0/1
assert_rc 1 "plan --target-lsn 0/1 (before the backup) exits 1"
check_match 'reachable: NO' "$RUN_OUT$RUN_ERR" "plan --target-lsn 0/1 says not reachable"
check_match 'before' "$RUN_OUT$RUN_ERR" "plan --target-lsn 0/1: the reason says the target is before the backup"
wv_cli_json plan --target-lsn 0/1
check_eq "$(jq_out .reachable)" false "plan --json --target-lsn 0/1: reachable false"

# A mistyped value is a usage error (2, on stderr), never "unreachable" (1): scripts must be
# able to tell the two apart (DESIGN.md).
wv_cli plan --target-time garbage
check_rc 2 "plan --target-time garbage is a usage error (exit 2)"
check_contains "'garbage'" "$RUN_ERR" "the refusal names the bad value on stderr"
check_match 'not a timestamp' "$RUN_ERR" "the refusal says it is not a timestamp"
wv_cli list --timeline abc
check_rc 2 "list --timeline abc is a usage error (exit 2)"
check_contains "'abc'" "$RUN_ERR" "the refusal names the bad timeline on stderr"
# An unreachable target: exit 1 with the reason on stderr as well as in the document.
wv_cli plan --target-time "$future"
check_contains "after the newest" "$RUN_ERR" "the unreachable reason is on stderr"

# --- list --backups: the backup as PostgreSQL described it
start_lsn=$(awk '/^START WAL LOCATION:/ { print $4 }' "$T/work/$backup_file")
stop_lsn=$(awk '/^STOP WAL LOCATION:/ { print $4 }' "$T/work/$backup_file")
stop_time=$(sed -n 's/^STOP TIME: //p' "$T/work/$backup_file")
{ [ -n "$start_lsn" ] && [ -n "$stop_lsn" ]; } || fail "no START/STOP WAL LOCATION in $backup_file: $(tr '\n' '|' <"$T/work/$backup_file")"
wv_cli_json list --backups
assert_rc 0 "list --backups --json"
check_eq "$(jq_out '.backups | length')" 1 "list --backups shows one backup"
check_eq "$(jq_out .backups[0].name)" "$backup_file" "list --backups: name is $backup_file"
check_eq "$(jq_out .backups[0].start_lsn)" "$start_lsn" "list --backups: start_lsn is the .backup file's START WAL LOCATION"
check_eq "$(jq_out .backups[0].stop_lsn)" "$stop_lsn" "list --backups: stop_lsn is the .backup file's STOP WAL LOCATION"
check_eq "$(jq_out .backups[0].timeline)" 1 "list --backups: timeline 1"
check_eq "$(jq_out .backups[0].stop_time)" "$(date -u -d "$stop_time" '+%Y-%m-%dT%H:%M:%SZ')" "list --backups: stop_time is the .backup file's STOP TIME ($stop_time)"
check_eq "$(jq_out '.backups[0] | del(.stored)')" "$(printf '%s' "$plan_json" | jq -r .backup)" "the plan's backup is the listed one"
# The archived .backup file itself is PostgreSQL's.
rm -f "$T/work/got.backup"
wv_get "$backup_file" "$T/work/got.backup"
check_rc 0 "archive-get $backup_file"
if cmp -s "$T/work/got.backup" "$T/work/$backup_file"; then ok "archived $backup_file is identical to PostgreSQL's"; else soft_fail "archived $backup_file differs from PostgreSQL's"; fi

daemon_stop
finish
