#!/usr/bin/env bash
# `walvault timelines` and `walvault status` against PostgreSQL's own files: a cluster on
# timeline 1 is backed up (B1); B1 restored up to a restore point in the middle of a segment
# promotes to timeline 2, which keeps archiving into the same walvaultd and is backed up again
# (B2); B2 restored up to a restore point on timeline 2 promotes to timeline 3. The timeline tree the CLI reports (parent and switch
# LSN of timelines 2 and 3) must be exactly what PostgreSQL wrote into 00000002.history and
# 00000003.history, and the system identifier the one pg_controldata prints.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"

psql_q "$PG" "create table t (id int primary key, tl int)" >/dev/null
psql_q "$PG" "insert into t select g, 1 from generate_series(1, 100) g" >/dev/null
pg_basebackup_to "$PG" "$T/backup1"
psql_q "$PG" "insert into t select g, 1 from generate_series(101, 200) g" >/dev/null
psql_q "$PG" "select pg_create_restore_point('to_tl2')" >/dev/null
psql_q "$PG" "insert into t select g, 1 from generate_series(201, 300) g" >/dev/null
last1=$(pg_switch "$PG")
wait_archived "$PG" "$last1" 90
pg_stop "$PG"

# History file of TIMELINE in PostgreSQL's own pg_wal of DIR: its last entry, "parent lsn reason".
history_entry() { # DIR TIMELINE
  local f
  f="$1/pg_wal/$(printf '%08X' "$2").history"
  [ -f "$f" ] || fail "PostgreSQL did not write $f"
  awk -F'\t' '/^[0-9]/ { p = $1; l = $2; r = $3 } END { if (p == "") exit 1; print p " " l " " r }' "$f" ||
    fail "no entry in $f: $(tr '\n' '|' <"$f")"
}

# wait_history NAME: until archive-get finds NAME in the archive.
wait_history() {
  wait_for 60 "$1 in the archive" bash -c \
    "cd '$T/work' && runuser -u postgres -- '$T/bin/archive-get' --socket '$SOCK' '$1' '$T/work/h.$1' 2>/dev/null"
}

# Timeline 2: B1 restored up to the restore point, promoted.
C1="$T/tl2"
pg_restore_setup "$T/backup1" "$C1" "recovery_target_name = 'to_tl2'" "recovery_target_action = 'promote'"
pg_start "$C1"
wait_recovery_done "$C1" 120
assert_eq "$(psql_q "$C1" "select timeline_id from pg_control_checkpoint()")" 2 "first restore promoted to timeline 2"
wait_history 00000002.history
psql_q "$C1" "insert into t select g, 2 from generate_series(1001, 1100) g" >/dev/null
pg_switch "$C1" >/dev/null
pg_basebackup_to "$C1" "$T/backup2"
psql_q "$C1" "insert into t select g, 2 from generate_series(1101, 1200) g" >/dev/null
psql_q "$C1" "select pg_create_restore_point('to_tl3')" >/dev/null
psql_q "$C1" "insert into t select g, 2 from generate_series(1201, 1300) g" >/dev/null
last2=$(pg_switch "$C1")
wait_archived "$C1" "$last2" 90
pg_stop "$C1"

# Timeline 3: B2 (taken on timeline 2) restored up to the restore point on timeline 2, promoted.
C2="$T/tl3"
pg_restore_setup "$T/backup2" "$C2" "recovery_target_name = 'to_tl3'" "recovery_target_action = 'promote'"
pg_start "$C2"
wait_recovery_done "$C2" 120
assert_eq "$(psql_q "$C2" "select timeline_id from pg_control_checkpoint()")" 3 "second restore promoted to timeline 3"
assert_eq "$(psql_q "$C2" "select count(*) from t")" 400 "timeline 3 has the 400 rows written before the restore points"
wait_history 00000003.history
psql_q "$C2" "insert into t select g, 3 from generate_series(2001, 2100) g" >/dev/null
last3=$(pg_switch "$C2")
wait_archived "$C2" "$last3" 90

read -r parent2 lsn2 reason2 <<<"$(history_entry "$C1" 2)"
read -r parent3 lsn3 reason3 <<<"$(history_entry "$C2" 3)"
log "PostgreSQL: 00000002.history: parent $parent2 at $lsn2 ($reason2); 00000003.history: parent $parent3 at $lsn3 ($reason3)"
assert_eq "$parent3" 2 "PostgreSQL's 00000003.history names timeline 2 as the parent (sanity)"

# --- walvault timelines --json
wv_cli_json timelines
assert_rc 0 "walvault timelines --json"
assert_eq "$(jq_out '[.timelines[].timeline] | map(tostring) | join(",")')" "1,2,3" "timelines lists exactly 1,2,3"
assert_eq "$(jq_out '.timelines[] | select(.timeline == 1) | .parent')" "null" "timeline 1 has no parent"
assert_eq "$(jq_out '.timelines[] | select(.timeline == 2) | .parent')" "$parent2" "timeline 2's parent is the one in 00000002.history"
assert_eq "$(jq_out '.timelines[] | select(.timeline == 2) | .switch_lsn')" "$lsn2" "timeline 2's switch_lsn is exactly the one in 00000002.history"
assert_eq "$(jq_out '.timelines[] | select(.timeline == 3) | .parent')" "$parent3" "timeline 3's parent is the one in 00000003.history"
assert_eq "$(jq_out '.timelines[] | select(.timeline == 3) | .switch_lsn')" "$lsn3" "timeline 3's switch_lsn is exactly the one in 00000003.history"
check_eq "$(jq_out '.timelines[] | select(.timeline == 3) | .reason')" "$reason3" "timeline 3's reason is the one in 00000003.history"
for tl in 1 2 3; do
  n=$(jq_out ".timelines[] | select(.timeline == $tl) | .segments")
  if [ "$n" -ge 1 ]; then ok "timeline $tl has $n archived segment(s)"; else soft_fail "timeline $tl has no archived segment ($n)"; fi
done
check_eq "$(jq_out '.timelines[] | select(.timeline == 3) | .continuous')" "true" "the path to timeline 3 is continuous"

# Text form.
wv_cli timelines
assert_rc 0 "walvault timelines (text)"
check_contains "timeline 3 (from timeline 2 at $lsn3)" "$RUN_OUT" "text form names timeline 3's parent and switch point"
check_contains "timeline 2 (from timeline 1 at $lsn2)" "$RUN_OUT" "text form names timeline 2's parent and switch point"

# list --timeline 3 shows only timeline-3 files, the last one switched included.
wv_cli_json list --timeline 3
assert_rc 0 "walvault list --timeline 3 --json"
check_eq "$(jq_out '[.segments[].timeline] | unique | map(tostring) | join(",")')" "3" "list --timeline 3 lists only timeline-3 files"
# shellcheck disable=SC2016  # $n is jq's variable
check_eq "$(jq_out --arg n "$last3" '[.segments[] | select(.name == $n)] | length')" "1" "list --timeline 3 includes $last3"

# --- walvault status --json: system identifier and version from the archived WAL
sysid=$(runuser -u postgres -- "$PGBIN/pg_controldata" "$C2" | awk -F': *' '/^Database system identifier/ { print $2 }')
[ -n "$sysid" ] || fail "pg_controldata printed no system identifier"
wv_cli_json status
assert_rc 0 "walvault status --json"
assert_eq "$(jq_out '.system_identifier')" "$sysid" "status system_identifier is pg_controldata's"
check_eq "$(jq_out '.pg_version')" "15" "status pg_version is 15"
check_eq "$(jq_out '.history_files')" "2" "status counts the two .history files"
check_eq "$(jq_out '.backup_files')" "2" "status counts the two .backup files"

pg_stop "$C2"
daemon_stop
finish
