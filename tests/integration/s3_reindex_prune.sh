#!/usr/bin/env bash
# reindex and prune on an S3 repository holding more than 1,000 objects (moto_server on
# loopback, real PostgreSQL 15 with 1 MiB WAL segments so a thousand real segments are cheap):
#   1. base backup B1, then 1,100 segments archived by PostgreSQL's archive_command;
#   2. with the index deleted, walvaultd restarts and `walvault reindex` rebuilds it by listing
#      the bucket past 1,000 keys (continuation tokens in the server's log); `list` is the same
#      before and after, and archive-get serves from the rebuilt index;
#   3. base backup B2; `walvault prune` (keep one backup, no extra window) deletes B1 and every
#      segment before B2's start through the index: more than 1,000 DELETEs. The AWS CLI shows
#      the bucket holds exactly what the rules keep; `walvault check` passes.
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
for tool in jq moto_server aws python3 curl; do
  command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed" >&2; exit 2; }
done
SEGMENTS=${SEGMENTS:-1100}

s3_start
bucket_keys() { aws --endpoint-url "$S3_ENDPOINT" s3 ls --recursive s3://walvault/big/ | awk '{ print $4 }' | sed 's|^big/||' | sort; }

PG="$T/pg"
WV_INITDB_ARGS=--wal-segsize=1 pg_init "$PG"
PORT=${WV_PG_PORT[$PG]}
WVD_ARGS=(--repo s3://walvault/big --allow-uid "postgres,root" --s3-endpoint "$S3_ENDPOINT" --s3-uri-style path
  --spool "$T/spool" --pg-conninfo "host=$T/pgsock port=$PORT user=postgres" --prune-interval 0
  --retention-backups 1 --retention-backup-days 0)
# While the backups are taken, a window of ten years: the prune walvaultd runs by itself when a
# .backup file arrives keeps everything, so the test's prune does all the work.
daemon_start "${WVD_ARGS[@]}" --retention-wal-days 3650
pg_start "$PG"
psql_q "$PG" "create table t as select g as id, md5(g::text) as payload from generate_series(1, 10000) g" >/dev/null

log "--- 1. B1, then $SEGMENTS segments"
wv_cli -u root --json backup --label b1
assert_rc 0 "backup B1"
B1=$(jq_out .id)
first=$(pg_switch "$PG")
# Each round writes a little WAL (a non-transactional message) and ends the segment.
psql_q "$PG" "do \$\$ begin for i in 1..$SEGMENTS loop perform pg_logical_emit_message(false, 'walvault', 'segment ' || i); perform pg_switch_wal(); end loop; end \$\$" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 600
check_eq "$(psql_q "$PG" "select failed_count from pg_stat_archiver")" 0 "PostgreSQL archived $first .. $last into the bucket without a failure"
wv_cli_json list
before_list=$RUN_OUT
n_segments=$(jq_out '.segments | length')
[ "$n_segments" -gt 1000 ] || fail "only $n_segments segments are listed"
n_objects=$(bucket_keys | wc -l)
[ "$n_objects" -gt 1000 ] || fail "the bucket holds only $n_objects objects"
ok "the bucket holds $n_objects objects ($n_segments segments)"

log "--- 2. reindex past 1,000 keys"
daemon_stop
rm -rf "$T/spool"
daemon_start "${WVD_ARGS[@]}" --retention-wal-days 3650
log_lines_before=$(wc -l <"$T/logs/moto.log")
wv_cli_json reindex
assert_rc 0 "reindex --json"
check_eq "$(jq_out .unreadable)" 0 "reindex: nothing unreadable"
[ "$(jq_out .indexed)" -gt 1000 ] || fail "reindex indexed $(jq_out .indexed) objects"
ok "reindex indexed $(jq_out .indexed) objects"
check_match 'GET /walvault\?.*continuation-token=' "$(sed -n "$((log_lines_before + 1)),\$p" "$T/logs/moto.log" | grep 'GET /walvault?')" \
  "reindex listed the bucket in pages (continuation-token)"
wv_cli_json list
check_eq "$RUN_OUT" "$before_list" "'list --json' after reindex is what it was before the index was deleted"
mid=$(jq_out '.segments[500].name')
wv_get "$mid" "$T/work/$mid"
check_rc 0 "archive-get $mid from the rebuilt index"

log "--- 3. B2, then prune through the index"
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(10001, 20000) g" >/dev/null
wv_cli -u root --json backup --label b2
assert_rc 0 "backup B2"
B2=$(jq_out .id)
daemon_stop
daemon_start "${WVD_ARGS[@]}" --retention-wal-days 0
wv_cli_json prune --dry-run
want_remove=$(jq_out '.remove[].name' | sort)
wv_cli_json prune
assert_rc 0 "prune --json"
check_eq "$(jq_out .error)" null "prune: no error"
removed=$(jq_out .removed)
[ "$removed" -gt 1000 ] || fail "prune removed only $removed objects"
ok "prune removed $removed objects"
check_eq "$(jq_out '.remove[].name' | sort)" "$want_remove" "prune removed what the dry run listed"
keys=$(bucket_keys)
check_eq "$(printf '%s\n' "$keys" | grep -c "^backup/$B1/" || true)" 0 "the bucket holds nothing of B1 ($B1)"
check_contains "backup/$B2/backup.json" "$keys" "B2 ($B2) is still there"
wal_left=$(printf '%s\n' "$keys" | grep -E '^wal/[0-9A-F]{16}/[0-9A-F]{24}$' | sed 's|.*/||')
gone=$(comm -12 <(printf '%s\n' "$wal_left" | sort) <(printf '%s\n' "$want_remove"))
check_eq "$gone" "" "no removed segment is left in the bucket (aws s3 ls)"
oldest_left=$(printf '%s\n' "$wal_left" | sort | head -n 1)
log "oldest segment left in the bucket: $oldest_left"
wv_cli check
check_rc 0 "walvault check passes after the prune"
pg_stop "$PG"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stops cleanly"
finish
