#!/usr/bin/env bash
# Look-ahead push on real PostgreSQL 15 (1 MiB segments, to keep the backlog quick to build):
# a backlog built with archiving paused (archive_command empty: .ready files pile up) is stored
# by walvaultd's look-ahead before PostgreSQL asks; kill -9 in the middle of it loses nothing
# and the next walvaultd carries on; PostgreSQL's status files are never created, renamed,
# removed or modified by walvaultd (inode and mtime of each, before and after); when archiving
# resumes, PostgreSQL's own archive-push of each segment is answered from look-ahead's record
# ("ahead"); and every segment restored from the archive is byte-identical to pg_wal's copy.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

WV_INITDB_ARGS="--wal-segsize=1"
PG="$T/pg"
pg_init "$PG" "archive_command = ''" "wal_keep_size = 256MB" "min_wal_size = 256MB" "max_wal_size = 1GB"
pg_start "$PG"
STATUS_DIR="$PG/pg_wal/archive_status"

# status_snapshot FILE: name, inode and mtime (ns) of every status file, sorted.
status_snapshot() { (cd "$STATUS_DIR" && find . -maxdepth 1 -type f -printf '%f %i %T@\n' | sort) >"$1"; }
ready_count() { find "$STATUS_DIR" -maxdepth 1 -name '*.ready' | wc -l; }

make_backlog() { # ROWS: about 1 MiB of WAL per 5,000 rows, then a switch
  psql_q "$PG" "insert into t select g, repeat(md5(g::text), 8) from generate_series(1, $1) g" >/dev/null
  pg_switch "$PG" >/dev/null
}
psql_q "$PG" "create table t (id int, payload text)" >/dev/null
make_backlog 120000
n_ready=$(ready_count)
[ "$n_ready" -ge 20 ] || fail "expected a backlog of at least 20 .ready segments, got $n_ready"
ok "archiving paused: $n_ready segments wait as .ready"
# Keep pg_wal's copies to compare with what the archive gives back.
mkdir -p "$T/walcopy"
for f in "$STATUS_DIR"/*.ready; do
  seg=$(basename "$f" .ready)
  [[ $seg =~ ^[0-9A-F]{24}$ ]] && cp "$PG/pg_wal/$seg" "$T/walcopy/"
done
status_snapshot "$T/status.before"

look_ahead_json() { wv_cli_json status; }
look_ahead_field() { look_ahead_json; jq_out ".look_ahead.$1"; }

# 1. Look-ahead with one worker; kill -9 once a few segments are stored.
daemon_start --pgdata "$PG" --look-ahead-workers 1
wait_for 60 "look-ahead stored at least 3 segments" bash -c \
  "[ \"\$(runuser -u postgres -- '$T/bin/walvault' --socket '$SOCK' --json status | jq -r '.look_ahead.pushed')\" -ge 3 ]"
daemon_kill9
stored_before=$(find "$REPO" -type f -name '0000000100000000000000*' | wc -l)
log "walvaultd killed with $stored_before segment object(s) stored"

# 2. A new walvaultd finishes the backlog (two workers): what the first one stored is proven
# the same, the rest is stored.
daemon_start --pgdata "$PG"
wait_for 120 "look-ahead has every .ready segment stored" bash -c \
  "[ \"\$(runuser -u postgres -- '$T/bin/walvault' --socket '$SOCK' --json status | jq -r '.look_ahead | select(.queued == 0) | .stored_ahead')\" = '$n_ready' ]"
look_ahead_json
check_eq "$(jq_out '.look_ahead.enabled')" true "status: look-ahead enabled"
check_eq "$(jq_out '.look_ahead.ready')" "$n_ready" "status: look-ahead sees every .ready segment"
check_eq "$(jq_out '.look_ahead.failed')" 0 "status: no look-ahead push failed"
check_eq "$(jq_out '.look_ahead.problem')" null "status: look-ahead reports no problem"
age=$(jq_out '.look_ahead.oldest_ready_age_seconds')
[[ $age =~ ^[0-9]+$ ]] || fail "status: oldest_ready_age_seconds is '$age'"
ok "status: oldest .ready is ${age}s old"
pushed=$(jq_out '.look_ahead.pushed')
verified=$(jq_out '.look_ahead.verified')
check_eq "$((pushed + verified))" "$n_ready" "the second walvaultd stored $pushed and proved $verified stored by the first"
check_eq "$(jq_out '.since_start.stored')" 0 "PostgreSQL pushed nothing yet (archiving is paused)"

# 3. PostgreSQL's status files: untouched by walvaultd.
status_snapshot "$T/status.after"
if diff "$T/status.before" "$T/status.after" >"$T/status.diff"; then
  ok "every status file has the same inode and mtime as before look-ahead; none added or removed"
else
  fail "status files changed while PostgreSQL was not archiving: $(tr '\n' '|' <"$T/status.diff")"
fi
[ -z "$(find "$STATUS_DIR" -name '*.done')" ] || fail "a .done file appeared while archiving was paused"
ok "no .done file appeared while archiving was paused"

# 4. Archiving resumes: PostgreSQL's pushes are answered from look-ahead's records.
psql_q "$PG" "alter system set archive_command = '$T/bin/archive-push --socket $SOCK %p'" >/dev/null
psql_q "$PG" "select pg_reload_conf()" >/dev/null
last=$(ls "$T/walcopy" | sort | tail -n 1)
wait_archived "$PG" "$last" 120
check_eq "$(psql_q "$PG" "select failed_count from pg_stat_archiver")" 0 "pg_stat_archiver: no failed archive-push"
look_ahead_json
ahead=$(jq_out '.since_start.ahead')
[ "$ahead" -ge $((n_ready - 2)) ] || fail "only $ahead of $n_ready pushes were answered from look-ahead's records"
ok "$ahead of $n_ready PostgreSQL pushes answered 'ahead' (stored by look-ahead before PostgreSQL asked)"
check_eq "$(jq_out '.since_start.conflicts')" 0 "no conflicts"
grep -q "archived $last (stored ahead by look-ahead" "${WV_DAEMON_LOG[$WV_DAEMON_PID]}" ||
  fail "walvaultd's log does not show $last answered from look-ahead"
ok "walvaultd's log shows $last answered from look-ahead"

# 5. A new .ready segment while walvaultd runs is picked up by inotify and stored ahead.
psql_q "$PG" "alter system set archive_command = ''" >/dev/null
psql_q "$PG" "select pg_reload_conf()" >/dev/null
sleep 1
seg=$(pg_switch "$PG")
wait_for 20 "look-ahead stored the new segment $seg" bash -c \
  "cd '$T/work' && runuser -u postgres -- '$T/bin/archive-get' --socket '$SOCK' '$seg' '$T/work/new.seg' 2>/dev/null"
ok "a segment marked .ready while walvaultd runs is stored ahead ($seg)"
cmp -s "$T/work/new.seg" "$PG/pg_wal/$seg" || fail "$seg from the archive differs from pg_wal's"
ok "$seg from the archive is byte-identical to pg_wal's"
[ -e "$STATUS_DIR/$seg.ready" ] || fail "$seg.ready vanished although PostgreSQL did not archive it"
ok "$seg.ready is still PostgreSQL's to rename"

# 6. Every segment of the backlog, restored from the archive: byte-identical.
bad=0
for f in "$T/walcopy"/*; do
  seg=$(basename "$f")
  rm -f "$T/work/got"
  wv_run -u postgres -- bash -c "cd '$T/work' && '$T/bin/archive-get' --socket '$SOCK' '$seg' '$T/work/got'"
  if [ "$RUN_RC" -ne 0 ] || ! cmp -s "$f" "$T/work/got"; then
    bad=$((bad + 1))
    log "MISMATCH: $seg (archive-get exit $RUN_RC)"
  fi
done
check_eq "$bad" 0 "all $n_ready backlog segments restore byte-identical to pg_wal's copies"
wv_cli verify
check_eq "$RUN_RC" 0 "walvault verify: every stored object is whole"

# 7. Metrics name the backlog.
pg_stop "$PG"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stopped cleanly"
finish
