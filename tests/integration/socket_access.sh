#!/usr/bin/env bash
# Who can reach the socket. walvaultd runs as root here, as in a container or a first try:
#   - with only --allow-uid postgres, in a directory it creates itself (not the setgid one the
#     other tests use), the socket is root:postgres 0660 and postgres is served;
#   - a socket directory postgres cannot search, or an explicit socket-group postgres is not
#     in, stops walvaultd at start-up with one line naming the uid, the path and what is missing;
#   - a group injected into walvaultd's process (a pod's fsGroup) only warns;
#   - a client the filesystem refuses explains it: who it runs as, the socket's owner, group and
#     mode, and which setting to change.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
pg_uid=$(id -u postgres)

# 1. The default group.
PLAIN="$T/plain/walvault.sock"
daemon_start --socket "$PLAIN"   # its probe runs archive-get as postgres: exit 1 proves it connects
check_eq "$(stat -c '%U:%G %a' "$PLAIN")" "root:postgres 660" "socket of a root walvaultd with allow-uid postgres"
wv_cli --socket "$PLAIN" status
check_rc 0 "walvault status as postgres"
daemon_stop

# 2. A directory postgres cannot search.
install -d -m 700 "$T/closed"
wv_run -- timeout 20 "$T/bin/walvaultd" --repo "$REPO" --socket "$T/closed/walvault.sock" --allow-uid postgres
check_rc 1 "walvaultd refuses to start when an allowed uid cannot reach the socket"
check_contains "allow-uid postgres (uid $pg_uid) cannot connect to socket '$T/closed/walvault.sock': no search (x) permission on directory '$T/closed' (root:root 0700)" \
  "$RUN_ERR$RUN_OUT" "... naming the uid, the directory and its owner and mode"
check_contains "socket-group" "$RUN_ERR$RUN_OUT" "... and the setting to change"
check_eq "$(printf '%s\n' "$RUN_ERR$RUN_OUT" | grep -c 'cannot connect')" 1 "... in one line"

# 3. An explicit socket-group postgres is not in.
wv_run -- timeout 20 "$T/bin/walvaultd" --repo "$REPO" --socket "$T/plain/walvault.sock" --allow-uid postgres --socket-group root
check_rc 1 "walvaultd refuses socket-group root with allow-uid postgres"
check_contains "no write permission on socket '$T/plain/walvault.sock' (root:root 0660)" "$RUN_ERR$RUN_OUT" "... naming the socket's owner, group and mode"

# 4. The client's side: a daemon that only serves root, so the socket stays root:root 0660.
ROOTONLY="$T/rootonly/walvault.sock"
daemon_start --socket "$ROOTONLY" --allow-uid root --probe-user root
wv_get --socket "$ROOTONLY" 00000001.history "$T/work/h"
check_rc 126 "archive-get refused by the filesystem (archive recovery)"
check_contains "[13] Permission denied; this process runs as postgres (uid $pg_uid) and has no write permission on socket '$ROOTONLY' (root:root 0660)" \
  "$RUN_ERR" "archive-get explains the refusal"
check_contains "socket-group" "$RUN_ERR" "... and names the setting"
daemon_stop

# 5. A pod's fsGroup: a group walvaultd's process has that /etc/group does not list (here given
# with setpriv). The socket's group is that one; the check cannot know postgres's container has
# it too, so it warns and starts instead of refusing.
wv_run -- timeout 5 setpriv --groups 0,4242 -- "$T/bin/walvaultd" --repo "$REPO" --socket "$T/pod/walvault.sock" \
  --allow-uid postgres --socket-group 4242
check_rc 124 "walvaultd in a pod-like setup (fsGroup 4242) starts and serves until stopped"
check_contains "can reach socket '$T/pod/walvault.sock' only if it shares walvaultd's supplementary groups" "$RUN_ERR$RUN_OUT" \
  "... warning that the allowed uid must share the fsGroup"
finish
