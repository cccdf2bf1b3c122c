#!/usr/bin/env bash
# `walvault check` and `walvault verify` on a real archive: all checks hold with generous
# thresholds; a too-old newest WAL is named with its value and threshold; a segment removed from
# the repository behind the daemon's back is reported as a continuity gap (text and JSON), and
# passes again once put back; one flipped byte inside a stored object makes `verify` name that
# object (text and JSON), and passes again once the byte is restored.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

GENEROUS=(--max-wal-age 1h --max-backup-age 1h --max-disk-usage 100%)

put_byte() { # FILE OFFSET VALUE: overwrites one byte in place
  printf '%b' "\\$(printf '%03o' "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"
psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
pg_basebackup_to "$PG" "$T/backup"
backup_file=$(cd "$PG/pg_wal" && ls -- *.backup)
for i in 1 2 3 4 5; do
  psql_q "$PG" "insert into t select g, md5(g::text) from generate_series($i * 10000, $i * 10000 + 9999) g" >/dev/null
  last=$(pg_switch "$PG")
done
wait_archived "$PG" "$last" 90
pg_stop "$PG"

# The segments from the backup's start to the newest one.
first=${backup_file:0:24}
mapfile -t segs < <(seg_range "$first" "$last")
[ "${#segs[@]}" -ge 5 ] || fail "expected at least 5 segments from $first to $last, got ${#segs[@]}"
for s in "${segs[@]}"; do
  [ -f "$REPO/wal/${s:0:16}/$s" ] || fail "segment $s is not at $REPO/wal/${s:0:16}/$s"
done
ok "segments $first .. $last are stored under $REPO/wal"

# --- everything in bounds
wv_cli check "${GENEROUS[@]}"
assert_rc 0 "check with generous thresholds"
check_match '^ok +newest WAL age' "$RUN_OUT" "check text: newest WAL age ok"
check_match '^ok +newest base backup age' "$RUN_OUT" "check text: newest base backup age ok"
check_match '^ok +WAL continuous' "$RUN_OUT" "check text: WAL continuous"
wv_cli_json check "${GENEROUS[@]}"
check_rc 0 "check --json with generous thresholds"
check_eq "$(jq_out .ok)" true "check --json: ok true"
check_eq "$(jq_out '[.checks[].name] | sort | join(",")')" "backup_age,continuity,disk_usage,retention,wal_age" "check --json: the four checks"

# --- newest WAL too old
sleep 2
wv_cli check --max-wal-age 1s --max-backup-age 1h --max-disk-usage 100%
assert_rc 1 "check --max-wal-age 1s after 2 s exits 1"
line=$(printf '%s\n' "$RUN_OUT" | grep -i 'WAL age' || true)
check_match '^FAILED +newest WAL age [0-9]+s \(threshold 1s\)' "$line" "check text names the WAL age as FAILED with its value and the 1s threshold"
check_match '^ok +newest base backup age' "$RUN_OUT" "check text: the other checks still pass"
wv_cli_json check --max-wal-age 1s --max-backup-age 1h --max-disk-usage 100%
check_rc 1 "check --json --max-wal-age 1s exits 1"
check_eq "$(jq_out .ok)" false "check --json: ok false"
check_eq "$(jq_out '.checks[] | select(.name == "wal_age") | .ok')" false "check --json: wal_age ok false"
check_eq "$(jq_out '.checks[] | select(.name == "wal_age") | .threshold')" 1 "check --json: wal_age threshold 1 (s)"
age=$(jq_out '.checks[] | select(.name == "wal_age") | .value')
if [[ "$age" =~ ^[0-9]+$ ]] && [ "$age" -ge 2 ]; then ok "check --json: wal_age value $age >= 2 s"; else soft_fail "check --json: wal_age value '$age', expected >= 2"; fi

# --- a segment removed behind the daemon's back
gap=${segs[2]}
gap_file="$REPO/wal/${gap:0:16}/$gap"
mv "$gap_file" "$T/work/$gap.saved"
wv_cli check "${GENEROUS[@]}"
assert_rc 1 "check exits 1 with $gap removed from the repository"
check_match "^FAILED.*gap.*$gap" "$RUN_OUT" "check text names $gap as a gap"
wv_cli_json check "${GENEROUS[@]}"
check_rc 1 "check --json exits 1 with $gap removed"
check_eq "$(jq_out .ok)" false "check --json: ok false"
check_eq "$(jq_out '.checks[] | select(.name == "continuity") | .ok')" false "check --json: continuity ok false"
check_eq "$(jq_out '.checks[] | select(.name == "continuity") | .value | join(",")')" "$gap" "check --json: continuity value is [$gap]"
wv_cli verify
check_rc 1 "verify exits 1 with $gap removed"
check_match "^FAILED.*$gap.*missing" "$RUN_OUT" "verify names $gap as missing"
mv "$T/work/$gap.saved" "$gap_file"
wv_cli check "${GENEROUS[@]}"
assert_rc 0 "check passes again once $gap is back"

# --- a flipped byte inside a stored object
wv_cli verify
assert_rc 0 "verify passes on the untouched repository"
check_match '0 problem' "$RUN_OUT" "verify text: 0 problems"
victim=${segs[1]}
victim_file="$REPO/wal/${victim:0:16}/$victim"
size=$(stat -c %s "$victim_file")
[ "$size" -gt 300 ] || fail "stored $victim is only $size bytes"
offset=$((size / 2))
orig=$(od -An -tu1 -j "$offset" -N1 "$victim_file" | tr -d ' ')
put_byte "$victim_file" "$offset" $((orig ^ 0xFF))
[ "$(od -An -tu1 -j "$offset" -N1 "$victim_file" | tr -d ' ')" = $((orig ^ 0xFF)) ] || fail "the byte at $offset of $victim_file was not flipped"
log "flipped the byte at offset $offset of $victim_file ($size bytes)"
wv_cli verify
assert_rc 1 "verify exits 1 with a flipped byte in $victim"
check_match "^FAILED.*$victim" "$RUN_OUT" "verify text names $victim"
check_match '1 problem' "$RUN_OUT" "verify text: exactly 1 problem"
wv_cli_json verify
check_rc 1 "verify --json exits 1"
check_eq "$(jq_out .ok)" false "verify --json: ok false"
check_eq "$(jq_out '.problems | length')" 1 "verify --json: one problem"
check_contains "$victim" "$(jq_out '.problems[0].object')" "verify --json: the problem names $victim"
problem=$(jq_out '.problems[0].problem')
if [ -n "$problem" ] && [ "$problem" != null ]; then ok "verify --json: the problem says why ($problem)"; else soft_fail "verify --json: empty problem text"; fi
# archive-get refuses it too (hard failure during archive recovery, never bad bytes).
wv_get "$victim" "$T/work/victim.out"
check_rc 126 "archive-get of the damaged $victim fails hard"
if [ ! -e "$T/work/victim.out" ]; then ok "no partial file left by the refused archive-get"; else soft_fail "archive-get left $T/work/victim.out"; fi

put_byte "$victim_file" "$offset" "$orig"
wv_cli verify
assert_rc 0 "verify passes again once the byte is restored"
wv_cli_json verify
check_eq "$(jq_out .ok)" true "verify --json: ok true"
check_eq "$(jq_out '.problems | length')" 0 "verify --json: no problems"

daemon_stop
finish
