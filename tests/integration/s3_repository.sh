#!/usr/bin/env bash
# A repository in S3 (repo = s3://bucket/prefix), against a real S3-protocol server on
# loopback (moto_server, started and stopped here), with real PostgreSQL 15:
#   - archive_command pushes WAL into the bucket; the index lives in spool;
#   - walvault backup stores 16 MiB chunks (uncompressed here, so each is a multipart upload);
#   - an accidental DELETE, then walvault restore --target-time brings every row back
#     (chunks and WAL read back from the bucket);
#   - the official AWS CLI lists and downloads what walvault wrote, in the layout of
#     docs/repository-format.md;
#   - walvault check passes (continuity read from the index and a listing of the bucket);
#   - the store goes away: archive-get exits 126 in archive recovery (archived name, unknown
#     name, .history probe) and 1 in standby mode; archive-push fails: errors, never "not there".
# moto_server here does not check signatures (moto 5.2.1 miscomputes the one of a
# ListObjectsV2 whose prefix holds '/', which check and backup use); tests/unit/s3_storage_test.cpp
# runs every other request against a moto_server that checks each one.
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
command -v jq >/dev/null || { echo "$WV_TEST_NAME: jq is needed" >&2; exit 2; }
s3_start

PG="$T/pg"
pg_init "$PG"
PRIMARY_PORT=${WV_PG_PORT[$PG]}
daemon_start --repo s3://walvault/cluster1 --allow-uid postgres,root \
  --s3-endpoint "$S3_ENDPOINT" --s3-uri-style path --spool "$T/spool" \
  --pg-conninfo "host=$T/pgsock port=$PRIMARY_PORT user=postgres" --backup-chunk-size 16MiB --compress none
pg_start "$PG"
check_contains "serving 's3://walvault/cluster1 ($S3_ENDPOINT)'" "$(cat "$T/logs/walvaultd.1.log")" \
  "walvaultd names the bucket and endpoint it serves"
check_eq "$(grep -c -- "$AWS_SECRET_ACCESS_KEY" "$T/logs/walvaultd.1.log" || true)" 0 "the secret is not in walvaultd's log"

make_rows "$PG" 100000

log "--- walvault backup into the bucket"
wv_cli -u root --json backup --label s3
assert_rc 0 "walvault backup into S3"
B1=$(jq_out '.id')
check_eq "$(jq_out '.chunks >= 2 and .plain_bytes > 20000000')" true \
  "backup $B1 has several 16 MiB chunks ($(jq_out '.chunks') chunks, $(jq_out '.plain_bytes') bytes)"
# compress none: a 16 MiB chunk is stored as 16 MiB, more than one 8 MiB part.
check_match "POST /walvault/cluster1/backup/$B1/chunk-00001.tar\?uploads" "$(cat "$T/logs/moto.log")" \
  "chunk-00001 went up as a multipart upload (CreateMultipartUpload in the server's log)"
check_match "PUT /walvault/cluster1/backup/$B1/chunk-00001.tar\?partNumber=2" "$(cat "$T/logs/moto.log")" \
  "... of more than one part"
sleep 1

log "--- accidental DELETE, restore --target-time from S3"
accidental_delete "$PG"

R="$T/work/restored"
wv_cli -u root --json restore --pgdata "$R" --target-time "$target"
assert_rc 0 "restore --target-time '$target' from S3"
check_eq "$(jq_out '.backup')" "$B1" "restore used backup $B1"
pg_adopt "$R" "archive_mode = off"
pg_start "$R"
wait_recovery_done "$R" 120
assert_eq "$(psql_q "$R" "$ROWS")" "$before_delete" "PITR from S3: every row is back (count and md5 as before the DELETE)"
pg_stop "$R"

log "--- the AWS CLI reads what walvault wrote"
listing=$(aws_s3 ls --recursive s3://walvault/cluster1/)
check_contains "cluster1/walvault.repo" "$listing" "aws s3 ls: the repository's identity object (walvault.repo)"
check_match "cluster1/wal/0000000100000000/0000000100000000000000[0-9A-F]{2}" "$listing" \
  "aws s3 ls: segments under wal/<timeline+log>/ (docs/repository-format.md)"
check_contains "cluster1/backup/$B1/backup.json" "$listing" "aws s3 ls: backup $B1's description"
check_contains "cluster1/backup/$B1/chunk-00002" "$listing" "aws s3 ls: its second chunk"
aws_s3 cp s3://walvault/cluster1/walvault.repo "$T/work/identity" >/dev/null
check_contains "system-identifier=" "$(cat "$T/work/identity")" "aws s3 cp: the identity names the cluster"

wv_cli -u root check
check_rc 0 "walvault check passes on the S3 repository"
check_contains "WAL continuous" "$RUN_OUT" "... with WAL continuous"

log "--- the store goes away: errors, never \"not there\""
wv_get "$last" "$T/work/$last"
check_rc 0 "archive-get of $last while the store is up"
pg_stop "$PG"
bg_stop "$MOTO"
wv_get "$last" "$T/work/down-$last"
check_rc 126 "store down: archive-get of the archived $last exits 126 (archive recovery stops)"
check_eq "$(awk -v s="$RUN_SECS" 'BEGIN { print (s < 30) ? "yes" : "no" }')" yes "... after the bounded retries (${RUN_SECS}s)"
check_contains "unable to" "$RUN_ERR" "... saying what failed"
wv_get 0000000100000000000000F0 "$T/work/down-F0"
check_rc 126 "store down: a name never archived is 126 too (absence cannot be proven)"
wv_get 00000009.history "$T/work/down-history"
check_rc 126 "store down: the .history probe is 126, so no new timeline is picked blindly"
install -d -o postgres "$T/work/standby" && touch "$T/work/standby/standby.signal"
wv_get -C "$T/work/standby" "$last" "$T/work/standby/$last"
check_rc 1 "store down, standby mode: archive-get exits 1 (the standby keeps waiting)"
install -d -o postgres "$T/work/pushdir" && cp "$T/work/$last" "$T/work/pushdir/$last" && chown postgres "$T/work/pushdir/$last"
wv_push "$T/work/pushdir/$last"
[ "$RUN_RC" -ne 0 ] || fail "store down: archive-push of $last answered 0"
check_contains "unable to" "$RUN_ERR" "store down: archive-push exits $RUN_RC, naming the failure, so PostgreSQL keeps the segment and retries (${RUN_SECS}s)"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stops cleanly"
finish
