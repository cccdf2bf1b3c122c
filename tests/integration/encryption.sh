#!/usr/bin/env bash
# Encryption at rest with a real PostgreSQL 15. A repository of plain objects gets encryption
# switched on: its plain objects stay readable, and WAL and a stored base backup archived after
# that are encrypted objects (cipher 1, the key's id in every head); a marker written into the
# database appears in no repository file, neither raw nor inside any zstd frame (a marker
# archived before the switch is found that way, proving the scan). status and check count the
# objects by key (check names the plain ones, and fails for a key walvaultd does not hold).
# walvaultd refuses to start with a wrong key, with no key, or with a group-readable key file.
# A rotation keeps old objects readable and a full restore spans both keys; archive-get exits
# 126 naming the object and key id when the key it needs is gone (1 in standby mode); `walvault rekey` moves
# everything to the new key, after which the old key is not needed and a point-in-time restore
# brings every row back.
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
ROWS="select count(*) || ' ' || md5(string_agg(id || ':' || payload, ',' order by id)) from t"

# Objects under wal/ and backup/ whose head's cipher byte (offset 13 of a version 2 head) is
# not 1, and the key ids (offset 16) of the others.
stored_objects() { { find "$REPO/wal" "$REPO/backup" -type f ! -name '*.tmp.*' 2>/dev/null || true; } | sort; }
is_sealed() { [ "$(od -An -tu1 -j13 -N1 "$1" | tr -d ' ')" = 1 ]; }
unencrypted_objects() { stored_objects | while read -r f; do is_sealed "$f" || echo "$f"; done; }
key_ids() { stored_objects | while read -r f; do is_sealed "$f" && od -An -tx4 -j16 -N4 "$f" | tr -d ' '; done | sort | uniq -c; }
# Repository files holding TEXT: as raw bytes, or inside a zstd frame starting at any offset
# (each frame is decompressed on its own with the zstd CLI, trailing bytes ignored).
files_holding() { # TEXT
  python3 - "$1" "$REPO" <<'PY'
import os, subprocess, sys
text, root = sys.argv[1].encode(), sys.argv[2]
magic = b"\x28\xb5\x2f\xfd"
for top, _, names in os.walk(root):
    for name in sorted(names):
        path = os.path.join(top, name)
        data = open(path, "rb").read()
        found, at = text in data, data.find(magic)
        while not found and at >= 0:
            out = subprocess.run(["zstd", "-dcq"], input=data[at:], capture_output=True).stdout
            found, at = text in out, data.find(magic, at + 1)
        if found:
            print(path)
PY
}
wal_objects_in() { # FILES (one a line): how many are under wal/
  grep -c "^$REPO/wal/" <<<"$1" || true
}

# ---------------------------------------------------------------------------------------------
log "--- a plain repository first: encryption is switched on later"
PLAIN_MARKER="walvault-plain-marker-$RANDOM$RANDOM"
daemon_start "${DAEMON_ARGS[@]}"
pg_start "$PG"
psql_q "$PG" "create table before_encryption (payload text)" >/dev/null
psql_q "$PG" "insert into before_encryption select '$PLAIN_MARKER ' || g from generate_series(1, 5000) g" >/dev/null
# A plain base backup keeps the plain WAL after it inside the retention window (without one,
# the first encrypted backup would let retention prune it all).
wv_cli -u root --json backup --label plain
assert_rc 0 "walvault backup through a plain walvaultd"
psql_q "$PG" "insert into before_encryption select '$PLAIN_MARKER after ' || g from generate_series(1, 5000) g" >/dev/null
plain_seg=$(pg_switch "$PG")
wait_archived "$PG" "$plain_seg" 60
cp "$PG/pg_wal/$plain_seg" "$T/work/plain_seg"
daemon_stop
PLAIN_FILES=$(stored_objects)
[ -n "$PLAIN_FILES" ] && ok "$(wc -l <<<"$PLAIN_FILES") plain object(s) archived before encryption" || fail "nothing archived in the plain phase"
check_eq "$(unencrypted_objects)" "$PLAIN_FILES" "every object of the plain phase is unencrypted"
check_contains "$REPO/wal/" "$(files_holding "$PLAIN_MARKER")" "the scan finds a plain marker inside the zstd frames of a plain object"

daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/a"
wv_get "$plain_seg" "$T/work/plain_got"
assert_rc 0 "archive-get of a plain segment through a walvaultd that now encrypts"
cmp -s "$T/work/plain_got" "$T/work/plain_seg" && ok "$plain_seg (plain) comes back identical" || soft_fail "$plain_seg differs"

psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
psql_q "$PG" "insert into t select g, '$MARKER ' || g from generate_series(1, 20000) g" >/dev/null
wv_cli -u root --json backup --label encrypted
assert_rc 0 "walvault backup through an encrypting walvaultd"
BACKUP=$(jq_out '.id')
psql_q "$PG" "insert into t select g, '$MARKER after ' || g from generate_series(20001, 30000) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60

# Retention may have pruned WAL from before the plain backup since; nothing new may be plain.
UNENCRYPTED=$(unencrypted_objects)
check_eq "$(comm -23 <(echo "$UNENCRYPTED") <(echo "$PLAIN_FILES"))" "" "every WAL and backup object archived since the switch is encrypted (cipher 1)"
check_contains "$REPO/wal/" "$UNENCRYPTED" "plain WAL objects from before the switch are still there ($(wc -l <<<"$UNENCRYPTED") unencrypted)"
check_eq "$(key_ids | wc -l)" 1 "every encrypted object carries the same key id ($(key_ids | tr -s ' '))"
KEY_A=$(key_ids | awk '{print $2}')
grep -qaF "$MARKER" "$PG"/pg_wal/0000* && ok "the marker is in PostgreSQL's own WAL (so its absence below means something)" ||
  soft_fail "the marker is not in $PG/pg_wal"
check_eq "$(files_holding "$MARKER" | head -n 3)" "" "the marker appears in no repository file, raw or inside any zstd frame"
check_contains "encryption on, key id" "$(cat "$T"/logs/walvaultd.2.log)" "walvaultd logged that encryption is on and its key id"
[ -f "$REPO/walvault.keycheck" ] && ok "walvault.keycheck written at first use" || soft_fail "no walvault.keycheck in $REPO"

NONE_WAL=$(wal_objects_in "$UNENCRYPTED")
sealed_wal=$(wal_objects_in "$(comm -13 <(echo "$UNENCRYPTED") <(stored_objects))")
wv_cli_json status
check_eq "$(jq_out -c '.encryption | [.key_id, .objects_by_key_id.none, .objects_by_key_id["'"$KEY_A"'"]]')" "[\"$KEY_A\",$NONE_WAL,$sealed_wal]" \
  "status counts the WAL objects by key: $NONE_WAL unencrypted, $sealed_wal under key $KEY_A"
check_contains "WAL objects: $NONE_WAL unencrypted, $sealed_wal under $KEY_A" "$(wv_cli status; echo "$RUN_OUT")" "status says so in text"
wv_cli_json check
check_eq "$(jq_out -c '.checks[] | select(.name == "encryption") | [.ok, .value.unencrypted, .value.current]')" "[true,$NONE_WAL,$sealed_wal]" \
  "check names the $NONE_WAL object(s) still unencrypted ($(jq_out '.checks[] | select(.name == "encryption") | .message'))"

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
check_eq "$(jq_out '.key_ids | keys | length')" 3 "verify counts objects under two key ids and plain ones ($(jq_out -c '.key_ids'))"

log "--- a full restore before rekey: the base backup under key a, WAL under keys a and b"
want_full=$(psql_q "$PG" "$ROWS")
R1="$T/r_full"
wv_cli -u root --json restore --pgdata "$R1" --backup "$BACKUP"
assert_rc 0 "walvault restore (to the end of the archive) across both keys"
pg_adopt "$R1" "archive_mode = off"
pg_start "$R1"
wait_recovery_done "$R1" 120
check_eq "$(psql_q "$R1" "$ROWS")" "$want_full" "every row archived under either key is back (count and md5)"
pg_stop "$R1"
daemon_stop

log "--- key a removed before rekey: its objects are refused, never misread"
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/b" --core-dumps off
wv_get "$prev" "$T/work/refused"
check_rc 126 "archive-get of a segment sealed by the removed key during recovery"
check_contains "key id $KEY_A" "$RUN_ERR" "archive-get names the key id it needs"
check_contains "$prev" "$RUN_ERR" "archive-get names the object"
[ -e "$T/work/refused" ] && soft_fail "archive-get wrote $T/work/refused" || ok "archive-get wrote nothing"
# In standby mode (standby.signal in the working directory) the same failure is 1, so a
# standby retries and can fall back to streaming.
install -d -o postgres "$T/standby"
touch "$T/standby/standby.signal"
wv_get -C "$T/standby" "$prev" "$T/standby/refused"
check_rc 1 "the same archive-get in standby mode"
check_contains "key id $KEY_A" "$RUN_ERR" "archive-get names the key id in standby mode too"
[ -e "$T/standby/refused" ] && soft_fail "archive-get wrote $T/standby/refused" || ok "archive-get wrote nothing in standby mode"
wv_cli_json check
check_eq "$(jq_out '.checks[] | select(.name == "encryption") | .ok')" false "check fails while objects need a key walvaultd does not hold"
check_contains "$KEY_A that walvaultd does not hold" "$(jq_out '.checks[] | select(.name == "encryption") | .message')" "check names the key id"
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
wv_cli_json status
check_eq "$(jq_out -c '.encryption.objects_by_key_id | del(.none) | keys')" "[\"$KEY_B\"]" \
  "status: after rekey every encrypted WAL object is counted under key $KEY_B ($(jq_out -c '.encryption.objects_by_key_id'))"
daemon_stop

log "--- key a gone for good: verify and a point-in-time restore from the encrypted repository"
daemon_start "${DAEMON_ARGS[@]}" --encryption-key-file "$KEYS/b" --core-dumps off
wv_cli_json verify
assert_rc 0 "verify with key b alone"
check_eq "$(jq_out -c '.key_ids | del(.none) | keys')" "[\"$KEY_B\"]" "verify: every encrypted object opens with key b"
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
