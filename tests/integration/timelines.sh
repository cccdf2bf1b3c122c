#!/usr/bin/env bash
# Timelines: a restore of base backup B stops at a restore point in the middle of a segment,
# promotes to timeline 2 and keeps archiving into the same repository (its first timeline-2
# segment starts as a copy of the timeline-1 one, whose first page still says timeline 1); a
# second restore of B with recovery_target_timeline = 'latest' follows the archived
# 00000002.history onto timeline 2: it has the rows written there and not the timeline-1 rows
# written after the branch point. Prefetch (on by default) crosses the switch on timeline 2.
# walvaultd runs as postgres, with its spool on PGDATA's filesystem: prefetched segments are
# handed over (archive-get links the spool's checked file into pg_wal instead of a copy), and
# where that link fails archive-get copies from the passed file, still exit 0, byte-identical;
# a handoff whose descriptor does not arrive is asked for again as a copy.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
for tool in cc jq cmp python3; do
  command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed" >&2; exit 2; }
done

daemon_start --user postgres
PG="$T/pg"
pg_init "$PG"
pg_start "$PG"

psql_q "$PG" "create table t (id int primary key, tl text)" >/dev/null
psql_q "$PG" "insert into t select g, 'tl1 before backup' from generate_series(1, 100) g" >/dev/null
pg_basebackup_to "$PG" "$T/backup"
psql_q "$PG" "insert into t select g, 'tl1 after backup' from generate_series(101, 200) g" >/dev/null
psql_q "$PG" "select pg_create_restore_point('wv_branch')" >/dev/null
branch_seg=$(psql_q "$PG" "select pg_walfile_name(pg_current_wal_insert_lsn())")
psql_q "$PG" "insert into t select g, 'tl1 after branch point' from generate_series(201, 300) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 90
pg_stop "$PG"

# First restore: replays timeline 1 up to the restore point, promotes to timeline 2 and archives
# into the same repository (its archive_command came with the backup).
C1="$T/restore1"
pg_restore_setup "$T/backup" "$C1" "recovery_target_name = 'wv_branch'" "recovery_target_action = 'promote'"
pg_start "$C1"
wait_recovery_done "$C1" 120
tl=$(psql_q "$C1" "select timeline_id from pg_control_checkpoint()")
assert_eq "$tl" 2 "first restore promoted to timeline 2"
n=$(psql_q "$C1" "select count(*) from t")
assert_eq "$n" 200 "first restore has the timeline-1 rows up to the restore point"

# PostgreSQL archives 00000002.history first (history files go to the front of the queue).
wait_for 60 "00000002.history in the archive" bash -c \
  "cd '$T/work' && runuser -u postgres -- '$T/bin/archive-get' --socket '$SOCK' 00000002.history '$T/work/h2' 2>/dev/null"
grep -qE '^1[[:space:]]+[0-9A-F]+/[0-9A-F]+' "$T/work/h2" ||
  fail "00000002.history from the archive does not name parent timeline 1: $(tr '\n' '|' <"$T/work/h2")"
ok "00000002.history archived and names timeline 1 as its parent"

psql_q "$C1" "insert into t select g, 'tl2' from generate_series(1001, 1050) g" >/dev/null
last2=$(pg_switch "$C1")
assert_eq "$last2" "00000002${branch_seg:8}" "first timeline-2 segment is the branch segment on timeline 2"
psql_q "$C1" "insert into t select g, 'tl2 second segment' from generate_series(1051, 1060) g" >/dev/null
last2=$(pg_switch "$C1")
wait_archived "$C1" "$last2" 90
pg_stop "$C1"

# Second restore of the same backup, following the latest timeline.
C2="$T/restore2"
pg_restore_setup "$T/backup" "$C2" "recovery_target_timeline = 'latest'"
pg_start "$C2"
wait_recovery_done "$C2" 120
n=$(psql_q "$C2" "select count(*) from t where tl like 'tl2%'")
assert_eq "$n" 60 "second restore has the 60 rows written on timeline 2"
n=$(psql_q "$C2" "select count(*) from t")
assert_eq "$n" 260 "second restore has all 260 rows"
n=$(psql_q "$C2" "select count(*) from t where tl = 'tl1 after branch point'")
assert_eq "$n" 0 "second restore does not have the timeline-1 rows written after the branch point"
tl=$(psql_q "$C2" "select timeline_id from pg_control_checkpoint()")
if [ "$tl" -ge 2 ]; then ok "second restore is on timeline $tl (>= 2)"; else fail "second restore is on timeline $tl, expected >= 2"; fi
grep -q 'restored log file "00000002.history" from archive' "$(pg_logfile "$C2")" ||
  fail "second restore did not fetch 00000002.history from the archive"
ok "second restore fetched 00000002.history from the archive"
grep -q "restored log file \"00000002${branch_seg:8}\" from archive" "$(pg_logfile "$C2")" ||
  fail "second restore did not replay the timeline-2 branch segment 00000002${branch_seg:8} (first page says timeline 1) from the archive"
ok "second restore replayed the timeline-2 branch segment 00000002${branch_seg:8} from the archive"
grep -q "restored log file \"$last2\" from archive" "$(pg_logfile "$C2")" ||
  fail "second restore did not replay timeline-2 segment $last2 from the archive"
ok "second restore replayed timeline-2 segment $last2 from the archive"

# Prefetch (on by default) followed the archived history onto timeline 2: the branch segment
# was fetched ahead on timeline 2, never timeline 1's copy of it.
wv_cli_json status
hits=$(jq_out '.prefetch.hits')
[ "$hits" -ge 1 ] || fail "prefetch served no segment during the restores (hits $hits)"
ok "prefetch served $hits segment(s) from the spool during the restores"
grep -q "restored 00000002${branch_seg:8} (16777216 bytes, prefetched" "${WV_DAEMON_LOG[$WV_DAEMON_PID]}" ||
  fail "the timeline-2 branch segment 00000002${branch_seg:8} was not prefetched"
ok "the timeline-2 branch segment was prefetched on timeline 2, across the switch"
handed=$(jq_out '.prefetch.handed_over')
[ "$handed" -ge 1 ] && [ "$handed" -le "$hits" ] ||
  fail "prefetch handed over $handed of $hits hit(s): walvaultd and PostgreSQL share uid and filesystem, so it should"
grep -q "restored 0000000.* (16777216 bytes, prefetched, handed over" "${WV_DAEMON_LOG[$WV_DAEMON_PID]}" ||
  fail "walvaultd's log shows no prefetched segment handed over"
ok "prefetch handed $handed of its $hits hit(s) over as the spool's own checked file (linked into pg_wal)"

# A handoff whose link fails (as across two mounts of the spool): archive-get copies from the
# passed file instead. The link is refused once by the fault shim (tests/faults), in front of
# archive-get only.
SHIM="$T/libwalvault_faults.so"
cc -shared -fPIC -O1 -Wall -Wextra -o "$SHIM" "$WV_REPO_ROOT/tests/faults/walvault_faults.c" -ldl \
  >"$T/logs/shim-build.log" 2>&1 || fail "the fault shim does not build: $(_wv_oneline "$(cat "$T/logs/shim-build.log")")"
FB="$T/work/fallback"
mkdir -p "$FB/pg_wal"
chown -R postgres: "$FB"
wv_run -u postgres -C "$FB" -- "$T/bin/archive-get" --socket "$SOCK" "$branch_seg" pg_wal/RECOVERYXLOG
assert_rc 0 "recovery-mode archive-get of $branch_seg (walvaultd prefetches what follows it)"
rm -f "$FB/pg_wal/RECOVERYXLOG"
spool_ready() {
  wv_cli_json status
  [ "$(jq_out .prefetch.in_flight)" = 0 ] && [ "$(jq_out .prefetch.spool_files)" -ge 1 ]
}
wait_for 30 "walvaultd prefetching after $branch_seg" spool_ready
next=$(find "$REPO/prefetch" -maxdepth 1 -type f -name '0000000*' ! -name '*.*' -printf '%f\n' | sort | head -n 1)
[ -n "$next" ] || fail "no prefetched segment in $REPO/prefetch after a recovery-mode request"
wv_run -u postgres -C "$FB" -- "$T/bin/archive-get" --socket "$SOCK" "$next" "pg_wal/$next.exact"
assert_rc 0 "exact-mode archive-get of $next (the repository's copy, for comparison)"
echo "link EXDEV $FB/pg_wal count=1" >"$T/link.rules"
preload=$SHIM
asan=$(ldd "$T/bin/archive-get" 2>/dev/null | awk '$1 ~ /^(libasan|libclang_rt\.asan)/ { print $3; exit }')
[ -z "$asan" ] || preload="$asan:$SHIM"
before=$handed
wv_run -u postgres -C "$FB" -- env LD_PRELOAD="$preload" WALVAULT_FAULTS="$T/link.rules" WALVAULT_FAULTS_LOG="$T/logs/link-faults.log" \
  "$T/bin/archive-get" --socket "$SOCK" "$next" pg_wal/RECOVERYXLOG
assert_rc 0 "archive-get of prefetched $next whose link into pg_wal fails once"
grep -q "EXDEV" "$T/logs/link-faults.log" || fail "the shim refused no link: $(tr '\n' '|' <"$T/logs/link-faults.log")"
cmp -s "$FB/pg_wal/RECOVERYXLOG" "$FB/pg_wal/$next.exact" || fail "$next copied from the passed file differs from the repository's"
wv_cli_json status
[ "$(jq_out .prefetch.handed_over)" -gt "$before" ] || fail "$next was not handed over (so the fallback was not tested)"
ok "a handed-over $next whose link failed was copied from the passed file: exit 0, byte-identical"
[ -z "$(find "$FB/pg_wal" -name '*.tmp')" ] || fail "archive-get left a temporary file in pg_wal: $(ls "$FB/pg_wal" | tr '\n' ' ')"
ok "no temporary file left in pg_wal"

# The same where pg_wal's filesystem has no O_TMPFILE (archive-get then writes a named temporary
# file): the link of the passed file must not take that name.
rm -f "$FB/pg_wal/RECOVERYXLOG"
wv_run -u postgres -C "$FB" -- "$T/bin/archive-get" --socket "$SOCK" "$branch_seg" pg_wal/RECOVERYXLOG
assert_rc 0 "recovery-mode archive-get of $branch_seg again (walvaultd prefetches what follows it)"
rm -f "$FB/pg_wal/RECOVERYXLOG"
wait_for 30 "walvaultd prefetching after $branch_seg" spool_ready
next2=$(find "$REPO/prefetch" -maxdepth 1 -type f -name '0000000*' ! -name '*.*' -printf '%f\n' | sort | head -n 1)
[ -n "$next2" ] || fail "no prefetched segment in $REPO/prefetch after a recovery-mode request for $branch_seg"
wv_run -u postgres -C "$FB" -- "$T/bin/archive-get" --socket "$SOCK" "$next2" "pg_wal/$next2.exact"
assert_rc 0 "exact-mode archive-get of $next2 (the repository's copy, for comparison)"
printf 'open-write EOPNOTSUPP %s count=1\nlink EXDEV %s count=1\n' "$FB/pg_wal" "$FB/pg_wal" >"$T/link.rules"
wv_cli_json status
before=$(jq_out .prefetch.handed_over)
wv_run -u postgres -C "$FB" -- env LD_PRELOAD="$preload" WALVAULT_FAULTS="$T/link.rules" WALVAULT_FAULTS_LOG="$T/logs/link-faults2.log" \
  "$T/bin/archive-get" --socket "$SOCK" "$next2" pg_wal/RECOVERYXLOG
assert_rc 0 "archive-get of prefetched $next2 with no O_TMPFILE and its link failing once"
[ "$(grep -c 'EOPNOTSUPP\|EXDEV' "$T/logs/link-faults2.log")" -ge 2 ] || fail "the shim did not refuse both: $(tr '\n' '|' <"$T/logs/link-faults2.log")"
cmp -s "$FB/pg_wal/RECOVERYXLOG" "$FB/pg_wal/$next2.exact" || fail "$next2 restored through a named temporary file differs"
wv_cli_json status
[ "$(jq_out .prefetch.handed_over)" -gt "$before" ] || fail "$next2 was not handed over (so the fallback was not tested)"
[ -z "$(find "$FB/pg_wal" -name '*.tmp')" ] || fail "archive-get left a temporary file in pg_wal: $(ls "$FB/pg_wal" | tr '\n' ' ')"
ok "a handed-over $next2 copied into a named temporary file (no O_TMPFILE): exit 0, byte-identical, nothing left behind"

# A handoff whose descriptor does not arrive (the kernel may drop it): archive-get asks again
# without handoff and gets a copy. A stand-in daemon (Python) answers the first GET with
# handoff=1 and no descriptor, the second by writing the content into the file passed with it.
FAKE_SOCK="$T/run/fake.sock"
python3 - "$FAKE_SOCK" "$FB/pg_wal/$next.exact" >"$T/logs/fake-daemon.log" 2>&1 <<'PY' &
import array, os, socket, struct, sys
path, content = sys.argv[1], open(sys.argv[2], "rb").read()
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(4)
server.settimeout(60)
def frame(text):
    data = text.encode()
    return struct.pack(">I", len(data)) + data
for attempt in range(2):
    conn, _ = server.accept()
    conn.settimeout(30)
    conn.sendall(frame("WALVAULT 1"))
    data, fds = b"", []
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(8))
        if not msg:
            sys.exit("client closed early")
        data += msg
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[: len(payload) - len(payload) % 4]).tolist()
    request = data[4:].decode()
    print("request:", request.replace("\n", " "), flush=True)
    if "handoff=1" in request.split("\n"):
        conn.sendall(frame("OK\nsize=%d\nhandoff=1" % len(content)))
    else:
        os.pwrite(fds[0], content, 0)
        conn.sendall(frame("OK\nsize=%d" % len(content)))
    for fd in fds:
        os.close(fd)
    conn.close()
PY
FAKE_PID=$!
wait_for 10 "the stand-in daemon's socket" test -S "$FAKE_SOCK"
chmod 666 "$FAKE_SOCK"
rm -f "$FB/pg_wal/RECOVERYXLOG"
wv_run -u postgres -C "$FB" -- "$T/bin/archive-get" --socket "$FAKE_SOCK" "$next" pg_wal/RECOVERYXLOG
assert_rc 0 "archive-get of $next when walvaultd's handoff comes without a descriptor"
wait "$FAKE_PID" || fail "the stand-in daemon failed: $(tr '\n' '|' <"$T/logs/fake-daemon.log")"
cmp -s "$FB/pg_wal/RECOVERYXLOG" "$FB/pg_wal/$next.exact" || fail "$next restored after the failed handoff differs"
grep -q "asking walvaultd for a copy instead" <<<"$RUN_ERR" || fail "archive-get did not say why it asked again: $(_wv_oneline "$RUN_ERR")"
[ "$(grep -c '^request:' "$T/logs/fake-daemon.log")" = 2 ] && ! grep -q '^request:.*handoff=1.*handoff' "$T/logs/fake-daemon.log" &&
  [ "$(grep -c 'handoff=1' "$T/logs/fake-daemon.log")" = 1 ] || fail "not one GET with handoff=1 and one without: $(tr '\n' '|' <"$T/logs/fake-daemon.log")"
ok "a handoff without a descriptor: archive-get asked again without handoff and restored $next byte-identical"

pg_stop "$C2"
daemon_stop
finish
