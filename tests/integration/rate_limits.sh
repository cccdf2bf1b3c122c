#!/usr/bin/env bash
# Rate limits (push-rate-limit, get-rate-limit, backup-rate-limit): each paces its transfers
# (get: archive-get and walvault restore's chunk streams) to the configured bytes per second,
# shows in `walvault status`, and changes with a SIGHUP; a bad value is refused and changes
# nothing. The lower bounds on elapsed time are what a limit
# must cost (16 MiB at 4 MiB/s cannot take less than about 3.9 s); the upper bounds only catch
# a limit that did not turn off.
source "$(dirname "$0")/lib.sh"
wv_setup

PG="$T/pg"
pg_init "$PG"
conf="$T/walvaultd.conf"
write_conf() { printf '%s\n' "$@" >"$conf"; }
reload_and_wait() { # JQ-EXPRESSION-THAT-MUST-HOLD MESSAGE
  kill -HUP "$WV_DAEMON_PID"
  local deadline=$((SECONDS + 20))
  while :; do
    wv_cli --json status
    if [ "$RUN_RC" -eq 0 ] && [ "$(printf '%s' "$RUN_OUT" | jq -r "$1")" = true ]; then break; fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$2: status never showed $1 after SIGHUP"
    sleep 0.2
  done
  ok "$2"
}
MiB=$((1 << 20))

write_conf "push-rate-limit = 4MiB/s"
daemon_start --allow-uid postgres,root --config "$conf" \
  --pg-conninfo "host=$T/pgsock port=${WV_PG_PORT[$PG]} user=postgres"

# PostgreSQL's own archiver pushes through the limit; then the same segment again by hand (a
# duplicate: read whole and compared), timed: 16 MiB in 1 MiB pieces at 4 MiB/s, 0.4 MiB of
# burst.
pg_start "$PG"
seg=$(pg_switch "$PG")
wait_archived "$PG" "$seg" 120
cp "$PG/pg_wal/$seg" "$T/work/$seg"
chown postgres "$T/work/$seg"
wv_run -u postgres -- "$T/bin/archive-push" --socket "$SOCK" "$T/work/$seg"
check_rc 0 "archive-push under push-rate-limit 4MiB/s (a duplicate of what PostgreSQL archived)"
awk -v s="$RUN_SECS" 'BEGIN { exit !(s >= 3.5 && s < 60) }' || soft_fail "the push took ${RUN_SECS}s, expected at least 3.5s (16 MiB at 4 MiB/s)"
ok "the push took ${RUN_SECS}s at 4 MiB/s"
wv_cli --json status
check_rc 0 "walvault status"
check_eq "$(jq_out '.rate_limits.push.bytes_per_second')" $((4 * MiB)) "status shows the push limit in bytes per second"
check_eq "$(jq_out '.rate_limits.push.waited_seconds >= 5')" true "status shows the pushes waited ($(jq_out '.rate_limits.push.waited_seconds') s)"
check_eq "$(jq_out '.rate_limits.push.bytes >= 33554432')" true "status counts the bytes both pushes read ($(jq_out '.rate_limits.push.bytes'))"
check_eq "$(jq_out '.rate_limits.get.bytes_per_second')" 0 "no get limit by default"
check_eq "$(jq_out '.prefetch.enabled')" true "prefetch is on without a get limit"
wv_cli status
check_contains "rate limits:       push 4.0 MiB/s" "$RUN_OUT" "the text status shows the limits"

# A SIGHUP moves the limit from push to get; the same push again (a duplicate: read whole and
# compared) is no longer paced.
write_conf "get-rate-limit = 4MiB"
reload_and_wait '.rate_limits.push.bytes_per_second == 0 and .rate_limits.get.bytes_per_second == 4194304' \
  "SIGHUP: push limit off, get limit 4 MiB/s"
wv_cli --json status
check_eq "$(jq_out '.prefetch.enabled')" false "prefetch is off under get-rate-limit (its threads would share the limit with the segment recovery waits for)"
wv_run -u postgres -- "$T/bin/archive-push" --socket "$SOCK" "$T/work/$seg"
check_rc 0 "the same push again is a duplicate"
awk -v s="$RUN_SECS" 'BEGIN { exit !(s < 2.5) }' || soft_fail "the unpaced duplicate push took ${RUN_SECS}s"
ok "without the limit the duplicate push took ${RUN_SECS}s"

# get-rate-limit: archive-get of the segment, byte-identical, paced.
install -d -o postgres "$T/work/get"
wv_run -u postgres -- "$T/bin/archive-get" --socket "$SOCK" "$seg" "$T/work/get/$seg"
check_rc 0 "archive-get under get-rate-limit 4MiB"
cmp -s "$T/work/$seg" "$T/work/get/$seg" || fail "archive-get under a rate limit returned different bytes"
ok "the segment came back byte-identical"
awk -v s="$RUN_SECS" 'BEGIN { exit !(s >= 3.2 && s < 60) }' || soft_fail "the get took ${RUN_SECS}s, expected at least 3.2s"
ok "the get took ${RUN_SECS}s at 4 MiB/s"
wv_cli --json status
check_eq "$(jq_out '.rate_limits.get.bytes')" $((16 * MiB)) "status counts the bytes the get decoded"

# backup-rate-limit: the base backup's stream is paced.
write_conf "backup-rate-limit = 8MiB"
reload_and_wait '.rate_limits.get.bytes_per_second == 0 and .rate_limits.backup.bytes_per_second == 8388608' \
  "SIGHUP: get limit off, backup limit 8 MiB/s"
t0=$(date +%s.%N)
wv_cli -u root --json backup --label paced
check_rc 0 "walvault backup under backup-rate-limit 8MiB"
t1=$(date +%s.%N)
bytes=$(jq_out '.plain_bytes // .bytes')
[[ "$bytes" =~ ^[0-9]+$ ]] || fail "walvault backup --json has no plain_bytes: $RUN_OUT"
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
least=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / (8 * 1048576) - 0.5 }')
awk -v s="$took" -v l="$least" 'BEGIN { exit !(s >= l) }' || soft_fail "the backup of $bytes bytes took ${took}s, expected at least ${least}s"
ok "the backup of $bytes tar bytes took ${took}s at 8 MiB/s (at least ${least}s)"
wv_cli --json status
check_eq "$(jq_out ".rate_limits.backup.bytes == $bytes")" true "status counts the backup's bytes"
check_eq "$(jq_out '.rate_limits.backup.waited_seconds >= 1')" true "status shows the backup waited"

# get-rate-limit paces walvault restore's chunk streams too.
write_conf "get-rate-limit = 8MiB"
reload_and_wait '.rate_limits.get.bytes_per_second == 8388608 and .rate_limits.backup.bytes_per_second == 0' \
  "SIGHUP: get limit 8 MiB/s, backup limit off"
got_before=$(jq_out '.rate_limits.get.bytes')
t0=$(date +%s.%N)
wv_cli -u root --json restore --pgdata "$T/restored"
check_rc 0 "walvault restore under get-rate-limit 8MiB"
t1=$(date +%s.%N)
check_eq "$(cat "$T/restored/PG_VERSION")" 15 "the restored data directory holds the cluster"
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
awk -v s="$took" -v l="$least" 'BEGIN { exit !(s >= l) }' || soft_fail "the restore of $bytes bytes took ${took}s, expected at least ${least}s"
ok "the restore of $bytes tar bytes took ${took}s at 8 MiB/s (at least ${least}s)"
wv_cli --json status
check_eq "$(jq_out ".rate_limits.get.bytes - $got_before >= $bytes")" true "status counts the restore's bytes as gets"

# A limit below 1 MiB/s is refused: by --check-config, and by a reload, which keeps the
# running configuration.
write_conf "get-rate-limit = 8MiB" "push-rate-limit = 100KiB"
wv_run -- "$T/bin/walvaultd" --config "$conf" --repo "$REPO" --check-config
check_rc 2 "walvaultd --check-config refuses push-rate-limit 100KiB"
check_contains "push-rate-limit" "$RUN_ERR" "the refusal names the option"
check_contains "1MiB" "$RUN_ERR" "the refusal gives the smallest limit"
kill -HUP "$WV_DAEMON_PID"
deadline=$((SECONDS + 20))
until grep -q "configuration not reloaded: .*push-rate-limit" "${WV_DAEMON_LOG[$WV_DAEMON_PID]}"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "walvaultd never logged the refused reload"
  sleep 0.2
done
ok "the refused reload is logged, naming the option"
wv_cli --json status
check_eq "$(jq_out '.rate_limits.push.bytes_per_second')" 0 "the refused reload changed nothing (push)"
check_eq "$(jq_out '.rate_limits.get.bytes_per_second')" $((8 * MiB)) "the refused reload changed nothing (get)"
check_daemons_alive
finish
