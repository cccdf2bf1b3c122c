#!/usr/bin/env bash
# PostgreSQL archives real WAL through archive-push: pg_stat_archiver shows every segment up to
# the last switched one archived with no failure, and every archived segment still in pg_wal
# comes back byte-identical through archive-get.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
# wal_keep_size keeps the archived segments in pg_wal so they can be compared.
pg_init "$PG" "wal_keep_size = 1GB"
pg_start "$PG"

log "pgbench -i -s 3, pgbench -t 300, 6 WAL switches"
pgbench_run "$PG" -i -s 3 -q
# A config reload (SIGHUP) while PostgreSQL archives must not disturb anything.
kill -HUP "$WV_DAEMON_PID"
pgbench_run "$PG" -c 2 -t 300 -n
check_daemons_alive
ok "walvaultd survived SIGHUP under load"
last=""
for i in 1 2 3 4 5 6; do
  psql_q "$PG" "insert into pgbench_history (tid, bid, aid, delta, mtime) values ($i, 1, 1, $i, now())" >/dev/null
  last=$(pg_switch "$PG")
done
is_segment_name "$last" || fail "pg_switch_wal gave no segment name: '$last'"
log "last switched segment: $last"
wait_archived "$PG" "$last" 90

read -r archived failed _ < <(psql_q "$PG" \
  "select archived_count, failed_count, coalesce(last_archived_wal, '-') from pg_stat_archiver" | tr '|' ' ')
assert_eq "$failed" 0 "pg_stat_archiver.failed_count is 0"
first=000000010000000000000001
expected=$(seg_range "$first" "$last" | wc -l)
[ "$expected" -ge 7 ] || fail "expected at least 7 segments from pgbench and the switches, got $expected up to $last"
if [ "$archived" -ge "$expected" ]; then
  ok "pg_stat_archiver.archived_count $archived >= $expected segments $first..$last"
else
  fail "pg_stat_archiver.archived_count $archived < $expected segments $first..$last"
fi

# Nothing up to $last is still waiting: no .ready file for it in archive_status.
pending=$(find "$PG/pg_wal/archive_status" -name '*.ready' -printf '%f\n' | awk -v l="$last" 'substr($0, 1, 24) <= l')
assert_eq "$pending" "" "no .ready file left for segments up to $last"

# Every segment from the first to the last switched one is in the archive, and every one still
# in pg_wal is identical to what archive-get returns.
compared=0 missing=0
for s in $(seg_range "$first" "$last"); do
  if [ -f "$PG/pg_wal/$s" ]; then
    if wv_get_cmp "$s" "$PG/pg_wal/$s"; then compared=$((compared + 1)); else soft_fail "segment $s differs or is missing"; fi
  else
    wv_get "$s" "$T/work/check.$s"
    rm -f "$T/work/check.$s"
    if [ "$RUN_RC" -ne 0 ]; then soft_fail "archive-get $s (no longer in pg_wal) exited $RUN_RC: $RUN_ERR"; missing=$((missing + 1)); fi
  fi
done
[ "$compared" -ge 7 ] || fail "only $compared segments in pg_wal came back identical (expected at least 7)"
ok "$compared archived segments came back byte-identical via archive-get"
assert_eq "$missing" 0 "every segment $first..$last is in the archive"

# A segment that was never archived (the current one) is "not in the archive": exit 1.
cur=$(psql_q "$PG" "select pg_walfile_name(pg_current_wal_lsn())")
wv_get "$(seg_next "$cur")" "$T/work/notthere"
assert_rc 1 "archive-get of a segment never archived"
[ ! -e "$T/work/notthere" ] || fail "archive-get wrote $T/work/notthere for a missing segment"
ok "no file written for a missing segment"

pg_stop "$PG"
daemon_stop
assert_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM"
finish
