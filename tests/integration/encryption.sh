#!/usr/bin/env bash
# Encryption at rest with a real PostgreSQL 15: WAL and a stored base backup archived through a
# walvaultd with encryption-key-file are encrypted objects (cipher 1, the key's id in every
# head, a marker written into the database appears nowhere in the repository); walvaultd refuses
# to start with a wrong key, with no key, or with a group-readable key file; a rotation keeps old
# objects readable, `walvault rekey` moves them to the new key, archive-get exits 126 naming the
# object and key id when the key it needs is gone; after rekey the old key is not needed and a
# point-in-time restore from the encrypted repository brings every row back.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
command -v jq >/dev/null || { echo "$WV_TEST_NAME: jq is needed" >&2; exit 2; }

KEYS="$T/keys"
install -d -m 700 "$KEYS"
openssl rand -hex 32 >"$KEYS/a"
openssl rand 32 >"$KEYS/b"
chmod 600 "$KEYS/a" "$KEYS/b"
MARKER="walvault-encryption-marker-$RANDOM$RANDOM"

PG="$T/pg"
pg_init "$PG"
PORT=${WV_PG_PORT[$PG]}
DAEMON_ARGS=(--allow-uid postgres,root --pg-conninfo "host=$T/pgsock port=$PORT user=postgres" --backup-chunk-size 1MiB)
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/a"
pg_start "$PG"
ROWS="select count(*) || ' ' || md5(string_agg(id || ':' || payload, ',' order by id)) from t"

# Objects under wal/ and backup/ whose head's cipher byte (offset 13 of a version 2 head) is
# not 1, and the key ids (offset 16) of the others.
unencrypted_objects() { find "$REPO/wal" "$REPO/backup" -type f ! -name '*.tmp.*' | while read -r f; do
  [ "$(od -An -tu1 -j13 -N1 "$f" | tr -d ' ')" = 1 ] || echo "$f"; done; }
key_ids() { find "$REPO/wal" "$REPO/backup" -type f ! -name '*.tmp.*' -exec od -An -tx4 -j16 -N4 {} \; | tr -d ' ' | sort | uniq -c; }

psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
psql_q "$PG" "insert into t select g, '$MARKER ' || g from generate_series(1, 20000) g" >/dev/null
wv_cli -u root --json backup --label encrypted
assert_rc 0 "walvault backup through an encrypting walvaultd"
BACKUP=$(jq_out '.id')
psql_q "$PG" "insert into t select g, '$MARKER after ' || g from generate_series(20001, 30000) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60

check_eq "$(unencrypted_objects | head -n 3)" "" "every WAL and backup object is encrypted (cipher 1)"
check_eq "$(key_ids | wc -l)" 1 "every object carries the same key id ($(key_ids | tr -s ' '))"
KEY_A=$(key_ids | awk '{print $2}')
grep -qaF "$MARKER" "$PG"/pg_wal/0000* && ok "the marker is in PostgreSQL's own WAL (so its absence below means something)" ||
  soft_fail "the marker is not in $PG/pg_wal"
check_eq "$({ grep -rlaF "$MARKER" "$REPO" || true; } | head -n 3)" "" "the marker written into the database appears nowhere in the repository"
check_contains "encryption on, key id" "$(cat "$T"/logs/walvaultd.1.log)" "walvaultd logged that encryption is on and its key id"
[ -f "$REPO/walvault.keycheck" ] && ok "walvault.keycheck written at first use" || soft_fail "no walvault.keycheck in $REPO"

# A segment comes back byte for byte through archive-get.
seg=$(psql_q "$PG" "select pg_walfile_name(pg_current_wal_lsn())")
prev=$(psql_q "$PG" "select last_archived_wal from pg_stat_archiver")
wv_get "$prev" "$T/work/got"
assert_rc 0 "archive-get $prev from the encrypted repository"
cmp -s "$T/work/got" "$PG/pg_wal/$prev" && ok "archive-get $prev: identical to pg_wal's copy" ||
  soft_fail "archive-get $prev differs from $PG/pg_wal/$prev"

# ---------------------------------------------------------------------------------------------
log "--- wrong, missing and unsafe keys stop walvaultd before it serves"
daemon_stop
start_refused() { # WHY EXPECTED-TEXT ARGS...
  local why=$1 text=$2
  shift 2
  wv_run -u root -- timeout 30 "$T/bin/walvaultd" --repo "$REPO" --socket "$SOCK" --allow-uid postgres "$@"
  check_rc 1 "walvaultd refuses to start: $why" || true
  [ "$RUN_RC" -ne 0 ] || fail "walvaultd started ($why)"
  check_contains "$text" "$RUN_ERR" "walvaultd says why ($why)"
  [ -S "$SOCK" ] && soft_fail "$SOCK exists after a refused start ($why)" || true
}
start_refused "the wrong key" "is encrypted with key id $KEY_A" --encryption-key-file "$KEYS/b"
start_refused "no key for an encrypted repository" "no encryption key is configured"
chmod 640 "$KEYS/b"
wv_run -u root -- timeout 30 "$T/bin/walvaultd" --repo "$REPO" --socket "$SOCK" --encryption-key-file "$KEYS/b"
check_rc 2 "walvaultd refuses a group-readable key file (usage error)"
check_contains "may be read by group or others (mode 0640)" "$RUN_ERR" "the key file's mode is named"
chmod 600 "$KEYS/b"

# ---------------------------------------------------------------------------------------------
log "--- rotation: key b current, key a old"
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/b" --encryption-old-key-files "$KEYS/a"
psql_q "$PG" "insert into t select g, 'rotated ' || g from generate_series(30001, 35000) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
check_eq "$(key_ids | wc -l)" 2 "objects under both keys after the rotation ($(key_ids | tr -s ' ' | tr '\n' ';'))"
KEY_B=$(od -An -tx4 -j16 -N4 "$REPO/walvault.keycheck" | tr -d ' ')
[ "$KEY_B" != "$KEY_A" ] && ok "the key check moved to key b ($KEY_B)" || soft_fail "key check still under key a"
wv_cli_json verify
assert_rc 0 "verify with both keys"
check_eq "$(jq_out '.key_ids | keys | length')" 2 "verify counts objects under two key ids ($(jq_out -c '.key_ids'))"
daemon_stop

log "--- key a removed before rekey: its objects are refused, never misread"
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/b" --core-dumps off
wv_get "$prev" "$T/work/refused"
check_rc 126 "archive-get of a segment sealed by the removed key during recovery"
check_contains "key id $KEY_A" "$RUN_ERR" "archive-get names the key id it needs"
check_contains "$prev" "$RUN_ERR" "archive-get names the object"
[ -e "$T/work/refused" ] && soft_fail "archive-get wrote $T/work/refused" || ok "archive-get wrote nothing"
daemon_stop

log "--- walvault rekey"
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/b" --encryption-old-key-files "$KEYS/a"
wv_cli_json rekey
assert_rc 0 "walvault rekey"
moved=$(jq_out '.repositories[0].moved')
check_eq "$(jq_out '.repositories[0].moved > 0 and .repositories[0].failed == [] and .key_id == "'"$KEY_B"'"')" true \
  "rekey moved $moved object(s) to key $KEY_B ($(jq_out -c '.repositories[0] | del(.failed)'))"
check_eq "$(key_ids | wc -l)" 1 "afterwards every object is under one key id ($(key_ids | tr -s ' '))"
wv_cli_json rekey
check_eq "$(jq_out '.repositories[0].moved')" 0 "a second rekey has nothing to move"
daemon_stop

log "--- key a gone for good: verify and a point-in-time restore from the encrypted repository"
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/b" --core-dumps off
wv_cli_json verify
assert_rc 0 "verify with key b alone"
check_eq "$(jq_out -c '.key_ids | keys')" "[\"$KEY_B\"]" "verify: every object opens with key b"
want=$(psql_q "$PG" "$ROWS")
target=$(psql_q "$PG" "select clock_timestamp()")
sleep 1
psql_q "$PG" "delete from t" >/dev/null
psql_q "$PG" "create table after_delete (x int)" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
R="$T/r_pitr"
wv_cli -u root --json restore --pgdata "$R" --backup "$BACKUP" --target-time "$target"
assert_rc 0 "walvault restore --target-time from the encrypted repository"
pg_adopt "$R" "archive_mode = off"
pg_start "$R"
wait_recovery_done "$R" 120
check_eq "$(psql_q "$R" "$ROWS")" "$want" "every row is back after PITR (count and md5)"
check_eq "$(psql_q "$R" "select count(*) from pg_class where relname = 'after_delete'")" 0 "recovery stopped before the DELETE"
pg_stop "$R"
pg_stop "$PG"
daemon_stop
finish
