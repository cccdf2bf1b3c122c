#!/usr/bin/env bash
# Two repositories at once (repo given twice: a local directory, then a bucket on a real
# S3-protocol server on loopback, moto_server, started and stopped here), with real
# PostgreSQL 15:
#   - archive_command and walvault backup store every object in both; check says so per
#     repository;
#   - the local repository is deleted (a lost disk) and walvaultd restarts: it serves from the
#     bucket, closes the local one for writes (archive-push fails naming it and 'walvault
#     sync'), status and check say so, and walvault restore --target-time brings every row
#     back from the bucket alone;
#   - walvault sync copies the bucket into the new local repository, proving each copy; check
#     passes again and pushes are stored in both;
#   - the bucket goes away: a get of an archived segment is served from the local repository,
#     a name never archived is an error (126), never "not there", and a push fails.
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
command -v jq >/dev/null || { echo "$WV_TEST_NAME: jq is needed" >&2; exit 2; }
s3_start

LOCAL="$T/local-repo"
BUCKET=s3://walvault/cluster1
PG="$T/pg"
pg_init "$PG"
PRIMARY_PORT=${WV_PG_PORT[$PG]}
# daemon_start takes the first --repo; the second goes through to walvaultd after it.
DAEMON_ARGS=(--repo "$LOCAL" --allow-uid postgres,root --s3-endpoint "$S3_ENDPOINT" --repo "$BUCKET" --s3-uri-style path
  --spool "$T/spool" --pg-conninfo "host=$T/pgsock port=$PRIMARY_PORT user=postgres" --backup-chunk-size 16MiB)
daemon_start "${DAEMON_ARGS[@]}"
pg_start "$PG"
check_contains "serving '$LOCAL + $BUCKET ($S3_ENDPOINT)'" "$(cat "$T/logs/walvaultd.1.log")" \
  "walvaultd names both repositories, in order"

make_rows "$PG" 100000

log "--- archive and back up into both"
wv_cli -u root --json backup --label two
assert_rc 0 "walvault backup into both repositories"
B1=$(jq_out '.id')
accidental_delete "$PG"
local_keys() { (cd "$LOCAL" && find wal backup -type f ! -name '*.tmp.*' | sort); }
bucket_keys() { aws_s3 ls --recursive "$BUCKET/" | awk '{print $4}' | sed 's|^cluster1/||' | grep -E '^(wal|backup)/' | sort; }
local_list=$(local_keys)
bucket_list=$(bucket_keys)
check_eq "$(printf '%s\n' "$local_list" | wc -l)" "$(printf '%s\n' "$bucket_list" | wc -l)" \
  "the same number of objects in both ($(printf '%s\n' "$local_list" | wc -l))"
check_eq "$local_list" "$bucket_list" "the same keys in the directory and in the bucket (aws s3 ls)"
check_contains "backup/$B1/backup.json" "$bucket_list" "backup $B1 is in the bucket"
aws_s3 cp "$BUCKET/wal/${last:0:16}/$last" "$T/work/from-bucket" >/dev/null
check_eq "$(cmp -s "$T/work/from-bucket" "$LOCAL/wal/${last:0:16}/$last" && echo same)" same \
  "$last is stored as the same bytes in both (encoded once)"
wv_cli_json check
check_rc 0 "walvault check passes"
check_eq "$(jq_out '[.checks[] | select(.name == "repository" and .ok)] | length')" 2 "... with a passing line for each repository"

log "--- the local repository is lost; walvaultd restarts"
pg_stop "$PG"
daemon_stop
rm -rf "$LOCAL"
daemon_start "${DAEMON_ARGS[@]}"
check_contains "has no walvault.repo (identity)" "$(cat "$T/logs/walvaultd.2.log")" \
  "walvaultd logs that the local repository lost its identity"
wv_cli_json status
check_eq "$(jq_out '.repositories[0].writable')" false "status: the local repository is closed for writes"
check_eq "$(jq_out '.repositories[1].writable')" true "status: the bucket is writable"
wv_cli check
check_rc 1 "walvault check fails while the local repository lags"
check_contains "repository '$LOCAL' lags" "$RUN_OUT" "... naming it"
check_contains "walvault sync" "$RUN_OUT" "... and what to run"
install -d -o postgres "$T/work/pushdir"
aws_s3 cp "$BUCKET/wal/${last:0:16}/$last" "$T/work/stored-object" >/dev/null
wv_get "$last" "$T/work/$last"
check_rc 0 "archive-get of $last is served from the bucket"
cp "$T/work/$last" "$T/work/pushdir/$last" && chown postgres "$T/work/pushdir/$last"
wv_push "$T/work/pushdir/$last"
check_rc 1 "archive-push of $last while the local repository is closed exits 1 (not in every repository)"
check_contains "walvault sync" "$RUN_ERR" "... naming the closed repository and the way out"
check_eq "$(find "$LOCAL" -type f | wc -l)" 0 "... and writes nothing into the closed repository"

log "--- restore --target-time from the bucket alone"
R="$T/work/restored"
wv_cli -u root --json restore --pgdata "$R" --target-time "$target"
assert_rc 0 "restore --target-time '$target' with the local repository gone"
check_eq "$(jq_out '.backup')" "$B1" "restore used backup $B1 (from the bucket)"
pg_adopt "$R" "archive_mode = off"
pg_start "$R"
wait_recovery_done "$R" 120
assert_eq "$(psql_q "$R" "$ROWS")" "$before_delete" "PITR from the bucket: every row is back (count and md5 as before the DELETE)"
pg_stop "$R"

log "--- walvault sync rebuilds the local repository"
bucket_list=$(bucket_keys)
wv_cli_json sync
check_rc 0 "walvault sync"
check_eq "$(jq_out '.repositories[0].copied')" "$(printf '%s\n' "$bucket_list" | wc -l)" \
  "sync copied every object the bucket holds into the local repository ($(jq_out '.repositories[0].copied'))"
check_eq "$(local_keys)" "$bucket_list" "... the same keys in both again"
check_eq "$(jq_out '.repositories[0].identity_written')" true "... and gave it the identity last"
check_eq "$(cmp -s "$T/work/stored-object" "$LOCAL/wal/${last:0:16}/$last" && echo same)" same \
  "$last in the rebuilt repository is the bucket's bytes"
wv_cli check
check_rc 0 "walvault check passes again after sync"
wv_push "$T/work/pushdir/$last"
check_rc 0 "archive-push of $last again: in both repositories now, 0"

log "--- the bucket goes away"
bg_stop "$MOTO"
wv_get "$last" "$T/work/local-$last"
check_rc 0 "bucket down: archive-get of $last is served from the local repository"
wv_get 0000000100000000000000F0 "$T/work/down-F0"
check_rc 126 "bucket down: a name never archived is 126 (absent here, unknown there: never 'not there')"
wv_push "$T/work/pushdir/$last"
check_eq "$RUN_RC" 1 "bucket down: archive-push of $last exits 1 (PostgreSQL keeps the segment and retries)"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stops cleanly"
finish
