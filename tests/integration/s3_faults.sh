#!/usr/bin/env bash
# An S3 repository behind a fault-injecting proxy (tests/s3/fault_proxy.py, ours, on loopback)
# in front of a real S3-protocol server (moto_server), with real PostgreSQL 15:
#   1. throttling: every 3rd request is answered 503 SlowDown; walvaultd retries and archiving
#      goes on (PostgreSQL never sees a failed archive_command);
#   2. kill -9 of walvaultd in the middle of a multipart upload (a base-backup chunk) leaves no
#      visible object: the chunk never appears in a listing, only an open upload that the sweep
#      aborts once it is old;
#   3. a store answering 500 to every read: archive-get exits 126 during archive recovery (an
#      archived segment, an unknown one, a .history probe) and 1 in standby mode;
#   4. a store that accepts connections and never answers (s3-timeout 2 here): archive-push
#      exits 1 and archive-get 126 within the documented bound, about 5 x s3-timeout
#      (docs/configuration.md); once the store answers again, so does walvaultd.
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
for tool in jq moto_server aws python3 curl; do
  command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed" >&2; exit 2; }
done

pick_port S3_PORT
pick_port PROXY_PORT
S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
PROXY="http://127.0.0.1:$PROXY_PORT"
moto_server -H 127.0.0.1 -p "$S3_PORT" >"$T/logs/moto.log" 2>&1 &
bg_register $!
python3 "$WV_REPO_ROOT/tests/s3/fault_proxy.py" --listen "$PROXY_PORT" --upstream "$S3_ENDPOINT" 2>"$T/logs/proxy.log" &
bg_register $!
moto_up() { curl -s -o /dev/null "$S3_ENDPOINT/"; }
proxy_up() { curl -s -o /dev/null "$PROXY/__proxy__/mode"; }
wait_for 60 "moto_server on $S3_ENDPOINT" moto_up
wait_for 30 "fault proxy on $PROXY" proxy_up
mapfile -t KEYS < <(python3 "$WV_REPO_ROOT/tests/s3/moto_bootstrap.py" "$S3_ENDPOINT" walvault)
[ "${#KEYS[@]}" -eq 2 ] || fail "tests/s3/moto_bootstrap.py did not print a key and a secret"
export AWS_ACCESS_KEY_ID=${KEYS[0]} AWS_SECRET_ACCESS_KEY=${KEYS[1]} AWS_DEFAULT_REGION=us-east-1
# The AWS CLI talks to moto directly: what it lists is what the store holds.
bucket_listing() { aws --endpoint-url "$S3_ENDPOINT" s3 ls --recursive "s3://walvault/faults/$1" || true; }
proxy_set() { curl -sf -X PUT --data "$2" "$PROXY/__proxy__/$1" >/dev/null || fail "fault proxy: cannot set $1 to $2"; }
proxy_stat() { curl -sf "$PROXY/__proxy__/stats" | jq -r ".$1"; }
under() { awk -v s="$1" -v b="$2" 'BEGIN { print (s < b) ? "yes" : "no" }'; }

PG="$T/pg"
pg_init "$PG"
PORT=${WV_PG_PORT[$PG]}
WVD_ARGS=(--repo s3://walvault/faults --allow-uid "postgres,root" --s3-endpoint "$PROXY" --s3-uri-style path
  --spool "$T/spool" --s3-timeout 2 --pg-conninfo "host=$T/pgsock port=$PORT user=postgres"
  --backup-chunk-size 16MiB --compress none)
daemon_start "${WVD_ARGS[@]}"
pg_start "$PG"
psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null

log "--- 1. throttling: every 3rd request is 503 SlowDown"
proxy_set mode slowdown:3
segments=()
for i in 1 2 3 4 5 6; do
  psql_q "$PG" "insert into t select g, md5(g::text) from generate_series($((i * 1000)), $((i * 1000 + 999))) g" >/dev/null
  segments+=("$(pg_switch "$PG")")
done
wait_archived "$PG" "${segments[-1]}"
injected=$(proxy_stat injected)
[ "$injected" -gt 0 ] || fail "1: the proxy injected no SlowDown"
check_eq "$(psql_q "$PG" "select failed_count from pg_stat_archiver")" 0 \
  "1: $injected requests were answered SlowDown, and PostgreSQL saw no failed archive_command"
check_match "HTTP 503.*retry 1 of 4" "$(cat "$T/logs/walvaultd.1.log")" "1: walvaultd logged the SlowDown and retried"
listing=$(bucket_listing wal/)
for s in "${segments[@]}"; do
  check_contains "$s" "$listing" "1: $s is in the bucket"
done
proxy_set mode pass
wv_get "${segments[-1]}" "$T/work/${segments[-1]}"
check_rc 0 "1: archive-get of ${segments[-1]} stored under throttling"

log "--- 2. kill -9 in the middle of a multipart upload"
psql_q "$PG" "insert into t select g, repeat(md5(g::text), 4) from generate_series(100000, 200000) g" >/dev/null
proxy_set delay-ms 700  # each request of the chunk's upload takes a while: time to kill it mid-way
"$T/bin/walvault" --socket "$SOCK" backup --label killed >"$T/logs/backup-killed.log" 2>&1 &
BACKUP_CLIENT=$!
bg_register "$BACKUP_CLIENT"
upload_started() { grep -q 'POST /walvault/faults/backup/.*chunk-00001.tar?uploads' "$T/logs/proxy.log"; }
wait_for 60 "the first chunk's CreateMultipartUpload" upload_started
daemon_kill9  # its first part is on its way, 700 ms behind the proxy's delay
proxy_set delay-ms 0
sleep 1
check_eq "$(grep -c 'POST /walvault/faults/backup/.*chunk-00001.tar?uploadId=' "$T/logs/proxy.log" || true)" 0 "2: walvaultd was killed before it completed the upload"
check_eq "$(bucket_listing backup/ | grep -c 'chunk-' || true)" 0 "2: after kill -9 mid-upload no chunk object is visible in the bucket"
open_uploads=$(aws --endpoint-url "$S3_ENDPOINT" s3api list-multipart-uploads --bucket walvault --prefix faults/backup/ \
  --query 'length(Uploads)' --output text 2>/dev/null || echo 0)
check_eq "$([ "$open_uploads" != None ] && [ "$open_uploads" -ge 1 ] && echo yes)" yes \
  "2: the killed upload is only an open multipart upload ($open_uploads), left for the sweep (abandoned-upload age)"
wait "$BACKUP_CLIENT" 2>/dev/null || true
daemon_start "${WVD_ARGS[@]}"
wv_cli_json list --backups
check_rc 0 "2: walvaultd restarts after the kill"
check_eq "$(jq_out '[.backups[] | select(.stored != null)] | length')" 0 "2: no backup is listed as stored"
# The segment PostgreSQL is writing: valid WAL that is not archived, so pushing it has to reach
# the store (phase 4).
unarchived=$(psql_q "$PG" "select pg_walfile_name(pg_current_wal_lsn())")
pg_stop "$PG"
install -d -o postgres "$T/work/pushdir"
cp "$PG/pg_wal/$unarchived" "$T/work/pushdir/$unarchived" || fail "no $unarchived in pg_wal"
chown postgres "$T/work/pushdir/$unarchived"

log "--- 3. the store answers 500 to every read"
last=${segments[-1]}
proxy_set mode fail-reads
wv_get "$last" "$T/work/r500-$last"
check_rc 126 "3: archive-get of the archived $last exits 126 (archive recovery stops)"
check_contains "answered HTTP 500" "$RUN_ERR" "3: ... naming the store's answer"
wv_get 0000000100000000000000F0 "$T/work/r500-F0"
check_rc 126 "3: a name never archived is 126 too (absence cannot be proven)"
wv_get 00000009.history "$T/work/r500-history"
check_rc 126 "3: the .history probe is 126, so no new timeline is picked blindly"
install -d -o postgres "$T/work/standby" && touch "$T/work/standby/standby.signal"
wv_get -C "$T/work/standby" "$last" "$T/work/standby/$last"
check_rc 1 "3: standby mode: archive-get exits 1 (the standby keeps waiting)"
[ ! -e "$T/work/r500-$last" ] || fail "3: a failed archive-get left $T/work/r500-$last behind"

log "--- 4. the store accepts connections and never answers"
proxy_set mode stall
wv_get "$last" "$T/work/stall-$last"
check_rc 126 "4: archive-get against a stalled store exits 126"
check_eq "$(under "$RUN_SECS" 16)" yes "4: ... after ${RUN_SECS}s (bound: about 5 x s3-timeout = 10 s)"
check_contains "unable to" "$RUN_ERR" "4: ... saying what failed"
wv_get -C "$T/work/standby" "$last" "$T/work/standby/stall-$last"
check_rc 1 "4: standby mode: exit 1 (${RUN_SECS}s)"
wv_push "$T/work/pushdir/$unarchived"
check_rc 1 "4: archive-push against a stalled store exits 1, so PostgreSQL keeps the segment and retries"
check_eq "$(under "$RUN_SECS" 16)" yes "4: ... after ${RUN_SECS}s"
[ "$(proxy_stat stalled)" -ge 3 ] || fail "4: the proxy saw fewer stalled requests than expected: $(proxy_stat stalled)"
proxy_set mode pass
wv_get "$last" "$T/work/again-$last"
check_rc 0 "4: the store answers again, and so does archive-get"
cmp -s "$T/work/$last" "$T/work/again-$last" || fail "4: $last read back differs"
wv_push "$T/work/pushdir/$unarchived"
check_rc 0 "4: ... and archive-push of $unarchived succeeds"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stops cleanly"
check_eq "$(cat "$T"/logs/walvaultd.*.log | grep -c -- "$AWS_SECRET_ACCESS_KEY" || true)" 0 "the secret is in no log"
finish
