# shellcheck shell=bash disable=SC2034  # globals are used by the scripts sourcing this file
# Helpers for walvault's integration tests (and scripts/demo.sh).
#
# Source this file, call wv_setup, then use the daemon_* / pg_* / wv_* helpers. Every test runs
# in its own temporary directory $T with its own walvaultd (started as root, --allow-uid postgres)
# and its own PostgreSQL 15 clusters (run as the `postgres` user on free loopback ports). An EXIT
# trap stops everything this script started and removes $T (set KEEP=1 to keep it for debugging).
#
# Environment:
#   WALVAULT_BIN_DIR  directory holding walvaultd, archive-push, archive-get (default: build/bin)
#   PGBIN             PostgreSQL server binaries (default: /usr/lib/postgresql/15/bin)
#   KEEP=1            keep the temporary directory and print its path
#   WV_VERBOSE=0      quieter helper output (used by the demo)
#
# Conventions: helpers fail the test with a clear message (fail) instead of returning errors;
# every wait is bounded; commands whose exit code is under test go through wv_run, which records
# RUN_RC, RUN_OUT, RUN_ERR and RUN_SECS instead of tripping `set -e`.

set -Eeuo pipefail

WV_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WALVAULT_BIN_DIR=${WALVAULT_BIN_DIR:-$WV_REPO_ROOT/build/bin}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WV_TEST_NAME=${WV_TEST_NAME:-$(basename "$0" .sh)}
WV_VERBOSE=${WV_VERBOSE:-1}
WV_SEG_SIZE=$((16 * 1024 * 1024))

T=""                    # the test's temporary directory
SOCK=""                 # walvaultd's socket (default daemon)
REPO=""                 # walvaultd's repository (default daemon)
WV_DAEMON_PID=""        # pid of the daemon started last by daemon_start
WV_DAEMON_PIDS=()       # every daemon this script started
WV_DAEMON_COUNT=0
WV_BG_PIDS=()           # background jobs (load generators, loops) to stop on exit
WV_CLUSTERS=()          # data directories of clusters this script started
WV_USED_PORTS=()
declare -A WV_PG_PORT=()
declare -A WV_DAEMON_LOG=()   # pid -> log file
WV_CHECKS=0
WV_FAILURES=0
WV_SUMMARY_DONE=0
WV_T0=$SECONDS
RUN_RC=0 RUN_OUT="" RUN_ERR="" RUN_SECS=0

# ---------------------------------------------------------------------------------------------
# Reporting

log() {
  [ "$WV_VERBOSE" = 0 ] && return 0
  printf '[%s +%3ds] %s\n' "$(date +%H:%M:%S)" $((SECONDS - WV_T0)) "$*"
}

ok() {
  WV_CHECKS=$((WV_CHECKS + 1))
  printf 'ok %d - %s\n' "$WV_CHECKS" "$*"
}

# Records a failed check and continues (for independent checks in one script).
soft_fail() {
  WV_CHECKS=$((WV_CHECKS + 1))
  WV_FAILURES=$((WV_FAILURES + 1))
  # stderr: also visible when called inside a command substitution.
  printf 'not ok %d - %s\n' "$WV_CHECKS" "$*" >&2
}

# Fails the test now: the EXIT trap prints the summary, dumps logs and cleans up.
fail() {
  soft_fail "$*"
  exit 1
}

assert_eq() { # ACTUAL EXPECTED MESSAGE
  if [ "$1" == "$2" ]; then ok "$3"; else fail "$3: expected '$2', got '$1'"; fi
}

assert_rc() { # EXPECTED MESSAGE   (checks RUN_RC of the last wv_run)
  if [ "$RUN_RC" -eq "$1" ]; then
    ok "$2 (exit $RUN_RC)"
  else
    fail "$2: expected exit $1, got $RUN_RC; stderr: $(_wv_oneline "$RUN_ERR")"
  fi
}

# Soft variants, for scripts that check many independent refusals.
check_eq() { # ACTUAL EXPECTED MESSAGE
  if [ "$1" == "$2" ]; then ok "$3"; else soft_fail "$3: expected '$2', got '$1'"; fi
}

check_rc() { # EXPECTED MESSAGE
  if [ "$RUN_RC" -eq "$1" ]; then
    ok "$2 (exit $RUN_RC)"
  else
    soft_fail "$2: expected exit $1, got $RUN_RC; stderr: $(_wv_oneline "$RUN_ERR")"
  fi
}

# The text goes in as a here-string, not through a pipe: grep -q exits at its first match, and
# under pipefail the writer's SIGPIPE would then turn a match into a failure.
check_match() { # EXTENDED-REGEX TEXT MESSAGE   (case-insensitive)
  if grep -Eiq -- "$1" <<<"$2"; then
    ok "$3"
  else
    soft_fail "$3: /$1/ not found in: $(_wv_oneline "$2")"
  fi
}

check_contains() { # FIXED-STRING TEXT MESSAGE
  if grep -Fq -- "$1" <<<"$2"; then
    ok "$3"
  else
    soft_fail "$3: '$1' not found in: $(_wv_oneline "$2")"
  fi
}

_wv_oneline() { printf '%s' "$1" | tr '\n' '|' | cut -c1-600; }

# Prints the summary line; exits 0 when every check passed. Call at the end of every test.
finish() {
  WV_SUMMARY_DONE=1
  local secs=$((SECONDS - WV_T0))
  if [ "$WV_FAILURES" -eq 0 ] && [ "$WV_CHECKS" -gt 0 ]; then
    printf 'PASS: %s: %d checks passed in %ds\n' "$WV_TEST_NAME" "$WV_CHECKS" "$secs"
    exit 0
  fi
  printf 'FAIL: %s: %d of %d checks failed in %ds\n' "$WV_TEST_NAME" "$WV_FAILURES" "$WV_CHECKS" "$secs"
  exit 1
}

_wv_on_err() {
  local rc=$1 line=$2 cmd=$3 src=$4
  printf 'not ok - unexpected error: "%s" exited %d at %s:%s\n' "$cmd" "$rc" "$(basename "$src")" "$line" >&2
  WV_FAILURES=$((WV_FAILURES + 1))
}

_wv_dump_logs() {
  [ -n "$T" ] && [ -d "$T/logs" ] || return 0
  local f
  for f in "$T"/logs/*.log; do
    [ -f "$f" ] || continue
    echo "----- last lines of $(basename "$f") -----"
    tail -n 25 "$f" | cut -c1-400
  done
  echo "-----"
}

_wv_on_exit() {
  local rc=$1
  trap - ERR
  set +e
  if [ "$rc" -ne 0 ] && [ "$WV_FAILURES" -eq 0 ]; then WV_FAILURES=1; fi
  if [ "$WV_SUMMARY_DONE" -eq 0 ] && [ "$rc" -ne 0 ]; then
    printf 'FAIL: %s: %d of %d checks failed in %ds (stopped early)\n' \
      "$WV_TEST_NAME" "$WV_FAILURES" "$((WV_CHECKS > WV_FAILURES ? WV_CHECKS : WV_FAILURES))" $((SECONDS - WV_T0))
  fi
  if [ "$rc" -ne 0 ]; then _wv_dump_logs; fi
  wv_cleanup
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Setup and cleanup

wv_setup() {
  [ "$(id -u)" -eq 0 ] || { echo "$WV_TEST_NAME: must run as root (runs PostgreSQL as postgres via runuser)" >&2; exit 2; }
  id postgres >/dev/null 2>&1 || { echo "$WV_TEST_NAME: user 'postgres' does not exist" >&2; exit 2; }
  [ -x "$PGBIN/initdb" ] || { echo "$WV_TEST_NAME: PostgreSQL binaries not found in PGBIN=$PGBIN" >&2; exit 2; }
  local b
  for b in walvaultd archive-push archive-get; do
    [ -x "$WALVAULT_BIN_DIR/$b" ] || {
      echo "$WV_TEST_NAME: $WALVAULT_BIN_DIR/$b not found: build first or set WALVAULT_BIN_DIR" >&2
      exit 2
    }
  done

  trap '_wv_on_err $? $LINENO "$BASH_COMMAND" "${BASH_SOURCE[0]}"' ERR
  trap '_wv_on_exit $?' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  T=$(mktemp -d "${TMPDIR:-/tmp}/walvault-it.$WV_TEST_NAME.XXXXXX")
  chmod 755 "$T"
  mkdir -p "$T/bin" "$T/logs" "$T/pgsock" "$T/work" "$T/run"
  chown postgres: "$T/logs" "$T/pgsock" "$T/work"
  # The socket inherits the group of this setgid directory, so postgres can connect through
  # walvaultd's default socket mode (0660) while the daemon runs as root.
  chgrp postgres "$T/run"
  chmod 2750 "$T/run"
  # Copies, because the checkout may not be enterable by postgres.
  for b in walvaultd archive-push archive-get walvault; do
    [ -x "$WALVAULT_BIN_DIR/$b" ] && cp "$WALVAULT_BIN_DIR/$b" "$T/bin/$b"
  done
  chmod 755 "$T"/bin/*
  SOCK="$T/run/walvault.sock"
  REPO="$T/repo"
  export PATH="$PGBIN:$PATH"
  log "test $WV_TEST_NAME in $T (binaries from $WALVAULT_BIN_DIR)"
}

wv_cleanup() {
  local p d
  for p in "${WV_BG_PIDS[@]}"; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  WV_BG_PIDS=()
  for d in "${WV_CLUSTERS[@]}"; do
    [ -f "$d/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate -w -t 30 stop >/dev/null 2>&1
  done
  WV_CLUSTERS=()
  for p in "${WV_DAEMON_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      _wv_wait_gone "$p" 15 || kill -KILL "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    fi
  done
  WV_DAEMON_PIDS=()
  for d in "${WV_MOUNTS[@]}"; do
    umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
  done
  WV_MOUNTS=()
  if [ -n "$T" ] && [ -d "$T" ]; then
    if [ "${KEEP:-0}" = 1 ]; then
      echo "KEEP=1: kept $T"
    else
      rm -rf "$T"
    fi
  fi
}

# Mounts a tmpfs of SIZE at DIR (a fault to inject: a tiny one fills up); unmounted by the EXIT
# trap. Skips the test (exit 0 with a note) where mounting is not allowed.
WV_MOUNTS=()
wv_mount_tmpfs() { # DIR SIZE
  mkdir -p "$1"
  if ! mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>/dev/null; then
    echo "SKIP: $WV_TEST_NAME: cannot mount a tmpfs here (needs root in a mount-capable sandbox)"
    WV_SUMMARY_DONE=1
    exit 0
  fi
  WV_MOUNTS+=("$1")
}

# Registers a background job (pid) to be stopped by the EXIT trap.
bg_register() { WV_BG_PIDS+=("$1"); }

bg_stop() { # PID
  local p=$1 i
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for i in "${!WV_BG_PIDS[@]}"; do
    [ "${WV_BG_PIDS[$i]}" = "$p" ] && unset 'WV_BG_PIDS[i]'
  done
  return 0
}

# ---------------------------------------------------------------------------------------------
# Small utilities

# s3_start: a real S3-protocol server (moto_server, without signature checks: see
# s3_repository.sh) on a free loopback port, stopped with the test; a bucket 'walvault' and
# an IAM user whose key it exports as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (for walvaultd
# and the AWS CLI). Sets S3_PORT, S3_ENDPOINT and MOTO (the server's pid).
s3_start() {
  local tool keys
  for tool in moto_server aws python3 curl; do
    command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed" >&2; exit 2; }
  done
  pick_port S3_PORT
  S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
  moto_server -H 127.0.0.1 -p "$S3_PORT" >"$T/logs/moto.log" 2>&1 &
  MOTO=$!
  bg_register "$MOTO"
  wait_for 60 "moto_server on $S3_ENDPOINT" _wv_s3_up
  mapfile -t keys < <(python3 "$WV_REPO_ROOT/tests/s3/moto_bootstrap.py" "$S3_ENDPOINT" walvault)
  [ "${#keys[@]}" -eq 2 ] || fail "tests/s3/moto_bootstrap.py did not print a key and a secret"
  export AWS_ACCESS_KEY_ID=${keys[0]} AWS_SECRET_ACCESS_KEY=${keys[1]} AWS_DEFAULT_REGION=us-east-1
}
_wv_s3_up() { curl -s -o /dev/null "$S3_ENDPOINT/"; }
# aws_s3 ARGS...: the official AWS CLI's `aws s3` against s3_start's server.
aws_s3() { aws --endpoint-url "$S3_ENDPOINT" s3 "$@"; }

# The restore tests' table: t (id, payload); ROWS is its count and md5, compared after recovery.
ROWS="select count(*) || ' ' || md5(string_agg(id || ':' || payload, ',' order by id)) from t"
make_rows() { # DIR N: creates t with N rows
  psql_q "$1" "create table t (id int primary key, payload text)" >/dev/null
  psql_q "$1" "insert into t select g, md5(g::text) from generate_series(1, $2) g" >/dev/null
}

# accidental_delete DIR: 5,000 more rows in t, then "delete from t"; sets before_delete (ROWS
# just before), target (a time between the two, for --target-time) and last (the segment that
# holds the DELETE, archived on return).
accidental_delete() {
  psql_q "$1" "insert into t select g, 'after backup ' || g from generate_series(100001, 105000) g" >/dev/null
  pg_switch "$1" >/dev/null
  before_delete=$(psql_q "$1" "$ROWS")
  target=$(psql_q "$1" "select clock_timestamp()")
  sleep 1
  psql_q "$1" "delete from t" >/dev/null
  last=$(pg_switch "$1")
  wait_archived "$1" "$last"
}

# pick_port VAR: a free loopback TCP port not used by this script yet.
pick_port() {
  local __var=$1 p tries=0
  while :; do
    tries=$((tries + 1))
    [ "$tries" -lt 500 ] || fail "no free TCP port found"
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    [[ " ${WV_USED_PORTS[*]} " == *" $p "* ]] && continue
    [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && continue
    [ -e "$T/pgsock/.s.PGSQL.$p" ] && continue
    break
  done
  WV_USED_PORTS+=("$p")
  printf -v "$__var" '%s' "$p"
}

# wv_run [-u USER] [-C DIR] [--] CMD...: runs CMD (as USER, in DIR), recording RUN_RC, RUN_OUT,
# RUN_ERR and RUN_SECS (wall time, fractional). Never trips set -e.
wv_run() {
  local user="" dir="" o e t0 t1
  while [ $# -gt 0 ]; do
    case $1 in
      -u) user=$2; shift 2 ;;
      -C) dir=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  o=$(mktemp "$T/work/.out.XXXXXX")
  e=$(mktemp "$T/work/.err.XXXXXX")
  t0=$(date +%s.%N)
  RUN_RC=0
  if [ -n "$user" ]; then
    (cd "${dir:-$T/work}" && exec runuser -u "$user" -- "$@") >"$o" 2>"$e" || RUN_RC=$?
  else
    (cd "${dir:-$T/work}" && exec "$@") >"$o" 2>"$e" || RUN_RC=$?
  fi
  t1=$(date +%s.%N)
  RUN_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  RUN_OUT=$(cat "$o")
  RUN_ERR=$(cat "$e")
  rm -f "$o" "$e"
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s until it succeeds; fails the test
# when SECONDS pass.
wait_for() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  while ! "$@"; do
    check_daemons_alive
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# Segment names (16 MiB segments: 256 segments per log id).
seg_next() { # NAME -> next segment name on the same timeline
  local tli=$((16#${1:0:8})) hi=$((16#${1:8:8})) lo=$((16#${1:16:8}))
  lo=$((lo + 1))
  if [ "$lo" -ge 256 ]; then lo=0; hi=$((hi + 1)); fi
  printf '%08X%08X%08X\n' "$tli" "$hi" "$lo"
}

seg_range() { # FIRST LAST -> every segment name from FIRST to LAST (same timeline), one a line
  local s=$1
  [[ "$s" > "$2" ]] && return 0
  while :; do
    echo "$s"
    [ "$s" == "$2" ] && break
    s=$(seg_next "$s")
  done
}

is_segment_name() { [[ "$1" =~ ^[0-9A-F]{24}$ ]]; }

# Makes a file owned by postgres (for inputs handed to clients running as postgres).
give_to_postgres() { chown postgres: "$@"; }

# ---------------------------------------------------------------------------------------------
# walvaultd

# WV_DAEMON_ENV: extra VAR=VALUE words for the environment of the daemons daemon_start starts
# from then on (empty: walvaultd inherits the script's environment unchanged). For instance
# WV_DAEMON_ENV=(WALVAULT_FAULTS=$T/faults.rules) with wv_daemon_preload for a fault shim.
WV_DAEMON_ENV=()

# wv_daemon_preload LIB...: the daemons started from then on get LIB... in LD_PRELOAD (added to
# WV_DAEMON_ENV). A walvaultd built with AddressSanitizer (WALVAULT_BIN_DIR=build-asan/bin)
# links the ASan runtime (libasan, or clang's libclang_rt.asan), which must come first in the
# list: it is then put in front.
wv_daemon_preload() {
  local libs asan
  libs=$(IFS=:; echo "$*")
  asan=$(ldd "$T/bin/walvaultd" 2>/dev/null | awk '$1 ~ /^(libasan|libclang_rt\.asan)/ { print $3; exit }')
  [ -n "$asan" ] && libs="$asan:$libs"
  WV_DAEMON_ENV+=("LD_PRELOAD=$libs")
}

# daemon_start [--user U] [--socket P] [--repo D] [--allow-uid L] [--probe-user U] [EXTRA-ARGS...]
# Starts walvaultd as root (or as --user U, who is then given the repository and the socket's
# directory) in the background and waits (bounded) until it answers a probe as
# --probe-user (default postgres; "none" only waits for the socket file). Sets WV_DAEMON_PID.
# WV_DAEMON_ENV (above) adds to its environment.
daemon_start() {
  local sock=$SOCK repo=$REPO allow=postgres probe_user=postgres user="" logf
  while [ $# -gt 0 ]; do
    case $1 in
      --user) user=$2; shift 2 ;;
      --socket) sock=$2; shift 2 ;;
      --repo) repo=$2; shift 2 ;;
      --allow-uid) allow=$2; shift 2 ;;
      --probe-user) probe_user=$2; shift 2 ;;
      *) break ;;
    esac
  done
  WV_DAEMON_COUNT=$((WV_DAEMON_COUNT + 1))
  logf="$T/logs/walvaultd.$WV_DAEMON_COUNT.log"
  local with_env=()
  [ "${#WV_DAEMON_ENV[@]}" -eq 0 ] || with_env=(env "${WV_DAEMON_ENV[@]}")  # env execs: $! stays walvaultd's pid
  local as_user=()
  if [ -n "$user" ]; then  # walvaultd as USER (PostgreSQL's own, as in a sidecar): it owns repo and socket directory
    mkdir -p "$repo"
    chown -R "$user:" "$repo"
    chown "$user" "$(dirname "$sock")"
    as_user=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups)  # execs too
  fi
  "${with_env[@]}" "${as_user[@]}" "$T/bin/walvaultd" --repo "$repo" --socket "$sock" --allow-uid "$allow" --log-level debug "$@" \
    >>"$logf" 2>&1 </dev/null &
  WV_DAEMON_PID=$!
  WV_DAEMON_PIDS+=("$WV_DAEMON_PID")
  WV_DAEMON_LOG[$WV_DAEMON_PID]=$logf
  local deadline=$((SECONDS + 30))
  while :; do
    if ! kill -0 "$WV_DAEMON_PID" 2>/dev/null; then
      local rc=0
      wait "$WV_DAEMON_PID" || rc=$?
      fail "walvaultd exited ($rc) right after start; log: $(tail -n 5 "$logf" | tr '\n' '|')"
    fi
    if [ -S "$sock" ]; then
      [ "$probe_user" = none ] && break
      # A .history name that never exists: exit 1 ("not in the archive") proves the daemon answers.
      wv_run -u "$probe_user" -- "$T/bin/archive-get" --socket "$sock" 7FFFFFFE.history "$T/work/probe.$$"
      rm -f "$T/work/probe.$$"
      [ "$RUN_RC" -eq 1 ] && break
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "walvaultd (pid $WV_DAEMON_PID) not answering on $sock after 30s; last probe exit $RUN_RC: $(_wv_oneline "$RUN_ERR")"
    sleep 0.1
  done
  log "walvaultd running (pid $WV_DAEMON_PID, socket $sock, log $(basename "$logf"))"
}

_wv_wait_gone() { # PID SECONDS
  local i n=$(($2 * 10))
  for ((i = 0; i < n; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    # A zombie child counts as gone.
    [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ] && return 0
    sleep 0.1
  done
  return 1
}

# Fails the test when a daemon this script started (and did not stop or kill) has died.
check_daemons_alive() {
  local p rc logs
  for p in "${WV_DAEMON_PIDS[@]}"; do
    if ! kill -0 "$p" 2>/dev/null || [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" = Z ]; then
      rc=0
      wait "$p" 2>/dev/null || rc=$?
      _wv_forget_daemon "$p"
      logs=${WV_DAEMON_LOG[$p]:-/dev/null}
      fail "walvaultd (pid $p) died unexpectedly (exit status $rc$([ "$rc" -gt 128 ] && echo ", signal $((rc - 128))")); log: $(tail -n 4 "$logs" | tr '\n' '|')"
    fi
  done
  return 0
}

_wv_forget_daemon() {
  local i
  for i in "${!WV_DAEMON_PIDS[@]}"; do
    [ "${WV_DAEMON_PIDS[$i]}" = "$1" ] && unset 'WV_DAEMON_PIDS[i]'
  done
  return 0
}

# daemon_stop [PID]: SIGTERM, bounded wait (30 s), SIGKILL as a last resort. Sets
# WV_DAEMON_RC to the daemon's exit status (128+N when killed by signal N).
daemon_stop() {
  local p=${1:-$WV_DAEMON_PID}
  WV_DAEMON_RC=0
  kill -TERM "$p" 2>/dev/null || true
  if ! _wv_wait_gone "$p" 30; then
    soft_fail "walvaultd (pid $p) still running 30s after SIGTERM; killing it"
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || WV_DAEMON_RC=$?
  _wv_forget_daemon "$p"
  log "walvaultd (pid $p) stopped, exit $WV_DAEMON_RC"
}

# daemon_kill9 [PID]: simulates a crash.
daemon_kill9() {
  local p=${1:-$WV_DAEMON_PID}
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  _wv_forget_daemon "$p"
  log "walvaultd (pid $p) killed with SIGKILL"
}

# ---------------------------------------------------------------------------------------------
# Clients (run as postgres, like PostgreSQL would)

# wv_push [-u USER] [--socket S] PATH: archive-push; results in RUN_*.
wv_push() {
  local user=postgres sock=$SOCK
  while [ $# -gt 1 ]; do
    case $1 in
      -u) user=$2; shift 2 ;;
      --socket) sock=$2; shift 2 ;;
      *) break ;;
    esac
  done
  wv_run -u "$user" -- "$T/bin/archive-push" --socket "$sock" "$1"
}

# wv_get [-u USER] [-C DIR] [--socket S] NAME PATH: archive-get run in DIR (default $T/work,
# which has no standby.signal); results in RUN_*.
wv_get() {
  local user=postgres sock=$SOCK dir="$T/work"
  while [ $# -gt 2 ]; do
    case $1 in
      -u) user=$2; shift 2 ;;
      -C) dir=$2; shift 2 ;;
      --socket) sock=$2; shift 2 ;;
      *) break ;;
    esac
  done
  wv_run -u "$user" -C "$dir" -- "$T/bin/archive-get" --socket "$sock" "$1" "$2"
}

# wv_cli [-u USER] [--socket S] VERB [ARGS...]: the `walvault` admin CLI (as postgres by default,
# an allowed uid of the test daemons); results in RUN_* (RUN_OUT is the text or JSON document).
wv_cli() {
  local user=postgres sock=$SOCK
  while [ $# -gt 0 ]; do
    case $1 in
      -u) user=$2; shift 2 ;;
      --socket) sock=$2; shift 2 ;;
      *) break ;;
    esac
  done
  [ -x "$T/bin/walvault" ] || fail "walvault CLI not found in $WALVAULT_BIN_DIR: build it first"
  wv_run -u "$user" -- "$T/bin/walvault" --socket "$sock" "$@"
}

# wv_cli_json VERB [ARGS...]: runs `walvault --json VERB ARGS` (results in RUN_*, RUN_OUT the
# document; call it directly, not in $(...), to keep RUN_RC); fails the test when the CLI exits
# with anything but 0 or 1 or its stdout is not one JSON document. Read it with jq_out.
wv_cli_json() {
  command -v jq >/dev/null || fail "jq is needed to read walvault --json output"
  wv_cli --json "$@"
  [ "$RUN_RC" -le 1 ] || fail "walvault --json $* exited $RUN_RC: $(_wv_oneline "$RUN_ERR")"
  printf '%s' "$RUN_OUT" | jq -e 'type == "object"' >/dev/null 2>&1 ||
    fail "walvault --json $* did not print one JSON object: $(_wv_oneline "$RUN_OUT")"
}

# jq_out [JQ-ARGS...] FILTER: applies jq -r FILTER to RUN_OUT (the last wv_cli_json document).
jq_out() {
  local filter=${!#}
  printf '%s' "$RUN_OUT" | jq -r "${@:1:$#-1}" "$filter" || fail "jq '$filter' failed on: $(_wv_oneline "$RUN_OUT")"
}

# wv_get_cmp NAME FILE: fetches NAME from the archive and compares it with FILE byte for byte.
# Returns 0 when identical; otherwise prints why and returns 1.
wv_get_cmp() {
  local name=$1 orig=$2 out="$T/work/get.$1.$$"
  rm -f "$out"
  wv_get "$name" "$out"
  if [ "$RUN_RC" -ne 0 ]; then
    echo "  archive-get $name exited $RUN_RC: $(_wv_oneline "$RUN_ERR")"
    return 1
  fi
  if ! cmp -s "$orig" "$out"; then
    echo "  archive-get $name: content differs from $orig ($(stat -c %s "$out") vs $(stat -c %s "$orig") bytes; $(cmp "$orig" "$out" 2>&1 | head -n 1))"
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
  return 0
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

_wv_pg_conf() { # DIR PORT EXTRA-LINES...
  local dir=$1 port=$2
  shift 2
  {
    echo
    echo "# --- walvault integration test settings ---"
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$T/pgsock'"
    local l
    for l in "$@"; do echo "$l"; done
  } >>"$dir/postgresql.conf"
}

# pg_init DIR [CONF-LINE...]: initdb as postgres, archiving into the default walvaultd.
# WV_INITDB_ARGS adds initdb options (e.g. --wal-segsize=1).
pg_init() {
  local dir=$1 port
  shift
  mkdir -p "$(dirname "$dir")"
  install -d -o postgres -g postgres -m 700 "$dir"
  # shellcheck disable=SC2086  # WV_INITDB_ARGS is a list of options
  runuser -u postgres -- "$PGBIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C --no-sync ${WV_INITDB_ARGS:-} \
    >"$T/logs/initdb.$(basename "$dir").out" 2>&1 || fail "initdb $dir failed: $(tail -n 3 "$T/logs/initdb.$(basename "$dir").out" | tr '\n' '|')"
  rm -f "$T/logs/initdb.$(basename "$dir").out"
  pick_port port
  WV_PG_PORT[$dir]=$port
  _wv_pg_conf "$dir" "$port" \
    "wal_level = replica" \
    "archive_mode = on" \
    "archive_command = '$T/bin/archive-push --socket $SOCK %p'" \
    "shared_buffers = 64MB" \
    "max_wal_size = 2GB" \
    "log_line_prefix = '%m [%p] '" \
    "$@"
  log "initdb $dir (port $port)"
}

# pg_restore_setup BACKUP DIR [CONF-LINE...]: copies a base backup to DIR and prepares archive
# recovery from walvaultd (recovery.signal + restore_command), on a new port.
pg_restore_setup() {
  local backup=$1 dir=$2 port
  shift 2
  [ -d "$backup" ] || fail "base backup $backup does not exist"
  [ -e "$dir" ] && fail "$dir already exists"
  cp -a "$backup" "$dir"
  chown -R postgres: "$dir"
  chmod 700 "$dir"
  rm -f "$dir/postmaster.pid" "$dir/postmaster.opts"
  pick_port port
  WV_PG_PORT[$dir]=$port
  _wv_pg_conf "$dir" "$port" \
    "restore_command = '$T/bin/archive-get --socket $SOCK %f %p'" \
    "$@"
  runuser -u postgres -- touch "$dir/recovery.signal"
  log "restore prepared: $backup -> $dir (port $port)"
}

# pg_adopt DIR [CONF-LINE...]: a data directory made by `walvault restore` gets a port of its
# own (its postgresql.conf is the backed-up cluster's) so it can start beside the original.
pg_adopt() {
  local dir=$1 port
  shift
  pick_port port
  WV_PG_PORT[$dir]=$port
  _wv_pg_conf "$dir" "$port" "$@"
  chown postgres: "$dir/postgresql.conf"
  log "restored cluster $dir gets port $port"
}

pg_logfile() { echo "$T/logs/pg.$(basename "$1").log"; }

pg_start() { # DIR
  local dir=$1 logf
  logf=$(pg_logfile "$dir")
  [ -n "${WV_PG_PORT[$dir]:-}" ] || fail "pg_start: $dir was not set up by pg_init/pg_restore_setup"
  WV_CLUSTERS+=("$dir")
  if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" -l "$logf" -w -t 120 start >/dev/null 2>&1; then
    fail "PostgreSQL in $dir failed to start; log: $(tail -n 8 "$logf" | tr '\n' '|')"
  fi
  log "PostgreSQL started: $dir (port ${WV_PG_PORT[$dir]})"
}

pg_stop() { # DIR [MODE]  (mode fast by default; immediate simulates a crash)
  local dir=$1 mode=${2:-fast} i
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" -m "$mode" -w -t 120 stop >/dev/null 2>&1 ||
    fail "pg_ctl stop -m $mode $dir failed"
  for i in "${!WV_CLUSTERS[@]}"; do
    [ "${WV_CLUSTERS[$i]}" = "$dir" ] && unset 'WV_CLUSTERS[i]'
  done
  log "PostgreSQL stopped ($mode): $dir"
}

pg_is_running() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }

# psql_q DIR SQL: runs SQL as postgres, prints unaligned tuples-only output, fails on error.
psql_q() {
  local dir=$1 out
  shift
  if ! out=$(runuser -u postgres -- "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$T/pgsock" \
    -p "${WV_PG_PORT[$dir]}" -d postgres -c "$*" 2>&1); then
    fail "psql on $dir failed: $(_wv_oneline "$*") => $(_wv_oneline "$out")"
  fi
  printf '%s\n' "$out"
}

# psql_try DIR SQL: like psql_q but returns non-zero instead of failing the test.
psql_try() {
  local dir=$1
  shift
  runuser -u postgres -- "$PGBIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$T/pgsock" \
    -p "${WV_PG_PORT[$dir]}" -d postgres -c "$*" 2>/dev/null
}

pgbench_run() { # DIR PGBENCH-ARGS...
  local dir=$1 logf
  shift
  logf="$T/logs/pgbench.$(basename "$dir").out"
  runuser -u postgres -- "$PGBIN/pgbench" -h "$T/pgsock" -p "${WV_PG_PORT[$dir]}" "$@" postgres >>"$logf" 2>&1 ||
    fail "pgbench $* failed: $(tail -n 3 "$logf" | tr '\n' '|')"
}

# pg_switch DIR: writes a little WAL, switches, prints the name of the segment just completed.
pg_switch() {
  psql_q "$1" "select txid_current()" >/dev/null
  psql_q "$1" "select pg_walfile_name(pg_switch_wal())"
}

# pg_basebackup_to DIR DEST: plain base backup with no WAL (-X none): the archive supplies it.
pg_basebackup_to() {
  local dir=$1 dest=$2 out
  install -d -o postgres -g postgres -m 700 "$dest"
  out=$(runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$T/pgsock" -p "${WV_PG_PORT[$dir]}" -D "$dest" \
    -X none -c fast --no-sync 2>&1) || fail "pg_basebackup of $dir failed: $(_wv_oneline "$out")"
  log "base backup taken: $dest (backup_label: $(grep 'START WAL LOCATION' "$dest/backup_label" | cut -c1-80))"
}

# wait_archived DIR SEG [SECONDS]: waits until pg_stat_archiver says SEG (or a later file) was
# archived. Wakes the archiver (pg_reload_conf) every 5 s: after 3 failed attempts PostgreSQL
# otherwise sleeps up to 60 s before retrying.
wait_archived() {
  local dir=$1 seg=$2 secs=${3:-120} deadline last nudge
  deadline=$((SECONDS + secs))
  nudge=$((SECONDS + 5))
  while :; do
    last=$(psql_q "$dir" "select coalesce(last_archived_wal, '') from pg_stat_archiver")
    check_daemons_alive
    if _wv_archived_covers "$last" "$seg"; then
      log "archived up to $seg (last_archived_wal $last)"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "timed out after ${secs}s waiting for $seg to be archived from $dir: pg_stat_archiver: $(psql_q "$dir" "select last_archived_wal, failed_count, last_failed_wal from pg_stat_archiver" | tr '\n' ' ')"
    fi
    if [ "$SECONDS" -ge "$nudge" ]; then
      psql_q "$dir" "select pg_reload_conf()" >/dev/null
      nudge=$((SECONDS + 5))
    fi
    sleep 0.2
  done
}

# LAST (a last_archived_wal value) shows that segment SEG was archived. The archiver works in
# name order, so a later segment, or a .backup file of the same or a later segment, covers SEG;
# a .partial or .history file does not.
_wv_archived_covers() {
  local last=$1 seg=$2 base=${1:0:24}
  is_segment_name "$base" || return 1
  case $last in
    *.partial) [[ "$base" > "$seg" ]] ;;
    *) [[ "$base" > "$seg" || "$base" == "$seg" ]] ;;
  esac
}

# wait_recovery_done DIR [SECONDS]: until pg_is_in_recovery() is false (the cluster promoted).
wait_recovery_done() {
  local dir=$1 secs=${2:-120} deadline r
  deadline=$((SECONDS + secs))
  while :; do
    check_daemons_alive
    r=$(psql_try "$dir" "select pg_is_in_recovery()" || true)
    [ "$r" = f ] && { log "recovery finished: $dir"; return 0; }
    if ! pg_is_running "$dir"; then
      fail "PostgreSQL in $dir stopped during recovery; log: $(tail -n 8 "$(pg_logfile "$dir")" | tr '\n' '|')"
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "recovery of $dir not finished after ${secs}s"
    sleep 0.3
  done
}
