#!/usr/bin/env bash
# Retention (docs/retention.md, `walvault prune` in docs/cli.md) with --retention-backups 2
# --retention-backup-days 0 --retention-wal-days 0 --prune-interval 0: the two newest complete
# base backups are kept, the point-in-time window starts at the newest one's start, each kept
# backup keeps its own start..stop WAL, everything else goes.
#
#  1. Base backups B1, B2, B3 with WAL switches between them, rows around a time T after B3.
#     While they are taken walvaultd runs with --retention-wal-days 3650 (the "hold" flags): the
#     prune walvaultd runs by itself right after each .backup file arrives then keeps everything
#     from the oldest backup on, so what the test's prune has to do is known in advance.
#  2. `prune --dry-run --json` (test flags) lists exactly what the rules remove (B1's .backup,
#     every segment before B2's start, between B2's stop and B3's start) with reasons for what
#     stays, and changes neither the repository nor `list`.
#  3. `prune` removes exactly that; status counts it; verify and check pass.
#  4. Restores: B2 to consistency (recovery_target = 'immediate'), B3 to the end of the WAL,
#     B3 to time T; B1 can no longer be restored.
#  5. Crash safety: new backups make more objects removable; `walvault prune` runs while
#     walvaultd is killed with SIGKILL after a random 0-200 ms; after the restart the index and
#     the repository agree, only a prefix of the planned removals is gone, verify finds nothing
#     missing or unindexed, and the next prune completes.
#  6. A repository with WAL but no base backup: prune deletes nothing and says why; check fails
#     its retention line. After a base backup, walvaultd prunes by itself (the .backup file
#     arrived) and the retention line passes.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

TEST_FLAGS=(--retention-backups 2 --retention-backup-days 0 --retention-wal-days 0 --prune-interval 0)
HOLD_FLAGS=(--retention-backups 2 --retention-backup-days 0 --retention-wal-days 3650 --prune-interval 0)
GENEROUS=(--max-wal-age 1h --max-backup-age 1h --max-disk-usage 100%)
KILL_ROUNDS=${KILL_ROUNDS:-5}

declare -A BK_FILE=() BK_START=() BK_STOP=()

# --- helpers ---------------------------------------------------------------------------------

# Every object file in the repository, "name size" per line (the dry run must not touch any).
repo_files() { find "$REPO/wal" -type f -printf '%f %s\n' | sort; }
repo_names() { find "$REPO/wal" -type f -printf '%f\n' | sort; }
repo_segments() { repo_names | grep -E '^[0-9A-F]{24}(\.partial)?$' || true; }
repo_backups() { repo_names | grep -E '\.backup$' || true; }

# set_eq A B MESSAGE: A and B (newline-separated names) hold the same names.
set_eq() {
  local a b
  a=$(printf '%s\n' "$1" | sed '/^$/d' | sort -u)
  b=$(printf '%s\n' "$2" | sed '/^$/d' | sort -u)
  if [ "$a" == "$b" ]; then
    ok "$3"
  else
    soft_fail "$3: only in the first: [$(comm -23 <(printf '%s\n' "$a") <(printf '%s\n' "$b") | tr '\n' ' ' | cut -c1-400)]; only in the second: [$(comm -13 <(printf '%s\n' "$a") <(printf '%s\n' "$b") | tr '\n' ' ' | cut -c1-400)]"
  fi
}

restart_daemon() { # FLAGS...: stops the default daemon and starts it again with FLAGS
  daemon_stop
  daemon_start "$@"
}

# write_and_switch N: N times a few thousand rows and a WAL switch; LAST_SEG is the last
# segment completed.
write_and_switch() {
  local i
  for ((i = 0; i < $1; i++)); do
    psql_q "$PG" "insert into filler (payload) select repeat('x', 200) from generate_series(1, 2000)" >/dev/null
    LAST_SEG=$(pg_switch "$PG")
  done
}

# take_backup LABEL: pg_basebackup -X none to $T/LABEL; records the .backup file PostgreSQL
# wrote for it and its start and stop segments (read from that file).
take_backup() {
  local label=$1 start_seg f
  pg_basebackup_to "$PG" "$T/$label"
  start_seg=$(awk '/^START WAL LOCATION:/ { gsub(/[()]/, "", $6); print $6 }' "$T/$label/backup_label")
  is_segment_name "$start_seg" || fail "no start segment in $T/$label/backup_label"
  f=$(find "$PG/pg_wal" -maxdepth 1 -name "$start_seg.*.backup" -printf '%f\n' | sort | tail -n 1)
  [ -n "$f" ] || fail "no .backup file for $label (start segment $start_seg) in pg_wal"
  cp "$PG/pg_wal/$f" "$T/work/$f"
  BK_FILE[$label]=$f
  BK_START[$label]=$start_seg
  BK_STOP[$label]=$(awk '/^STOP WAL LOCATION:/ { gsub(/[()]/, "", $6); print $6 }' "$T/work/$f")
  is_segment_name "${BK_STOP[$label]}" || fail "no stop segment in $f"
  log "$label: $f (WAL ${BK_START[$label]} .. ${BK_STOP[$label]})"
}

# rules_keep NEWEST OLDER: of the objects now in the repository, the ones the rules keep when
# NEWEST and OLDER are the two newest complete backups and the window starts at NEWEST's start
# (retention-wal-days 0): both .backup files, OLDER's start..stop segments, every segment from
# NEWEST's start on (timeline 1 only in this test, so names sort as positions do).
rules_keep() {
  local nb=$1 ob=$2 n
  while read -r n; do
    [ -n "$n" ] || continue
    if [[ "$n" == *.backup ]]; then
      if [ "$n" = "${BK_FILE[$nb]}" ] || [ "$n" = "${BK_FILE[$ob]}" ]; then echo "$n"; fi
    elif [[ ! "$n" < "${BK_START[$nb]}" ]]; then
      echo "$n"
    elif [[ ! "$n" < "${BK_START[$ob]}" && ! "$n" > "${BK_STOP[$ob]}" ]]; then
      echo "$n"
    fi
  done < <(repo_names)
  return 0
}

# index_matches_repo WHAT: `list` (segments) and `list --backups` name exactly the objects in
# the repository: no index entry for a missing object, no unindexed object.
index_matches_repo() {
  local listed
  wv_cli_json list
  check_rc 0 "$1: list --json"
  listed=$(jq_out '.segments[].name')
  set_eq "$listed" "$(repo_segments)" "$1: the segments in 'list' are exactly the segment files in the repository"
  wv_cli_json list --backups
  listed=$(jq_out '.backups[].name')
  set_eq "$listed" "$(repo_backups)" "$1: the backups in 'list --backups' are exactly the .backup files in the repository"
}

# verify_objects WHAT: verify finds no damaged, missing or unindexed object (gaps between kept
# ranges are reported separately by verify_ok).
verify_objects() {
  wv_cli_json verify
  local n
  n=$(jq_out '[.problems[] | select(.problem | startswith("gap:") | not)] | length')
  if [ "$n" = 0 ]; then
    ok "$1: verify finds no missing, unindexed or damaged object"
  else
    soft_fail "$1: verify reports $n object problem(s): $(_wv_oneline "$(jq_out '.problems[] | select(.problem | startswith("gap:") | not) | "\(.object): \(.problem)"')")"
  fi
}

verify_ok() { # WHAT: `walvault verify` exits 0
  wv_cli verify
  if [ "$RUN_RC" -eq 0 ]; then
    ok "$1: verify exits 0"
  else
    soft_fail "$1: verify exited $RUN_RC, expected 0: $(_wv_oneline "$(printf '%s\n' "$RUN_OUT" | grep -v '^ok' | head -n 4)")"
  fi
}

# --- 1. three base backups -------------------------------------------------------------------
daemon_start "${HOLD_FLAGS[@]}"
PG="$T/pg"
pg_init "$PG" "checkpoint_timeout = 30min"
pg_start "$PG"
pgbench_run "$PG" -i -s 2 -q
psql_q "$PG" "create table filler (id bigserial primary key, payload text)" >/dev/null
psql_q "$PG" "create table marks (id int primary key, phase text)" >/dev/null
write_and_switch 3
take_backup b1
write_and_switch 4
take_backup b2
write_and_switch 4
take_backup b3
write_and_switch 2
psql_q "$PG" "insert into marks select g, 'before T' from generate_series(1, 100) g" >/dev/null
target=$(psql_q "$PG" "select clock_timestamp()")
sleep 1
psql_q "$PG" "insert into marks select g, 'after T' from generate_series(101, 200) g" >/dev/null
final_marks=$(psql_q "$PG" "select count(*) || ' ' || md5(string_agg(id || phase, ',' order by id)) from marks")
final_filler=$(psql_q "$PG" "select count(*) from filler")
LAST_SEG=$(pg_switch "$PG")
wait_archived "$PG" "$LAST_SEG" 60
log "target time T: $target; marks at the end: $final_marks; filler rows: $final_filler"
[[ "${BK_STOP[b2]}" < "${BK_START[b3]}" ]] || fail "no segment between B2's stop and B3's start"

# --- 2. dry run --------------------------------------------------------------------------------
restart_daemon "${TEST_FLAGS[@]}"
files_before=$(repo_files)
wv_cli_json list
list_before=$RUN_OUT
wv_cli_json list --backups
backups_before=$RUN_OUT
all_before=$(repo_names)
want_keep=$(rules_keep b3 b2)
want_remove=$(comm -23 <(printf '%s\n' "$all_before") <(printf '%s\n' "$want_keep"))
log "the rules keep $(printf '%s\n' "$want_keep" | wc -l) of $(printf '%s\n' "$all_before" | wc -l) objects"

wv_cli_json prune --dry-run
assert_rc 0 "prune --dry-run --json"
check_eq "$(jq_out .dry_run)" true "dry run: dry_run true"
check_eq "$(jq_out .allowed)" true "dry run: allowed true (three complete backups)"
check_eq "$(jq_out .refusal)" null "dry run: no refusal"
check_eq "$(jq_out .removed)" 0 "dry run: removed 0"
check_eq "$(jq_out .window_start)" "${BK_START[b3]}" "dry run: the window starts at B3's start segment (retention-wal-days 0)"
dry_remove=$(jq_out '.remove[].name')
dry_keep=$(jq_out '.keep[].name')
set_eq "$dry_remove" "$want_remove" "dry run: 'remove' is exactly what the rules remove (B1's .backup, WAL before B2's start and between B2's stop and B3's start)"
set_eq "$dry_keep" "$want_keep" "dry run: 'keep' is exactly what the rules keep"
missing_before_b2=$(while read -r n; do
  if is_segment_name "$n" && [[ "$n" < "${BK_START[b2]}" ]] && ! grep -qx "$n" <<<"$dry_remove"; then echo "$n"; fi
done <<<"$all_before")
check_eq "$missing_before_b2" "" "dry run: every segment before B2's start (${BK_START[b2]}) is in 'remove'"
if grep -qx "${BK_FILE[b1]}" <<<"$dry_remove"; then ok "dry run: B1's ${BK_FILE[b1]} is in 'remove'"; else soft_fail "dry run: B1's ${BK_FILE[b1]} not in 'remove'"; fi
for b in b2 b3; do
  if grep -qx "${BK_FILE[$b]}" <<<"$dry_keep"; then ok "dry run: ${b^^}'s ${BK_FILE[$b]} is kept"; else soft_fail "dry run: ${b^^}'s ${BK_FILE[$b]} not in 'keep'"; fi
done
check_eq "$(jq_out '[.remove[], .keep[] | select((.reason // "") == "")] | length')" 0 "dry run: every remove and keep entry has a reason"
# shellcheck disable=SC2016  # $r and $k are jq's variables
check_eq "$(jq_out '[.remove[].name] as $r | [.keep[].name | select(. as $k | $r | index($k))] | length')" 0 "dry run: no object is both removed and kept"
bytes=$(jq_out .bytes_freed)
if [[ "$bytes" =~ ^[0-9]+$ ]] && [ "$bytes" -gt 0 ]; then ok "dry run: bytes_freed $bytes > 0"; else soft_fail "dry run: bytes_freed '$bytes', expected > 0"; fi
wv_cli prune --dry-run
check_rc 0 "prune --dry-run (text)"
check_contains "${BK_FILE[b1]}" "$RUN_OUT" "dry run text names B1's .backup file"

check_eq "$(repo_files)" "$files_before" "the repository's files (names and sizes) are unchanged by the dry run"
wv_cli_json list
check_eq "$RUN_OUT" "$list_before" "'list --json' is identical before and after the dry run"
wv_cli_json list --backups
check_eq "$RUN_OUT" "$backups_before" "'list --backups --json' is identical before and after the dry run"

# --- 3. prune ----------------------------------------------------------------------------------
wv_cli_json prune
assert_rc 0 "prune --json"
# The kills in part 5 land within 0-200 ms, mostly within three times the time this prune took.
prune_ms=$(awk -v s="$RUN_SECS" 'BEGIN { printf "%d", s * 1000 }')
check_eq "$(jq_out .dry_run)" false "prune: dry_run false"
check_eq "$(jq_out .allowed)" true "prune: allowed true"
check_eq "$(jq_out .error)" null "prune: no error"
removed=$(jq_out .removed)
pruned_bytes=$(jq_out .bytes_freed)
check_eq "$removed" "$(printf '%s\n' "$want_remove" | sed '/^$/d' | wc -l)" "prune: removed count is the number of objects the dry run listed"
set_eq "$(jq_out '.remove[].name')" "$dry_remove" "prune removed the list the dry run showed"
set_eq "$(repo_names)" "$want_keep" "after prune the repository holds exactly what the rules keep"
gone_still_there=$(comm -12 <(repo_names) <(printf '%s\n' "$dry_remove" | sort))
check_eq "$gone_still_there" "" "every object the dry run said would go is gone from $REPO/wal"
wv_cli_json list
listed=$(jq_out '.segments[].name')
wv_cli_json list --backups
listed="$listed
$(jq_out '.backups[].name')"
check_eq "$(comm -12 <(printf '%s\n' "$listed" | sort) <(printf '%s\n' "$dry_remove" | sort))" "" "no removed object is still in 'list' / 'list --backups'"
check_eq "$(comm -13 <(printf '%s\n' "$listed" | sort) <(printf '%s\n' "$dry_keep" | sort))" "" "every kept object is still in 'list' / 'list --backups'"
index_matches_repo "after prune"

wv_cli_json status
check_rc 0 "status --json"
n=$(jq_out .retention.objects_pruned)
if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] && [ "$n" -ge "$removed" ]; then ok "status: retention.objects_pruned $n > 0 (>= $removed)"; else soft_fail "status: retention.objects_pruned '$n', expected > 0 and >= $removed"; fi
n=$(jq_out .retention.bytes_freed)
if [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] && [ "$n" -ge "$pruned_bytes" ]; then ok "status: retention.bytes_freed $n > 0 (>= $pruned_bytes)"; else soft_fail "status: retention.bytes_freed '$n', expected > 0 and >= $pruned_bytes"; fi
check_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$(jq_out .retention.last_run)" "status: retention.last_run is a time"

wv_cli_json prune --dry-run
check_eq "$(jq_out '.remove | length')" 0 "a dry run right after the prune has nothing left to remove"

verify_objects "after prune"
verify_ok "after prune"
wv_cli_json check "${GENEROUS[@]}"
check_eq "$(jq_out '.checks[] | select(.name == "retention") | .ok')" true "check: the retention line is ok"
[ "$RUN_RC" -eq 0 ] || log "check after prune: $(jq_out -c '[.checks[] | select(.ok | not) | {name, message}]')"
check_rc 0 "check ${GENEROUS[*]} after prune"
wv_cli check "${GENEROUS[@]}"
check_match '^ok .*retention' "$RUN_OUT" "check text: the retention line says ok"

# --- 4. restores -------------------------------------------------------------------------------
R2="$T/restore_b2"
pg_restore_setup "$T/b2" "$R2" "archive_mode = off" "recovery_target = 'immediate'" "recovery_target_action = 'promote'"
pg_start "$R2"
wait_recovery_done "$R2" 60
check_eq "$(psql_q "$R2" "select pg_is_in_recovery()")" f "restore of B2 to 'immediate' reached consistency and promoted"
check_eq "$(psql_q "$R2" "select count(*) from pgbench_accounts")" 200000 "restore of B2: pgbench_accounts has its 200000 rows"
check_eq "$(psql_q "$R2" "select count(*) from marks")" 0 "restore of B2: no rows from after B3"
pg_stop "$R2"

R3="$T/restore_b3_end"
pg_restore_setup "$T/b3" "$R3" "archive_mode = off"
pg_start "$R3"
wait_recovery_done "$R3" 60
check_eq "$(psql_q "$R3" "select count(*) || ' ' || md5(string_agg(id || phase, ',' order by id)) from marks")" "$final_marks" "restore of B3 to the end of the WAL has every row of marks"
check_eq "$(psql_q "$R3" "select count(*) from filler")" "$final_filler" "restore of B3 to the end of the WAL has every filler row"
pg_stop "$R3"

RT="$T/restore_b3_T"
pg_restore_setup "$T/b3" "$RT" "archive_mode = off" "recovery_target_time = '$target'" "recovery_target_action = 'promote'"
pg_start "$RT"
wait_recovery_done "$RT" 60
check_eq "$(psql_q "$RT" "select count(*) from marks where phase = 'before T'")" 100 "restore of B3 to T: the 100 rows written before T are there"
check_eq "$(psql_q "$RT" "select count(*) from marks where phase = 'after T'")" 0 "restore of B3 to T: none of the rows written after T"
pg_stop "$RT"

# B1's WAL is gone: its restore must not complete (bounded: 20 s).
R1="$T/restore_b1"
pg_restore_setup "$T/b1" "$R1" "archive_mode = off"
WV_CLUSTERS+=("$R1")
wv_run -u postgres -- "$PGBIN/pg_ctl" -D "$R1" -l "$(pg_logfile "$R1")" -w -t 20 start
r=$(psql_try "$R1" "select pg_is_in_recovery()" || true)
if [ "$r" != f ]; then ok "restore of B1 does not complete (pg_ctl exit $RUN_RC)"; else soft_fail "restore of B1 completed although its WAL was pruned"; fi
check_match 'could not locate required checkpoint record|requested WAL segment' "$(cat "$(pg_logfile "$R1")")" "restore of B1: PostgreSQL says B1's WAL is missing"
if pg_is_running "$R1"; then pg_stop "$R1" immediate; fi

# --- 5. crash safety ---------------------------------------------------------------------------
newest=b3
older=b2
mid_prune=0
for ((round = 1; round <= KILL_ROUNDS; round++)); do
  label="b$((3 + round))"
  # New WAL and a backup under the hold flags (the prune after the .backup file keeps it all).
  restart_daemon "${HOLD_FLAGS[@]}"
  write_and_switch 12
  take_backup "$label"
  write_and_switch 2
  wait_archived "$PG" "$LAST_SEG" 60
  older=$newest
  newest=$label
  restart_daemon "${TEST_FLAGS[@]}"

  before=$(repo_names)
  want_keep=$(rules_keep "$newest" "$older")
  wv_cli_json prune --dry-run
  check_rc 0 "round $round: prune --dry-run"
  plan_remove=$(jq_out '.remove[].name')
  total=$(printf '%s\n' "$plan_remove" | sed '/^$/d' | wc -l)
  set_eq "$plan_remove" "$(comm -23 <(printf '%s\n' "$before") <(printf '%s\n' "$want_keep"))" "round $round: the dry run removes what the rules remove ($total objects, ${older^^}'s WAL among them)"
  [ "$total" -ge 5 ] || fail "round $round: only $total objects to prune"

  span=$((3 * prune_ms < 30 ? 30 : 3 * prune_ms > 200 ? 200 : 3 * prune_ms))
  delay="0.$(printf '%03d' $((RANDOM % (span + 1))))"
  (exec runuser -u postgres -- "$T/bin/walvault" --socket "$SOCK" --json prune) >"$T/work/prune.$round.out" 2>&1 &
  bgp=$!
  bg_register "$bgp"
  sleep "$delay"
  daemon_kill9
  for ((i = 0; i < 100; i++)); do kill -0 "$bgp" 2>/dev/null || break; sleep 0.1; done
  bgrc=0
  if kill -0 "$bgp" 2>/dev/null; then
    soft_fail "round $round: 'walvault prune' still running 10 s after walvaultd was killed"
  else
    wait "$bgp" || bgrc=$?
  fi
  bg_stop "$bgp"

  # Only a prefix of the planned order may be gone, and nothing that was to be kept.
  gone=0
  prefix_ok=1
  seen_present=0
  while read -r n; do
    [ -n "$n" ] || continue
    if [ -e "$REPO/wal/${n:0:16}/$n" ]; then
      seen_present=1
    else
      gone=$((gone + 1))
      [ "$seen_present" = 0 ] || prefix_ok=0
    fi
  done <<<"$plan_remove"
  [ "$gone" -gt 0 ] && [ "$gone" -lt "$total" ] && mid_prune=$((mid_prune + 1))
  log "round $round: killed after $delay s, prune client exit $bgrc; $gone of $total planned removals done"
  check_eq "$prefix_ok" 1 "round $round: the objects gone after the kill are a prefix of the planned order (oldest first; $gone of $total)"
  check_eq "$(comm -13 <(repo_names) <(printf '%s\n' "$want_keep" | sort) | tr '\n' ' ')" "" "round $round: no object the rules keep is missing after the kill"

  daemon_start "${TEST_FLAGS[@]}"
  index_matches_repo "round $round, after kill -9 and restart"
  verify_objects "round $round, after kill -9 and restart"
  verify_ok "round $round, after kill -9 and restart"

  wv_cli_json prune
  check_rc 0 "round $round: prune after the restart"
  check_eq "$(jq_out .error)" null "round $round: the prune after the restart completes"
  set_eq "$(repo_names)" "$want_keep" "round $round: the repository holds exactly what the rules keep"
  index_matches_repo "round $round, after the second prune"
  verify_objects "round $round, after the second prune"
  verify_ok "round $round, after the second prune"
done
log "the kill landed in the middle of a prune in $mid_prune of $KILL_ROUNDS rounds"

# The newest backup still restores to the end of the WAL after the crashes.
final_filler=$(psql_q "$PG" "select count(*) from filler")
RN="$T/restore_$newest"
pg_restore_setup "$T/$newest" "$RN" "archive_mode = off"
pg_start "$RN"
wait_recovery_done "$RN" 60
check_eq "$(psql_q "$RN" "select count(*) from filler")" "$final_filler" "restore of ${newest^^} after the crashes has every filler row"
pg_stop "$RN"
pg_stop "$PG"
daemon_stop

# --- 6. nothing proven, nothing deleted --------------------------------------------------------
# A second daemon and repository; the helpers' defaults point at them from here on.
SOCK="$T/run/second.sock"
REPO="$T/repo2"
daemon_start "${TEST_FLAGS[@]}"
P2="$T/pg2"
pg_init "$P2"
pg_start "$P2"
psql_q "$P2" "create table t (x int)" >/dev/null
for i in 1 2 3; do
  psql_q "$P2" "insert into t select generate_series(1, 1000)" >/dev/null
  last2=$(pg_switch "$P2")
done
wait_archived "$P2" "$last2" 60
files2=$(find "$REPO/wal" -type f -printf '%f %s\n' | sort)
[ -n "$files2" ] || fail "nothing archived into $REPO"
wv_cli_json prune
check_eq "$(jq_out .allowed)" false "no backup: prune not allowed"
check_contains "no complete base backup" "$(jq_out .refusal)" "no backup: the refusal says 'no complete base backup'"
check_eq "$(jq_out .removed)" 0 "no backup: removed 0"
check_eq "$(find "$REPO/wal" -type f -printf '%f %s\n' | sort)" "$files2" "no backup: the repository is unchanged by prune"
wv_cli prune
check_contains "no complete base backup" "$RUN_OUT$RUN_ERR" "no backup: prune text says 'no complete base backup'"
wv_cli_json status
check_eq "$(jq_out .retention.objects_pruned)" 0 "no backup: status retention.objects_pruned 0"
wv_cli_json check "${GENEROUS[@]}"
check_rc 1 "no backup: check exits 1"
check_eq "$(jq_out '.checks[] | select(.name == "retention") | .ok')" false "no backup: check's retention line fails"
check_contains "no complete base backup" "$(jq_out '.checks[] | select(.name == "retention") | .message')" "no backup: the retention line says 'no complete base backup'"
wv_cli check "${GENEROUS[@]}"
check_match '^FAILED .*retention' "$RUN_OUT" "no backup: check text has a FAILED retention line"

# Once a complete base backup exists the refusal goes, and walvaultd prunes by itself right
# after the .backup file arrives (docs/cli.md), even with --prune-interval 0.
wv_cli_json status
last_run=$(jq_out .retention.last_run)
pg_basebackup_to "$P2" "$T/p2_backup"
last2=$(pg_switch "$P2")
wait_archived "$P2" "$last2" 60
auto_prune_ran() {
  wv_cli_json status
  [ "$(jq_out .retention.last_run)" != "$last_run" ]
}
wait_for 10 "the prune walvaultd runs after the .backup file" auto_prune_ran
ok "a prune ran by itself after the .backup file arrived (prune-interval 0)"
wv_cli_json check "${GENEROUS[@]}"
check_eq "$(jq_out '.checks[] | select(.name == "retention") | .ok')" true "with a complete base backup, check's retention line is ok"
pg_stop "$P2"
daemon_stop

finish
