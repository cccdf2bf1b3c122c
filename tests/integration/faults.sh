#!/usr/bin/env bash
# Fault injection (issue 14): I/O errors, a full and a read-only file system, and slow I/O under
# the repository and the spool, injected into one running walvaultd by our LD_PRELOAD shim
# (tests/faults/walvault_faults.c, built here) and switched on and off through its rules file
# while the daemon runs. Real segments from a real PostgreSQL 15 cluster (1 MiB segments).
#
# For every fault on the repository's write path (EIO on write, on fsync of the file, on fsync of
# its directory; ENOSPC; EROFS on create/mkdir; EROFS on link with the cleanup failing too):
# archive-push exits 1 with one line on stderr naming the file and the cause (strerror text);
# nothing half-written becomes an object (no temporary file left behind, or one that is never
# listed, verified or served); objects stored before are byte-identical; and once the fault is
# cleared the same daemon (no restart) stores the same segment (exit 0) and serves it
# byte-identical, with `walvault verify` and `check`'s continuity passing.
# EIO on read: archive-get exits 126 during archive recovery (also for a name never archived and
# a .history probe: absence cannot be proven), 1 in standby mode; a duplicate push is 1 (the
# stored copy cannot be proven); `verify` names the unreadable objects; all clear once it ends.
# Slow I/O: a push and a get still succeed; a client whose --timeout runs out gets a clean 1,
# the daemon keeps answering other requests, and the retry after the fault is 0.
# The spool: a prefetch that cannot write, or a prefetched copy that cannot be read, costs only
# the prefetch (archive-get still 0, byte-identical, served from the repository); an index
# write that fails after the object is durable still answers 0, and the untrusted index makes
# "not there" a hard 126 until `walvault reindex` (no restart).
# Then PostgreSQL itself: its archiver under EIO keeps the segment and archives it once the fault
# clears; an archive recovery under EIO on read stops (FATAL, no promotion) and completes, with
# every row, once the fault clears.
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
for tool in cc jq curl sha256sum; do
  command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed" >&2; exit 2; }
done

# --- the shim: built here, warnings-clean; the rules file starts empty (no faults)
SHIM="$T/libwalvault_faults.so"
cc -shared -fPIC -O1 -Wall -Wextra -o "$SHIM" "$WV_REPO_ROOT/tests/faults/walvault_faults.c" -ldl \
  >"$T/logs/shim-build.log" 2>&1 || fail "the fault shim does not build: $(_wv_oneline "$(cat "$T/logs/shim-build.log")")"
check_eq "$(cat "$T/logs/shim-build.log")" "" "the fault shim builds with -Wall -Wextra and no warning"
RULES="$T/faults.rules"
FAULT_LOG="$T/logs/faults.log"
: >"$RULES"
: >"$FAULT_LOG"
FAULT_MARK=0
# faults RULE...: replaces the rules (none: every fault off). Atomic (rename), so the shim sees
# a new inode at once. fired then shows what the shim injected since.
faults() {
  printf '%s\n' "$@" >"$RULES.new"
  mv -f "$RULES.new" "$RULES"
  FAULT_MARK=$(wc -l <"$FAULT_LOG")
}
fired() { tail -n +"$((FAULT_MARK + 1))" "$FAULT_LOG"; }

SPOOL="$T/spool"
SEGS="$T/work/segs"
pick_port MPORT
WV_DAEMON_ENV=(WALVAULT_FAULTS="$RULES" WALVAULT_FAULTS_LOG="$FAULT_LOG")
wv_daemon_preload "$SHIM"
daemon_start --spool "$SPOOL" --metrics-listen "127.0.0.1:$MPORT" --prune-interval 0
PID=$WV_DAEMON_PID
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# --- real segments: PostgreSQL archives into a plain directory (cp), the test pushes them itself
install -d -o postgres -g postgres "$SEGS"
PG="$T/pg"
WV_INITDB_ARGS=--wal-segsize=1 pg_init "$PG" "archive_command = 'cp %p $SEGS/%f'"
pg_start "$PG"
psql_q "$PG" "create table t (id int primary key, payload text)" >/dev/null
pg_basebackup_to "$PG" "$T/backup"
for i in $(seq 1 12); do
  psql_q "$PG" "insert into t select g, md5(g::text) from generate_series($i * 1000, $i * 1000 + 999) g" >/dev/null
  last=$(pg_switch "$PG")
done
wait_archived "$PG" "$last" 60
# From now on PostgreSQL archives into walvaultd (part 5). Nothing is left to archive.
psql_q "$PG" "alter system set archive_command = '$T/bin/archive-push --socket $SOCK %p'" >/dev/null
psql_q "$PG" "select pg_reload_conf()" >/dev/null
mapfile -t S < <(find "$SEGS" -maxdepth 1 -regextype egrep -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort)
[ "${#S[@]}" -ge 14 ] || fail "expected at least 14 segments in $SEGS, got ${#S[@]}"
ok "${#S[@]} real segments, ${S[0]} .. ${S[-1]}"

install -d -o postgres -g postgres "$T/nosb" "$T/nosb/pg_wal" "$T/sb" "$T/sb/pg_wal"
runuser -u postgres -- touch "$T/sb/standby.signal"

# Repository contents (objects and identity, by SHA-256), temporary files excepted.
# walvault.probe: the health probe's file (metrics-listen), written and removed every 5 s.
snapshot() { (cd "$REPO" && find . -type f ! -name '*.tmp.*' ! -name 'walvault.probe*' | sort | xargs -r sha256sum); }
temps() { find "$REPO" -name '*.tmp.*' ! -name 'walvault.probe*' -printf '%P\n' | sort; }
listed() {
  wv_cli_json list
  jq_out '[.segments[].name] | join(" ")'
}
untouched() { # SNAPSHOT WHAT: every object of SNAPSHOT is still there, byte for byte
  local changed
  changed=$(LC_ALL=C comm -23 <(printf '%s\n' "$1" | LC_ALL=C sort) <(snapshot | LC_ALL=C sort))
  check_eq "$changed" "" "$2: the objects stored before are untouched (SHA-256)"
}
consistent() { # WHAT: verify and the continuity check pass, the daemon is the same process
  wv_cli verify
  check_rc 0 "$1: walvault verify passes: $(tail -n 1 <<<"$RUN_OUT")"
  wv_cli_json check
  check_eq "$(jq_out '.checks[] | select(.name == "continuity") | .ok')" true "$1: walvault check: WAL continuous"
  check_daemons_alive
  check_eq "$WV_DAEMON_PID/$WV_DAEMON_COUNT" "$PID/1" "$1: the same walvaultd (pid $PID), never restarted"
}
get_same() { # SEG WHAT: archive-get of SEG exits 0 with the original bytes
  holds "$2: archive-get $1 exits 0, byte-identical" wv_get_cmp "$1" "$SEGS/$1"
}
holds() { # MESSAGE CMD...: ok when CMD succeeds, else a (soft) failure
  local message=$1
  shift
  if "$@"; then ok "$message"; else soft_fail "$message: does not hold"; fi
}
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
is_listed() { [[ " $(listed) " == *" $1 "* ]]; }
not_listed() { ! is_listed "$1"; }
one_line() { # WHAT SEG CAUSE: RUN_ERR is one line naming SEG and CAUSE
  check_eq "$(grep -c . <<<"$RUN_ERR" || true)" 1 "$1: one line on stderr"
  check_contains "$2" "$RUN_ERR" "$1: it names the file"
  check_contains "$3" "$RUN_ERR" "$1: it names the cause ($3)"
}

log "--- baseline: ${S[0]} .. ${S[3]} stored before any fault"
for s in "${S[@]:0:4}"; do
  wv_push "$SEGS/$s"
  assert_rc 0 "baseline: archive-push $s"
done
BASE=$(snapshot)

# push_fault WHAT SEG CAUSE FIRED RULE...: SEG (never archived) pushed under RULE..., which must
# make the shim inject FIRED (a regex of its log); then the fault is cleared and SEG pushed again.
push_fault() {
  local what=$1 seg=$2 cause=$3 expect=$4 before
  shift 4
  before=$(snapshot)
  faults "$@"
  wv_push "$SEGS/$seg"
  check_rc 1 "$what: archive-push of $seg exits 1 (PostgreSQL keeps it and retries)"
  one_line "$what" "$seg" "$cause"
  check_match "$expect" "$(fired)" "$what: the shim injected it"
  check_eq "$(temps)" "" "$what: no temporary file left in the repository"
  check_eq "$(find "$REPO" -name "$seg" | wc -l)" 0 "$what: no object under $seg's name"
  holds "$what: walvault list does not show $seg" not_listed "$seg"
  wv_get "$seg" "$T/work/got.$seg"
  check_rc 1 "$what: archive-get $seg: not in the archive"
  untouched "$before" "$what"
  faults
  wv_push "$SEGS/$seg"
  check_rc 0 "$what cleared: the same archive-push of $seg exits 0"
  get_same "$seg" "$what cleared"
  consistent "$what cleared"
}

log "--- 1. the repository's write path"
push_fault "EIO on write" "${S[4]}" "Input/output error" "write $REPO/wal/.*\.tmp\..*: EIO" \
  "write EIO $REPO"
push_fault "EIO on fsync of the file" "${S[5]}" "Input/output error" "fsync $REPO/wal/.*\.tmp\..*: EIO" \
  "fsync-file EIO $REPO"
push_fault "ENOSPC on write" "${S[6]}" "No space left on device" "write $REPO/wal/.*: ENOSPC" \
  "write ENOSPC $REPO"
push_fault "EROFS (read-only remount)" "${S[7]}" "Read-only file system" "open $REPO/wal/.*\.tmp\..*: EROFS" \
  "modify EROFS $REPO"
pushed_errors=$(metric 'walvault_wal_pushed_total{result="error"}')
check_eq "$pushed_errors" 4 "metrics: walvault_wal_pushed_total{result=\"error\"} counts the 4 failed pushes"
# The health probe (every 5 s with metrics-listen) writes the way an object is written: a
# repository that fails writes is down for walvault_repository_up and /readyz, and up again
# once the fault is gone.
# A state read every 5 s can still show an earlier case's fault: wait for this one's cause.
repo_up_becomes() { # VALUE WHAT [EXTENDED-REGEX /readyz must match]
  local deadline=$((SECONDS + 20)) readyz=""
  until [ "$(metric "walvault_repository_up{repo=\"$REPO\"}")" = "$1" ] &&
    readyz=$(curl -s "http://127.0.0.1:$MPORT/readyz") && [[ -z "${3:-}" || "$readyz" =~ $3 ]]; do
    [ "$SECONDS" -lt "$deadline" ] || { soft_fail "$2: walvault_repository_up never became $1${3:+ with /readyz matching $3} (/readyz: $readyz)"; return; }
    sleep 0.5
  done
  ok "$2: walvault_repository_up $1${3:+, /readyz: $readyz}"
}
faults "write EIO $REPO"
repo_up_becomes 0 "EIO on write" "not reachable: unable to write file '.*/walvault\.probe\.tmp\..*Input/output error"
faults "modify EROFS $REPO"
repo_up_becomes 0 "EROFS" "not reachable: .*walvault\.probe.*Read-only file system"
faults
repo_up_becomes 1 "faults cleared"
# The probe's file lives for a few milliseconds every 5 s: none may stay.
deadline=$((SECONDS + 10))
until [ "$(find "$REPO" -maxdepth 1 -name 'walvault.probe*' | wc -l)" = 0 ]; do
  [ "$SECONDS" -lt "$deadline" ] || { soft_fail "a probe file stays in the repository: $(ls "$REPO")"; break; }
  sleep 0.2
done
ok "no probe file is left in the repository"

# EIO on the directory's fsync: the object is complete and linked, only its name is not durable
# yet: no "yes" (exit 1), and none while the directory cannot be synced; PostgreSQL's retry
# once it can be is a duplicate, proven and synced again, then acknowledged.
what="EIO on fsync of the directory"
seg=${S[8]}
before=$(snapshot)
faults "fsync-dir EIO $REPO"
wv_push "$SEGS/$seg"
check_rc 1 "$what: archive-push of $seg exits 1"
one_line "$what" "$seg" "Input/output error"
check_match "fsync $REPO/wal/[0-9A-F]{16}: EIO" "$(fired)" "$what: the shim injected it"
check_eq "$(temps)" "" "$what: no temporary file left"
# Unacknowledged, the object may be there or not; if it is, it is whole (synced before its link).
if [ -n "$(find "$REPO" -name "$seg")" ]; then
  log "observed: $seg is linked in the repository although the push failed"
  get_same "$seg" "$what: the unacknowledged object is whole:"
else
  ok "$what: no object under $seg's name"
fi
wv_push "$SEGS/$seg"
check_rc 1 "$what: PostgreSQL's retry while the directory still cannot be synced is 1 too (never 0 before durable)"
untouched "$before" "$what"
faults
wv_push "$SEGS/$seg"
check_rc 0 "$what cleared: the retry exits 0"
check_match "$seg was already archived with identical content" "$(tail -n 3 "$T/logs/walvaultd.1.log")" "$what cleared: ... as a proven duplicate"
get_same "$seg" "$what cleared"
consistent "$what cleared"

# The file system turns read-only between the write and the link: the link fails and so does
# the removal of the temporary file, which stays behind; it is never an object.
what="EROFS on link and unlink (remount between write and link)"
seg=${S[9]}
before=$(snapshot)
faults "link,unlink EROFS $REPO"
wv_push "$SEGS/$seg"
check_rc 1 "$what: archive-push of $seg exits 1"
one_line "$what" "$seg" "Read-only file system"
check_match "link $REPO/wal/.*: EROFS" "$(fired)" "$what: the shim failed the link"
check_match "unlink $REPO/wal/.*\.tmp\..*: EROFS" "$(fired)" "$what: ... and the removal of the temporary file"
LEFT=$(temps)
check_eq "$(wc -l <<<"$LEFT")" 1 "$what: one temporary file stays behind ($LEFT)"
check_eq "$(find "$REPO" -name "$seg" | wc -l)" 0 "$what: no object under $seg's name"
wv_get "$seg" "$T/work/got.$seg"
check_rc 1 "$what: archive-get $seg: not in the archive (the temporary file is never served)"
untouched "$before" "$what"
faults
wv_push "$SEGS/$seg"
check_rc 0 "$what cleared: the same archive-push exits 0"
get_same "$seg" "$what cleared"
holds "$what cleared: walvault list shows $seg" is_listed "$seg"
consistent "$what cleared (the leftover temporary file is not an object)"

log "--- 2. EIO on every read under the repository"
what="EIO on read"
seg=${S[1]}
faults "read EIO $REPO"
wv_get -C "$T/nosb" "$seg" pg_wal/RECOVERYXLOG
check_rc 126 "$what: archive-get $seg during archive recovery exits 126 (PostgreSQL stops, never promotes early)"
one_line "$what" "$seg" "Input/output error"
check_eq "$(ls -A "$T/nosb/pg_wal")" "" "$what: nothing written at %p"
check_match "read $REPO/wal/.*$seg: EIO" "$(fired)" "$what: the shim injected it"
wv_get "$seg" "$T/work/got.$seg"
check_rc 126 "$what: ... also for an exact request (pg_rewind's kind)"
wv_get -C "$T/sb" "$seg" pg_wal/RECOVERYXLOG
check_rc 1 "$what: in standby mode archive-get exits 1 (the standby retries or streams)"
check_eq "$(ls -A "$T/sb/pg_wal")" "" "$what: nothing written at %p in standby mode"
wv_get -C "$T/nosb" 000000010000000000000FFF pg_wal/RECOVERYXLOG
check_rc 126 "$what: a segment never archived is 126 too: absence cannot be proven"
wv_get -C "$T/nosb" 00000009.history pg_wal/RECOVERYHISTORY
check_rc 126 "$what: so is a .history probe (no timeline is picked blindly)"
wv_push "$SEGS/$seg"
check_rc 1 "$what: pushing the stored $seg again is 1: the stored copy cannot be proven"
one_line "$what (duplicate push)" "$seg" "Input/output error"
wv_cli verify
check_rc 1 "$what: walvault verify exits 1"
check_match "FAILED .*$seg.*Input/output error" "$RUN_OUT" "$what: ... naming the unreadable objects"
fetch_errors=$(metric 'walvault_wal_fetched_total{result="error"}')
holds "metrics: walvault_wal_fetched_total{result=\"error\"} = '$fetch_errors' (>= 5)" [ "${fetch_errors:-0}" -ge 5 ]
repo_up_becomes 0 "EIO on read" "not reachable: unable to read file '.*/walvault\.repo'.*Input/output error"
faults
get_same "$seg" "$what cleared"
untouched "$BASE" "$what cleared"
consistent "$what cleared"

log "--- 3. slow I/O"
what="slow I/O (300 ms a call under the repository, 200 ms under the spool)"
seg=${S[10]}
faults "write,fsync,read slow=300ms $REPO" "write,fsync slow=200ms $SPOOL"
wv_push "$SEGS/$seg"
check_rc 0 "$what: archive-push of $seg exits 0 after ${RUN_SECS}s"
check_match "fsync $REPO/wal/.*: slow 300ms" "$(fired)" "$what: the shim slowed the repository's calls"
check_match "$SPOOL/index.db.*: slow 200ms" "$(fired)" "$what: ... and the index's"
holds "$what: the push took ${RUN_SECS}s (>= 0.9: 3 slowed calls at least)" at_least "$RUN_SECS" 0.9
wv_get "$seg" "$T/work/got.$seg"
check_rc 0 "$what: archive-get exits 0 after ${RUN_SECS}s"
holds "$what: ... byte-identical" cmp -s "$SEGS/$seg" "$T/work/got.$seg"
rm -f "$T/work/got.$seg"
faults
consistent "$what cleared"

what="an fsync slower than the client's --timeout"
seg=${S[11]}
faults "fsync-file slow=4s $REPO"
wv_run -u postgres -- "$T/bin/archive-push" --socket "$SOCK" --timeout 1 "$SEGS/$seg"
check_rc 1 "$what: archive-push --timeout 1 exits 1 (never 0 before durable)"
holds "$what: ... after ${RUN_SECS}s (< 3)" below "$RUN_SECS" 3
one_line "$what" "$seg" "no answer from walvaultd"
wv_cli status
check_rc 0 "$what: meanwhile walvaultd answers walvault status (${RUN_SECS}s)"
holds "$what: ... at once (< 2 s)" below "$RUN_SECS" 2
faults
wv_push "$SEGS/$seg"
check_rc 0 "$what cleared: the retry exits 0 (it waits for the store in flight: ${RUN_SECS}s)"
check_eq "$(temps)" "$LEFT" "$what cleared: no new temporary file (only part 1's leftover)"
check_eq "$(find "$REPO" -name "$seg" | wc -l)" 1 "$what cleared: one object"
get_same "$seg" "$what cleared"
consistent "$what cleared"

log "--- 4. the spool: prefetch and index"
prefetch() {
  wv_cli_json status
  jq_out ".prefetch.$1"
}
what="EIO on write in the prefetch spool"
faults "write EIO $SPOOL/prefetch"
hits=$(prefetch hits)
wv_get -C "$T/nosb" "${S[0]}" pg_wal/RECOVERYXLOG
check_rc 0 "$what: archive-get ${S[0]} (recovery) exits 0"
holds "$what: ... byte-identical" cmp -s "$SEGS/${S[0]}" "$T/nosb/pg_wal/RECOVERYXLOG"
rm -f "$T/nosb/pg_wal/RECOVERYXLOG"
prefetch_failed() { grep -q "$SPOOL/prefetch/.*: EIO" <<<"$(fired)"; }
wait_for 20 "a prefetch of the segments after ${S[0]} to fail" prefetch_failed
ok "$what: the shim failed the prefetch's writes"
wv_get -C "$T/nosb" "${S[1]}" pg_wal/RECOVERYXLOG
check_rc 0 "$what: archive-get of the next segment ${S[1]} exits 0 (from the repository)"
holds "$what: ... byte-identical" cmp -s "$SEGS/${S[1]}" "$T/nosb/pg_wal/RECOVERYXLOG"
rm -f "$T/nosb/pg_wal/RECOVERYXLOG"
check_eq "$(prefetch hits)/$(prefetch fetched)" "$hits/0" "$what: nothing was prefetched or served from the spool"
spool_empty() { [ -z "$(find "$SPOOL/prefetch" -type f)" ]; }
wait_for 10 "the failed prefetches' files to go" spool_empty  # one may be between its create and its unlink
ok "$what: no partial file left in the spool"

what="EIO on read of a prefetched copy"
faults
wv_get -C "$T/nosb" "${S[2]}" pg_wal/RECOVERYXLOG
check_rc 0 "$what: archive-get ${S[2]} (recovery) exits 0"
rm -f "$T/nosb/pg_wal/RECOVERYXLOG"
prefetched() { [ -f "$SPOOL/prefetch/${S[3]}" ] && [ "$(prefetch spool_files)" -ge 1 ]; }
wait_for 20 "${S[3]} to be prefetched into the spool" prefetched
ok "$what: ${S[3]} was prefetched"
faults "read EIO $SPOOL/prefetch"
hits=$(prefetch hits)
wv_get -C "$T/nosb" "${S[3]}" pg_wal/RECOVERYXLOG
check_rc 0 "$what: archive-get ${S[3]} exits 0"
holds "$what: ... byte-identical" cmp -s "$SEGS/${S[3]}" "$T/nosb/pg_wal/RECOVERYXLOG"
rm -f "$T/nosb/pg_wal/RECOVERYXLOG"
check_match "read $SPOOL/prefetch/${S[3]}: EIO" "$(fired)" "$what: the shim failed the read of the prefetched copy"
check_contains "not served (read: Input/output error); fetching it from the repository instead" "$(cat "$T/logs/walvaultd.1.log")" \
  "$what: walvaultd logged it and served the repository's copy"
check_eq "$(prefetch hits)" "$hits" "$what: not counted as a prefetch hit"
faults

what="EIO on the index's writes (the spool)"
seg=${S[12]}
faults "write,fsync EIO $SPOOL"
wv_push "$SEGS/$seg"
check_rc 0 "$what: archive-push of $seg exits 0: the object is durable, only its index row failed"
check_match "$SPOOL/index.db.*: EIO" "$(fired)" "$what: the shim failed SQLite's write"
check_contains "unable to index '$seg'" "$(cat "$T/logs/walvaultd.1.log")" "$what: walvaultd logged the index failure"
wv_cli_json status
check_eq "$(jq_out .index_trusted)" false "$what: status: index_trusted false"
check_eq "$(metric walvault_index_trusted)" 0 "$what: metrics: walvault_index_trusted 0"
faults
get_same "$seg" "$what cleared: the object"
wv_get -C "$T/nosb" 000000010000000000000FFF pg_wal/RECOVERYXLOG
check_rc 126 "$what cleared: an unknown segment during recovery is 126 while the index is untrusted (fail closed)"
check_contains "run 'walvault reindex'" "$RUN_ERR" "$what cleared: ... saying what to do"
wv_cli reindex
check_rc 0 "$what cleared: walvault reindex (no restart): $(_wv_oneline "$RUN_OUT")"
wv_cli_json status
check_eq "$(jq_out .index_trusted)" true "$what cleared: index_trusted true again"
wv_get -C "$T/nosb" 000000010000000000000FFF pg_wal/RECOVERYXLOG
check_rc 1 "$what cleared: an unknown segment is 'not there' (1) again"
consistent "$what cleared"

log "--- 5. PostgreSQL's archiver under EIO on write"
# Every segment PostgreSQL archived by cp is in walvaultd now (the rest: duplicates).
for s in "${S[@]}"; do
  wv_push "$SEGS/$s"
  [ "$RUN_RC" -eq 0 ] || fail "push of $s before part 5: exit $RUN_RC: $RUN_ERR"
done
what="PostgreSQL's archiver, EIO on write"
faults "write EIO $REPO"
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(100000, 101000) g" >/dev/null
seg=$(pg_switch "$PG")
archive_failed() { [ "$(psql_q "$PG" "select failed_count > 0 and last_failed_wal = '$seg' from pg_stat_archiver")" = t ]; }
wait_for 20 "PostgreSQL's archive_command to fail on $seg" archive_failed
ok "$what: pg_stat_archiver: last_failed_wal $seg"
pglog=$(cat "$(pg_logfile "$PG")")
check_contains "archive command failed with exit code 1" "$pglog" "$what: PostgreSQL logs the failed archive_command"
check_match "archive-push: unable to archive 'pg_wal/$seg': .*Input/output error" "$pglog" "$what: ... and archive-push's line"
holds "$what: PostgreSQL keeps $seg in pg_wal" [ -f "$PG/pg_wal/$seg" ]
faults
psql_q "$PG" "select pg_reload_conf()" >/dev/null  # wakes the archiver now
wait_archived "$PG" "$seg" 60
ok "$what cleared: PostgreSQL archived $seg"
cp "$PG/pg_wal/$seg" "$SEGS/$seg"
get_same "$seg" "$what cleared"
ROWS_AT_STOP=$(psql_q "$PG" "$ROWS")
pg_stop "$PG"

log "--- 6. archive recovery under EIO on read"
what="archive recovery, EIO on read"
R="$T/restored"
pg_restore_setup "$T/backup" "$R" "archive_mode = off"
first=$(sed -n 's/^START WAL LOCATION: .* (file \([0-9A-F]\{24\}\))$/\1/p' "$R/backup_label")
[ -n "$first" ] || fail "no START WAL LOCATION in $R/backup_label"
# Segments only: the .history probe before them is answered (identity readable), the first
# segment recovery needs is not.
faults "read EIO $REPO/wal/${first:0:16}"
WV_CLUSTERS+=("$R")  # stopped by the EXIT trap should it start after all
rc=0
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$R" -l "$(pg_logfile "$R")" -w -t 60 start >/dev/null 2>&1 || rc=$?
check_eq "$rc/$(pg_is_running "$R" && echo running || echo stopped)" "1/stopped" "$what: PostgreSQL does not start: recovery stops"
rlog=$(cat "$(pg_logfile "$R")")
check_match "FATAL: +could not restore file \"$first\" from archive: command not executable" "$rlog" \
  "$what: PostgreSQL's FATAL on $first, the backup's first segment (its wording for exit 126)"
check_match "archive-get: unable to restore '$first' to 'pg_wal/RECOVERYXLOG': .*Input/output error" "$rlog" \
  "$what: ... after archive-get's line naming the cause"
holds "$what: not promoted (recovery.signal still there)" [ -f "$R/recovery.signal" ]
faults
pg_start "$R"
wait_recovery_done "$R" 120
check_eq "$(psql_q "$R" "$ROWS")" "$ROWS_AT_STOP" "$what cleared: recovery completes with every row"
HISTORY="$T/work/$(find "$R/pg_wal" -maxdepth 1 -name '*.history' -printf '%f\n' | sort | tail -n 1)"
cp "$R/pg_wal/$(basename "$HISTORY")" "$HISTORY"
give_to_postgres "$HISTORY"
pg_stop "$R"

log "--- 7. EROFS on mkdir: the first .history file needs wal/history/"
what="EROFS on mkdir"
name=$(basename "$HISTORY")
[ ! -e "$REPO/wal/history" ] || fail "test bug: $REPO/wal/history exists already"
faults "modify EROFS $REPO"
wv_push "$HISTORY"
check_rc 1 "$what: archive-push of $name (a real one, from the promotion) exits 1"
one_line "$what" "$name" "Read-only file system"
check_match "mkdir $REPO/wal/history: EROFS" "$(fired)" "$what: the shim failed the mkdir"
holds "$what: no wal/history directory" [ ! -e "$REPO/wal/history" ]
faults
wv_push "$HISTORY"
check_rc 0 "$what cleared: archive-push of $name exits 0"
rm -f "$T/work/got.history"
wv_get "$name" "$T/work/got.history"
check_rc 0 "$what cleared: archive-get $name exits 0"
holds "$what cleared: ... byte-identical" cmp -s "$HISTORY" "$T/work/got.history"

log "--- every segment back, byte for byte"
bad=0
for s in "${S[@]}"; do wv_get_cmp "$s" "$SEGS/$s" || bad=$((bad + 1)); done
check_eq "$bad" 0 "all ${#S[@]} segments come back byte-identical"
check_eq "$(temps)" "$LEFT" "the only temporary file in the repository is the one part 1 could not remove"
consistent "at the end"
check_eq "$(wc -l <"$FAULT_LOG")" "$(grep -c "^walvault_faults: pid $PID: " "$FAULT_LOG" || true)" "every injected fault hit walvaultd, nothing else"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM"
# Only a restart clears what a read-only remount left behind (a temp file of a process now gone).
WV_DAEMON_ENV=()
daemon_start --spool "$SPOOL"
check_eq "$(temps)" "" "after a restart the leftover temporary file is removed"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM"
finish
