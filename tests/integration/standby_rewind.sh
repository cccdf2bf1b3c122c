#!/usr/bin/env bash
# A primary and its streaming standby archive into one walvaultd and one repository, then the
# standby is promoted and the old primary is rewound with pg_rewind --restore-target-wal.
#   1. archive_mode = always: the primary (archive_mode = on) and the standby (always, same
#      archive_command) both push every segment; walvaultd acknowledges the second copy as a
#      duplicate: no failure on either side, duplicates > 0, conflicts = 0, one object per name,
#      check and verify pass. Split brain: an archived name pushed again with different bytes
#      (one flipped byte past the first page) is refused (exit 1, naming the file), the stored
#      object stays as it was, and the conflicts counter goes up by one.
#   2. The standby is promoted (timeline 2); both sides write (diverge); the old primary stops
#      cleanly with its post-divergence segments archived; the test removes them from its pg_wal
#      once archive-get proves them archived (identical bytes); pg_rewind --restore-target-wal must fetch them through the old primary's
#      restore_command (exact requests by real name: never prefetched). The rewound node then follows the new primary as a
#      standby and replays a row written there.
# 1 MiB segments keep it fast.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

GENEROUS=(--max-wal-age 1h --max-backup-age 1h --max-disk-usage 100%)

# Prefetch of WAL during archive recovery, on (its default is too); pg_rewind's exact requests
# must bypass it.
daemon_args=(--prefetch-bytes 64MiB)
daemon_start "${daemon_args[@]}"
DLOG=${WV_DAEMON_LOG[$WV_DAEMON_PID]}

# status_json: `walvault status --json` into RUN_OUT (call it directly, not in $(...)); read the
# counters with jq_out .since_start.KEY.
status_json() {
  wv_cli_json status
  [ "$RUN_RC" -eq 0 ] || fail "walvault status exited $RUN_RC: $(_wv_oneline "$RUN_ERR")"
}

# --- 1. a primary and a standby with archive_mode = always --------------------------------------
P="$T/primary"
# wal_log_hints: pg_rewind needs it (or data checksums). wal_keep_size: the old primary's
# shutdown checkpoint keeps its segments, so the test itself takes the archived ones away.
WV_INITDB_ARGS=--wal-segsize=1 pg_init "$P" "wal_log_hints = on" "wal_keep_size = 64MB"
pg_start "$P"
P_PORT=${WV_PG_PORT[$P]}
psql_q "$P" "create table t (id int primary key, src text)" >/dev/null
psql_q "$P" "insert into t select g, 'before backup' from generate_series(1, 100) g" >/dev/null
pg_basebackup_to "$P" "$T/backup"
# Retention prunes what is older than the backup (one backup kept): from here on, every segment
# archived stays.
backup_seg=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\))$/\1/p' "$T/backup/backup_label")
is_segment_name "$backup_seg" || fail "no start segment in $T/backup/backup_label"

S="$T/standby"
pg_restore_setup "$T/backup" "$S" \
  "archive_mode = always" \
  "primary_conninfo = 'host=127.0.0.1 port=$P_PORT user=postgres application_name=standby'"
rm -f "$S/recovery.signal"
runuser -u postgres -- touch "$S/standby.signal"
pg_start "$S"
S_PORT=${WV_PG_PORT[$S]}
streaming() { [ "$(psql_try "$S" "select status from pg_stat_wal_receiver" || true)" = streaming ]; }
wait_for 60 "the standby streaming from the primary" streaming
ok "standby streams from the primary (archive_mode = always)"

segs=()
for i in 1 2 3 4 5; do
  psql_q "$P" "insert into t select g, 'primary' from generate_series($((i * 1000)), $((i * 1000 + 199))) g" >/dev/null
  segs+=("$(pg_switch "$P")")
done
psql_q "$P" "insert into t values (9999, 'after the last switch')" >/dev/null
last=${segs[4]}
log "segments switched on the primary: ${segs[*]}"
wait_archived "$P" "$last" 60
wait_archived "$S" "$last" 60

check_eq "$(psql_q "$P" "select failed_count from pg_stat_archiver")" 0 "primary: pg_stat_archiver.failed_count = 0"
check_eq "$(psql_q "$S" "select failed_count from pg_stat_archiver")" 0 "standby: pg_stat_archiver.failed_count = 0"
status_json
dups=$(jq_out .since_start.duplicates)
if [[ "$dups" =~ ^[0-9]+$ ]] && [ "$dups" -gt 0 ]; then
  ok "walvaultd counted $dups duplicate push(es) (primary and standby pushed the same segments)"
else
  soft_fail "status since_start.duplicates is '$dups', expected > 0"
fi
conflicts0=$(jq_out .since_start.conflicts)
check_eq "$conflicts0" 0 "status since_start.conflicts = 0"
check_eq "$(jq_out .since_start.failed)" 0 "status since_start.failed = 0"
check_eq "$(jq_out .since_start.refused)" 0 "status since_start.refused = 0"

# Both servers' .done files name what each pushed; every name is one object in the repository.
done_names() { # DIR: the segments (from the backup's on) DIR's archiver has pushed
  find "$1/pg_wal/archive_status" -name '*.done' -printf '%f\n' | sed 's/\.done$//' |
    grep -E '^[0-9A-F]{24}$' | awk -v b="$backup_seg" '$0 >= b' | sort
}
mapfile -t p_done < <(done_names "$P")
mapfile -t s_done < <(done_names "$S")
both=$(comm -12 <(printf '%s\n' "${p_done[@]}" | sort) <(printf '%s\n' "${s_done[@]}" | sort) | wc -l)
if [ "$both" -ge 5 ]; then
  ok "$both segment(s) archived by both the primary and the standby"
else
  soft_fail "only $both segment(s) archived by both servers (primary: ${p_done[*]}; standby: ${s_done[*]})"
fi
not_by_standby=""
for s in "${segs[@]}"; do
  [[ " ${s_done[*]} " == *" $s "* ]] || not_by_standby+=" $s"
done
check_eq "$not_by_standby" "" "the standby archived each of the primary's switched segments itself"
wv_cli_json list
check_rc 0 "walvault list --json"
check_eq "$(jq_out '[.segments[].name] | length == (unique | length)')" true "walvault list: every name listed once"
listed=$(jq_out '.segments[].name')
missing=""
mapfile -t all_done < <(printf '%s\n' "${p_done[@]}" "${s_done[@]}" | sort -u)
multiple=""
for s in "${all_done[@]}"; do
  grep -qx -- "$s" <<<"$listed" || missing+=" $s"
  n=$(find "$REPO/wal" -type f -name "$s" | wc -l)
  [ "$n" -eq 1 ] || multiple+=" $s($n)"
done
check_eq "$missing" "" "every segment either server archived (${#all_done[@]} from $backup_seg on) is listed"
check_eq "$multiple" "" "one object per segment name in $REPO/wal"
check_eq "$(find "$REPO/wal" -type f -name '*.tmp.*' | wc -l)" 0 "no temporary objects left in $REPO/wal"
wv_cli check "${GENEROUS[@]}"
check_rc 0 "walvault check passes"
wv_cli verify
check_rc 0 "walvault verify passes"

# --- split brain: an archived name with different content --------------------------------------
victim=${segs[2]}
wv_get "$victim" "$T/work/orig.$victim"
assert_rc 0 "archive-get $victim"
mkdir -p "$T/work/split"
cp "$T/work/orig.$victim" "$T/work/split/$victim"
# One byte inside the third 8 KiB page, past its page header: still a valid-looking segment.
off=$((2 * 8192 + 4000))
old=$(od -An -tu1 -j "$off" -N1 "$T/work/split/$victim" | tr -d ' ')
printf '%b' "\\$(printf '%03o' $(((old + 0x5a) % 256)))" | dd of="$T/work/split/$victim" bs=1 seek="$off" conv=notrunc status=none
cmp -s "$T/work/orig.$victim" "$T/work/split/$victim" && fail "the byte flip did not change $victim"
give_to_postgres "$T/work/split" "$T/work/split/$victim"
wv_push "$T/work/split/$victim"
check_rc 1 "archive-push of $victim with different content is refused"
check_contains "$victim" "$RUN_ERR" "archive-push's message names the file"
check_eq "$(printf '%s\n' "$RUN_ERR" | grep -c .)" 1 "archive-push prints one line on stderr"
log "archive-push said: $RUN_ERR"
if wv_get_cmp "$victim" "$T/work/orig.$victim"; then
  ok "the stored $victim is untouched (archive-get returns the original bytes)"
else
  soft_fail "the stored $victim changed after the conflicting push"
fi
status_json
check_eq "$(jq_out .since_start.conflicts)" $((conflicts0 + 1)) "status since_start.conflicts went up by 1"
check_match "push of '$victim'.*failed" "$(cat "$DLOG")" "walvaultd logged the conflicting push as an error"
wv_cli verify
check_rc 0 "walvault verify still passes"

# --- 2. promotion, divergence, pg_rewind --restore-target-wal ----------------------------------
caught_up() {
  local lsn
  lsn=$(psql_q "$P" "select pg_current_wal_lsn()")
  [ "$(psql_try "$S" "select pg_last_wal_replay_lsn() >= '$lsn'" || true)" = t ]
}
wait_for 30 "the standby replaying everything the primary wrote" caught_up
psql_q "$S" "select pg_promote(true, 60)" >/dev/null
wait_recovery_done "$S" 60
psql_q "$S" "checkpoint" >/dev/null  # pg_rewind reads the source's timeline from its control file
check_eq "$(psql_q "$S" "select timeline_id from pg_control_checkpoint()")" 2 "the promoted standby is on timeline 2"
psql_q "$S" "insert into t select g, 'new primary' from generate_series(20000, 20099) g" >/dev/null
last2=$(pg_switch "$S")
wait_archived "$S" "$last2" 60

# The old primary goes on writing on timeline 1: they diverge.
for i in 1 2 3 4; do
  psql_q "$P" "insert into t select g, 'old primary after divergence' from generate_series($((30000 + i * 1000)), $((30000 + i * 1000 + 199))) g" >/dev/null
  oldlast=$(pg_switch "$P")
done
wait_archived "$P" "$oldlast" 60
pg_stop "$P"
check_eq "$(psql_q "$S" "select count(*) from t where src = 'old primary after divergence'")" 0 \
  "the new primary does not have the old primary's rows after the divergence"

# Divergence point: the switch LSN in 00000002.history; its segment on timeline 1.
hist=$(grep -E '^1[[:space:]]' "$S/pg_wal/00000002.history") || fail "no parent line in $S/pg_wal/00000002.history"
div_lsn=$(awk '{ print $2 }' <<<"$hist")
div_seg=00000001$(psql_q "$S" "select substr(pg_walfile_name('$div_lsn'::pg_lsn), 9)")
redo_seg=$(runuser -u postgres -- "$PGBIN/pg_controldata" "$P" | sed -n "s/^Latest checkpoint's REDO WAL file: *//p")
state=$(runuser -u postgres -- "$PGBIN/pg_controldata" "$P" | sed -n 's/^Database cluster state: *//p')
check_eq "$state" "shut down" "the old primary was shut down cleanly"
log "divergence at $div_lsn ($div_seg); old primary's shutdown checkpoint in $redo_seg"
[[ "$div_seg" < "$redo_seg" ]] || fail "expected the old primary's WAL to go past the divergence segment $div_seg (shutdown checkpoint in $redo_seg)"

# Every timeline-1 segment from the divergence point to the shutdown checkpoint's segment
# (excluded: it is the newest and not archived) must come from the archive.
wv_cli_json list
mapfile -t needed < <(jq_out --arg a "$div_seg" --arg b "$redo_seg" \
  '.segments[].name | select(test("^00000001[0-9A-F]{16}$")) | select(. >= $a and . < $b)')
segno() { echo $((16#${1:8:8} * 4096 + 16#${1:16:8})); }  # 1 MiB segments: 4096 per log id
check_eq "${#needed[@]}" $(($(segno "$redo_seg") - $(segno "$div_seg"))) \
  "every timeline-1 segment from $div_seg to before $redo_seg is archived"
[ "${#needed[@]}" -ge 2 ] || fail "expected at least 2 archived timeline-1 segments from $div_seg to before $redo_seg, got: ${needed[*]}"
seg_name() { printf '00000001%08X%08X\n' $(($1 / 4096)) $(($1 % 4096)); }  # timeline-1 name of a segment number

# prefetch_state: PREFETCH_STATE = "hits misses fetched" of status's prefetch object.
prefetch_state() {
  status_json
  PREFETCH_STATE=$(jq_out '"\(.prefetch.hits) \(.prefetch.misses) \(.prefetch.fetched)"')
}
# With prefetch on, the spool is primed first with a timeline-1 segment pg_rewind will ask for:
# a recovery-mode request (pg_wal/RECOVERYXLOG) for the segment two before the divergence makes
# walvaultd prefetch the one just before it, which the test then also removes from pg_wal.
# pg_rewind's exact request for it must still go to the repository, not the spool.
primed=""
if [ $(($(segno "$div_seg") - 2)) -lt "$(segno "$backup_seg")" ]; then
  log "SKIP: not enough archived segments before $div_seg to prime the prefetch spool"
else
  status_json
  primer=$(seg_name $(($(segno "$div_seg") - 2)))
  primed=$(seg_name $(($(segno "$div_seg") - 1)))
  spool_dir=$(jq_out .prefetch.directory)
  [ -d "$spool_dir" ] || fail "status' prefetch.directory '$spool_dir' is not a directory"
  install -d -o postgres -g postgres "$T/work/primer" "$T/work/primer/pg_wal"
  wv_get -C "$T/work/primer" "$primer" pg_wal/RECOVERYXLOG
  assert_rc 0 "recovery-mode archive-get of $primer (primes the prefetch spool)"
  spool_has_primed() {
    status_json
    [ "$(jq_out .prefetch.in_flight)" = 0 ] && [ -f "$spool_dir/$primed" ]
  }
  wait_for 30 "walvaultd prefetching $primed into $spool_dir" spool_has_primed
  ok "walvaultd prefetched $primed into its spool after a recovery-mode request for $primer"
fi

# Remove from the old primary's pg_wal what pg_rewind must fetch (only once archive-get proves
# the archive holds the same bytes).
to_remove=("${needed[@]}")
[ -n "$primed" ] && to_remove=("$primed" "${needed[@]}")
removed=()
for s in "${to_remove[@]}"; do
  [ -f "$P/pg_wal/$s" ] || continue
  wv_get "$s" "$T/work/rewind-check.$s"
  [ "$RUN_RC" -eq 0 ] || fail "archive-get $s exited $RUN_RC before removing it from $P/pg_wal: $(_wv_oneline "$RUN_ERR")"
  cmp -s "$T/work/rewind-check.$s" "$P/pg_wal/$s" || fail "the archived $s differs from the old primary's $P/pg_wal/$s"
  rm -f "$P/pg_wal/$s" "$P/pg_wal/archive_status/$s.done" "$T/work/rewind-check.$s"
  removed+=("$s")
done
log "archived timeline-1 segments pg_rewind must fetch: ${to_remove[*]} (removed from $P/pg_wal: ${removed[*]:-none})"
for s in "${to_remove[@]}"; do
  if [ -f "$P/pg_wal/$s" ]; then fail "$s is still in $P/pg_wal"; fi
done
ok "${#to_remove[@]} archived segment(s) pg_rewind needs are absent from the old primary's pg_wal (${#removed[@]} removed by the test)"

if [ -n "$primed" ]; then prefetch_state; prefetch_before=$PREFETCH_STATE; fi
status_json
served_before=$(jq_out .since_start.served)
log_mark=$(wc -l <"$DLOG")

# pg_rewind reads restore_command from the target's configuration (pg_init's restore_command is
# not set on a primary: add it the way pg_restore_setup does).
echo "restore_command = '$T/bin/archive-get --socket $SOCK %f %p'" >>"$P/postgresql.conf"
src="host=127.0.0.1 port=$S_PORT user=postgres dbname=postgres"
wv_run -u postgres -C "$T/work" -- "$PGBIN/pg_rewind" --target-pgdata "$P" --source-server "$src" --restore-target-wal --no-sync --debug
printf '%s\n%s\n' "$RUN_OUT" "$RUN_ERR" >"$T/logs/pg_rewind.log"
assert_rc 0 "pg_rewind --restore-target-wal ($RUN_SECS s)"
check_contains "Done!" "$RUN_OUT$RUN_ERR" "pg_rewind says Done!"
new_log=$(tail -n +"$((log_mark + 1))" "$DLOG")
for s in "${to_remove[@]}"; do
  check_match "restored $s \(" "$new_log" "pg_rewind fetched $s from the archive (walvaultd served it)"
  check_eq "$(grep -c "restored $s (" <<<"$new_log" || true)" 1 "pg_rewind asked for $s once"
done
status_json
served_after=$(jq_out .since_start.served)
check_eq "$((served_after - served_before))" "${#to_remove[@]}" "walvaultd served exactly the ${#to_remove[@]} segment(s) pg_rewind lacked"
if [ -n "$primed" ]; then
  prefetch_state
  check_eq "$PREFETCH_STATE" "$prefetch_before" \
    "prefetch hits, misses and fetched unchanged by pg_rewind's exact requests (none served from the spool, none prefetched)"
fi

# The rewound node (its configuration now is a copy of the source's) follows the new primary.
{
  echo "# --- rewound: a standby of the new primary ---"
  echo "port = $P_PORT"
  echo "archive_mode = on"
  echo "restore_command = '$T/bin/archive-get --socket $SOCK %f %p'"
  echo "primary_conninfo = 'host=127.0.0.1 port=$S_PORT user=postgres application_name=rewound'"
} >>"$P/postgresql.conf"
chown postgres: "$P/postgresql.conf"
runuser -u postgres -- touch "$P/standby.signal"
pg_start "$P"
psql_q "$S" "insert into t values (50000, 'after the rewind')" >/dev/null
has_row() { [ "$(psql_try "$P" "select count(*) from t where id = 50000" || true)" = 1 ]; }
wait_for 60 "the rewound node replays a row written on the new primary" has_row
ok "the rewound node replayed the new primary's row"
check_eq "$(psql_q "$P" "select pg_is_in_recovery()")" t "the rewound node is a standby"
check_eq "$(psql_q "$P" "select count(*) from t where src = 'old primary after divergence'")" 0 \
  "the rewound node no longer has the old primary's diverged rows"
check_eq "$(psql_q "$P" "select count(*) from t")" "$(psql_q "$S" "select count(*) from t")" "the rewound node has the new primary's rows"
check_eq "$(psql_q "$S" "select failed_count from pg_stat_archiver")" 0 "new primary: pg_stat_archiver.failed_count = 0"
status_json
log "prefetch at the end: $(jq_out -c '.prefetch | {hits, misses, fetched, discarded, spool_files}')"
check_eq "$(jq_out .since_start.conflicts)" $((conflicts0 + 1)) "no conflict besides the split-brain push"
check_eq "$(jq_out .since_start.failed)" 0 "status since_start.failed = 0 at the end"

pg_stop "$P"
pg_stop "$S"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stopped cleanly"
finish
