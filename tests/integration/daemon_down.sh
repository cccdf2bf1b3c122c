#!/usr/bin/env bash
# No daemon at the socket (never started, killed with a stale socket file left behind, or a
# socket directory that does not exist): archive-push fails fast with exit 1; archive-get exits
# 126 or above during archive recovery and exactly 1 in standby mode; nothing is written at %p.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup

seg=000000010000000000000001
src="$T/work/src"
install -d -o postgres -g postgres "$src"
head -c "$WV_SEG_SIZE" /dev/zero >"$src/$seg"
give_to_postgres "$src/$seg"
nosb="$T/nosb"
sb="$T/sb"
install -d -o postgres -g postgres "$nosb" "$nosb/pg_wal" "$sb" "$sb/pg_wal"
runuser -u postgres -- touch "$sb/standby.signal"

# check_down SOCKET WHAT: every client check against a socket nobody answers on.
check_down() {
  local sock=$1 what=$2 left
  wv_push --socket "$sock" "$src/$seg"
  check_rc 1 "$what: archive-push exits 1"
  check_contains "$seg" "$RUN_ERR" "$what: archive-push's stderr names $seg"
  if awk -v s="$RUN_SECS" 'BEGIN { exit !(s < 3) }'; then
    ok "$what: archive-push gave up in ${RUN_SECS}s (< 3 s)"
  else
    soft_fail "$what: archive-push took ${RUN_SECS}s (>= 3 s)"
  fi

  wv_get -C "$nosb" --socket "$sock" "$seg" pg_wal/RECOVERYXLOG
  if [ "$RUN_RC" -ge 126 ]; then
    ok "$what: archive-get without standby.signal exits $RUN_RC (>= 126: recovery stops)"
  else
    soft_fail "$what: archive-get without standby.signal exits $RUN_RC, expected >= 126; stderr: $RUN_ERR"
  fi
  if awk -v s="$RUN_SECS" 'BEGIN { exit !(s < 10) }'; then
    ok "$what: archive-get gave up in ${RUN_SECS}s (< 10 s)"
  else
    soft_fail "$what: archive-get took ${RUN_SECS}s (>= 10 s)"
  fi
  left=$(ls -A "$nosb/pg_wal")
  check_eq "$left" "" "$what: nothing written in pg_wal (no standby.signal)"

  wv_get -C "$sb" --socket "$sock" "$seg" pg_wal/RECOVERYXLOG
  check_rc 1 "$what: archive-get with standby.signal exits 1 (standby retries)"
  left=$(ls -A "$sb/pg_wal")
  check_eq "$left" "" "$what: nothing written in pg_wal (standby.signal)"
}

# 1. Never started: no socket file.
[ ! -e "$SOCK" ] || fail "test bug: $SOCK exists"
check_down "$SOCK" "no socket file"

# 2. The socket directory does not exist.
check_down "$T/nonexistent/walvault.sock" "no socket directory"

# 3. The daemon was killed: its socket file is left behind, nobody listens.
daemon_start
daemon_kill9
if [ -S "$SOCK" ]; then
  check_down "$SOCK" "stale socket after SIGKILL"
else
  log "walvaultd removed its socket even on SIGKILL?; checking the no-socket case again"
  check_down "$SOCK" "socket gone after SIGKILL"
fi

# 4. $WALVAULT_SOCKET: used when --socket is absent (dead socket, then a live daemon).
wv_run -u postgres -- env WALVAULT_SOCKET="$SOCK" "$T/bin/archive-push" "$src/$seg"
check_rc 1 "WALVAULT_SOCKET pointing at a dead daemon: archive-push exits 1"
daemon_start
rm -f "$nosb/pg_wal/x"
wv_run -u postgres -C "$nosb" -- env WALVAULT_SOCKET="$SOCK" "$T/bin/archive-get" 7FFFFFFD.history pg_wal/x
check_rc 1 "WALVAULT_SOCKET pointing at a live daemon: archive-get reaches it (not in archive: 1)"
# And the restarted daemon serves real requests after the crash.
wv_get -C "$nosb" "$seg" pg_wal/RECOVERYXLOG
check_rc 1 "restarted daemon: $seg not in the archive"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd exits 0 on SIGTERM"

# 5. After a clean stop too.
check_down "$SOCK" "after SIGTERM"
finish
