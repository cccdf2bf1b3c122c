#!/usr/bin/env bash
# walvault drill with a real PostgreSQL 15: a base backup and WAL archived through walvaultd; a
# drill restores them into a scratch directory, starts PostgreSQL there, waits for recovery,
# runs pg_amcheck, counts every table's rows, runs a SQL file whose output must match, and
# reports an RTO within a few seconds of the wall time measured here and an RPO of 0 (every
# archived commit replayed); the scratch directory is gone afterwards and walvaultd shows the
# result in status. A non-empty --workdir is refused untouched; a later drill compares the SQL
# output with the last passing one's (a drill without SQL in between is no reference) and
# fails when it differs; with a segment in the middle
# of the WAL damaged, the drill fails and names that segment. SIGTERM during a drill stops its
# PostgreSQL and removes its directory.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
command -v jq >/dev/null || { echo "$WV_TEST_NAME: jq is needed" >&2; exit 2; }

PG="$T/pg"
pg_init "$PG"
PORT=${WV_PG_PORT[$PG]}
daemon_start --allow-uid postgres,root --pg-conninfo "host=$T/pgsock port=$PORT user=postgres" --backup-chunk-size 1MiB
pg_start "$PG"
make_rows "$PG" 20000
wv_cli -u root --json backup --label drill
assert_rc 0 "walvault backup"
BACKUP=$(jq_out '.id')
SEGS=()
for i in 1 2 3; do
  psql_q "$PG" "insert into t select g, 'after backup $i ' || g from generate_series(20000 + $i * 1000 + 1, 20000 + $i * 1000 + 1000) g" >/dev/null
  SEGS+=("$(pg_switch "$PG")")
done
wait_archived "$PG" "${SEGS[2]}" 60
echo "select count(*), sum(id) from t;" >"$T/check.sql"
psql_q "$PG" "select count(*) || '|' || sum(id) from t" >"$T/expect.txt"
ok "three segments after the backup: ${SEGS[*]}; expected check output $(cat "$T/expect.txt")"

log "--- a drill that passes"
wv_cli -u root --json drill --expect "$T/expect.txt"
check_rc 2 "--expect without --check-sql is a usage error"
start=$(date +%s.%N)
wv_cli -u root --json drill --workdir "$T/drill" --check-sql "$T/check.sql" --expect "$T/expect.txt"
wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
assert_rc 0 "walvault drill ($(jq_out -c '{ok, reason}'))"
check_eq "$(jq_out '.ok')" true "the drill passed"
check_eq "$(jq_out '.backup')" "$BACKUP" "it restored the newest backup"
rto=$(jq_out '.rto_seconds')
check_eq "$(awk -v r="$rto" -v w="$wall" 'BEGIN { print (r <= w + 0.5 && w - r < 5) ? 1 : 0 }')" 1 \
  "the RTO it reports ($rto s) is within a few seconds of the wall time measured here ($wall s)"
check_eq "$(jq_out '.rpo_seconds < 1')" true "RPO $(jq_out '.rpo_seconds') s: every archived commit was replayed (newest $(jq_out '.newest_replayed_commit'))"
check_eq "$(jq_out '.wal_segments_replayed >= 3')" true "$(jq_out '.wal_segments_replayed') WAL files restored from the archive"
check_eq "$(jq_out '.databases[] | select(.name == "postgres") | .rows >= 23000')" true \
  "every table's rows counted ($(jq_out -c '.databases[] | select(.name == "postgres")'))"
check_eq "$(jq_out '.amcheck')" passed "pg_amcheck passed"
check_eq "$(jq_out '.check_sql.compared_with')" "$T/expect.txt" "the SQL file's output matched --expect"
[ -e "$T/drill" ] && soft_fail "the scratch directory $T/drill is still there" || ok "the scratch directory is removed"
wv_cli_json status
check_eq "$(jq_out -c '.drill.last | [.ok, .backup, (.rto_seconds > 0)]')" "[true,\"$BACKUP\",true]" "status shows the drill (ok, backup, RTO)"
check_eq "$(jq_out '.drill.last_success.finished_at == .drill.last.finished_at')" true "it is the last successful one too"

log "--- a --workdir that is not empty is refused untouched"
mkdir -p "$T/busy" && echo keep >"$T/busy/something"
wv_cli -u root drill --workdir "$T/busy"
check_rc 1 "drill into a non-empty --workdir"
check_contains "is not empty" "$RUN_ERR" "the refusal says why"
check_eq "$(cat "$T/busy/something")" keep "its content is untouched"

log "--- the SQL output is compared with the last passing drill's"
wv_cli -u root --json drill --no-amcheck
assert_rc 0 "a drill without --check-sql ($(jq_out -c '{ok, reason}'))"
wv_cli -u root --json drill --check-sql "$T/check.sql" --no-amcheck
assert_rc 0 "a drill with --check-sql after one without ($(jq_out -c '{ok, reason}'))"
check_eq "$(jq_out '.check_sql.compared_with')" null "nothing to compare with: its output becomes the reference"
wv_cli -u root --json drill --check-sql "$T/check.sql" --no-amcheck
assert_rc 0 "another drill with the same data ($(jq_out -c '{ok, reason}'))"
check_contains "the last drill" "$(jq_out '.check_sql.compared_with')" "compared with the last passing drill"
psql_q "$PG" "insert into t values (999999, 'one more row')" >/dev/null
wait_archived "$PG" "$(pg_switch "$PG")" 60
wv_cli -u root --json drill --check-sql "$T/check.sql" --no-amcheck
check_rc 1 "a drill whose SQL output changed"
check_contains "differs from the last drill's" "$(jq_out '.reason')" "it says the output differs ($(jq_out '.reason' | cut -c1-120))"

log "--- SIGTERM during a drill: it stops its PostgreSQL and removes its directory"
echo "select pg_sleep(4);" >"$T/slow.sql"
"$T/bin/walvault" --socket "$SOCK" --json drill --workdir "$T/interrupted" --check-sql "$T/slow.sql" --no-amcheck \
  >"$T/work/interrupted.json" 2>"$T/work/interrupted.err" &
DRILL=$!
running_drill() { pgrep -f "postgres -D $T/interrupted/pgdata" >/dev/null || pgrep -f "$T/interrupted/pgdata" >/dev/null; }
wait_for 30 "the drill's PostgreSQL to run" running_drill
sleep 1
kill -TERM "$DRILL"
rc=0
wait "$DRILL" || rc=$?
check_eq "$rc" 1 "the interrupted drill exits 1"
check_contains "interrupted" "$(jq -r '.reason' "$T/work/interrupted.json")" "its report says it was interrupted"
running_drill && soft_fail "the drill's PostgreSQL still runs after SIGTERM" || ok "its PostgreSQL is stopped"
[ -e "$T/interrupted" ] && soft_fail "$T/interrupted is still there" || ok "its scratch directory is removed"

log "--- a damaged segment in the middle of the WAL"
MID=${SEGS[1]}
OBJ=$(find "$REPO/wal" -name "$MID" -type f)
[ -n "$OBJ" ] || fail "no stored object for $MID"
size=$(stat -c %s "$OBJ")
printf '\x55\xaa\x55\xaa' | dd of="$OBJ" bs=1 seek=$((size / 2)) conv=notrunc status=none
ok "flipped 4 bytes in the middle of $OBJ"
wv_cli -u root --json drill --no-amcheck --recovery-timeout 120
check_rc 1 "the drill fails"
check_eq "$(jq_out '.ok')" false "its report says so"
check_contains "$MID" "$(jq_out '.reason')" "and names the damaged segment: $(jq_out '.reason' | cut -c1-300)"
wv_cli_json status
check_eq "$(jq_out '.drill.last.ok')" false "status shows the failed drill"
check_eq "$(jq_out '.drill.last_success.ok')" true "and keeps the last successful one"

pg_stop "$PG"
daemon_stop
finish
