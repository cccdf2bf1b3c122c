#!/usr/bin/env bash
# Point-in-time recovery: rows written after the base backup, then an accidental DELETE; a
# restore with recovery_target_time just before the DELETE brings every row back.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"

psql_q "$PG" "create table t (id int primary key, payload text, at timestamptz default clock_timestamp())" >/dev/null
psql_q "$PG" "insert into t (id, payload) select g, 'before backup ' || g from generate_series(1, 1000) g" >/dev/null
pg_basebackup_to "$PG" "$T/backup"

# Rows that exist only in the WAL after the backup, across a segment switch.
psql_q "$PG" "insert into t (id, payload) select g, 'after backup ' || g from generate_series(1001, 1500) g" >/dev/null
pg_switch "$PG" >/dev/null
psql_q "$PG" "insert into t (id, payload) select g, 'after switch ' || g from generate_series(1501, 2000) g" >/dev/null
want=$(psql_q "$PG" "select count(*) || ' ' || md5(string_agg(id || payload, ',' order by id)) from t")
target=$(psql_q "$PG" "select clock_timestamp()")
log "target time: $target (rows: $want)"
sleep 1
psql_q "$PG" "delete from t" >/dev/null
gone=$(psql_q "$PG" "select count(*) from t")
assert_eq "$gone" 0 "the accidental DELETE removed every row"
# Something after the DELETE too, so the DELETE's commit is not the end of the WAL.
psql_q "$PG" "create table after_delete (x int); insert into after_delete values (1)" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 90
pg_stop "$PG" immediate

R="$T/pitr"
pg_restore_setup "$T/backup" "$R" \
  "recovery_target_time = '$target'" \
  "recovery_target_action = 'promote'"
pg_start "$R"
wait_recovery_done "$R" 120
got=$(psql_q "$R" "select count(*) || ' ' || md5(string_agg(id || payload, ',' order by id)) from t")
assert_eq "$got" "$want" "every row is back after PITR (count and md5)"
n=$(psql_q "$R" "select count(*) from pg_class where relname = 'after_delete'")
assert_eq "$n" 0 "recovery stopped before the DELETE (later table absent)"
grep -q "recovery stopping before commit of transaction" "$(pg_logfile "$R")" ||
  fail "PostgreSQL did not log 'recovery stopping before commit' (target not reached?)"
ok "PostgreSQL stopped at the recovery target"

pg_stop "$R"
daemon_stop
finish
