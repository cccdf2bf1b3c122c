#!/usr/bin/env bash
# The index is only a cache of the repository: after archiving on two timelines with base
# backups (and a commit record that starts in one segment and ends in the next, whose time the
# index must give to the segment where it ends), deleting index.db (and its -wal/-shm files) while walvaultd is stopped and starting it
# again rebuilds the same index (start-up repair), and `walvault reindex` on the running daemon
# rebuilds it once more: `list`, `timelines` and `list --backups` are identical each time. The
# hot path works right after the rebuild: archive-get of an archived segment returns its
# content, of a missing one "not in the archive" (1).
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"
psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(1, 1000) g" >/dev/null
pg_basebackup_to "$PG" "$T/backup1"
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(1001, 20000) g" >/dev/null
# A big commit record (300 dropped tables) that starts less than 2500 bytes before the end of a
# segment: the transaction pads the WAL with non-transactional logical messages until then.
psql_q "$PG" "do \$\$ begin for i in 1..300 loop execute format('create table d%s (x int)', i); end loop; end \$\$" >/dev/null
IFS='|' read -r cross_xid cross_lsn cross_seg <<<"$(psql_q "$PG" "do \$\$
declare rem bigint;
begin
  for i in 1..300 loop execute format('drop table d%s', i); end loop;
  loop
    rem := 16777216 - ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint % 16777216);
    exit when rem < 2500;
    perform pg_logical_emit_message(false, 'pad', repeat('x', greatest(1, ((rem - 1500) * 0.99)::int - 100)));
  end loop;
end \$\$;
select txid_current(), pg_current_wal_insert_lsn(), pg_walfile_name(pg_current_wal_insert_lsn())" | tail -n 1)"
cross_end_seg=$(seg_next "$cross_seg")
log "transaction $cross_xid commits at about $cross_lsn, near the end of $cross_seg"
pg_switch "$PG" >/dev/null
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(20001, 21000) g" >/dev/null
psql_q "$PG" "select pg_create_restore_point('branch')" >/dev/null
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(21001, 22000) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 90
pg_stop "$PG"

# PostgreSQL's own account of that commit record: pg_waldump on the two segments from the archive
# (PostgreSQL recycles its own copies once they are archived).
install -d -o postgres -g postgres "$T/work/waldump"
for s in "$cross_seg" "$cross_end_seg"; do
  wv_get "$s" "$T/work/waldump/$s"
  assert_rc 0 "archive-get $s for pg_waldump"
done
lsn_num() { local l=${1^^}; echo $(((16#${l%/*} << 32) + 16#${l#*/})); }
lsn_text() { printf '%X/%X' $(($1 >> 32)) $(($1 & 0xFFFFFFFF)); }
seg_of_lsn() { printf '%08X%08X%08X' 1 $(($1 / (256 * WV_SEG_SIZE))) $(($1 / WV_SEG_SIZE % 256)); }
waldump_end=$(lsn_text $(( ($(lsn_num "$cross_lsn") / WV_SEG_SIZE + 2) * WV_SEG_SIZE )))
rec=$(TZ=UTC runuser -u postgres -- "$PGBIN/pg_waldump" -p "$T/work/waldump" -r Transaction -s "$cross_lsn" -e "$waldump_end" 2>&1 |
  grep -E "tx: +$cross_xid, .*desc: COMMIT " | head -n 1 || true)
[ -n "$rec" ] || fail "pg_waldump shows no commit of transaction $cross_xid after $cross_lsn"
cross_rec_lsn=$(sed -E 's/.*lsn: ([0-9A-F]+\/[0-9A-F]+),.*/\1/' <<<"$rec")
cross_rec_len=$(sed -E 's/.*len \(rec\/tot\): +[0-9]+\/ *([0-9]+),.*/\1/' <<<"$rec")
cross_time=$(sed -E 's/.*desc: COMMIT ([0-9-]+ [0-9:.]+) UTC.*/\1/' <<<"$rec")
assert_eq "$(seg_of_lsn "$(lsn_num "$cross_rec_lsn")") -> $(seg_of_lsn $(( $(lsn_num "$cross_rec_lsn") + cross_rec_len - 1 )))" \
  "$cross_seg -> $cross_end_seg" "the commit record of transaction $cross_xid ($cross_rec_len bytes at $cross_rec_lsn) crosses from $cross_seg into $cross_end_seg"
cross_us=$(date -u -d "$cross_time UTC" +%s%6N)
before_cross=$(date -u -d "@$(( (cross_us - 1) / 1000000 )).$(printf '%06d' $(( (cross_us - 1) % 1000000 )))" '+%Y-%m-%d %H:%M:%S.%6N+00')
log "commit of $cross_xid at $cross_time; plan target just before it: $before_cross"

# check_crossing WHAT: the index gives that commit to the segment where its record ends, so a plan
# for a time just before it includes that segment.
check_crossing() {
  wv_cli_json list --timeline 1
  local t
  # shellcheck disable=SC2016  # $n is jq's variable
  t=$(jq_out --arg n "$cross_end_seg" '.segments[] | select(.name == $n) | .first_commit_time')
  if [ "$t" != null ] && [ -n "$t" ] && [ "$(date -u -d "$t" +%s%6N)" = "$cross_us" ]; then
    ok "$1: $cross_end_seg's first commit time is the crossing commit's ($t)"
  else
    soft_fail "$1: $cross_end_seg's first_commit_time is '$t', expected the crossing commit's $cross_time UTC"
  fi
  wv_cli_json plan --target-time "$before_cross" --target-timeline 1
  check_rc 0 "$1: plan --target-time just before the crossing commit"
  check_eq "$(jq_out .last_segment)" "$cross_end_seg" "$1: the plan's last_segment is where the crossing commit ends"
}
check_crossing "as archived"

# Timeline 2, branching in the middle of a segment; a second base backup on it.
C="$T/tl2"
pg_restore_setup "$T/backup1" "$C" "recovery_target_name = 'branch'" "recovery_target_action = 'promote'"
pg_start "$C"
wait_recovery_done "$C" 120
assert_eq "$(psql_q "$C" "select timeline_id from pg_control_checkpoint()")" 2 "restore promoted to timeline 2"
psql_q "$C" "insert into t select g, 'tl2' from generate_series(100001, 110000) g" >/dev/null
pg_switch "$C" >/dev/null
pg_basebackup_to "$C" "$T/backup2"
psql_q "$C" "insert into t select g, 'tl2' from generate_series(110001, 111000) g" >/dev/null
last2=$(pg_switch "$C")
wait_archived "$C" "$last2" 90
pg_stop "$C"

# snapshot DIR: the three documents, keys sorted, into DIR/{list,timelines,backups}.json.
snapshot() {
  local dir=$1
  mkdir -p "$dir"
  wv_cli_json list
  assert_rc 0 "list --json ($(basename "$dir"))"
  printf '%s' "$RUN_OUT" | jq -S . >"$dir/list.json"
  wv_cli_json timelines
  assert_rc 0 "timelines --json ($(basename "$dir"))"
  printf '%s' "$RUN_OUT" | jq -S . >"$dir/timelines.json"
  wv_cli_json list --backups
  assert_rc 0 "list --backups --json ($(basename "$dir"))"
  printf '%s' "$RUN_OUT" | jq -S . >"$dir/backups.json"
}

same_documents() { # DIR-A DIR-B WHAT
  local f d
  for f in list timelines backups; do
    if d=$(diff -u "$1/$f.json" "$2/$f.json"); then
      ok "$3: $f --json identical"
    else
      soft_fail "$3: $f --json differs: $(printf '%s\n' "$d" | grep '^[-+][^-+]' | head -n 12 | tr '\n' '|')"
    fi
  done
}

snapshot "$T/work/before"
n_segments=$(jq '[.segments[] | select(.kind == "segment")] | length' "$T/work/before/list.json")
[ "$n_segments" -ge 6 ] || fail "only $n_segments segments archived"
assert_eq "$(jq -r '[.timelines[].timeline] | map(tostring) | join(",")' "$T/work/before/timelines.json")" "1,2" "timelines 1 and 2 are indexed"
assert_eq "$(jq '.backups | length' "$T/work/before/backups.json")" 2 "two base backups are indexed"
present=$(jq -r '[.segments[] | select(.kind == "segment" and .timeline == 2)][0].name' "$T/work/before/list.json")
# shellcheck disable=SC2016  # $n is jq's variable
present_sha=$(jq -r --arg n "$present" '.segments[] | select(.name == $n) | .sha256' "$T/work/before/list.json")
missing=$(seg_next "$last2")

# --- start-up repair rebuilds a deleted index
daemon_stop
assert_eq "$WV_DAEMON_RC" 0 "walvaultd stopped cleanly"
[ -f "$REPO/index.db" ] || fail "no index at $REPO/index.db"
rm -f "$REPO/index.db" "$REPO/index.db-wal" "$REPO/index.db-shm" "$REPO/index.db-journal"
[ -z "$(find "$REPO" -maxdepth 1 -name 'index.db*')" ] || fail "index files left: $(find "$REPO" -maxdepth 1 -name 'index.db*')"
ok "index.db and its -wal/-shm files deleted"
daemon_start
if [ -f "$REPO/index.db" ]; then ok "walvaultd recreated $REPO/index.db"; else soft_fail "walvaultd did not recreate $REPO/index.db"; fi

# The hot path, right after the rebuild.
rm -f "$T/work/present.out"
wv_get "$present" "$T/work/present.out"
assert_rc 0 "archive-get $present after the rebuild"
check_eq "$(sha256sum "$T/work/present.out" | cut -d' ' -f1)" "$present_sha" "archive-get $present returns the content the index recorded (sha256)"
wv_get "$missing" "$T/work/missing.out"
assert_rc 1 "archive-get of the never-archived $missing says 'not in the archive'"
if [ ! -e "$T/work/missing.out" ]; then ok "no file written for $missing"; else soft_fail "archive-get wrote $T/work/missing.out"; fi

snapshot "$T/work/restarted"
same_documents "$T/work/before" "$T/work/restarted" "after deleting index.db and restarting"
check_crossing "after deleting index.db and restarting"

# --- reindex on the running daemon
wv_cli_json reindex
assert_rc 0 "reindex --json"
objects=$(jq '.segments | length' "$T/work/before/list.json")
histories=$(jq '[.timelines[] | select(.parent != null)] | length' "$T/work/before/timelines.json")
check_eq "$(jq_out .indexed)" $((objects + histories + 2)) "reindex indexed every object (segments, partials, history and backup files)"
check_eq "$(jq_out .unreadable)" 0 "reindex: nothing unreadable"
snapshot "$T/work/reindexed"
same_documents "$T/work/before" "$T/work/reindexed" "after walvault reindex"
check_crossing "after walvault reindex"
wv_get "$missing" "$T/work/missing.out"
check_rc 1 "archive-get of $missing after reindex still says 'not in the archive'"

wv_cli status
assert_rc 0 "status after reindex"
check_match "archived: +$n_segments segments" "$RUN_OUT" "status text counts the $n_segments segments"
wv_cli_json status
check_rc 0 "status --json after reindex"
check_eq "$(jq_out .segments)" "$n_segments" "status --json: segments"
check_eq "$(jq_out .backup_files)" 2 "status --json: backup_files"
check_eq "$(jq_out .history_files)" "$histories" "status --json: history_files"

daemon_stop
finish
