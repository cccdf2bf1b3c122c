#!/usr/bin/env bash
# Fail closed: an object that was archived and is gone from the repository is damage, never
# "not there". With a real PostgreSQL 15 restoring a base backup from walvaultd:
#   - a segment in the middle of the WAL recovery needs is deleted from the repository:
#     recovery stops with a FATAL (archive-get exits 126) instead of ending early and promoting;
#   - the newest archived segment is deleted, and walvaultd restarted (its start-up repair must
#     record the loss, not forget the row): the same;
#   - an archived 00000002.history is deleted: recovery_target_timeline = 'latest' probes it at
#     start-up and must stop, not conclude timeline 1 is the newest (it would then pick timeline
#     2 again at promotion);
#   - a standby (standby.signal) that needs the lost newest segment keeps waiting in recovery
#     (archive-get exits 1) and replays it once the object is put back.
# `walvault reindex` says LOST loudly (text and JSON) and exits 1.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"
psql_q "$PG" "create table t (id int primary key, note text)" >/dev/null
psql_q "$PG" "insert into t select g, 'before backup' from generate_series(1, 100) g" >/dev/null
pg_basebackup_to "$PG" "$T/backup"
segs=()
for i in 1 2 3 4; do
  psql_q "$PG" "insert into t select g, 'after backup' from generate_series($((i * 1000)), $((i * 1000 + 99))) g" >/dev/null
  segs+=("$(pg_switch "$PG")")
done
wait_archived "$PG" "${segs[3]}" 90
pg_stop "$PG"
middle=${segs[1]}
newest=${segs[3]}
log "archived after the backup: ${segs[*]} (middle $middle, newest $newest)"

object_of() { # NAME -> path of its object in the repository
  case $1 in
    *.history) echo "$REPO/wal/history/$1" ;;
    *) echo "$REPO/wal/${1:0:16}/$1" ;;
  esac
}
lose() { # NAME: the object vanishes behind walvaultd's back (kept aside to put back later)
  [ -f "$(object_of "$1")" ] || fail "no object for $1 in $REPO"
  mv "$(object_of "$1")" "$T/aside.$1"
}
put_back() { mv "$T/aside.$1" "$(object_of "$1")"; }

# restore_must_stop DIR NAME WHY: a restore of the backup in DIR must stop with a FATAL while
# restoring NAME, and must never promote.
restore_must_stop() {
  local dir=$1 name=$2 why=$3 logf deadline
  pg_restore_setup "$T/backup" "$dir" "recovery_target_action = 'promote'"
  logf=$(pg_logfile "$dir")
  WV_CLUSTERS+=("$dir")
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" -l "$logf" start >/dev/null 2>&1 || true
  deadline=$((SECONDS + 90))
  while pg_is_running "$dir" || [ ! -s "$logf" ]; do
    r=$(psql_try "$dir" "select pg_is_in_recovery()" || true)
    [ "$r" = f ] && fail "$why: PostgreSQL promoted (recovery ended early at the lost $name)"
    [ "$SECONDS" -lt "$deadline" ] || fail "$why: recovery neither stopped nor finished in 90s; log: $(tail -n 5 "$logf" | tr '\n' '|')"
    sleep 0.3
  done
  check_match "FATAL: +could not restore file \"$name\" from archive: command not executable" "$(cat "$logf")" \
    "$why: recovery stops with a FATAL on $name"
  check_contains "'$name' was archived on " "$(cat "$logf")" "$why: archive-get's line says when $name was archived"
  check_contains "and is gone from repository" "$(cat "$logf")" "$why: ... and that it is gone"
  if grep -qE "selected new timeline ID|archive recovery complete" "$logf"; then
    fail "$why: PostgreSQL ended recovery: $(grep -E 'selected new timeline ID|archive recovery complete' "$logf" | head -n 2 | tr '\n' '|')"
  fi
  ok "$why: no new timeline selected, no promotion"
}

# 1. A segment in the middle.
lose "$middle"
wv_get "$middle" "$T/work/middle.out"
check_rc 126 "archive-get of the lost middle segment (archive recovery)"
check_contains "'$middle' was archived on " "$RUN_ERR" "archive-get names the lost segment and when it was archived"
restore_must_stop "$T/restore_middle" "$middle" "middle segment lost"
put_back "$middle"

# 2. The newest segment, with walvaultd restarted in between: its start-up repair records the
# loss (the row stays), so the answer is the same.
lose "$newest"
daemon_stop
daemon_start
check_match "index repaired: .* 1 LOST" "$(cat "$T/logs/walvaultd.$WV_DAEMON_COUNT.log")" "walvaultd's start-up repair reports the lost object"
check_contains "missing from repository" "$(cat "$T/logs/walvaultd.$WV_DAEMON_COUNT.log")" "... loudly, naming the repository"
restore_must_stop "$T/restore_newest" "$newest" "newest segment lost"

# 3. `walvault reindex` says so.
wv_cli reindex
check_rc 1 "reindex exits 1 when objects are lost"
check_contains "LOST: 1 object(s)" "$RUN_OUT" "reindex text says LOST"
check_contains "  $newest" "$RUN_OUT" "reindex names the lost segment"
wv_cli_json reindex
check_eq "$(jq_out .lost)" 1 "reindex --json: lost"
check_eq "$(jq_out '.lost_names[0]')" "$newest" "reindex --json: lost_names"

# 4. A standby needing the lost newest segment keeps waiting, then replays it once it is back.
S="$T/standby"
pg_restore_setup "$T/backup" "$S"
rm -f "$S/recovery.signal"
runuser -u postgres -- touch "$S/standby.signal"
pg_start "$S"
seg_start() { printf '%X/%X' $((16#${1:8:8})) $((16#${1:16:8} * WV_SEG_SIZE)); }  # NAME -> its first LSN
# replayed_past LSN: the standby replayed a record ending after LSN (a replayed XLOG_SWITCH
# ends at the next segment's first byte, so "> start of S" means "replayed inside S").
replayed_past() { [ "$(psql_try "$S" "select pg_last_wal_replay_lsn() > '$1'" || true)" = t ]; }
wait_for 60 "standby replays up to the segment before $newest" replayed_past "$(seg_start "${segs[2]}")"
sleep 6  # more than one retry (wal_retrieve_retry_interval is 5 s)
pg_is_running "$S" || fail "the standby stopped: $(tail -n 5 "$(pg_logfile "$S")" | tr '\n' '|')"
check_eq "$(psql_q "$S" "select pg_is_in_recovery()")" t "standby still in recovery while $newest is lost"
check_eq "$(psql_q "$S" "select pg_last_wal_replay_lsn() <= '$(seg_start "$newest")'")" t "standby did not get past the lost segment"
check_contains "'$newest' was archived on " "$(cat "$(pg_logfile "$S")")" "standby's log shows archive-get's error for $newest"
wv_get -C "$S" "$newest" "$T/work/standby.out"
check_rc 1 "archive-get of the lost segment in standby mode exits 1 (keep waiting)"
put_back "$newest"
wait_for 60 "standby replays $newest once it is back" replayed_past "$(seg_start "$newest")"
ok "standby replayed $newest after it was put back"
# A record inside the segment is replayed before the batch's commit at its end: wait for the
# rows (the count alone never reached 500 under ASan on a loaded CI machine within one poll).
has_rows() { [ "$(psql_try "$S" "select count(*) from t" || true)" = "$1" ]; }
wait_for 60 "the standby shows all 500 rows" has_rows 500
check_eq "$(psql_q "$S" "select count(*) from t")" 500 "standby has every row"
pg_stop "$S"

# 5. An archived timeline history file.
# Timeline 2 branching off in the newest segment (as a promotion there would have written it).
printf '1\t%X/%X\tno recovery target specified\n' $((16#${newest:8:8})) $((16#${newest:16:8} * WV_SEG_SIZE + 0x1000)) >"$T/work/00000002.history"
chown postgres: "$T/work/00000002.history"
wv_push "$T/work/00000002.history"
assert_rc 0 "00000002.history archived"
lose 00000002.history
wv_get 00000002.history "$T/work/RECOVERYHISTORY"
check_rc 126 "archive-get of the lost 00000002.history"
restore_must_stop "$T/restore_history" 00000002.history "timeline history lost"
wv_get 00000003.history "$T/work/RECOVERYHISTORY"
check_rc 1 "a history file never archived is still 'not there'"

daemon_stop
finish
