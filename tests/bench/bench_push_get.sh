#!/usr/bin/env bash
# walvault vs pgBackRest vs raw zstd: serial archive-push / archive-get of the SAME real
# 16 MiB WAL segments, each call started through `sh -c` as PostgreSQL starts
# archive_command / restore_command.  See tests/bench/README.md.
#
# Environment (all optional):
#   SEGMENTS=32            segments to benchmark
#   OUT=bench-results.txt  where the results table is written (per-call CSV beside it)
#   TOOLS="zstd pgbackrest walvault"   which parts to run
#   WALVAULT_BIN_DIR       default: <repo>/build/bin
#   WALVAULT_COMPRESS=zstd:3   WALVAULT_WORKERS (unset: daemon default)
#   WALVAULT_RECOVERY_GETS=1   also time gets into pg_wal/RECOVERYXLOG (mode=recovery)
#   PG_BIN=/usr/lib/postgresql/15/bin   SCALE=20 (pgbench -i -s)   PGBENCH_CHUNK=10 (s)
#   INIT_SEGMENTS=SEGMENTS/4   how many of the segments come from pgbench -i (the rest: transactions)
#   BENCH_USER=postgres    user running the cluster and every timed call (when run as root)
#   CALL_TIMEOUT=120       seconds allowed for one timed call
#   GEN_TIMEOUT=600        seconds allowed for generating the WAL
#   KEEP=0                 1 = keep the temporary directory
set -Eeuo pipefail
export LC_ALL=C

SEGMENTS=${SEGMENTS:-32}
OUT=${OUT:-bench-results.txt}
TOOLS=${TOOLS:-"zstd pgbackrest walvault"}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SCALE=${SCALE:-20}
INIT_SEGMENTS=${INIT_SEGMENTS:-$(( ${SEGMENTS:-32} / 4 ))}
PGBENCH_CHUNK=${PGBENCH_CHUNK:-10}
BENCH_USER=${BENCH_USER:-postgres}
CALL_TIMEOUT=${CALL_TIMEOUT:-120}
GEN_TIMEOUT=${GEN_TIMEOUT:-600}
KEEP=${KEEP:-0}
WALVAULT_COMPRESS=${WALVAULT_COMPRESS:-zstd:3}
WALVAULT_WORKERS=${WALVAULT_WORKERS:-}
WALVAULT_RECOVERY_GETS=${WALVAULT_RECOVERY_GETS:-1}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
WALVAULT_BIN_DIR=${WALVAULT_BIN_DIR:-$repo_root/build/bin}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
CSV=${OUT%.txt}.calls.csv

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

[[ $SEGMENTS =~ ^[1-9][0-9]*$ ]] || die "SEGMENTS must be a positive integer"
if ! [[ $INIT_SEGMENTS =~ ^[0-9]+$ ]] || (( INIT_SEGMENTS > SEGMENTS )); then
    die "INIT_SEGMENTS must be 0..SEGMENTS"
fi
for t in $TOOLS; do
    case $t in zstd|pgbackrest|walvault) ;; *) die "unknown tool '$t' in TOOLS" ;; esac
done
for b in initdb pg_ctl pgbench psql; do [[ -x $PG_BIN/$b ]] || die "$PG_BIN/$b not found"; done
command -v cc >/dev/null || die "a C compiler (cc) is needed for the timing helper"
if has_tool zstd; then command -v zstd >/dev/null || die "zstd CLI not found"; fi
if has_tool pgbackrest; then command -v pgbackrest >/dev/null || die "pgbackrest not found"; fi
if has_tool walvault; then
    for b in walvaultd archive-push archive-get; do
        [[ -x $WALVAULT_BIN_DIR/$b ]] || die "$WALVAULT_BIN_DIR/$b not found (build first, set WALVAULT_BIN_DIR, or drop walvault from TOOLS)"
    done
fi

# ---------------------------------------------------------------- users
if [[ $(id -u) -eq 0 ]]; then
    id "$BENCH_USER" >/dev/null 2>&1 || die "user $BENCH_USER does not exist"
    bench_uid=$(id -u "$BENCH_USER")
    as_bench() { setpriv --reuid="$BENCH_USER" --regid="$(id -g "$BENCH_USER")" --init-groups \
                     env HOME="$TMP" "$@"; }
else
    BENCH_USER=$(id -un)
    bench_uid=$(id -u)
    as_bench() { env HOME="$TMP" "$@"; }
fi

# ---------------------------------------------------------------- cleanup
TMP=""
PG_STARTED=0
WV_PID=""
# shellcheck disable=SC2317  # invoked through trap
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ -n $WV_PID ]]; then
        stop_daemon >/dev/null 2>&1
    fi
    if [[ $PG_STARTED -eq 1 ]]; then
        as_bench "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1
        PG_STARTED=0
    fi
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ $KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wvbench.XXXXXX")
chmod 755 "$TMP"
cd "$TMP"
mkdir -p "$TMP"/{run,arch,segs,log,pgbr/repo,pgbr/log,pgbr/lock,wv,zst,got}
chown -R "$bench_uid" "$TMP"/{run,arch,segs,log,pgbr,wv,zst,got} 2>/dev/null || true
PGDATA=$TMP/pgdata
SOCKDIR=$TMP/run

# ---------------------------------------------------------------- timing helper
# runtimer CMDFILE TIMEOUT: runs each line "T <cmd>" (timed) or "U <cmd>" (untimed, e.g. a
# move after a get) with /bin/sh -c, serially; prints "<ns> <maxrss_kb> <rc>" per timed line.
# Stops at the first failing line (exit 3).  maxrss is the peak RSS of the sh and its children.
cat > "$TMP/runtimer.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t timed_out;
static volatile pid_t child;
static void on_alarm(int s) { (void)s; timed_out = 1; if (child > 0) kill(-child, SIGKILL); }
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: runtimer CMDFILE TIMEOUT\n"); return 2; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 2; }
    unsigned tmo = (unsigned)atoi(argv[2]);
    struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    char *line = NULL; size_t cap = 0; ssize_t n; long lineno = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] == '\n') line[--n] = 0;
        if (n < 3) continue;
        int timed = line[0] == 'T';
        const char *cmd = line + 2;
        struct timespec a, b; struct rusage ru; int st = 0;
        timed_out = 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t p = fork();
        if (p < 0) { perror("fork"); return 2; }
        if (p == 0) {
            setpgid(0, 0);
            int fd = open("/dev/null", O_RDONLY);
            if (fd >= 0) { dup2(fd, 0); if (fd > 0) close(fd); }
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        setpgid(p, p);
        child = p;
        alarm(tmo);
        while (wait4(p, &st, 0, &ru) < 0) {
            if (errno != EINTR) { perror("wait4"); return 2; }
        }
        alarm(0);
        child = 0;
        clock_gettime(CLOCK_MONOTONIC, &b);
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (timed_out) rc = 124;
        long long ns = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        if (timed) { printf("%lld %ld %d\n", ns, ru.ru_maxrss, rc); fflush(stdout); }
        if (rc != 0) {
            fprintf(stderr, "runtimer: line %ld exited %d%s: %s\n", lineno, rc,
                    timed_out ? " (timed out)" : "", cmd);
            return 3;
        }
    }
    return 0;
}
EOF
cc -O2 -o "$TMP/runtimer" "$TMP/runtimer.c" || die "cannot compile the timing helper"
chmod 755 "$TMP/runtimer"

# run_calls NAME CWD CMDFILE: timed run as the bench user; results in $TMP/res.NAME
run_calls() {
    local name=$1 cwd=$2 cmds=$3 rc=0
    sync
    (cd "$cwd" && as_bench "$TMP/runtimer" "$cmds" "$CALL_TIMEOUT") \
        > "$TMP/res.$name" 2> "$TMP/log/$name.stderr" || rc=$?
    if [[ $rc -ne 0 ]]; then
        log "$name FAILED (runtimer exit $rc); stderr:"
        tail -n 20 "$TMP/log/$name.stderr" >&2
        FAILS+=("$name: $(tail -n 3 "$TMP/log/$name.stderr" | tr '\n' '|')")
    elif [[ -s $TMP/log/$name.stderr ]]; then
        log "$name: calls wrote to stderr (first lines):"
        head -n 5 "$TMP/log/$name.stderr" >&2
    fi
    return "$rc"
}

FAILS=()
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1. real WAL
free_port() {
    local p start=$((54320 + RANDOM % 500))
    for ((p = start; p < start + 500; p++)); do
        if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
    done
    return 1
}
PGPORT=$(free_port) || die "no free loopback port"
export PGHOST=$SOCKDIR PGPORT PGUSER=postgres PGDATABASE=postgres
psql_c() { as_bench timeout 60 "$PG_BIN/psql" -X -qAt -v ON_ERROR_STOP=1 -c "$1"; }

log "initdb + start PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PGPORT"
mkdir -p "$PGDATA" && chown "$bench_uid" "$PGDATA" && chmod 700 "$PGDATA"
as_bench timeout 120 "$PG_BIN/initdb" -D "$PGDATA" -A trust -U postgres --no-sync \
    > "$TMP/log/initdb.log" 2>&1 || { cat "$TMP/log/initdb.log" >&2; die "initdb failed"; }
cat >> "$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCKDIR'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $TMP/arch/%f.tmp && mv $TMP/arch/%f.tmp $TMP/arch/%f'
full_page_writes = on
checkpoint_timeout = 30s
max_wal_size = 1GB
fsync = off
synchronous_commit = off
EOF
PG_STARTED=1
as_bench "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$TMP/log/postgresql.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$TMP/log/postgresql.log" >&2; die "PostgreSQL did not start"; }

seg_no() { echo $((16#${1:8:8} * 256 + 16#${1:16:8})); }   # 16 MiB segments: 256 per xlogid
gen_start=$SECONDS
log "pgbench -i -s $SCALE"
as_bench timeout "$GEN_TIMEOUT" "$PG_BIN/pgbench" -i -s "$SCALE" -q \
    > "$TMP/log/pgbench-init.log" 2>&1 || { tail "$TMP/log/pgbench-init.log" >&2; die "pgbench -i failed"; }
init_last=$(psql_c "select pg_walfile_name(pg_current_wal_lsn())")
# the benchmarked segments: the last INIT_SEGMENTS of pgbench -i (bulk load + index build,
# very compressible) followed by segments of pgbench transactions (steady OLTP with FPIs)
n_init=$(( INIT_SEGMENTS < $(seg_no "$init_last") ? INIT_SEGMENTS : $(seg_no "$init_last") ))
tx_target=$(( SEGMENTS - n_init ))
while :; do
    cur=$(psql_c "select pg_walfile_name(pg_current_wal_lsn())")
    tx_done=$(( $(seg_no "$cur") - $(seg_no "$init_last") ))
    (( tx_done >= tx_target )) && break
    (( SECONDS - gen_start < GEN_TIMEOUT )) || die "WAL generation exceeded GEN_TIMEOUT=$GEN_TIMEOUT s"
    log "pgbench ${PGBENCH_CHUNK}s (transaction segments so far: $tx_done/$tx_target)"
    psql_c "checkpoint" >/dev/null
    as_bench timeout $((PGBENCH_CHUNK + 60)) "$PG_BIN/pgbench" -c 4 -j 2 -T "$PGBENCH_CHUNK" -n \
        >> "$TMP/log/pgbench-run.log" 2>&1 || die "pgbench run failed"
    psql_c "select pg_switch_wal()" >/dev/null
done
last=$(psql_c "select pg_walfile_name(pg_switch_wal())")
log "waiting for the archiver to reach $last"
for ((i = 0; i < 120; i++)); do [[ -f $TMP/arch/$last ]] && break; sleep 0.5; done
[[ -f $TMP/arch/$last ]] || die "archiver did not archive $last within 60 s"
as_bench "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
PG_STARTED=0
sysid=$(as_bench "$PG_BIN/pg_controldata" -D "$PGDATA" | awk -F': *' '/Database system identifier/ {print $2}')

mapfile -t SEGS < <(for f in "$TMP"/arch/[0-9A-F]*; do b=${f##*/}; [[ $b =~ ^[0-9A-F]{24}$ ]] && echo "$b"; done \
                    | sort | awk -v last="$init_last" -v ni="$n_init" -v nt="$tx_target" '
                        ($0 "") <= (last "") { init[++i] = $0; next }   # string comparison
                        t < nt { tx[++t] = $0 }
                        END { for (k = i - ni + 1; k <= i; k++) print init[k]; for (k = 1; k <= t; k++) print tx[k] }')
[[ ${#SEGS[@]} -eq $SEGMENTS ]] || die "only ${#SEGS[@]} segments archived, wanted $SEGMENTS"
for s in "${SEGS[@]}"; do
    [[ $(stat -c %s "$TMP/arch/$s") -eq 16777216 ]] || die "$s is not 16 MiB"
    cp "$TMP/arch/$s" "$TMP/segs/$s"
done
rm -rf "$TMP/arch"
chown -R "$bench_uid" "$TMP/segs"
chmod 644 "$TMP"/segs/*
cat "$TMP"/segs/* > /dev/null   # same page-cache state for every tool
PLAIN=$(( SEGMENTS * 16777216 ))
log "$SEGMENTS segments ${SEGS[0]}..${SEGS[-1]} ($n_init from pgbench -i, $((SEGMENTS - n_init)) from transactions), generated in $((SECONDS - gen_start)) s"

# ---------------------------------------------------------------- helpers for results
# stats NAME -> "MBps p50ms p95ms maxrss_kb" (MB = 10^6 bytes; nearest-rank percentiles)
stats() {
    sort -n -k1,1 "$TMP/res.$1" | awk -v bytes="$PLAIN" '
        { ns[NR] = $1; tot += $1; if ($2 > rss) rss = $2 }
        END {
            n = NR
            if (n == 0) { print "- - - -"; exit }
            i50 = int(0.50 * n); if (i50 < 0.50 * n) i50++
            i95 = int(0.95 * n); if (i95 < 0.95 * n) i95++
            printf "%.1f %.2f %.2f %d\n", bytes / 1e6 / (tot / 1e9), ns[i50] / 1e6, ns[i95] / 1e6, rss
        }'
}
files_bytes() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
csv_append() {   # tool op
    local i=0 ns rss rc
    while read -r ns rss rc; do
        printf '%s,%s,%s,%s,%s,%s\n' "$1" "$2" "${SEGS[$i]}" "$ns" "$rss" "$rc" >> "$CSV.tmp"
        i=$((i + 1))
    done < "$TMP/res.$1-$2"
}
verify_dir() {   # DIR -> number of segments that do not match
    local bad=0 s
    for s in "${SEGS[@]}"; do
        cmp -s "$TMP/segs/$s" "$1/$s" || { bad=$((bad + 1)); log "MISMATCH or missing: $1/$s"; }
    done
    echo "$bad"
}
: > "$CSV.tmp"
declare -A ROW NOTE
STATUS=0

# ---------------------------------------------------------------- 4. raw zstd (the limit)
if has_tool zstd; then
    log "raw zstd -3: compress and decompress each segment"
    : > "$TMP/cmds"
    for s in "${SEGS[@]}"; do
        echo "U zstd -3 -q -c $TMP/segs/$s > $TMP/zst/$s.zst" >> "$TMP/cmds"
    done
    run_calls zstd-prep "$TMP" "$TMP/cmds" || die "zstd failed"
    zstd_bytes=$(files_bytes "$TMP/zst")
    : > "$TMP/cmds.c"; : > "$TMP/cmds.d"
    for s in "${SEGS[@]}"; do
        echo "T zstd -3 -q -c $TMP/segs/$s > /dev/null" >> "$TMP/cmds.c"
        echo "T zstd -d -q -c $TMP/zst/$s.zst > /dev/null" >> "$TMP/cmds.d"
    done
    if run_calls zstd-push "$TMP" "$TMP/cmds.c" && run_calls zstd-get "$TMP" "$TMP/cmds.d"; then
        read -r pm p50 p95 prss <<< "$(stats zstd-push)"
        read -r gm g50 g95 grss <<< "$(stats zstd-get)"
        ratio=$(awk -v a="$PLAIN" -v b="$zstd_bytes" 'BEGIN { printf "%.2f", a / b }')
        rss=$(( prss > grss ? prss : grss ))
        ROW[zstd]="$pm $p50 $p95 $gm $g50 $g95 $ratio $(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')"
        NOTE[zstd]="zstd $(zstd -V | grep -oE 'v[0-9.]+' | head -1) -3 (1 thread), one process per segment; peak RSS = largest process"
        csv_append zstd push; csv_append zstd get
    else
        ROW[zstd]="FAIL"; STATUS=1
    fi
    rm -rf "$TMP/zst"
fi

# ---------------------------------------------------------------- 3. pgBackRest
if has_tool pgbackrest; then
    log "pgBackRest $(pgbackrest version | awk '{print $2}'): stanza-create (--no-online, cluster stopped)"
    PGBR_CONF=$TMP/pgbr/pgbackrest.conf
    cat > "$PGBR_CONF" <<EOF
[global]
repo1-path=$TMP/pgbr/repo
log-path=$TMP/pgbr/log
lock-path=$TMP/pgbr/lock
log-level-console=warn
log-level-stderr=warn
log-level-file=off
compress-type=zst
compress-level=3
archive-async=n

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$SOCKDIR
EOF
    chmod 644 "$PGBR_CONF"
    PGBR="pgbackrest --config=$PGBR_CONF --stanza=bench"
    as_bench timeout 60 pgbackrest --config="$PGBR_CONF" --stanza=bench --no-online stanza-create > "$TMP/log/pgbr-stanza.log" 2>&1 \
        || { cat "$TMP/log/pgbr-stanza.log" >&2; die "pgbackrest stanza-create failed"; }
    getdir=$TMP/got/pgbackrest
    mkdir -p "$getdir" && chown "$bench_uid" "$getdir"
    : > "$TMP/cmds.p"; : > "$TMP/cmds.g"
    for s in "${SEGS[@]}"; do
        echo "T $PGBR archive-push $TMP/segs/$s" >> "$TMP/cmds.p"
        echo "T $PGBR archive-get $s $getdir/$s" >> "$TMP/cmds.g"
    done
    log "pgBackRest: $SEGMENTS serial archive-push"
    if run_calls pgbackrest-push "$TMP" "$TMP/cmds.p"; then
        pgbr_bytes=$(files_bytes "$TMP/pgbr/repo/archive/bench" -name '*.zst')
        log "pgBackRest: $SEGMENTS serial archive-get"
        if run_calls pgbackrest-get "$getdir" "$TMP/cmds.g"; then
            bad=$(verify_dir "$getdir")
            read -r pm p50 p95 prss <<< "$(stats pgbackrest-push)"
            read -r gm g50 g95 grss <<< "$(stats pgbackrest-get)"
            ratio=$(awk -v a="$PLAIN" -v b="$pgbr_bytes" 'BEGIN { printf "%.2f", a / b }')
            rss=$(( prss > grss ? prss : grss ))
            ROW[pgbackrest]="$pm $p50 $p95 $gm $g50 $g95 $ratio $(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')"
            NOTE[pgbackrest]="pgBackRest $(pgbackrest version | awk '{print $2}'), archive-async=n, zst level 3, posix repo; peak RSS = largest process (push ${prss} KB, get ${grss} KB)"
            [[ $bad -eq 0 ]] || { NOTE[pgbackrest]+="; $bad segments DIFFER after archive-get"; STATUS=1; }
            csv_append pgbackrest push; csv_append pgbackrest get
        else
            ROW[pgbackrest]="FAIL"; STATUS=1
        fi
    else
        ROW[pgbackrest]="FAIL"; STATUS=1
    fi
    rm -rf "$getdir"
fi

# ---------------------------------------------------------------- 2. walvault
daemon_mem() {   # -> "VmHWM_kB VmRSS_kB"
    awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print h + 0, r + 0 }' "/proc/$WV_PID/status" 2>/dev/null \
        || echo "0 0"
}
stop_daemon() {
    local i
    [[ -n $WV_PID ]] || return 0
    kill -TERM "$WV_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$WV_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$WV_PID" 2>/dev/null; then
        log "walvaultd did not exit within 15 s of SIGTERM: SIGKILL"
        WV_ODD+=("walvaultd did not exit within 15 s of SIGTERM")
        kill -KILL "$WV_PID" 2>/dev/null || true
    fi
    local rc=0
    wait "$WV_PID" 2>/dev/null || rc=$?
    [[ $rc -eq 0 ]] || WV_ODD+=("walvaultd exited with status $rc after SIGTERM")
    WV_PID=""
}
WV_ODD=()
if has_tool walvault; then
    WV_REPO=$TMP/wv/repo
    WV_SOCK=$TMP/wv/wv.sock
    (( ${#WV_SOCK} <= 107 )) || die "socket path $WV_SOCK longer than 107 bytes; set TMPDIR shorter"
    mkdir -p "$WV_REPO" && chown "$bench_uid" "$WV_REPO"
    wv_args=(--repo "$WV_REPO" --socket "$WV_SOCK" --allow-uid "$bench_uid" --compress "$WALVAULT_COMPRESS")
    [[ -z $WALVAULT_WORKERS ]] || wv_args+=(--workers "$WALVAULT_WORKERS")
    log "walvault: $WALVAULT_BIN_DIR/walvaultd ${wv_args[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        setpriv --reuid="$BENCH_USER" --regid="$(id -g "$BENCH_USER")" --init-groups \
            "$WALVAULT_BIN_DIR/walvaultd" "${wv_args[@]}" > "$TMP/log/walvaultd.log" 2>&1 &
    else
        "$WALVAULT_BIN_DIR/walvaultd" "${wv_args[@]}" > "$TMP/log/walvaultd.log" 2>&1 &
    fi
    WV_PID=$!
    for ((i = 0; i < 150; i++)); do
        [[ -S $WV_SOCK ]] && break
        kill -0 "$WV_PID" 2>/dev/null || break
        sleep 0.1
    done
    wv_ok=1
    if ! [[ -S $WV_SOCK ]] || ! kill -0 "$WV_PID" 2>/dev/null; then
        log "walvaultd did not come up (socket $WV_SOCK); log:"; tail -n 20 "$TMP/log/walvaultd.log" >&2
        WV_ODD+=("walvaultd did not create its socket within 15 s")
        wv_ok=0
    fi
    read -r mem0_hwm mem0_rss <<< "$(daemon_mem)"
    getdir=$TMP/got/walvault
    mkdir -p "$getdir" && chown "$bench_uid" "$getdir"
    : > "$TMP/cmds.p"; : > "$TMP/cmds.g"
    for s in "${SEGS[@]}"; do
        echo "T $WALVAULT_BIN_DIR/archive-push --socket $WV_SOCK $TMP/segs/$s" >> "$TMP/cmds.p"
        echo "T $WALVAULT_BIN_DIR/archive-get --socket $WV_SOCK $s $getdir/$s" >> "$TMP/cmds.g"
    done
    if [[ $wv_ok -eq 1 ]]; then
        log "walvault: $SEGMENTS serial archive-push"
        run_calls walvault-push "$TMP" "$TMP/cmds.p" || wv_ok=0
    fi
    if [[ $wv_ok -eq 1 ]]; then
        read -r mem1_hwm mem1_rss <<< "$(daemon_mem)"
        if [[ -d $WV_REPO/wal ]]; then wv_bytes=$(files_bytes "$WV_REPO/wal"); wv_where="REPO/wal"
        else wv_bytes=$(files_bytes "$WV_REPO"); wv_where="REPO (no REPO/wal directory)"; fi
        log "walvault: $SEGMENTS serial archive-get (absolute %p: mode=exact)"
        run_calls walvault-get "$getdir" "$TMP/cmds.g" || wv_ok=0
    fi
    if [[ $wv_ok -eq 1 ]]; then
        read -r mem2_hwm mem2_rss <<< "$(daemon_mem)"
        bad=$(verify_dir "$getdir")
        rm -rf "$getdir"
        read -r pm p50 p95 prss <<< "$(stats walvault-push)"
        read -r gm g50 g95 grss <<< "$(stats walvault-get)"
        ratio=$(awk -v a="$PLAIN" -v b="$wv_bytes" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        ROW[walvault]="$pm $p50 $p95 $gm $g50 $g95 $ratio $(awk -v k="$mem2_hwm" 'BEGIN{printf "%.1f", k/1024}')"
        NOTE[walvault]="walvaultd --compress $WALVAULT_COMPRESS${WALVAULT_WORKERS:+ --workers $WALVAULT_WORKERS}; peak RSS = daemon VmHWM; ratio from $wv_where"
        NOTE[walvault-mem]="walvaultd VmHWM/VmRSS kB: start $mem0_hwm/$mem0_rss, after pushes $mem1_hwm/$mem1_rss, after gets $mem2_hwm/$mem2_rss; client peak RSS push ${prss} KB, get ${grss} KB"
        [[ $bad -eq 0 ]] || { NOTE[walvault]+="; $bad segments DIFFER after archive-get"; STATUS=1; }
        csv_append walvault push; csv_append walvault get

        if [[ $WALVAULT_RECOVERY_GETS == 1 ]]; then
            # as in archive recovery: cwd = a data-directory-like dir without standby.signal,
            # %p = pg_wal/RECOVERYXLOG; the file is moved away (untimed) after each call.
            rdir=$TMP/got/recovery
            mkdir -p "$rdir/pg_wal" "$rdir/out" && chown -R "$bench_uid" "$rdir"
            : > "$TMP/cmds.r"
            for s in "${SEGS[@]}"; do
                echo "T $WALVAULT_BIN_DIR/archive-get --socket $WV_SOCK $s pg_wal/RECOVERYXLOG" >> "$TMP/cmds.r"
                echo "U mv pg_wal/RECOVERYXLOG out/$s" >> "$TMP/cmds.r"
            done
            log "walvault: $SEGMENTS serial archive-get into pg_wal/RECOVERYXLOG (mode=recovery)"
            if run_calls walvault-rget "$rdir" "$TMP/cmds.r"; then
                bad=$(verify_dir "$rdir/out")
                read -r gm g50 g95 grss <<< "$(stats walvault-rget)"
                ROW[walvault-rec]="- - - $gm $g50 $g95 - -"
                [[ $bad -eq 0 ]] || { NOTE[walvault]+="; $bad segments DIFFER after recovery-mode archive-get"; STATUS=1; }
                i=0
                while read -r ns rss rc; do
                    printf 'walvault,get-recovery,%s,%s,%s,%s\n' "${SEGS[$i]}" "$ns" "$rss" "$rc" >> "$CSV.tmp"
                    i=$((i + 1))
                done < "$TMP/res.walvault-rget"
            else
                ROW[walvault-rec]="FAIL"; STATUS=1
            fi
            rm -rf "$rdir"
        fi
    else
        ROW[walvault]="FAIL"; STATUS=1
        tail -n 20 "$TMP/log/walvaultd.log" > "$TMP/log/walvaultd.tail" 2>/dev/null || true
    fi
    if [[ -n $WV_PID ]] && ! kill -0 "$WV_PID" 2>/dev/null; then
        WV_ODD+=("walvaultd was no longer running at the end of the benchmark")
    fi
    stop_daemon
    if grep -qiE 'error|warn|fatal|critical' "$TMP/log/walvaultd.log" 2>/dev/null; then
        WV_ODD+=("walvaultd log has warnings/errors: $(grep -iE 'error|warn|fatal|critical' "$TMP/log/walvaultd.log" | head -n 3 | tr '\n' '|')")
    fi
fi

# ---------------------------------------------------------------- 5. report
# shellcheck disable=SC2059  # $fmt is ours
{
    echo "walvault archive-push/archive-get benchmark  $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "host: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
    echo "WAL: $SEGMENTS real 16 MiB segments of one PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') cluster (system id $sysid):"
    echo "     ${SEGS[0]}..${SEGS[-1]}: $n_init from pgbench -i -s $SCALE (bulk load), $((SEGMENTS - n_init)) from pgbench -c 4 -j 2 transactions (checkpoint + ${PGBENCH_CHUNK}s + pg_switch_wal)"
    echo "calls: serial, each one 'sh -c \"COMMAND\"' as user $BENCH_USER (as PostgreSQL runs archive_command/restore_command)"
    echo "MB/s = $PLAIN plain bytes / 10^6 / sum of call seconds; p50/p95 = nearest-rank ms per call; ratio = plain bytes / stored bytes"
    echo
    fmt='%-18s %9s %8s %8s %9s %8s %8s %7s %10s\n'
    printf "$fmt" tool "push MB/s" "push p50" "push p95" "get MB/s" "get p50" "get p95" ratio "peak RSS"
    printf "$fmt" "" "" "ms" "ms" "" "ms" "ms" "" "MiB"
    for t in walvault walvault-rec pgbackrest zstd; do
        [[ -n ${ROW[$t]:-} ]] || continue
        label=$t; [[ $t == zstd ]] && label="zstd -3 (raw)"; [[ $t == walvault-rec ]] && label="walvault RECOVERYXLOG"
        if [[ ${ROW[$t]} == FAIL ]]; then printf "$fmt" "$label" FAIL - - - - - - -; continue; fi
        # shellcheck disable=SC2086
        printf "$fmt" "$label" ${ROW[$t]}
    done
    if [[ -n ${ROW[walvault]:-} && -n ${ROW[pgbackrest]:-} && ${ROW[walvault]} != FAIL && ${ROW[pgbackrest]} != FAIL ]]; then
        read -r -a w <<< "${ROW[walvault]}"; read -r -a p <<< "${ROW[pgbackrest]}"
        r=()
        for k in 0 1 2 3 4 5 6 7; do
            r+=("$(awk -v a="${w[$k]}" -v b="${p[$k]}" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2fx", a / b; else print "-" }')")
        done
        printf "$fmt" "walvault/pgbackrest" "${r[@]}"
        echo "(MB/s and ratio: above 1x = walvault better; ms and RSS: below 1x = walvault better)"
    fi
    echo
    for t in walvault walvault-mem pgbackrest zstd; do
        [[ -z ${NOTE[$t]:-} ]] || echo "note: ${NOTE[$t]}"
    done
    [[ -z ${ROW[walvault-rec]:-} ]] || echo "note: 'walvault RECOVERYXLOG' = archive-get NAME pg_wal/RECOVERYXLOG (mode=recovery, prefetch allowed) in a dir without standby.signal; the main walvault row uses an absolute %p (mode=exact)"
    for o in "${WV_ODD[@]}"; do echo "odd: $o"; done
    for o in "${FAILS[@]}"; do echo "failed: $o"; done
    echo "load average: at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg) (other work on the host skews the numbers)"
    echo "per-call data: $CSV"
} > "$OUT.tmp"
{ echo "tool,op,segment,ns,maxrss_kb,rc"; cat "$CSV.tmp"; } > "$CSV"
rm -f "$CSV.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
if [[ $STATUS -ne 0 ]]; then log "some part FAILED (see above)"; fi
exit "$STATUS"
