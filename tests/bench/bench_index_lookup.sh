#!/usr/bin/env bash
# Cost of "not in the archive" answers on a large index: serial `archive-get` calls for a
# segment that is not archived (what PostgreSQL asks for at the end of WAL, over and over),
# each started through `sh -c` as PostgreSQL starts restore_command, against walvaultd on an
# empty repository and on one whose index holds ROWS segment rows. See tests/bench/README.md.
#
# Environment (all optional):
#   ROWS=10000           segment rows (and dummy object files) in the large repository
#   CALLS=500            timed calls per (repository, mode)
#   BLOCK=50             calls per block; blocks of the four series are interleaved
#   WARMUP=20            untimed calls per (repository, mode) first
#   WALVAULT_BIN_DIR     default: <repo>/build/bin
#   CALL_TIMEOUT=30      seconds allowed for one call
#   OUT=bench-index-lookup.txt   where the table is written (per-call CSV beside it)
#   KEEP=0               1 = keep the temporary directory
# Runs everything as the invoking user (no PostgreSQL needed); needs cc, sqlite3 and jq.
set -Eeuo pipefail
export LC_ALL=C

ROWS=${ROWS:-10000}
CALLS=${CALLS:-500}
BLOCK=${BLOCK:-50}
WARMUP=${WARMUP:-20}
CALL_TIMEOUT=${CALL_TIMEOUT:-30}
OUT=${OUT:-bench-index-lookup.txt}
KEEP=${KEEP:-0}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
WALVAULT_BIN_DIR=${WALVAULT_BIN_DIR:-$repo_root/build/bin}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
CSV=${OUT%.txt}.calls.csv
SEG_SIZE=16777216

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for v in ROWS CALLS BLOCK; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"; done
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer"
(( CALLS % BLOCK == 0 )) || die "CALLS must be a multiple of BLOCK"
(( ROWS < 256 * 65536 )) || die "ROWS too large"
for b in walvaultd archive-get walvault; do
  [[ -x $WALVAULT_BIN_DIR/$b ]] || die "$WALVAULT_BIN_DIR/$b not found (build first or set WALVAULT_BIN_DIR)"
done
command -v cc >/dev/null || die "a C compiler (cc) is needed for the timing helper"
command -v sqlite3 >/dev/null || die "sqlite3 is needed to fill the index"
command -v jq >/dev/null || die "jq is needed to read walvault status --json"

# ---------------------------------------------------------------- cleanup
TMP=""
declare -A DAEMON_PID=()
stop_daemon() { # NAME
  local p=${DAEMON_PID[$1]:-} i
  [[ -n $p ]] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && { log "walvaultd $1 (pid $p) ignored SIGTERM; killing it"; kill -KILL "$p" 2>/dev/null || true; }
  wait "$p" 2>/dev/null || true
  unset 'DAEMON_PID[$1]'
}
cleanup() {
  local rc=$? n
  set +e
  trap - EXIT INT TERM
  for n in "${!DAEMON_PID[@]}"; do stop_daemon "$n"; done
  if [[ -n $TMP && -d $TMP ]]; then
    if [[ $KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wvidx.XXXXXX")
mkdir -p "$TMP"/{run,log,work/pg_wal}

# ---------------------------------------------------------------- timing helper
# calltimer N EXPECTED_RC TIMEOUT CMD: runs CMD with /bin/sh -c N times, serially; prints the
# wall time of each call in ns. Exit 3 (after printing what ran) when a call exits otherwise.
cat >"$TMP/calltimer.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t timed_out;
static volatile pid_t child;
static void on_alarm(int s) { (void)s; timed_out = 1; if (child > 0) kill(-child, SIGKILL); }
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: calltimer N EXPECTED_RC TIMEOUT CMD\n"); return 2; }
    long n = atol(argv[1]); int expected = atoi(argv[2]); unsigned tmo = (unsigned)atoi(argv[3]);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    for (long i = 0; i < n; i++) {
        struct timespec a, b; int st = 0;
        timed_out = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 2; }
        if (p == 0) {
            setpgid(0, 0);
            int fd = open("/dev/null", O_RDONLY);
            if (fd >= 0) { dup2(fd, 0); if (fd > 0) close(fd); }
            execl("/bin/sh", "sh", "-c", argv[4], (char *)NULL);
            _exit(127);
        }
        setpgid(p, p);
        child = p;
        alarm(tmo);
        while (waitpid(p, &st, 0) < 0) if (errno != EINTR) { perror("waitpid"); return 2; }
        alarm(0);
        child = 0;
        clock_gettime(CLOCK_MONOTONIC, &b);
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (timed_out) rc = 124;
        if (rc != expected) {
            fprintf(stderr, "calltimer: call %ld exited %d (expected %d)%s: %s\n", i + 1, rc, expected,
                    timed_out ? " (timed out)" : "", argv[4]);
            return 3;
        }
        printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
    }
    return 0;
}
EOF
cc -O2 -o "$TMP/calltimer" "$TMP/calltimer.c" || die "cannot compile the timing helper"

# ---------------------------------------------------------------- daemons
# start_daemon NAME REPO: starts walvaultd on $TMP/run/NAME.sock; prints how long it took until
# it answered a probe (ms). Start-up repair runs before the socket answers.
start_daemon() {
  local name=$1 repo=$2 sock=$TMP/run/$1.sock t0 rc deadline
  rm -f "$sock"
  t0=$(date +%s%N)
  "$WALVAULT_BIN_DIR/walvaultd" --repo "$repo" --socket "$sock" --log-level warn \
    >>"$TMP/log/walvaultd.$name.log" 2>&1 </dev/null &
  DAEMON_PID[$name]=$!
  deadline=$((SECONDS + 120))
  while :; do
    kill -0 "${DAEMON_PID[$name]}" 2>/dev/null || die "walvaultd $name exited at start: $(tail -n 5 "$TMP/log/walvaultd.$name.log" | tr '\n' '|')"
    if [[ -S $sock ]]; then
      rc=0
      (cd "$TMP/work" && "$WALVAULT_BIN_DIR/archive-get" --socket "$sock" 7FFFFFFE.history probe.out) 2>/dev/null || rc=$?
      [[ $rc -eq 1 ]] && break
    fi
    (( SECONDS < deadline )) || die "walvaultd $name not answering after 120 s"
    sleep 0.02
  done
  STARTUP_MS[$name]=$(( ($(date +%s%N) - t0) / 1000000 ))
}
declare -A STARTUP_MS=()

rss_of() { # PID -> "VmRSS VmHWM" in KiB
  awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' "/proc/$1/status"
}

# seg_name VAR TIMELINE SEGNO: the segment's file name into VAR (no subshell: called ROWS times).
seg_name() { printf -v "$1" '%08X%08X%08X' "$2" $(($3 / (0x100000000 / SEG_SIZE))) $(($3 % (0x100000000 / SEG_SIZE))); }

# ---------------------------------------------------------------- repositories
EMPTY=$TMP/repo-empty
BIG=$TMP/repo-big
log "creating the empty repository and the index schema of the large one"
start_daemon empty "$EMPTY"
start_daemon big "$BIG"
stop_daemon big
[[ -f $BIG/index.db ]] || die "walvaultd did not create $BIG/index.db"

log "writing $ROWS dummy segment objects (timeline 1, segments 1..$ROWS) and their index rows"
now_us=$(( $(date +%s%N) / 1000 ))
for ((s = 1; s <= ROWS; s++)); do
  seg_name name 1 "$s"
  dir=$BIG/wal/${name:0:16}
  [[ -d $dir ]] || mkdir -p "$dir"
  printf 'dummy\n' >"$dir/$name"
done
sqlite3 "$BIG/index.db" <<SQL
BEGIN;
WITH RECURSIVE n(s) AS (SELECT 1 UNION ALL SELECT s + 1 FROM n WHERE s < $ROWS)
INSERT INTO objects (name, kind, timeline, segno, segment_size, plain_size, stored_size, sha256, stored_at,
                     first_xact, last_xact, xact_count, carry, carry_lsn)
SELECT printf('%08X%08X%08X', 1, s / 256, s % 256), 'segment', 1, s, $SEG_SIZE, $SEG_SIZE, 6,
       '$(printf '0%.0s' {1..64})', $now_us, NULL, NULL, 0, NULL, 0 FROM n;
COMMIT;
SQL
diff <(sqlite3 "$BIG/index.db" "select name from objects order by name") \
     <(find "$BIG/wal" -type f -printf '%f\n' | sort) >/dev/null ||
  die "index rows and object files do not name the same segments"

start_daemon big "$BIG"
rows_after=$(sqlite3 "$BIG/index.db" "select count(*) from objects")
[[ $rows_after -eq $ROWS ]] || die "start-up repair left $rows_after index rows, expected $ROWS"
status=$(cd "$TMP/work" && "$WALVAULT_BIN_DIR/walvault" --socket "$TMP/run/big.sock" --json status) || die "walvault status failed"
[[ $(jq -r .segments <<<"$status") == "$ROWS" ]] || die "walvault status counts $(jq -r .segments <<<"$status") segments, expected $ROWS"
[[ $(jq -r .index_trusted <<<"$status") != false ]] || die "the index is not trusted after start-up"
log "large repository: $ROWS index rows kept by start-up repair (walvault status agrees)"

seg_name MISSING 1 $((ROWS + 1))
for f in "$EMPTY" "$BIG"; do
  [[ -e $f/wal/${MISSING:0:16}/$MISSING ]] && die "$MISSING exists in $f"
done

# ---------------------------------------------------------------- timed calls
# Modes: "exact" is the brief's `archive-get NAME dest` (any %p other than pg_wal/RECOVERYXLOG:
# answered from storage, the index is not consulted); "recovery" is `archive-get NAME
# pg_wal/RECOVERYXLOG` as in archive recovery: answered from the index when it is trusted.
declare -A CMD=(
  [exact]="'$WALVAULT_BIN_DIR/archive-get' --socket '%S' $MISSING dest"
  [recovery]="'$WALVAULT_BIN_DIR/archive-get' --socket '%S' $MISSING pg_wal/RECOVERYXLOG"
  [floor]="exit 1"
)
# none:floor is `sh -c 'exit 1'`: the cost of starting the shell alone.
series=(none:floor empty:exact big:exact empty:recovery big:recovery)
declare -A RSS_START=()
for n in empty big; do RSS_START[$n]=$(rss_of "${DAEMON_PID[$n]}"); done

run_block() { # SERIES COUNT OUTFILE
  local n=${1%%:*} mode=${1##*:} cmd
  cmd=${CMD[$mode]//%S/$TMP/run/$n.sock}
  (cd "$TMP/work" && "$TMP/calltimer" "$2" 1 "$CALL_TIMEOUT" "$cmd") >>"$3" 2>>"$TMP/log/calls.stderr" ||
    die "calls for $1 failed: $(tail -n 3 "$TMP/log/calls.stderr" | tr '\n' '|')"
}

log "warm-up: $WARMUP calls per series"
for s in "${series[@]}"; do [[ $WARMUP -gt 0 ]] && run_block "$s" "$WARMUP" /dev/null; done
log "timing: $CALLS calls per series, in interleaved blocks of $BLOCK; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${series[@]}"; do : >"$TMP/ns.${s/:/.}"; done
for ((b = 0; b < CALLS / BLOCK; b++)); do
  for s in "${series[@]}"; do run_block "$s" "$BLOCK" "$TMP/ns.${s/:/.}"; done
done
[[ -e $TMP/work/dest || -e $TMP/work/pg_wal/RECOVERYXLOG ]] && die "archive-get left a file behind for a missing segment"

# ---------------------------------------------------------------- report
pct() { # FILE P -> nearest-rank percentile in ms
  sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.2f", v[i] / 1e6 }'
}
{
  echo "walvault index lookup: archive-get of a missing segment ($MISSING), exit 1 expected"
  echo "$(date -u '+%Y-%m-%d %H:%M:%SZ'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $CALLS calls per row via sh -c"
  echo
  printf '%-10s %10s  %-31s %6s %8s %8s %8s\n' repository "index rows" "mode (%p)" calls "p50 ms" "p95 ms" "max ms"
  for s in "${series[@]}"; do
    n=${s%%:*} mode=${s##*:} f=$TMP/ns.${s/:/.}
    case $n in big) rows=$ROWS ;; empty) rows=0 ;; *) rows=- ;; esac
    case $mode in
      exact) label="exact (dest)" ;;
      recovery) label="recovery (pg_wal/RECOVERYXLOG)" ;;
      *) label="sh -c 'exit 1' (no client)" ;;
    esac
    printf '%-10s %10s  %-31s %6s %8s %8s %8s\n' "$n" "$rows" "$label" "$(wc -l <"$f")" "$(pct "$f" 50)" "$(pct "$f" 95)" "$(pct "$f" 100)"
  done
  echo
  printf '%-10s %12s %16s %16s %16s\n' daemon "start-up ms" "VmRSS start KiB" "VmRSS end KiB" "VmHWM end KiB"
  for n in empty big; do
    read -r r0 _ <<<"${RSS_START[$n]}"
    read -r r1 h1 <<<"$(rss_of "${DAEMON_PID[$n]}")"
    printf '%-10s %12s %16s %16s %16s\n' "$n" "${STARTUP_MS[$n]}" "$r0" "$r1" "$h1"
  done
  echo "(start-up: launch until the socket answers, start-up repair of the index included)"
} | tee "$OUT"
{
  echo "repository,mode,ns"
  for s in "${series[@]}"; do sed "s/^/${s%%:*},${s##*:},/" "$TMP/ns.${s/:/.}"; done
} >"$CSV"
log "table: $OUT; every call: $CSV"
