#!/usr/bin/env bash
# Refusals: every input that is not this cluster's WAL, or not from an allowed peer, is refused
# with exit 1 and one stderr line naming the file and the cause, and the archive is left as it
# was. archive-get refuses names that are not PostgreSQL's and writes nothing.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

# check_push_refused NAME CAUSE-REGEX WHAT: checks the last wv_push was refused properly.
check_push_refused() {
  local name=$1 cause=$2 what=$3 lines
  log "$what -> exit $RUN_RC, stderr: $(_wv_oneline "$RUN_ERR")"
  check_rc 1 "$what: archive-push exits 1"
  check_contains "$name" "$RUN_ERR" "$what: stderr names $name"
  check_match "$cause" "$RUN_ERR" "$what: stderr gives the cause"
  lines=$(printf '%s\n' "$RUN_ERR" | grep -c . || true)
  check_eq "$lines" 1 "$what: exactly one stderr line"
}

# flip_byte FILE OFFSET: inverts one byte in place.
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# not_in_archive NAME WHAT: archive-get answers "not in the archive" (exit 1).
not_in_archive() {
  rm -f "$T/work/nia"
  wv_get "$1" "$T/work/nia"
  check_rc 1 "$2: $1 is not in the archive"
  rm -f "$T/work/nia"
}

daemon_start
D1=$WV_DAEMON_PID
mode=$(stat -c %a "$SOCK")
check_eq "$mode" 660 "walvaultd's socket has the default mode 0660"

A="$T/a"
pg_init "$A" "wal_keep_size = 1GB"
pg_start "$A"
psql_q "$A" "create table t (id int); insert into t select generate_series(1, 10000)" >/dev/null
s1=$(pg_switch "$A")
s2=$(pg_switch "$A")
wait_archived "$A" "$s2" 60
# The current segment: its first page is on disk (a committed insert flushes it), but it is not
# complete, so it is not archived yet.
psql_q "$A" "insert into t values (0)" >/dev/null
cur=$(psql_q "$A" "select pg_walfile_name(pg_current_wal_insert_lsn())")
[ "$cur" == "$(seg_next "$s2")" ] || fail "test bug: current segment $cur does not follow $s2"
log "archived $s1 and $s2; current segment $cur"

BAD="$T/bad"
install -d -o postgres -g postgres "$BAD"
mk() { install -d -o postgres -g postgres "$BAD/$1"; echo "$BAD/$1"; }

# --- same name, same content: accepted (idempotent) ----------------------------------------
wv_push "$A/pg_wal/$s1"
check_rc 0 "same segment pushed again with the same content"

# --- same name, different content ------------------------------------------------------------
d=$(mk conflict)
cp "$A/pg_wal/$s1" "$d/$s1"
flip_byte "$d/$s1" $((8 * 1024 * 1024 + 12345))
give_to_postgres "$d/$s1"
cmp -s "$d/$s1" "$A/pg_wal/$s1" && fail "test bug: the modified copy is identical"
wv_push "$d/$s1"
check_push_refused "$s1" 'different content|conflict' "same name, different content"
if wv_get_cmp "$s1" "$A/pg_wal/$s1"; then ok "stored $s1 untouched after the conflicting push"; else soft_fail "stored $s1 changed by a conflicting push"; fi

# --- a FIFO named like a segment: refused at once, not a wait for a writer that never comes --
d=$(mk fifo)
mkfifo "$d/000000010000000000000077"
give_to_postgres "$d/000000010000000000000077"
wv_run -u postgres -- timeout 10 "$T/bin/archive-push" --socket "$SOCK" "$d/000000010000000000000077"
check_push_refused 000000010000000000000077 'not a regular file' "a FIFO as %p"

# --- .history: stored once, never overwritten with different content ------------------------
lsn="${s2:8:8}"
lsn="$((16#$lsn))/$(printf '%X' $((16#${s2:16:8} * 0x1000000)))"
h1=$(mk history1)
h2=$(mk history2)
printf '1\t%s\tno recovery target specified\n' "$lsn" >"$h1/00000002.history"
printf '1\t%s\tbefore 2000-01-01 00:00:00+00\n' "$lsn" >"$h2/00000002.history"
give_to_postgres "$h1/00000002.history" "$h2/00000002.history"
wv_push "$h1/00000002.history"
check_rc 0 "a new 00000002.history is stored"
wv_push "$h1/00000002.history"
check_rc 0 "the same 00000002.history pushed again"
wv_push "$h2/00000002.history"
check_push_refused 00000002.history 'different content|conflict|overwrit' "00000002.history with different content"
if wv_get_cmp 00000002.history "$h1/00000002.history"; then ok "stored 00000002.history untouched"; else soft_fail "stored 00000002.history changed"; fi

# --- a segment from another cluster (second initdb) ------------------------------------------
B="$T/b"
pg_init "$B" "archive_mode = off"
pg_start "$B"
target=$(seg_next "$(seg_next "$cur")")
fb=$(pg_switch "$B")
while [[ ! "$fb" > "$target" ]]; do fb=$(pg_switch "$B"); done
d=$(mk foreign)
cp "$B/pg_wal/$fb" "$d/$fb"
give_to_postgres "$d/$fb"
pg_stop "$B"
sysA=$("$PGBIN/pg_controldata" "$A" | awk -F: '/system identifier/ { gsub(/ /, "", $2); print $2 }')
sysB=$("$PGBIN/pg_controldata" "$B" | awk -F: '/system identifier/ { gsub(/ /, "", $2); print $2 }')
[ "$sysA" != "$sysB" ] || fail "test bug: both clusters have system identifier $sysA"
wv_push "$d/$fb"
check_push_refused "$fb" 'system identifier' "segment of another cluster ($sysB, not $sysA)"
not_in_archive "$fb" "foreign segment refused"

# --- torn / short files ---------------------------------------------------------------------
d=$(mk torn)
head -c $((8 * 1024 * 1024)) "$A/pg_wal/$cur" >"$d/$cur"
give_to_postgres "$d/$cur"
wv_push "$d/$cur"
check_push_refused "$cur" 'torn|truncat|short' "torn segment (8 MiB of 16)"
d=$(mk empty)
: >"$d/$cur"
give_to_postgres "$d/$cur"
wv_push "$d/$cur"
check_push_refused "$cur" 'short|empty' "empty segment file"

# --- garbage (bad magic) ----------------------------------------------------------------------
d=$(mk garbage)
head -c "$WV_SEG_SIZE" /dev/urandom >"$d/$cur"
give_to_postgres "$d/$cur"
wv_push "$d/$cur"
check_push_refused "$cur" 'magic' "16 MiB of random bytes"

# --- a valid segment under another segment's name (page address mismatch) --------------------
d=$(mk renamed)
cp "$A/pg_wal/$s1" "$d/$cur"
give_to_postgres "$d/$cur"
wv_push "$d/$cur"
check_push_refused "$cur" 'page address|address' "$s1 copied under the name $cur"
not_in_archive "$cur" "after the torn, garbage and renamed pushes"

# --- names that are not PostgreSQL's --------------------------------------------------------
d=$(mk names)
cp "$A/pg_wal/$s1" "$d/notwal.txt"
lower=00000001000000000000000a
cp "$A/pg_wal/$s1" "$d/$lower"
give_to_postgres "$d/notwal.txt" "$d/$lower"
wv_push "$d/notwal.txt"
check_push_refused notwal.txt 'not a WAL file name|invalid' "file name notwal.txt"
wv_push "$d/$lower"
check_push_refused "$lower" 'not a WAL file name|invalid' "lower-case segment name $lower"

# --- files that cannot be opened ------------------------------------------------------------
missing=$(seg_next "$(seg_next "$cur")")
wv_push "$BAD/nonexistent/$missing"
check_push_refused "$missing" 'no such file|not found|does not exist' "a path that does not exist"
d=$(mk unreadable)
cp "$A/pg_wal/$s1" "$d/$missing"
chown root: "$d/$missing"
chmod 600 "$d/$missing"
wv_push "$d/$missing"
check_push_refused "$missing" 'permission denied' "a file postgres cannot read"
not_in_archive "$missing" "after the unopenable files"

# --- a peer uid that is not allowed -----------------------------------------------------------
# A client as `nobody` on the default socket (0660, group postgres) cannot even connect.
pub="$T/pub"
mkdir -p "$pub"
chmod 755 "$pub"
cp "$A/pg_wal/$s1" "$pub/$s1"
chmod 644 "$pub/$s1"
wv_push -u nobody "$pub/$s1"
check_rc 1 "nobody on the default 0660 socket: archive-push exits 1"
check_contains "$s1" "$RUN_ERR" "nobody on the default socket: stderr names $s1"
# A second daemon whose socket everyone may open (0666) but that allows only postgres.
SOCK2="$T/run2/walvault.sock"
REPO2="$T/repo2"
mkdir -p "$T/run2"
chmod 755 "$T/run2"
daemon_start --socket "$SOCK2" --repo "$REPO2" --allow-uid postgres --socket-mode 0666
D2=$WV_DAEMON_PID
mode=$(stat -c %a "$SOCK2")
check_eq "$mode" 666 "--socket-mode 0666 honoured"
wv_push -u nobody --socket "$SOCK2" "$pub/$s1"
check_push_refused "$s1" 'not allowed|forbidden' "uid nobody not in allow-uid"
wv_get --socket "$SOCK2" "$s1" "$T/work/nobody-check"
check_rc 1 "nothing stored by the refused peer"
rm -f "$T/work/nobody-check"
install -d -o nobody -g nogroup "$T/nobody"
wv_get -u nobody -C "$T/nobody" --socket "$SOCK2" "$s1" "$T/nobody/out"
check_rc 126 "archive-get as nobody (not allowed, no standby.signal)"
check_match 'not allowed|forbidden' "$RUN_ERR" "archive-get as nobody: stderr says not allowed"
left=$(ls -A "$T/nobody")
check_eq "$left" "" "archive-get as nobody wrote nothing"
# Positive control: the same file, as postgres, through the same socket.
wv_push --socket "$SOCK2" "$pub/$s1"
check_rc 0 "the same file from postgres through the 0666 socket is accepted"
daemon_stop "$D2"
WV_DAEMON_PID=$D1

# --- archive-get: names that are not PostgreSQL's ---------------------------------------------
nosb="$T/nosb"
sb="$T/sb"
install -d -o postgres -g postgres "$nosb" "$nosb/pg_wal" "$sb" "$sb/pg_wal"
runuser -u postgres -- touch "$sb/standby.signal"
long=$(printf 'A%.0s' $(seq 1 200))
for name in ../../etc/passwd /etc/passwd "$long" 00000001000000000000000G "../$s1" "$s1/../$s1"; do
  short=${name:0:40}
  wv_get -C "$nosb" "$name" pg_wal/RECOVERYXLOG
  check_rc 126 "archive-get '$short' during archive recovery (no standby.signal)"
  left=$(ls -A "$nosb/pg_wal")
  check_eq "$left" "" "archive-get '$short' (no standby.signal) wrote nothing in pg_wal"
  wv_get -C "$sb" "$name" pg_wal/RECOVERYXLOG
  check_rc 1 "archive-get '$short' in standby mode (standby.signal)"
  left=$(ls -A "$sb/pg_wal")
  check_eq "$left" "" "archive-get '$short' (standby.signal) wrote nothing in pg_wal"
done

# --- after all that: the daemon is alive and the real segment named $cur archives fine -------
kill -0 "$D1" 2>/dev/null || fail "walvaultd died during the bad inputs; log: $(tail -n 5 "$T/logs/walvaultd.1.log" | tr '\n' '|')"
ok "walvaultd still running after the bad inputs"
next=$(pg_switch "$A")
check_eq "$next" "$cur" "the next switched segment is $cur"
wait_archived "$A" "$cur" 60
if wv_get_cmp "$cur" "$A/pg_wal/$cur"; then ok "the real $cur archived and restored intact after the refused pushes of its name"; else soft_fail "real $cur not restored intact"; fi
failed=$(psql_q "$A" "select failed_count from pg_stat_archiver")
check_eq "$failed" 0 "PostgreSQL's own archiving never failed"

pg_stop "$A"
daemon_stop
finish
