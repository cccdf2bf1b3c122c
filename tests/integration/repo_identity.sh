#!/usr/bin/env bash
# A repository whose filesystem is not mounted looks like an empty directory. With the index
# outside it (--spool), walvaultd knows objects were archived there and must refuse to start a
# new, empty repository in its place: that one's "not there" answers would end a recovery early.
source "$(dirname "$0")/lib.sh"
wv_setup

daemon_start --spool "$T/spool"
PG="$T/pg"
pg_init "$PG"
seg=$(cd "$PG/pg_wal" && ls | grep -E '^[0-9A-F]{24}$' | head -n 1)
wv_run -u postgres -- "$T/bin/archive-push" --socket "$SOCK" "$PG/pg_wal/$seg"
check_rc 0 "a segment is archived"
daemon_stop

# The "unmount": the repository directory is there but empty.
mv "$REPO" "$REPO.mounted-elsewhere"
mkdir -p "$REPO"
rc=0
timeout 20 "$T/bin/walvaultd" --repo "$REPO" --spool "$T/spool" --socket "$SOCK" --allow-uid postgres \
  >"$T/logs/refused.out" 2>&1 </dev/null || rc=$?
check_eq "$rc" 1 "walvaultd refuses to start (exit 1) instead of creating a new repository"
check_contains "is the repository's filesystem mounted?" "$(cat "$T/logs/refused.out")" "the message says why"
check_contains "$T/spool/index.db" "$(cat "$T/logs/refused.out")" "the message names the index"
check_eq "$(find "$REPO" -mindepth 1 | wc -l)" 0 "nothing was created in the empty directory"

# "Mounted" again: it starts and serves what it archived.
rmdir "$REPO"
mv "$REPO.mounted-elsewhere" "$REPO"
daemon_start --spool "$T/spool"
wv_get_cmp "$seg" "$PG/pg_wal/$seg" && ok "the archived segment comes back once the repository is back" ||
  soft_fail "the archived segment did not come back"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM"
finish
