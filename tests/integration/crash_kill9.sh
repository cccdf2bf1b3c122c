#!/usr/bin/env bash
# Crash safety: walvaultd is killed with SIGKILL 4 times at random moments while pgbench runs
# and WAL switches stream segments through archive-push. PostgreSQL retries what failed; at the
# end every segment from the first to pg_stat_archiver's last_archived_wal comes back through
# archive-get bit-identical to its copy in pg_wal. Nothing acknowledged may be lost or torn.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

LOAD_SECS=${LOAD_SECS:-40}
KILLS=${KILLS:-4}

daemon_start
PG="$T/pg"
# wal_keep_size keeps every segment in pg_wal for the comparison at the end.
pg_init "$PG" "wal_keep_size = 3GB" "max_wal_size = 4GB" "checkpoint_timeout = 30min"
pg_start "$PG"
pgbench_run "$PG" -i -s 2 -q

log "load: pgbench -c 2 -T $LOAD_SECS and pg_switch_wal() every 0.7 s; $KILLS SIGKILLs of walvaultd"
runuser -u postgres -- "$PGBIN/pgbench" -h "$T/pgsock" -p "${WV_PG_PORT[$PG]}" -n -c 2 -T "$LOAD_SECS" postgres \
  >"$T/logs/pgbench.load.out" 2>&1 &
load_pid=$!
bg_register "$load_pid"
(
  trap - ERR EXIT
  end=$((SECONDS + LOAD_SECS))
  while [ "$SECONDS" -lt "$end" ]; do
    psql_try "$PG" "select pg_switch_wal()" >/dev/null || true
    sleep 0.7
  done
) &
switch_pid=$!
bg_register "$switch_pid"

kills=0
for ((i = 1; i <= KILLS; i++)); do
  sleep "$((2 + RANDOM % 5)).$((RANDOM % 10))"
  before=$(psql_q "$PG" "select archived_count from pg_stat_archiver")
  daemon_kill9
  kills=$((kills + 1))
  sleep "0.$((2 + RANDOM % 8))"
  [ $((RANDOM % 2)) -eq 0 ] && sleep 1
  daemon_start
  log "kill $i done (archived_count was $before)"
done
assert_eq "$kills" "$KILLS" "walvaultd killed with SIGKILL and restarted $KILLS times under load"

wait_for $((LOAD_SECS + 60)) "pgbench to finish" bash -c "! kill -0 $load_pid 2>/dev/null"
load_rc=0
wait "$load_pid" || load_rc=$?
assert_eq "$load_rc" 0 "pgbench finished without error"
wait "$switch_pid" 2>/dev/null || true

last=$(pg_switch "$PG")
log "load done; last switched segment $last; waiting for the archiver to catch up"
wait_archived "$PG" "$last" 150
read -r archived failed last_archived < <(psql_q "$PG" \
  "select archived_count, failed_count, coalesce(last_archived_wal, '-') from pg_stat_archiver" | tr '|' ' ')
log "pg_stat_archiver: archived_count $archived, failed_count $failed (failures are expected around kills), last $last_archived"

first=000000010000000000000001
end=${last_archived:0:24}
n=$(seg_range "$first" "$end" | wc -l)
[ "$n" -ge 20 ] || fail "only $n segments produced under load; expected at least 20"
compared=0
for s in $(seg_range "$first" "$end"); do
  [ -f "$PG/pg_wal/$s" ] || { soft_fail "segment $s no longer in pg_wal (wal_keep_size too small?)"; continue; }
  if wv_get_cmp "$s" "$PG/pg_wal/$s"; then
    compared=$((compared + 1))
  else
    soft_fail "segment $s not restored bit-identical after the crashes"
  fi
done
assert_eq "$compared" "$n" "all $n segments $first..$end came back bit-identical via archive-get"

# The daemon restarted last still shuts down cleanly.
pg_stop "$PG"
daemon_stop
assert_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM after the crashes"
finish
