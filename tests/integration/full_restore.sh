#!/usr/bin/env bash
# Full restore: a base backup taken with no WAL (-X none), more writes, the cluster destroyed;
# the backup restored with restore_command = archive-get recovers everything from the archive.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"

pgbench_run "$PG" -i -s 2 -q
pg_basebackup_to "$PG" "$T/backup"
[ -z "$(find "$T/backup/pg_wal" -type f 2>/dev/null)" ] ||
  fail "the base backup unexpectedly contains WAL: $(find "$T/backup/pg_wal" -type f | head -n 3 | tr '\n' ' ')"
ok "base backup holds no WAL: the archive must supply all of it"

log "more writes after the backup"
pgbench_run "$PG" -c 2 -t 1500 -n
psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(1, 100000) g" >/dev/null
psql_q "$PG" "update t set payload = 'changed' where id % 7 = 0" >/dev/null

SUM_SQL="select md5(string_agg(aid || ':' || abalance, ',' order by aid)) from pgbench_accounts
  union all select md5(string_agg(id || ':' || payload, ',' order by id)) from t
  union all select count(*)::text from pgbench_history"
before=$(psql_q "$PG" "$SUM_SQL" | tr '\n' ' ')
log "checksums before: $before"

last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 90
pg_stop "$PG" immediate
rm -rf "$PG"
ok "original cluster destroyed"

R="$T/restored"
pg_restore_setup "$T/backup" "$R"
pg_start "$R"
wait_recovery_done "$R" 120
after=$(psql_q "$R" "$SUM_SQL" | tr '\n' ' ')
assert_eq "$after" "$before" "restored table contents identical (md5 of pgbench_accounts, t, count of history)"

logf=$(pg_logfile "$R")
grep -q "restored log file \"$last\" from archive" "$logf" ||
  fail "the restored cluster did not replay $last from the archive (no 'restored log file' line)"
ok "the restored cluster replayed up to $last from the archive"
n=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$logf" || true)
[ "$n" -ge 2 ] || fail "only $n segments restored from the archive"
ok "$n segments restored via archive-get"
tl=$(psql_q "$R" "select timeline_id from pg_control_checkpoint()")
assert_eq "$tl" 2 "the restored cluster promoted to timeline 2"

pg_stop "$R"
daemon_stop
finish
