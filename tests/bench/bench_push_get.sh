#!/usr/bin/env bash
# walvault vs pgBackRest vs raw zstd: serial archive-push / archive-get of the SAME real
# 16 MiB WAL segments, each call started through `sh -c` as PostgreSQL starts
# archive_command / restore_command, into local directories or (STORE=s3) an S3 bucket behind a
# delaying proxy.  See tests/bench/README.md.
#
# Environment (all optional):
#   SEGMENTS=32            segments to benchmark
#   ROUNDS=3               rounds (fresh repositories each, tool order rotated); calls pooled
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
#   REUSE_WAL=DIR          a directory an earlier run kept (KEEP=1): benchmark its segments
#                          (and its stopped cluster, for pgBackRest) instead of making new WAL,
#                          so two builds compare on the same bytes (WAL differs run to run)
#   STORE=local            where the repositories are: local = directories here; s3 = a bucket
#                          of a moto_server on 127.0.0.1 behind tests/s3/fault_proxy.py over TLS
#                          (walvaultd and pgBackRest both through the proxy; see README)
#   DELAYS="0 20"          STORE=s3: ms the proxy adds to every request, one table per value
#                          (DELAY_MS=D is the same as DELAYS=D)
#   S3_BUCKET=wvbench      STORE=s3: the bucket made in moto
#   ENCRYPT=0              1 = encryption at rest on both sides: walvaultd with an
#                          encryption-key-file (AES-256-GCM), pgBackRest with
#                          repo1-cipher-type=aes-256-cbc (a passphrase)
#   WALVAULT_LOCAL_FIRST=0 STORE=s3: 1 = walvaultd gets a local directory as its first repository
#                          and the bucket as its second (repo twice: every push stored in both)
# shellcheck disable=SC2317  # functions are called indirectly (trap, "bench_$tool")
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
REUSE_WAL=${REUSE_WAL:-}
WALVAULT_COMPRESS=${WALVAULT_COMPRESS:-zstd:3}
WALVAULT_WORKERS=${WALVAULT_WORKERS:-}
WALVAULT_LOCAL_FIRST=${WALVAULT_LOCAL_FIRST:-0}
WALVAULT_RECOVERY_GETS=${WALVAULT_RECOVERY_GETS:-1}
ROUNDS=${ROUNDS:-3}
STORE=${STORE:-local}
DELAYS=${DELAYS:-${DELAY_MS:-0 20}}
S3_BUCKET=${S3_BUCKET:-wvbench}
ENCRYPT=${ENCRYPT:-0}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
WALVAULT_BIN_DIR=${WALVAULT_BIN_DIR:-$repo_root/build/bin}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
CSV=${OUT%.txt}.calls.csv

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

[[ $SEGMENTS =~ ^[1-9][0-9]*$ ]] || die "SEGMENTS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
if ! [[ $INIT_SEGMENTS =~ ^[0-9]+$ ]] || (( INIT_SEGMENTS > SEGMENTS )); then
    die "INIT_SEGMENTS must be 0..SEGMENTS"
fi
for t in $TOOLS; do
    case $t in zstd|pgbackrest|walvault) ;; *) die "unknown tool '$t' in TOOLS" ;; esac
done
case $STORE in
    local) DELAYS="" ;;
    s3)
        for d in $DELAYS; do [[ $d =~ ^[0-9]+$ ]] || die "DELAYS must be integers (ms), not '$d'"; done
        [[ -n ${DELAYS// /} ]] || die "DELAYS is empty"
        [[ $S3_BUCKET =~ ^[a-z0-9][a-z0-9.-]{2,62}$ ]] || die "S3_BUCKET '$S3_BUCKET' is not a bucket name"
        for d in /root/.pyenv/shims "${PYENV_ROOT:-$HOME/.pyenv}/shims"; do   # moto_server, boto3
            [[ ! -d $d || :$PATH: == *:$d:* ]] || PATH=$d:$PATH
        done
        for b in moto_server python3 openssl curl; do command -v "$b" >/dev/null || die "STORE=s3 needs $b"; done
        python3 -c 'import boto3' 2>/dev/null || die "STORE=s3 needs python3 with boto3"
        ;;
    *) die "STORE must be local or s3" ;;
esac
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
S3_PIDS=()
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ -n $WV_PID ]]; then
        stop_daemon >/dev/null 2>&1
    fi
    [[ $STORE != s3 ]] || ! declare -F stop_s3 >/dev/null || stop_s3
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
mkdir -p "$TMP"/{run,arch,segs,log,pgbr/repo,pgbr/log,pgbr/lock,wv,got}
chown -R "$bench_uid" "$TMP"/{run,arch,segs,log,pgbr,wv,got} 2>/dev/null || true
PGDATA=$TMP/pgdata
SOCKDIR=$TMP/run
if has_tool walvault; then
    # one consistent build for the whole run, even if build/bin is rebuilt meanwhile
    mkdir -p "$TMP/wvbin"
    for b in walvaultd archive-push archive-get; do cp "$WALVAULT_BIN_DIR/$b" "$TMP/wvbin/$b"; done
    chmod 755 "$TMP/wvbin" "$TMP"/wvbin/*
    wv_version=$(timeout 10 "$TMP/wvbin/walvaultd" --version 2>&1 | head -n 1) \
        || die "$WALVAULT_BIN_DIR/walvaultd --version failed (being rebuilt?): $wv_version"
    WV_BUILD="$WALVAULT_BIN_DIR ($wv_version), walvaultd built $(date -r "$WALVAULT_BIN_DIR/walvaultd" '+%Y-%m-%d %H:%M:%S'), sha256 $(sha256sum "$TMP/wvbin/walvaultd" | cut -c1-12)"
    WALVAULT_BIN_DIR=$TMP/wvbin
fi

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

source "$script_dir/s3_bench_lib.sh"   # free_port, serve, start_s3, proxy_delay, pgbr_async_pids, stop_s3
proxy_lines() { wc -l < "$PROXY_LOG"; }
s3_quiet() {   # wait (at most 60 s) until no pgBackRest async process runs and the proxy logged nothing for 1 s
    local i n prev=-1 still=0
    for ((i = 0; i < 600; i++)); do
        n=$(proxy_lines)
        if [[ $n == "$prev" && -z $(pgbr_async_pids) ]]; then
            still=$((still + 1)); (( still < 10 )) || return 0
        else
            still=0
        fi
        prev=$n; sleep 0.1
    done
    WV_ODD+=("S3: requests still going on 60 s after a series (round $ROUND, ${PASS_TAG:-})")
}
# s3util bytes|purge PREFIX [SUFFIX]: total size of the objects under PREFIX (ending in SUFFIX),
# or delete them (moto holds them in memory); asked of moto directly, untimed
s3util() {
    timeout 120 python3 -c '
import sys, boto3
op, ep, bucket, prefix, suffix = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1")
keys = [(o["Key"], o["Size"]) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
if op == "bytes":
    print(sum(size for _, size in keys))
for i in range(0, len(keys) if op == "purge" else 0, 1000):
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k, _ in keys[i:i + 1000]]})
' "$1" "$S3_UP" "$S3_BUCKET" "$2" "${3:-}"
}
[[ $STORE != s3 ]] || start_s3

# run_calls TOOL OP CWD CMDFILE: one timed series as the bench user.  Results: this round's in
# $TMP/res.TOOL-OP, all rounds' in $TMP/all.TOOL-OP and the CSV; with STORE=s3 the proxy's log
# lines of the series (until it is quiet) in $TMP/req.TOOL-OP.  Returns non-zero on failure.
run_calls() {
    local tool=$1 op=$2 cwd=$3 cmds=$4 name=$1-$2 rc=0 i=0 ns rss crc mark=""
    sync
    [[ $STORE != s3 || $tool == zstd ]] || mark=$(proxy_lines)
    (cd "$cwd" && as_bench "$TMP/runtimer" "$cmds" "$CALL_TIMEOUT") \
        > "$TMP/res.$name" 2> "$TMP/log/$name.r$ROUND.stderr" || rc=$?
    if [[ -n $mark ]]; then
        s3_quiet
        sed -n "$((mark + 1)),\$p" "$PROXY_LOG" | grep -E '^[A-Z]+ [^ ]+ -> ' >> "$TMP/req.$name" || true
    fi
    if [[ $rc -ne 0 ]]; then
        log "$name (round $ROUND) FAILED (runtimer exit $rc); stderr:"
        tail -n 20 "$TMP/log/$name.r$ROUND.stderr" >&2
        FAILS+=("$name round $ROUND: $(tail -n 3 "$TMP/log/$name.r$ROUND.stderr" | tr '\n' '|')")
        return "$rc"
    fi
    if [[ -s $TMP/log/$name.r$ROUND.stderr ]]; then
        log "$name: calls wrote to stderr (first lines):"
        head -n 5 "$TMP/log/$name.r$ROUND.stderr" >&2
        WV_ODD+=("$name wrote to stderr with exit 0: $(head -n 2 "$TMP/log/$name.r$ROUND.stderr" | tr '\n' '|')")
    fi
    cat "$TMP/res.$name" >> "$TMP/all.$name"
    while read -r ns rss crc; do
        printf '%s,%s,%s,%s,%s,%s,%s,%s\n' "$tool" "$op" "$ROUND" "${SEGS[$i]}" "$ns" "$rss" "$crc" "$PASS_TAG" >> "$CSV.tmp"
        i=$((i + 1))
    done < "$TMP/res.$name"
}

FAILS=()
WV_ODD=()
ROUND=0
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1. real WAL
PGPORT=5432   # pgBackRest's configuration names one; the cluster it belongs to stays stopped
generate_wal() {
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
WAL_ORIGIN="$n_init from pgbench -i -s $SCALE (bulk load), $((SEGMENTS - n_init)) from pgbench -c 4 -j 2 transactions (checkpoint + ${PGBENCH_CHUNK}s + pg_switch_wal)"
}

# The segments and stopped cluster of an earlier run (REUSE_WAL).
reuse_wal() {
    [[ -d $REUSE_WAL/segs && -d $REUSE_WAL/pgdata ]] || die "REUSE_WAL=$REUSE_WAL has no segs/ and pgdata/ (keep a run with KEEP=1)"
    mapfile -t SEGS < <(find "$REUSE_WAL/segs" -maxdepth 1 -type f -size 16384k -printf '%f\n' | grep -E '^[0-9A-F]{24}$' | sort | head -n "$SEGMENTS")
    [[ ${#SEGS[@]} -eq $SEGMENTS ]] || die "REUSE_WAL=$REUSE_WAL holds ${#SEGS[@]} segments, wanted $SEGMENTS"
    local s
    for s in "${SEGS[@]}"; do cp "$REUSE_WAL/segs/$s" "$TMP/segs/$s"; done
    cp -a "$REUSE_WAL/pgdata" "$PGDATA"
    chown -R "$bench_uid" "$TMP/segs" "$PGDATA"
    chmod 644 "$TMP"/segs/*
    cat "$TMP"/segs/* > /dev/null   # same page-cache state for every tool
    PLAIN=$(( SEGMENTS * 16777216 ))
    sysid=$(as_bench "$PG_BIN/pg_controldata" -D "$PGDATA" | awk -F': *' '/Database system identifier/ {print $2}')
    WAL_ORIGIN="reused from $REUSE_WAL (the same bytes as that run)"
    log "$SEGMENTS segments ${SEGS[0]}..${SEGS[-1]} reused from $REUSE_WAL"
}

if [[ -n $REUSE_WAL ]]; then reuse_wal; else generate_wal; fi

# ---------------------------------------------------------------- helpers for results
# stats FILE BYTES -> "MBps p50ms p95ms maxrss_kb" (MB = 10^6 bytes; nearest-rank percentiles)
stats() {
    sort -n -k1,1 "$1" | awk -v bytes="$2" '
        { ns[NR] = $1; tot += $1; if ($2 > rss) rss = $2 }
        END {
            n = NR
            if (n == 0) { print "- - - 0"; exit }
            i50 = int(0.50 * n); if (i50 < 0.50 * n) i50++
            i95 = int(0.95 * n); if (i95 < 0.95 * n) i95++
            printf "%.1f %.2f %.2f %d\n", bytes / 1e6 / (tot / 1e9), ns[i50] / 1e6, ns[i95] / 1e6, rss
        }'
}
files_bytes() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
ratio_of() { awk -v a="$PLAIN" -v b="$1" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
max() { echo $(( $1 > $2 ? $1 : $2 )); }
verify_dir() {   # DIR -> number of segments that do not match
    local bad=0 s
    for s in "${SEGS[@]}"; do
        cmp -s "$TMP/segs/$s" "$1/$s" || { bad=$((bad + 1)); log "MISMATCH or missing: $1/$s"; }
    done
    echo "$bad"
}
fresh_dir() { rm -rf "$1"; mkdir -p "$1"; chown "$bench_uid" "$1"; }
: > "$CSV.tmp"
declare -A FAILED RATIO RSS_KB BAD ROW
STATUS=0
fail_tool() { FAILED[$1]=1; STATUS=1; }

# ---------------------------------------------------------------- 4. raw zstd (the limit)
bench_zstd() {
    local s
    if [[ ! -d $TMP/zst ]]; then
        fresh_dir "$TMP/zst"
        : > "$TMP/cmds.zp"; : > "$TMP/cmds.zc"; : > "$TMP/cmds.zd"
        for s in "${SEGS[@]}"; do
            echo "U zstd -3 -q -c $TMP/segs/$s > $TMP/zst/$s.zst" >> "$TMP/cmds.zp"
            echo "T zstd -3 -q -c $TMP/segs/$s > /dev/null" >> "$TMP/cmds.zc"
            echo "T zstd -d -q -c $TMP/zst/$s.zst > /dev/null" >> "$TMP/cmds.zd"
        done
        (cd "$TMP" && as_bench "$TMP/runtimer" "$TMP/cmds.zp" "$CALL_TIMEOUT") || { fail_tool zstd; return; }
        RATIO[zstd]=$(ratio_of "$(files_bytes "$TMP/zst")")
    fi
    log "round $ROUND: raw zstd -3, compress and decompress each segment"
    run_calls zstd push "$TMP" "$TMP/cmds.zc" || { fail_tool zstd; return; }
    run_calls zstd get "$TMP" "$TMP/cmds.zd" || { fail_tool zstd; return; }
}

# ---------------------------------------------------------------- 3. pgBackRest
PGBR_CONF=$TMP/pgbr/pgbackrest.conf
pgbr_repo_conf() {   # the [global] lines naming this round's repository
    if [[ $STORE == s3 ]]; then
        pgbr_s3_repo "/pgbackrest/$PASS_TAG-r$ROUND"
        cat <<EOF
archive-async=y
process-max=2
spool-path=$TMP/pgbr/spool
EOF
    else
        printf 'repo1-path=%s\narchive-async=n\n' "$TMP/pgbr/repo"
    fi
}
bench_pgbackrest() {
    local s getdir=$TMP/got/pgbackrest bad wal=$TMP/segs
    fresh_dir "$TMP/pgbr/repo"; fresh_dir "$TMP/pgbr/spool"
    cat > "$PGBR_CONF" <<EOF
[global]
$(pgbr_repo_conf)
log-path=$TMP/pgbr/log
lock-path=$TMP/pgbr/lock
log-level-console=warn
log-level-stderr=warn
log-level-file=off
compress-type=zst
compress-level=3
$([[ $ENCRYPT != 1 ]] || printf 'repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=%s\n' "$(openssl rand -hex 24)")

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$SOCKDIR
EOF
    chown "$bench_uid" "$PGBR_CONF" 2>/dev/null || true
    chmod 600 "$PGBR_CONF"
    if ! as_bench timeout 60 pgbackrest --config="$PGBR_CONF" --stanza=bench --no-online stanza-create \
            > "$TMP/log/pgbr-stanza.log" 2>&1; then
        cat "$TMP/log/pgbr-stanza.log" >&2
        FAILS+=("pgbackrest stanza-create: $(tail -n 2 "$TMP/log/pgbr-stanza.log" | tr '\n' '|')")
        fail_tool pgbackrest; return
    fi
    fresh_dir "$getdir"
    if [[ $STORE == s3 ]]; then
        # archive-async pushes what archive_status/*.ready names in %p's directory (which must be
        # in pg1-path), as PostgreSQL leaves it: a segment is marked ready just before its call,
        # done after.  Not the cluster's own pg_wal: that may hold .ready files of its own.
        wal=$PGDATA/bench_wal
        fresh_dir "$wal"; mkdir -p "$wal/archive_status"
        for s in "${SEGS[@]}"; do ln "$TMP/segs/$s" "$wal/$s" 2>/dev/null || cp "$TMP/segs/$s" "$wal/$s"; done
        chown -R "$bench_uid" "$wal"
    fi
    local pgbr="pgbackrest --config=$PGBR_CONF --stanza=bench"
    : > "$TMP/cmds.pp"; : > "$TMP/cmds.pg"
    for s in "${SEGS[@]}"; do
        [[ $STORE != s3 ]] || echo "U touch $wal/archive_status/$s.ready" >> "$TMP/cmds.pp"
        echo "T $pgbr archive-push $wal/$s" >> "$TMP/cmds.pp"
        [[ $STORE != s3 ]] || echo "U mv $wal/archive_status/$s.ready $wal/archive_status/$s.done" >> "$TMP/cmds.pp"
        echo "T $pgbr archive-get $s $getdir/$s" >> "$TMP/cmds.pg"
    done
    log "round $ROUND: pgBackRest, $SEGMENTS serial archive-push, then archive-get"
    if run_calls pgbackrest push "$TMP" "$TMP/cmds.pp"; then
        if [[ $STORE == s3 ]]; then
            RATIO[pgbackrest]=$(ratio_of "$(s3util bytes "pgbackrest/$PASS_TAG-r$ROUND/archive/bench/" .zst)")
        else
            RATIO[pgbackrest]=$(ratio_of "$(files_bytes "$TMP/pgbr/repo/archive/bench" -name '*.zst')")
        fi
        if run_calls pgbackrest get "$getdir" "$TMP/cmds.pg"; then
            bad=$(verify_dir "$getdir")
            BAD[pgbackrest]=$(( ${BAD[pgbackrest]:-0} + bad ))
            [[ $bad -eq 0 ]] || fail_tool pgbackrest
        else
            fail_tool pgbackrest
        fi
    else
        fail_tool pgbackrest
    fi
    [[ $STORE != s3 ]] || s3util purge "pgbackrest/$PASS_TAG-r$ROUND/" >/dev/null || true
    rm -rf "$getdir" "$PGDATA/bench_wal"
}

# ---------------------------------------------------------------- 2. walvault
WV_SOCK=$TMP/wv/wv.sock
WV_REPO=$TMP/wv/repo
WV_MEM=()
daemon_mem() {   # -> "VmHWM_kB/VmRSS_kB"
    awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { printf "%d/%d\n", h, r }' "/proc/$WV_PID/status" 2>/dev/null \
        || echo "?/?"
}
start_daemon() {
    local args=(--repo "$WV_REPO" --socket "$WV_SOCK" --allow-uid "$bench_uid" --compress "$WALVAULT_COMPRESS") i
    [[ $STORE != s3 ]] || args+=(--s3-endpoint "$PROXY" --s3-ca-file "$TLS/ca.pem" --s3-uri-style path --spool "$TMP/wv/spool")
    if [[ $STORE == s3 && $WALVAULT_LOCAL_FIRST == 1 ]]; then
        fresh_dir "$TMP/wv/local-first"
        args=(--repo "$TMP/wv/local-first" "${args[@]}")
    fi
    [[ -z $WALVAULT_WORKERS ]] || args+=(--workers "$WALVAULT_WORKERS")
    if [[ $ENCRYPT == 1 ]]; then
        [[ -f $TMP/wv/key ]] || { (umask 077; openssl rand -hex 32 > "$TMP/wv/key"); chown "$bench_uid" "$TMP/wv/key" 2>/dev/null || true; }
        args+=(--encryption-key-file "$TMP/wv/key")
    fi
    WV_CMD="walvaultd ${args[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        setpriv --reuid="$BENCH_USER" --regid="$(id -g "$BENCH_USER")" --init-groups \
            "$WALVAULT_BIN_DIR/walvaultd" "${args[@]}" >> "$TMP/log/walvaultd.log" 2>&1 &
    else
        "$WALVAULT_BIN_DIR/walvaultd" "${args[@]}" >> "$TMP/log/walvaultd.log" 2>&1 &
    fi
    WV_PID=$!
    for ((i = 0; i < 150; i++)); do
        [[ -S $WV_SOCK ]] && break
        kill -0 "$WV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! [[ -S $WV_SOCK ]] || ! kill -0 "$WV_PID" 2>/dev/null; then
        log "walvaultd did not come up (socket $WV_SOCK); log:"; tail -n 20 "$TMP/log/walvaultd.log" >&2
        WV_ODD+=("walvaultd did not create its socket within 15 s: $(tail -n 2 "$TMP/log/walvaultd.log" | tr '\n' '|')")
        return 1
    fi
}
stop_daemon() {
    local i rc=0
    [[ -n $WV_PID ]] || return 0
    kill -TERM "$WV_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$WV_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$WV_PID" 2>/dev/null; then
        log "walvaultd did not exit within 15 s of SIGTERM: SIGKILL"
        WV_ODD+=("walvaultd did not exit within 15 s of SIGTERM")
        kill -KILL "$WV_PID" 2>/dev/null || true
    fi
    wait "$WV_PID" 2>/dev/null || rc=$?
    [[ $rc -eq 0 ]] || WV_ODD+=("walvaultd exited with status $rc after SIGTERM")
    WV_PID=""
}
bench_walvault() {
    local s getdir=$TMP/got/walvault rdir=$TMP/got/recovery bad hwm mem
    (( ${#WV_SOCK} <= 107 )) || die "socket path $WV_SOCK longer than 107 bytes; set TMPDIR shorter"
    fresh_dir "$TMP/wv"; fresh_dir "$getdir"
    if [[ $STORE == s3 ]]; then WV_REPO=s3://$S3_BUCKET/wv/$PASS_TAG-r$ROUND; fresh_dir "$TMP/wv/spool"
    else fresh_dir "$WV_REPO"; fi
    mkdir -p "$rdir/pg_wal" "$rdir/out"; chown -R "$bench_uid" "$rdir"
    log "round $ROUND: walvault, $SEGMENTS serial archive-push, then archive-get"
    start_daemon || { fail_tool walvault; stop_daemon; return; }
    [[ $STORE != s3 ]] || s3_quiet   # its start-up requests are not the pushes'
    mem="start $(daemon_mem)"
    : > "$TMP/cmds.wp"; : > "$TMP/cmds.wg"; : > "$TMP/cmds.wr"
    for s in "${SEGS[@]}"; do
        echo "T $WALVAULT_BIN_DIR/archive-push --socket $WV_SOCK $TMP/segs/$s" >> "$TMP/cmds.wp"
        echo "T $WALVAULT_BIN_DIR/archive-get --socket $WV_SOCK $s $getdir/$s" >> "$TMP/cmds.wg"
        # as in archive recovery: %p = pg_wal/RECOVERYXLOG relative to a data-directory-like cwd
        # without standby.signal; the file is moved away (untimed) after each call
        echo "T $WALVAULT_BIN_DIR/archive-get --socket $WV_SOCK $s pg_wal/RECOVERYXLOG" >> "$TMP/cmds.wr"
        echo "U mv pg_wal/RECOVERYXLOG out/$s" >> "$TMP/cmds.wr"
    done
    if run_calls walvault push "$TMP" "$TMP/cmds.wp"; then
        mem+=", after pushes $(daemon_mem)"
        if [[ $STORE == s3 ]]; then RATIO[walvault]=$(ratio_of "$(s3util bytes "${WV_REPO#s3://"$S3_BUCKET"/}/wal/")"); WV_WHERE="the bucket's PREFIX/wal/"
        elif [[ -d $WV_REPO/wal ]]; then RATIO[walvault]=$(ratio_of "$(files_bytes "$WV_REPO/wal")"); WV_WHERE="REPO/wal"
        else RATIO[walvault]=$(ratio_of "$(files_bytes "$WV_REPO")"); WV_WHERE="all of REPO (no REPO/wal)"; fi
        if run_calls walvault get "$getdir" "$TMP/cmds.wg"; then
            mem+=", after gets $(daemon_mem)"
            bad=$(verify_dir "$getdir")
            if [[ $WALVAULT_RECOVERY_GETS == 1 ]]; then
                if run_calls walvault get-recovery "$rdir" "$TMP/cmds.wr"; then
                    mem+=", after recovery gets $(daemon_mem)"
                    bad=$(( bad + $(verify_dir "$rdir/out") ))
                else
                    FAILED[walvault-rec]=1; STATUS=1
                fi
            fi
            BAD[walvault]=$(( ${BAD[walvault]:-0} + bad ))
            [[ $bad -eq 0 ]] || fail_tool walvault
        else
            fail_tool walvault
        fi
    else
        fail_tool walvault
    fi
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$WV_PID/status" 2>/dev/null || echo 0)
    RSS_KB[walvault]=$(max "${RSS_KB[walvault]:-0}" "${hwm:-0}")
    WV_MEM+=("round $ROUND: $mem")
    if ! kill -0 "$WV_PID" 2>/dev/null; then
        WV_ODD+=("walvaultd was no longer running at the end of round $ROUND")
    fi
    stop_daemon
    [[ $STORE != s3 ]] || s3util purge "${WV_REPO#s3://"$S3_BUCKET"/}/" >/dev/null || true
    rm -rf "$getdir" "$rdir"
}

# ---------------------------------------------------------------- rounds, one table per pass
# A pass = ROUNDS rounds of every tool and its table: one pass for STORE=local, one per delay
# for STORE=s3.
ORDER=()
for t in walvault pgbackrest zstd; do has_tool "$t" && ORDER+=("$t"); done
ROUND_LOAD=()
NREQ=""
reqs_per_seg() {   # TOOL-OP -> proxy requests per call ("-" without a proxy log of it)
    [[ -f $TMP/req.$1 ]] || { echo -; return; }
    awk -v n=$(( SEGMENTS * ROUNDS )) 'END { printf "%.2f", NR / n }' "$TMP/req.$1"
}
reqs_detail() {    # TOOL-OP -> "PUT 200 1.00, HEAD 404 1.00, ..." per call (LIST = GET with list-type)
    awk -v n=$(( SEGMENTS * ROUNDS )) '
        { m = $1; if (m == "GET" && $2 ~ /[?&]list-type=/) m = "LIST"; c[m " " $NF]++ }
        END { for (k in c) printf "%s%s %.2f", (o++ ? ", " : ""), k, c[k] / n; print "" }' "$TMP/req.$1"
}
run_pass() {
    local t k label fmt r w p m
    FAILED=(); RATIO=([zstd]=${RATIO[zstd]:-}); RSS_KB=(); BAD=(); WV_MEM=(); ROW=(); WV_CLIENT=""; PGBR_RSS=""
    rm -f "$TMP"/all.* "$TMP"/req.*
    for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
        ROUND_LOAD+=("$(cut -d' ' -f1 /proc/loadavg)")
        k=$(( (ROUND - 1) % ${#ORDER[@]} ))
        for t in "${ORDER[@]:k}" "${ORDER[@]:0:k}"; do      # rotate the order every round
            [[ -z ${FAILED[$t]:-} ]] || continue
            "bench_$t"
        done
    done
    for t in walvault pgbackrest zstd; do
        has_tool "$t" || continue
        if [[ -n ${FAILED[$t]:-} ]]; then ROW[$t]=FAIL; continue; fi
        read -r pm p50 p95 prss <<< "$(stats "$TMP/all.$t-push" $(( PLAIN * ROUNDS )))"
        read -r gm g50 g95 grss <<< "$(stats "$TMP/all.$t-get" $(( PLAIN * ROUNDS )))"
        [[ $t == walvault ]] || RSS_KB[$t]=$(max "$prss" "$grss")
        [[ $t == walvault ]] && WV_CLIENT="client peak RSS: archive-push ${prss} KB, archive-get ${grss} KB"
        [[ $t == pgbackrest ]] && PGBR_RSS="push ${prss} KB, get ${grss} KB"
        ROW[$t]="$pm $p50 $p95 $gm $g50 $g95 ${RATIO[$t]:--} $(mib "${RSS_KB[$t]}")"
        [[ -z $NREQ ]] || ROW[$t]+=" $(reqs_per_seg "$t-push") $(reqs_per_seg "$t-get")"
    done
    if has_tool walvault && [[ -z ${FAILED[walvault]:-} && $WALVAULT_RECOVERY_GETS == 1 ]]; then
        if [[ -n ${FAILED[walvault-rec]:-} ]]; then ROW[walvault-rec]=FAIL
        else
            read -r gm g50 g95 grss <<< "$(stats "$TMP/all.walvault-get-recovery" $(( PLAIN * ROUNDS )))"
            ROW[walvault-rec]="- - - $gm $g50 $g95 - -"
            [[ -z $NREQ ]] || ROW[walvault-rec]+=" - $(reqs_per_seg walvault-get-recovery)"
        fi
    fi

    # shellcheck disable=SC2059  # $fmt is ours
    {
        [[ -z $NREQ ]] || echo "== $PASS_LABEL"
        fmt="%-22s %9s %8s %8s %9s %8s %8s %7s %9s${NREQ:+ %9s %9s}\n"
        printf "$fmt" tool "push MB/s" "push p50" "push p95" "get MB/s" "get p50" "get p95" ratio "peak RSS" ${NREQ:+"push req" "get req"}
        printf "$fmt" "" "" "ms" "ms" "" "ms" "ms" "" "MiB" ${NREQ:+"/call" "/call"}
        for t in walvault walvault-rec pgbackrest zstd; do
            [[ -n ${ROW[$t]:-} ]] || continue
            label=$t; [[ $t == zstd ]] && label="zstd -3 (raw codec)"; [[ $t == walvault-rec ]] && label="walvault RECOVERYXLOG"
            if [[ ${ROW[$t]} == FAIL ]]; then printf "$fmt" "$label" FAIL - - - - - - - ${NREQ:+- -}; continue; fi
            # shellcheck disable=SC2086
            printf "$fmt" "$label" ${ROW[$t]}
        done
        if [[ ${ROW[walvault]:-FAIL} != FAIL && ${ROW[pgbackrest]:-FAIL} != FAIL ]]; then
            read -r -a w <<< "${ROW[walvault]}"; read -r -a p <<< "${ROW[pgbackrest]}"
            r=()
            for ((k = 0; k < ${#w[@]}; k++)); do
                r+=("$(awk -v a="${w[$k]}" -v b="${p[$k]}" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2fx", a / b; else print "-" }')")
            done
            printf "$fmt" "walvault/pgbackrest" "${r[@]}"
            echo "(MB/s and ratio: above 1x = walvault better; ms, RSS${NREQ:+, requests}: below 1x = walvault better)"
        fi
        if [[ -n ${ROW[walvault]:-} ]]; then
            echo "walvault: ${WV_CMD:-walvaultd}; ratio from ${WV_WHERE:-?}; peak RSS = daemon VmHWM (max over rounds)"
            echo "          ${WV_CLIENT:-}"
            for m in "${WV_MEM[@]}"; do echo "          daemon VmHWM/VmRSS kB, $m"; done
            [[ ${BAD[walvault]:-0} -eq 0 ]] || echo "          ${BAD[walvault]} restored segments DIFFER from the originals"
        fi
        if [[ -n ${ROW[pgbackrest]:-} ]]; then
            echo "pgbackrest: peak RSS = largest process (${PGBR_RSS:-?})${NREQ:+ of the calls (its detached async processes are not counted)}"
            [[ ${BAD[pgbackrest]:-0} -eq 0 ]] || echo "          ${BAD[pgbackrest]} restored segments DIFFER from the originals"
        fi
        if [[ -n $NREQ ]]; then
            echo "requests per call through the proxy (method status count; LIST = GET with list-type):"
            for m in walvault-push walvault-get walvault-get-recovery pgbackrest-push pgbackrest-get; do
                [[ -f $TMP/req.$m ]] && printf '  %-22s %s\n' "$m" "$(reqs_detail "$m")"
            done
        fi
        echo
    } >> "$TMP/tables"
}
: > "$TMP/tables"
if [[ $STORE == s3 ]]; then
    NREQ=1
    for d in $DELAYS; do
        proxy_delay "$d"
        PASS_TAG=s3-${d}ms
        PASS_LABEL="S3: +$d ms per request at the proxy"
        log "pass $PASS_TAG: $PASS_LABEL"
        run_pass
    done
else
    PASS_TAG=local PASS_LABEL="local directories"
    run_pass
fi
rm -rf "$TMP/zst"
if [[ $STORE == s3 ]] && grep -q Traceback "$PROXY_LOG"; then
    WV_ODD+=("the fault proxy logged $(grep -c Traceback "$PROXY_LOG") Python traceback(s): see $PROXY_LOG (KEEP=1)")
fi
if has_tool walvault && grep -qiE '\b(warn|warning|error|err|critical|fatal)\b' "$TMP/log/walvaultd.log" 2>/dev/null; then
    WV_ODD+=("walvaultd log has warnings/errors: $(grep -iE '\b(warn|warning|error|err|critical|fatal)\b' "$TMP/log/walvaultd.log" | head -n 3 | tr '\n' '|')")
fi

# ---------------------------------------------------------------- 5. report
{
    echo "walvault archive-push/archive-get benchmark  $(date -u '+%Y-%m-%d %H:%M:%SZ')"
    echo "host: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
    echo "WAL: $SEGMENTS real 16 MiB segments of one PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') cluster (system id $sysid):"
    echo "     ${SEGS[0]}..${SEGS[-1]}: $WAL_ORIGIN"
    echo "calls: serial, each one 'sh -c \"COMMAND\"' as user $BENCH_USER (as PostgreSQL runs archive_command/restore_command);"
    echo "       $ROUNDS round(s) (fresh repository each, tool order rotated), all $((SEGMENTS * ROUNDS)) calls per column pooled"
    echo "MB/s = plain bytes / 10^6 / summed call seconds; p50/p95 = nearest-rank ms per call; ratio = plain bytes / stored bytes"
    if [[ $STORE == s3 ]]; then
        echo "store: S3 bucket $S3_BUCKET of $S3_DESC;"
        echo "       req/call = requests the proxy logged during a series (until quiet: pgBackRest's async work included) / calls"
    fi
    echo
    cat "$TMP/tables"
    if has_tool walvault; then
        echo "walvault: binaries copied from $WV_BUILD"
        [[ $WALVAULT_RECOVERY_GETS != 1 ]] || echo "          'walvault RECOVERYXLOG' = archive-get NAME pg_wal/RECOVERYXLOG (mode=recovery) in a dir without standby.signal; the main row uses an absolute %p (mode=exact)"
    fi
    if has_tool pgbackrest; then
        if [[ $STORE == s3 ]]; then
            echo "pgbackrest: $(pgbackrest version), compress-type=zst, compress-level=3, s3 repo (repo1-storage-ca-file = the test CA), archive-async=y, process-max=2, spool-path;"
            echo "          archive-push %p = PGDATA/bench_wal/SEG, its archive_status/SEG.ready made before each call and renamed .done after (untimed)"
        else
            echo "pgbackrest: $(pgbackrest version), archive-async=n, compress-type=zst, compress-level=3, posix repo"
        fi
        if [[ $ENCRYPT == 1 ]]; then
            echo "encryption: walvault encryption-key-file (AES-256-GCM frames, per-object data key); pgbackrest repo1-cipher-type=aes-256-cbc"
        fi
    fi
    [[ ! " ${ORDER[*]} " == *" zstd "* ]] || echo "zstd: $(zstd -V | grep -oE 'v[0-9.]+' | head -1), -3, 1 thread, one process per segment to/from /dev/null; peak RSS = largest process"
    for o in "${WV_ODD[@]}"; do echo "odd: $o"; done
    for o in "${FAILS[@]}"; do echo "failed: $o"; done
    echo "load average: at start $LOAD_START, 1-min at each round's start ${ROUND_LOAD[*]}, at end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "              (anything else running on the host skews the numbers; compare tools within one run)"
    echo "per-call data: $CSV"
} > "$OUT.tmp"
{ echo "tool,op,round,segment,ns,maxrss_kb,rc,store"; cat "$CSV.tmp"; } > "$CSV"
rm -f "$CSV.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
if [[ $STATUS -ne 0 ]]; then log "some part FAILED (see above)"; fi
exit "$STATUS"
