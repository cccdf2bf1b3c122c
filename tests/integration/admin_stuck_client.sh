#!/usr/bin/env bash
# A client that asks for an admin document (LIST, STATUS, ...) and then never reads its pipe
# must not hold up archiving or recovery: admin verbs run on a lane of their own, never on the
# push/get workers, and walvaultd gives up on a client that takes nothing for 30 s, which
# frees the admin lane again. Before this, one such client on a one-worker daemon blocked
# archive-push and archive-get for as long as it liked. Such a client holds up SIGTERM only
# for shutdown-timeout.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
daemon_start --workers 1 --request-timeout 60

pg_init "$T/pg"
pg_start "$T/pg"
last=""
for _ in $(seq 1 24); do last=$(pg_switch "$T/pg"); done
wait_archived "$T/pg" "$last"
first=$(wv_cli_json list && jq_out '.segments[0].name')
wv_cli_json list
list_bytes=$(printf '%s' "$RUN_OUT" | wc -c)
log "LIST --json is $list_bytes bytes; first segment $first"
[ "$list_bytes" -gt 8192 ] || fail "LIST --json is only $list_bytes bytes: too small to fill a 4 KiB pipe"

# stuck_clients N VERB: N connections (as postgres) that send VERB format=json with a 4 KiB
# pipe for the document and never read it; they hold on for 120 s or until killed.
stuck_clients() {
  runuser -u postgres -- python3 - "$SOCK" "$1" "$2" "$T/work/stuck" <<'PY' &
import fcntl, os, socket, struct, sys, time
F_SETPIPE_SZ = 1031
held = []
for _ in range(int(sys.argv[2])):
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.recv(64)  # the greeting
    payload = (sys.argv[3] + "\nformat=json").encode()
    s.sendmsg([struct.pack(">I", len(payload)) + payload],
              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", w))])
    os.close(w)
    held.append((s, r))
open(sys.argv[4], "w").close()
time.sleep(120)
PY
  STUCK=$!
  bg_register "$STUCK"
  wait_for 10 "the stuck clients have sent their requests" test -e "$T/work/stuck"
  rm -f "$T/work/stuck"
}

# 1. Three clients stuck on LIST: more than the admin lane's threads and the one worker.
stuck_clients 3 LIST
sleep 1
t0=$SECONDS
seg=$(pg_switch "$T/pg")
wait_archived "$T/pg" "$seg" 20
check_eq "$(( SECONDS - t0 < 15 ))" 1 "archive-push is served while three admin clients do not read ($(( SECONDS - t0 )) s)"
wv_get "$first" "$T/work/got"
check_rc 0 "archive-get is served too (${RUN_SECS}s)"
check_eq "$(stat -c %s "$T/work/got")" $((16 * 1024 * 1024)) "... and serves the whole segment"

# 2. After 30 s without progress walvaultd gives up on them and says so; the admin lane is
#    free again.
wait_for 60 "walvaultd gives up on the stuck clients" \
  grep -q "the client stopped reading, so walvaultd gave up on it" "$T/logs/walvaultd.1.log"
wv_cli_json status
check_rc 0 "walvault status answers once the stuck clients were dropped"
check_eq "$(jq_out '.version | type')" string "... with its document"
bg_stop "$STUCK"
wv_cli_json list
segments_before=$(jq_out '.segments | length')
daemon_stop

# 3. SIGTERM while a client holds a document write: walvaultd waits shutdown-timeout (2 s
#    here), not the 30 s client limit, then exits 1 saying so; nothing acknowledged is lost.
daemon_start --workers 1 --request-timeout 60 --shutdown-timeout 2
stuck_clients 1 LIST
sleep 1
t0=$SECONDS
daemon_stop
check_eq "$(( SECONDS - t0 < 10 ))" 1 "SIGTERM with a stuck client stops within shutdown-timeout ($(( SECONDS - t0 )) s)"
check_eq "$WV_DAEMON_RC" 1 "... and exits 1: the drain was cut short"
check_contains "shutdown-timeout: 1 connection(s) still open after 2 s" "$(cat "$T/logs/walvaultd.2.log")" \
  "walvaultd logs why it stopped without them"
bg_stop "$STUCK"
daemon_start --workers 1
wv_cli_json list
check_eq "$(jq_out '.segments | length')" "$segments_before" "every segment archived before the forced stop is still there"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "a stop with nothing open exits 0"

pg_stop "$T/pg"
finish
