#!/usr/bin/env bash
# walvault demo: installs the dependencies, builds, then shows a point-in-time recovery end to
# end on a throwaway PostgreSQL 15 cluster whose WAL is archived by walvaultd:
#
#   real WAL archived -> base backup -> important rows -> accidental DELETE -> PITR -> rows back
#
# Run as root (PostgreSQL runs as the `postgres` user through runuser):  ./scripts/demo.sh
# Everything lives in a temporary directory and every process started here is stopped on exit
# (KEEP=1 keeps the directory). Takes well under 2 minutes once built.
# DEMO_SKIP_BUILD=1 skips installing and building and uses the binaries already in
# $WALVAULT_BIN_DIR (default build/bin).
# shellcheck disable=SC2119  # lib.sh helpers with optional arguments called without any
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (it installs packages and runs PostgreSQL as the postgres user): $0 as root, or sudo $0" >&2
  exit 2
fi

DEMO_T0=$(date +%s.%N)
STEP_T0=""
STEP_TITLE=""

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
end_step() {
  [ -n "$STEP_T0" ] && printf '    (%ss)\n' "$(secs "$STEP_T0" "$(now)")"
  STEP_T0=""
  return 0
}
step() {
  end_step
  STEP_TITLE=$*
  STEP_T0=$(now)
  printf '\n==> [%s +%ss] %s\n' "$(date +%H:%M:%S)" "$(secs "$DEMO_T0" "$STEP_T0")" "$STEP_TITLE"
}
say() { printf '    %s\n' "$*"; }

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
  step "Installing dependencies (scripts/install-deps.sh)"
  bash scripts/install-deps.sh | sed 's/^/    /'

  step "Building walvault (cmake, RelWithDebInfo)"
  build_log=$(mktemp /tmp/walvault-demo-build.XXXXXX.log)
  if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j2 --target walvaultd archive-push archive-get walvault; } >"$build_log" 2>&1; then
    tail -n 30 "$build_log" | sed 's/^/    /'
    echo "demo: build failed (full log: $build_log)" >&2
    exit 1
  fi
  rm -f "$build_log"
  say "built build/bin/walvaultd, build/bin/archive-push, build/bin/archive-get, build/bin/walvault"
  export WALVAULT_BIN_DIR="$ROOT/build/bin"
fi

# The integration tests' helpers: temp dir, daemon and cluster start/stop, cleanup on exit.
export WALVAULT_BIN_DIR="${WALVAULT_BIN_DIR:-$ROOT/build/bin}" WV_TEST_NAME=demo WV_VERBOSE=0
# shellcheck source=tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
wv_setup

step "Starting a throwaway PostgreSQL 15 cluster that archives through archive-push"
PG="$T/pg"
pg_init "$PG"
say "data directory:  $PG (port ${WV_PG_PORT[$PG]}, loopback only)"
say "archive_command: '$T/bin/archive-push --socket $SOCK %p'"

step "Starting walvaultd on a fresh local repository"
# root may use the socket too (it runs walvault backup/restore here); pgdata is how walvaultd
# finds PostgreSQL for base backups (port and socket from postmaster.pid, as its owner).
daemon_start --allow-uid postgres,root --pgdata "$PG"
pg_start "$PG"
say "repository: $REPO"
say "socket:     $SOCK (allow-uid postgres,root)"
say "pgdata:     $PG (base backups find the server from its postmaster.pid)"

step "Writing real WAL: pgbench -i -s 5, then 2000 transactions"
pgbench_run "$PG" -i -s 5 -q
pgbench_run "$PG" -n -c 2 -t 1000
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 90
read -r archived failed < <(psql_q "$PG" "select archived_count, failed_count from pg_stat_archiver" | tr '|' ' ')
repo_kb=$(du -sk "$REPO" | cut -f1)
say "PostgreSQL archived $archived WAL files ($((archived * 16)) MiB of segments), $failed failures"
say "the repository holds them in $((repo_kb / 1024)) MiB (checked, compressed, fsync'd)"

step "Taking a base backup: walvault backup"
wv_cli -u root backup --label demo
[ "$RUN_RC" -eq 0 ] || fail "walvault backup failed: $RUN_OUT$RUN_ERR"
while IFS= read -r line; do say "$line"; done <<<"$RUN_OUT"

step "Inserting 1000 important rows"
psql_q "$PG" "create table important (id int primary key, note text not null)" >/dev/null
psql_q "$PG" "insert into important select g, 'customer record ' || g from generate_series(1, 1000) g" >/dev/null
before=$(psql_q "$PG" "select count(*) from important")
say "rows in important: $before"

step "Noting the time"
target=$(psql_q "$PG" "select clock_timestamp()")
say "recovery target: $target"
sleep 1

step "Oops: DELETE FROM important (no WHERE clause)"
psql_q "$PG" "delete from important" >/dev/null
deleted=$(psql_q "$PG" "select count(*) from important")
say "rows in important: $deleted"
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
say "the WAL holding the DELETE is archived too ($last)"
pg_stop "$PG"

step "Before touching anything: walvault plan --target-time '$target'"
wv_cli plan --target-time "$target"
[ "$RUN_RC" -eq 0 ] || fail "walvault plan says the target is not reachable: $RUN_OUT$RUN_ERR"
while IFS= read -r line; do say "$line"; done <<<"$RUN_OUT"

step "Point-in-time recovery: walvault restore --target-time '$target'"
R="$T/restored"
wv_cli -u root restore --pgdata "$R" --target-time "$target"
[ "$RUN_RC" -eq 0 ] || fail "walvault restore failed: $RUN_OUT$RUN_ERR"
while IFS= read -r line; do say "$line"; done <<<"$RUN_OUT"
pg_adopt "$R"
pg_start "$R"
wait_recovery_done "$R" 120
restored=$(grep -c 'restored log file "[0-9A-F]\{24\}" from archive' "$(pg_logfile "$R")" || true)
after=$(psql_q "$R" "select count(*) from important")
say "PostgreSQL replayed $restored WAL segments fetched by archive-get, then promoted"

step "Result"
say "rows before: $before, after DELETE: $deleted, after PITR: $after"
wv_cli check --max-wal-age 1h --max-backup-age 1h --max-disk-usage 100%
while IFS= read -r line; do say "walvault check: $line"; done <<<"$RUN_OUT"
pg_stop "$R"
daemon_stop
end_step
total=$(secs "$DEMO_T0" "$(now)")
if [ "$after" = "$before" ] && [ "$before" = 1000 ] && [ "$deleted" = 0 ]; then
  printf '\nThe important rows are back. Demo finished in %ss.\n' "$total"
else
  printf '\nDEMO FAILED: expected 1000 rows after PITR, got %s (total %ss).\n' "$after" "$total"
  exit 1
fi
