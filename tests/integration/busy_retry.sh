#!/usr/bin/env bash
# max-connections reached: walvaultd answers BUSY instead of its greeting, and the clients
# retry within their --timeout instead of failing at once (which would stop a recovery:
# archive-get exits 126). Given up after --timeout, the message says so.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
daemon_start --max-connections 2 --request-timeout 60

# hold_slots SECONDS: two connections (of postgres, an allowed uid) that read the greeting and
# send nothing, for SECONDS.
hold_slots() {
  runuser -u postgres -- python3 - "$SOCK" "$1" "$T/work/held" <<'PY' &
import socket, sys, time
held = []
for _ in range(2):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.recv(64)  # the greeting
    held.append(s)
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[2]))
PY
  HOLDER=$!
  bg_register "$HOLDER"
  wait_for 10 "the two slots are held" test -e "$T/work/held"
  rm -f "$T/work/held"
}

# 1. The slots free up after 3 s: archive-get waits and gets its answer ("not there": exit 1).
hold_slots 3
wv_run -u postgres -- "$T/bin/archive-get" --socket "$SOCK" --timeout 20 7FFFFFF0.history "$T/work/h"
check_rc 1 "archive-get retried through BUSY and got its answer"
check_eq "$(awk -v s="$RUN_SECS" 'BEGIN { print (s >= 2) ? "yes" : "no" }')" yes "... after waiting for a free slot (${RUN_SECS}s)"
bg_stop "$HOLDER"
check_contains "answered BUSY" "$(cat "$T/logs/walvaultd.1.log")" "walvaultd logs the BUSY refusals"

# 2. Busy for longer than --timeout: it gives up, saying why.
hold_slots 30
wv_run -u postgres -- "$T/bin/archive-get" --socket "$SOCK" --timeout 2 7FFFFFF0.history "$T/work/h"
check_rc 126 "archive-get gives up after --timeout (archive recovery)"
check_contains "is busy: walvaultd is serving 2 connections (max-connections) (still busy after 2 s, --timeout)" "$RUN_ERR" \
  "... naming the cause and the timeout"
bg_stop "$HOLDER"
daemon_stop
finish
