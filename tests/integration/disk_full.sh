#!/usr/bin/env bash
# Disk pressure: the repository's filesystem is full. walvaultd must never make room by
# deleting anything: the push fails with a clear message naming the cause (PostgreSQL keeps the
# segment and retries), nothing partial is left, and what was stored before is untouched.
source "$(dirname "$0")/lib.sh"
wv_setup

SMALL="$T/smallrepo"
wv_mount_tmpfs "$SMALL" 512k
# The index lives elsewhere (--spool), so only the objects compete for the tiny filesystem.
daemon_start --repo "$SMALL" --spool "$T/spool"

# Something small that fits: a timeline history file.
printf '1\t0/3000158\tno recovery target specified\n' >"$T/work/00000002.history"
chown postgres "$T/work/00000002.history"
wv_run -u postgres -- "$T/bin/archive-push" --socket "$SOCK" "$T/work/00000002.history"
check_rc 0 "a small .history file is stored on the small repository"

# A real 16 MiB segment compresses to about 1 MiB: more than the filesystem holds.
PG="$T/pg"
pg_init "$PG"
seg=$(cd "$PG/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | head -n 1)
[ -n "$seg" ] || fail "initdb left no segment in $PG/pg_wal"
wv_run -u postgres -- "$T/bin/archive-push" --socket "$SOCK" "$PG/pg_wal/$seg"
check_rc 1 "archive-push of a segment that does not fit exits 1 (PostgreSQL keeps it and retries)"
check_contains "$seg" "$RUN_ERR" "the message names the segment"
check_contains "No space left on device" "$RUN_ERR" "the message names the cause"
check_eq "$(printf '%s\n' "$RUN_ERR" | grep -c .)" 1 "exactly one line on stderr"

leftovers=$(find "$SMALL" -name '*.tmp.*' | wc -l)
check_eq "$leftovers" 0 "no temporary file is left in the repository"
check_eq "$(find "$SMALL/wal" -name "$seg" | wc -l)" 0 "no partial object under the segment's name"

wv_run -u postgres -- "$T/bin/archive-get" --socket "$SOCK" 00000002.history "$T/work/got.history"
check_rc 0 "the .history file stored before is still served"
if cmp -s "$T/work/got.history" "$T/work/00000002.history"; then ok "and it is unchanged"; else soft_fail "the .history file changed"; fi
wv_run -u postgres -- "$T/bin/archive-get" --socket "$SOCK" "$seg" "$T/work/got.seg"
check_rc 1 "the segment that did not fit is not in the archive"
[ ! -e "$T/work/got.seg" ] && ok "and archive-get left no file" || soft_fail "archive-get left $T/work/got.seg"

daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM"
finish
