#!/usr/bin/env bash
# Issue 12's benchmark: a real archive backlog drained by PostgreSQL's own archiver, and a real
# recovery, with walvault (look-ahead on and off; prefetch on and off) against pgBackRest
# archive-async (process-max=2, zst 3) and the physical references, on the SAME WAL.
#
#   1. A PostgreSQL 15 cluster with archiving paused (archive_command = ''), a base backup
#      (pg_basebackup -X none), then `pgbench -i -s SCALE`: every segment waits as .ready.
#      The cluster is stopped; each run below starts from a copy of it.
#   2. Backlog drain: walvaultd (look-ahead-workers 2 | 0) or pgBackRest async; PostgreSQL is
#      started on its copy with that tool's archive_command and the clock runs until the
#      newest segment's status file is .done (pg_stat_archiver confirms). Whole-machine CPU seconds (/proc/stat) per
#      GiB of WAL drained. References: zstd -3 -T2 of all segments in one process, cp + fsync of
#      all segments, and one `sh -c true` per segment (the floor of PostgreSQL's process starts).
#   3. archive-push of a segment look-ahead already stored, p50 of N calls, against `sh -c true`.
#   4. Recovery: the base backup restored, recovery to the end of the archive (promotion), timed
#      from pg_ctl start to the end of recovery: walvault prefetch 128MiB | 0, pgBackRest
#      archive-async get, "all WAL local" (every segment in pg_wal, restore_command false) and
#      "cp from a directory" (restore_command = cp of the plain segments, read into the page
#      cache first: the floor of a restore_command that writes the segment) and "mv of a prepared
#      file" (restore_command = mv of the plain segment, already on pg_wal's filesystem and on
#      disk: no read, no write, only PostgreSQL's process start, rename and fsyncs per segment,
#      the floor of any restore_command), and "local, CPU busy beside" (all WAL local again, with
#      a nice 19 SHA-256 loop running: what other work beside replay costs on this machine).
#      Then the serial restore loop (below).
#
# STORE=s3: the repositories are in a bucket of a moto_server behind tests/s3/fault_proxy.py
# (TLS), with DELAY_MS (default 20) added to every request, for walvault and pgBackRest alike.
#
# Steps 2 and 4 (and the serial restore loop) run ROUNDS times (default 3), every tool once per
# round in turn, so a slow spell of the machine falls on all of them; the tables show the median
# and every round's value. One run of one tool varies by 10-20 % on a virtual machine.
#
# Environment: STORE=local, DELAY_MS=20, LOOKAHEAD_WORKERS (default: walvaultd's), SCALE=20 (about 18 segments of 16 MiB; 40: 34), ROUNDS=3, PUSH_CALLS=30, PG_BIN, WALVAULT_BIN_DIR
# (default build/bin), OUT=bench-backlog.txt, KEEP=1 to keep the temp dir. Run as root (the
# clusters and every client run as postgres).
set -Eeuo pipefail
export LC_ALL=C
SCALE=${SCALE:-20}
PUSH_CALLS=${PUSH_CALLS:-30}
ROUNDS=${ROUNDS:-3}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
OUT=${OUT:-bench-backlog.txt}
KEEP=${KEEP:-0}
STORE=${STORE:-local}
DELAY_MS=${DELAY_MS:-20}
S3_BUCKET=${S3_BUCKET:-wvbacklog}
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/../.." && pwd)
WALVAULT_BIN_DIR=${WALVAULT_BIN_DIR:-$repo_root/build/bin}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (clusters and clients run as postgres)"
for b in initdb pg_ctl pgbench psql pg_basebackup; do [[ -x $PG_BIN/$b ]] || die "$PG_BIN/$b not found"; done
for b in pgbackrest zstd jq openssl; do command -v $b >/dev/null || die "$b not found"; done
case $STORE in local | s3) ;; *) die "STORE must be local or s3" ;; esac
if [[ $STORE == s3 ]]; then
    for d in /root/.pyenv/shims "${PYENV_ROOT:-$HOME/.pyenv}/shims"; do [[ ! -d $d || :$PATH: == *:$d:* ]] || PATH=$d:$PATH; done
    for b in moto_server python3 openssl curl; do command -v "$b" >/dev/null || die "STORE=s3 needs $b"; done
fi
for b in walvaultd archive-push archive-get walvault; do [[ -x $WALVAULT_BIN_DIR/$b ]] || die "$WALVAULT_BIN_DIR/$b not found"; done

TMP=$(mktemp -d /tmp/wvbacklog.XXXXXX)
chmod 755 "$TMP"
PIDS=()
S3_PIDS=()
RUNNING_PG=()
source "$script_dir/s3_bench_lib.sh"
HOG=""
stop_hog() {
    [[ -n $HOG ]] || return 0
    pkill -P "$HOG" 2>/dev/null || true
    kill "$HOG" 2>/dev/null || true
    wait "$HOG" 2>/dev/null || true
    HOG=""
}
cleanup() {
    local d p
    stop_hog
    if [[ $STORE == s3 ]]; then stop_s3 || true; fi
    for d in "${RUNNING_PG[@]}"; do runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    return 0
}
trap cleanup EXIT
as_pg() { runuser -u postgres -- "$@"; }
mkdir -p "$TMP/bin" "$TMP/log"
cp "$WALVAULT_BIN_DIR"/{walvaultd,archive-push,archive-get,walvault} "$TMP/bin/"
chmod 755 "$TMP/bin"/*
chown postgres: "$TMP/log"
if [[ $STORE == s3 ]]; then
    start_s3
    proxy_delay "$DELAY_MS"
fi
PORT=$(( 20000 + RANDOM % 20000 ))
SOCKDIR=$TMP/pgsock; install -d -o postgres "$SOCKDIR"

# Before each timed run: dirty pages of the previous step written out and the page cache
# dropped, so no run pays for another's writeback and every run reads its archive cold.
settle() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; sleep 1; }
cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
now() { date +%s.%N; }
psql_at() { as_pg "$PG_BIN/psql" -X -A -t -q -h "$SOCKDIR" -p "$1" -d postgres -c "$2"; }

# ---------------------------------------------------------------- 1. the backlog
SRC=$TMP/src
install -d -o postgres -m 700 "$SRC"
as_pg "$PG_BIN/initdb" -D "$SRC" -U postgres -A trust --no-sync >/dev/null
cat >>"$SRC/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCKDIR'
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 4GB
min_wal_size = 2GB
wal_keep_size = 4GB
checkpoint_timeout = 30min
EOF
as_pg "$PG_BIN/pg_ctl" -D "$SRC" -l "$TMP/log/src.log" -w start >/dev/null
RUNNING_PG+=("$SRC")
install -d -o postgres -m 700 "$TMP/backup"
# pg_basebackup -X none waits for its WAL to be archived: archive_command is 'true' until the
# backup is taken, then empty (paused); the backup's own segments are made .ready again below.
as_pg "$PG_BIN/pg_basebackup" -h "$SOCKDIR" -p "$PORT" -D "$TMP/backup" -X none -c fast --no-sync
sed -i "s|^archive_command = '/bin/true'|archive_command = ''|" "$SRC/postgresql.conf"
psql_at "$PORT" "select pg_reload_conf()" >/dev/null
log "pgbench -i -s $SCALE with archiving paused"
as_pg "$PG_BIN/pgbench" -h "$SOCKDIR" -p "$PORT" -i -s "$SCALE" -q postgres >/dev/null 2>&1
psql_at "$PORT" "select pg_switch_wal()" >/dev/null
psql_at "$PORT" "checkpoint" >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$SRC" -w stop >/dev/null
RUNNING_PG=()
# Every segment still in pg_wal is part of the backlog (the backup's included: recovery needs it).
for f in "$SRC"/pg_wal/archive_status/*.done; do [[ -e $f ]] && mv "$f" "${f%.done}.ready"; done
mapfile -t READY < <(cd "$SRC/pg_wal/archive_status" && ls | sed -n 's/^\([0-9A-F]\{24\}\)\.ready$/\1/p' | sort)
N=${#READY[@]}
LAST=${READY[$((N - 1))]}
BYTES=$(( N * 16777216 ))
log "backlog: $N segments (${READY[0]} .. $LAST), $((BYTES >> 20)) MiB"
mkdir -p "$TMP/segs"
for s in "${READY[@]}"; do cp "$SRC/pg_wal/$s" "$TMP/segs/"; done
chown -R postgres: "$TMP/segs"  # the cp restore_command reads them as postgres

declare -A DRAIN_S DRAIN_CPU RECOVER_S LOOP_S
# Every round's value, space-separated, per key; the medians go into the arrays above.
declare -A DRAIN_RUNS DRAIN_CPU_RUNS RECOVER_RUNS LOOP_RUNS
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
runs_of() { local v out=""; for v in $1; do out+="$(printf '%.2f' "$v") "; done; echo "${out% }"; }
copy_cluster() { # DEST
    rm -rf "$1"
    cp -a "$SRC" "$1"
    sed -i "s/^port = .*/port = $PORT/" "$1/postgresql.conf"
}

start_walvaultd() { # NAME REPOSITORY EXTRA... (REPOSITORY: a name; a directory or a bucket prefix)
    local name=$1 repo=$2 where; shift 2
    install -d -o postgres "$TMP/run-$name"
    if [[ $STORE == s3 ]]; then
        install -d -o postgres "$TMP/spool-$repo"
        where=(--repo "s3://$S3_BUCKET/$repo" --spool "$TMP/spool-$repo" --s3-endpoint "https://127.0.0.1:$PROXY_PORT"
               --s3-ca-file "$TLS/ca.pem" --s3-uri-style path --s3-region us-east-1)
    else
        install -d -o postgres "$TMP/$repo"
        where=(--repo "$TMP/$repo")
    fi
    # setpriv execs (runuser forks and outlives a SIGTERM to it): $! is walvaultd itself.
    setpriv --reuid=postgres --regid="$(id -g postgres)" --init-groups \
        env AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-}" \
        "$TMP/bin/walvaultd" "${where[@]}" --socket "$TMP/run-$name/wv.sock" --log-level warn "$@" \
        >"$TMP/log/walvaultd-$name.log" 2>&1 &
    WV_PID=$!
    PIDS+=("$WV_PID")
    for _ in $(seq 1000); do [[ -S $TMP/run-$name/wv.sock ]] && return 0; sleep 0.005; done
    die "walvaultd $name did not start: $(tail -n 3 "$TMP/log/walvaultd-$name.log")"
}
stop_walvaultd() {
    local p kept=()
    for p in "${PIDS[@]}"; do [[ $p == "$WV_PID" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")  # cleanup() must not signal a recycled pid
    kill -TERM "$WV_PID" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$WV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$WV_PID" 2>/dev/null && { log "walvaultd (pid $WV_PID) ignored SIGTERM for 15 s; killing it"; kill -KILL "$WV_PID"; }
    wait "$WV_PID" 2>/dev/null || true
}

wait_drained() { # NAME
    # PostgreSQL renames LAST.ready to LAST.done once archive_command succeeded for it, and its
    # archiver goes oldest first. A file test costs nothing; asking pg_stat_archiver through
    # psql every 50 ms took about a fifth of a core from the tool being measured.
    local deadline=$((SECONDS + 900)) status=$TMP/data-$1/pg_wal/archive_status
    while [[ ! -e $status/$LAST.done ]]; do
        [[ $SECONDS -lt $deadline ]] || die "backlog not drained in 900 s ($1: $(ls "$status" | grep -c '\.ready$') .ready left)"
        sleep 0.01
    done
    local last; last=$(psql_at "$PORT" "select coalesce(last_archived_wal, '') from pg_stat_archiver")
    [[ $last == "$LAST" || $last > $LAST ]] || die "$1: $LAST.done is there but pg_stat_archiver's last archived is '$last'"
}

# drain NAME ARCHIVE_COMMAND [setup done by the caller]: PostgreSQL on a copy drains the backlog.
drain() {
    local name=$1 command=$2 data=$TMP/data-$1 t0 t1 c0 c1
    echo "archive_command = '$command'" >>"$data/postgresql.conf"
    settle
    c0=$(cpu_ticks); t0=$(now)
    [[ -n ${START_DAEMON:-} ]] && eval "$START_DAEMON"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$TMP/log/$name.log" -w start >/dev/null
    RUNNING_PG+=("$data")
    wait_drained "$name"
    t1=$(now); c1=$(cpu_ticks)
    local failed; failed=$(psql_at "$PORT" "select failed_count from pg_stat_archiver")
    [[ $failed == 0 ]] || log "WARNING: $name: pg_stat_archiver failed_count $failed"
    as_pg "$PG_BIN/pg_ctl" -D "$data" -w -m fast stop >/dev/null
    RUNNING_PG=()
    DRAIN_RUNS[$name]+="$(echo "$t1 - $t0" | bc -l) "
    DRAIN_CPU_RUNS[$name]+="$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l) "
    log "$name: drained $N segments in $(echo "$t1 - $t0" | bc -l) s"
}

# ---------------------------------------------------------------- 2. backlog drain
# Each round drains into new, empty repositories (the last round's are used from step 3 on).
PGBR_CONF=$TMP/pgbackrest.conf
install -d -o postgres "$TMP/pgbr" "$TMP/pgbr/log" "$TMP/pgbr/lock"
# References on the same segments.
ref() { # NAME COMMAND
    local c0 t0 t1 c1
    settle; c0=$(cpu_ticks); t0=$(now)
    bash -c "$2"
    t1=$(now); c1=$(cpu_ticks)
    DRAIN_RUNS[$1]+="$(echo "$t1 - $t0" | bc -l) "
    DRAIN_CPU_RUNS[$1]+="$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l) "
}
mkdir -p "$TMP/cp"
for round in $(seq "$ROUNDS"); do
log "round $round of $ROUNDS: backlog drain"
WV_REPO=repo-walvault-lookahead-r$round
for mode in lookahead serial; do
    copy_cluster "$TMP/data-walvault-$mode"
    workers=${LOOKAHEAD_WORKERS:-2}; [[ $mode == serial ]] && workers=0
    START_DAEMON="start_walvaultd $mode repo-walvault-$mode-r$round --pgdata $TMP/data-walvault-$mode --look-ahead-workers $workers --compress zstd:3"
    drain "walvault-$mode" "$TMP/bin/archive-push --socket $TMP/run-$mode/wv.sock %p"
    START_DAEMON=""
    stop_walvaultd
done

rm -rf "$TMP/pgbr/spool"; install -d -o postgres "$TMP/pgbr/spool"
copy_cluster "$TMP/data-pgbackrest"
if [[ $STORE == s3 ]]; then
    PGBR_REPO=$(pgbr_s3_repo "/pgbackrest-r$round")
else
    PGBR_REPO="repo1-path=$TMP/pgbr/repo-r$round"
fi
cat >"$PGBR_CONF" <<EOF
[global]
$PGBR_REPO
archive-async=y
process-max=2
spool-path=$TMP/pgbr/spool
log-path=$TMP/pgbr/log
lock-path=$TMP/pgbr/lock
log-level-console=warn
log-level-file=off
compress-type=zst
compress-level=3
archive-get-queue-max=256MiB

[bench]
pg1-path=$TMP/data-pgbackrest
pg1-port=$PORT
pg1-socket-path=$SOCKDIR
EOF
chown postgres "$PGBR_CONF"; chmod 600 "$PGBR_CONF"
as_pg pgbackrest --config="$PGBR_CONF" --stanza=bench --no-online stanza-create >/dev/null
drain pgbackrest "pgbackrest --config=$PGBR_CONF --stanza=bench archive-push %p"

ref "zstd -3 -T2" "zstd -3 -T2 -q -c $TMP/segs/* >/dev/null"
rm -f "$TMP/cp"/*
ref "cp + fsync" "cp $TMP/segs/* $TMP/cp/ && sync -f $TMP/cp"
ref "sh -c true" "for i in \$(seq $N); do sh -c true; done"
done
for k in "${!DRAIN_RUNS[@]}"; do
    DRAIN_S[$k]=$(median <<<"${DRAIN_RUNS[$k]}")
    DRAIN_CPU[$k]=$(median <<<"${DRAIN_CPU_RUNS[$k]}")
done

# ---------------------------------------------------------------- 3. push of a segment stored ahead
# The look-ahead daemon's repository holds every segment; push pg_wal copies of the drained
# cluster again (same files: the identity matches only for files look-ahead read, so use a
# fresh backlog copy that a look-ahead daemon reads first).
copy_cluster "$TMP/data-ahead"
start_walvaultd ahead repo-ahead --pgdata "$TMP/data-ahead" --compress zstd:3
for _ in $(seq 600); do
    q=$(as_pg "$TMP/bin/walvault" --socket "$TMP/run-ahead/wv.sock" --json status | jq -r '.look_ahead | "\(.queued) \(.stored_ahead)"')
    [[ $q == "0 $N" ]] && break; sleep 0.1
done
[[ $q == "0 $N" ]] || die "look-ahead did not store the backlog: $q"
time_calls() { # COMMAND-TEMPLATE (%s = segment) -> one ms value per line
    local i s t0 t1
    for ((i = 0; i < PUSH_CALLS && i < N; i++)); do
        s=${READY[$i]}
        t0=$EPOCHREALTIME
        as_pg sh -c "$(printf "$1" "$s")"
        t1=$EPOCHREALTIME
        echo "($t1 - $t0) * 1000" | bc -l
    done
}
p50() { sort -g | awk '{v[NR]=$1} END {printf "%.2f", v[int((NR+1)/2)]}'; }
AHEAD_P50=$(cd "$TMP/data-ahead" && time_calls "$TMP/bin/archive-push --socket $TMP/run-ahead/wv.sock pg_wal/%s" | p50)
TRUE_P50=$(cd "$TMP/data-ahead" && time_calls "true %s" | p50)
ahead=$(as_pg "$TMP/bin/walvault" --socket "$TMP/run-ahead/wv.sock" --json status | jq -r '.since_start.ahead')
log "archive-push of stored-ahead segments: p50 $AHEAD_P50 ms ($ahead answered ahead); sh -c true p50 $TRUE_P50 ms"
stop_walvaultd

# ---------------------------------------------------------------- 4. recovery
restore_copy() { # DEST RESTORE_COMMAND
    rm -rf "$1"; cp -a "$TMP/backup" "$1"; chown -R postgres: "$1"; chmod 700 "$1"
    cat >>"$1/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCKDIR'
archive_mode = off
restore_command = '$2'
EOF
    touch "$1/recovery.signal"; chown postgres "$1/recovery.signal"
}
recover() { # NAME DATA [DIRECTORY to read into the page cache before the clock starts]
    local t0 t1
    settle
    [[ -z ${3:-} ]] || cat "$3"/* >/dev/null
    t0=$(now)
    as_pg "$PG_BIN/pg_ctl" -D "$2" -l "$TMP/log/recover-$1.log" -w -t 900 start >/dev/null
    RUNNING_PG+=("$2")
    # Recovery removes recovery.signal as it ends: wait for that with a file test (psql every
    # 50 ms all along took CPU from the recovery being measured, see wait_drained), then for
    # pg_is_in_recovery() to turn false (the end-of-recovery checkpoint comes between).
    local i
    for ((i = 0; i < 90000; i++)); do
        [[ -e $2/recovery.signal ]] || break
        sleep 0.01
    done
    ((i < 90000)) || die "$1: recovery did not end within about 15 minutes"
    for ((i = 0; i < 18000; i++)); do
        [[ $(psql_at "$PORT" "select pg_is_in_recovery()" 2>/dev/null) == f ]] && break
        sleep 0.02
    done
    ((i < 18000)) || die "$1: recovery.signal is gone but PostgreSQL stayed in recovery"
    t1=$(now)
    # A restore_command that failed part way would have ended recovery early (and looked fast).
    local replayed; replayed=$(psql_at "$PORT" "select pg_walfile_name(pg_last_wal_replay_lsn())")
    [[ ! ${replayed:8} < ${LAST:8} ]] || die "$1: recovery ended in segment $replayed, before the archive's last ($LAST)"
    RECOVER_RUNS[$1]+="$(echo "$t1 - $t0" | bc -l) "
    as_pg "$PG_BIN/pg_ctl" -D "$2" -w -m immediate stop >/dev/null
    RUNNING_PG=()
    log "$1: recovered in $(echo "$t1 - $t0" | bc -l) s"
}
# Serial restore: archive-get of every segment in order into pg_wal/RECOVERYXLOG, as recovery
# asks, without replay in between (the archive's own speed; prefetch and pgBackRest's async
# queue both work ahead). Like PostgreSQL 15 (KeepFileRestoredFromArchive), each restored
# RECOVERYXLOG is then renamed to a name of its own (here in restored/, so no tool renames
# over a file already there: on ext4 a rename over a 16 MiB file written moments ago starts its
# writeback inside the rename). PostgreSQL's fsync of it is left out: the loop measures the
# archive, the recovery above measures everything.
# From the backup's first segment (retention may prune what is older).
first=$(sed -n 's/^START WAL LOCATION: .* (file \([0-9A-F]*\))$/\1/p' "$TMP/backup/backup_label")
LOOP=()
for s in "${READY[@]}"; do [[ $s < $first ]] || LOOP+=("$s"); done
LOOP_BYTES=$(( ${#LOOP[@]} * 16777216 ))
get_loop() { # NAME DIR COMMAND-TEMPLATE (%s = segment) [DIRECTORY to read into the page cache first]
    local t0 t1 s script=""
    # One shell as postgres runs the whole loop, as PostgreSQL's startup process would: per
    # segment, `sh -c COMMAND` (system()) and the rename of what it restored (one `mv`, where
    # PostgreSQL calls rename(): the same fork for every tool).
    for s in "${LOOP[@]}"; do
        script+="sh -c '$(printf "$3" "$s")' && mv pg_wal/RECOVERYXLOG restored/$s || { echo '$1: $s failed' >&2; exit 1; }"$'\n'
    done
    rm -rf "$2/restored" "$2/pg_wal/RECOVERYXLOG"; install -d -o postgres "$2/restored"
    settle
    [[ -z ${4:-} ]] || cat "$4"/* >/dev/null
    t0=$(now)
    (cd "$2" && as_pg bash -c "$script") || die "$1: the serial restore loop failed"
    t1=$(now)
    rm -rf "$2/restored"
    LOOP_RUNS[$1]+="$(echo "$t1 - $t0" | bc -l) "
    log "$1: serial restore of ${#LOOP[@]} segments in $(echo "$t1 - $t0" | bc -l) s"
}
# pgBackRest's async get queue starts empty for each of its runs, as walvault's spool does
# (emptied when walvaultd starts).
clear_pgbr_queue() { rm -rf "$TMP/pgbr/spool/archive/bench/in"; }
for round in $(seq "$ROUNDS"); do
log "round $round of $ROUNDS: recovery and serial restore"
for mode in prefetch noprefetch; do
    budget=128MiB; [[ $mode == noprefetch ]] && budget=0
    start_walvaultd "get-$mode" "$WV_REPO" --prefetch-bytes $budget
    restore_copy "$TMP/restore-$mode" "$TMP/bin/archive-get --socket $TMP/run-get-$mode/wv.sock %f %p"
    recover "walvault-$mode" "$TMP/restore-$mode"
    hits=$(as_pg "$TMP/bin/walvault" --socket "$TMP/run-get-$mode/wv.sock" --json status | jq -r '.prefetch.hits')
    log "walvault-$mode: prefetch hits $hits"
    stop_walvaultd
done
restore_copy "$TMP/restore-pgbackrest" "pgbackrest --config=$PGBR_CONF --stanza=bench archive-get %f \"%p\""
sed -i "s|^pg1-path=.*|pg1-path=$TMP/restore-pgbackrest|" "$PGBR_CONF"
clear_pgbr_queue
recover pgbackrest "$TMP/restore-pgbackrest"

restore_copy "$TMP/restore-local" "false"
cp "$TMP/segs"/* "$TMP/restore-local/pg_wal/"; chown -R postgres: "$TMP/restore-local/pg_wal"
recover "all WAL local" "$TMP/restore-local"

# The same again with other work beside replay: a SHA-256 loop at nice 19 (about what a fetch
# thread does). On a machine whose CPUs share a core or memory bandwidth this slows replay
# itself, whatever the priority: the part of walvault's gap no archiver that decodes and
# verifies during recovery can avoid there.
restore_copy "$TMP/restore-local" "false"
cp "$TMP/segs"/* "$TMP/restore-local/pg_wal/"; chown -R postgres: "$TMP/restore-local/pg_wal"
nice -n 19 bash -c "while :; do openssl sha256 $TMP/segs/* >/dev/null; done" &
HOG=$!
recover "local, CPU busy beside" "$TMP/restore-local"
stop_hog

# The simplest restore_command there is: cp of the plain segments, already in the page cache
# (what any restore_command costs: PostgreSQL's process start, its removal of the last
# RECOVERYXLOG, and 16 MiB written into a new file, all while replay waits).
restore_copy "$TMP/restore-cp" "cp $TMP/segs/%f %p"
recover "cp from a directory" "$TMP/restore-cp" "$TMP/segs"

# The floor of any restore_command: each segment renamed into place from a directory on the
# same filesystem, written out before the clock starts (settle), so only what PostgreSQL does
# per restored segment remains (system(), its renames, its fsyncs of the file and pg_wal).
rm -rf "$TMP/stage"; install -d -o postgres "$TMP/stage"
cp "$TMP/segs"/* "$TMP/stage/"; chown -R postgres: "$TMP/stage"
restore_copy "$TMP/restore-mv" "mv $TMP/stage/%f %p"
recover "mv of a prepared file" "$TMP/restore-mv"
rm -rf "$TMP/stage" "$TMP/restore-mv"

for mode in prefetch noprefetch; do
    budget=128MiB; [[ $mode == noprefetch ]] && budget=0
    start_walvaultd "loop-$mode" "$WV_REPO" --prefetch-bytes $budget
    rm -rf "$TMP/loop-$mode"; install -d -o postgres "$TMP/loop-$mode" "$TMP/loop-$mode/pg_wal"
    get_loop "walvault-$mode" "$TMP/loop-$mode" "$TMP/bin/archive-get --socket $TMP/run-loop-$mode/wv.sock %s pg_wal/RECOVERYXLOG"
    stop_walvaultd
done
rm -rf "$TMP/restore-pgbackrest/pg_wal/RECOVERYXLOG"
clear_pgbr_queue
get_loop pgbackrest "$TMP/restore-pgbackrest" "pgbackrest --config=$PGBR_CONF --stanza=bench archive-get %s pg_wal/RECOVERYXLOG"
get_loop "cp from a directory" "$TMP/restore-cp" "cp $TMP/segs/%s pg_wal/RECOVERYXLOG" "$TMP/segs"
done
for k in "${!RECOVER_RUNS[@]}"; do RECOVER_S[$k]=$(median <<<"${RECOVER_RUNS[$k]}"); done
for k in "${!LOOP_RUNS[@]}"; do LOOP_S[$k]=$(median <<<"${LOOP_RUNS[$k]}"); done

# ---------------------------------------------------------------- report
mbs() { echo "scale=1; $BYTES / 1000000 / $1" | bc -l; }
cpugib() { echo "scale=2; $1 / ($BYTES / 1073741824)" | bc -l; }
{
    echo "# backlog drain and recovery, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $N segments of 16 MiB (pgbench -i -s $SCALE)"
    echo "# walvault $("$TMP/bin/walvaultd" --version 2>&1 | head -1), $(pgbackrest version) archive-async=y process-max=2 zst:3"
    [[ $STORE != s3 ]] || echo "# repositories in S3: $S3_DESC, $DELAY_MS ms added to every request"
    echo
    echo "# medians of $ROUNDS round(s); 'rounds' lists each round's seconds"
    echo
    printf '%-22s %10s %10s %14s  %s\n' "backlog drain" "seconds" "MB/s" "CPU s per GiB" "rounds"
    for k in walvault-lookahead walvault-serial pgbackrest "zstd -3 -T2" "cp + fsync" "sh -c true"; do
        printf '%-22s %10.2f %10s %14s  %s\n' "$k" "${DRAIN_S[$k]}" "$(mbs "${DRAIN_S[$k]}")" "$(cpugib "${DRAIN_CPU[$k]}")" "$(runs_of "${DRAIN_RUNS[$k]}")"
    done
    printf '%-22s %10s\n' "look-ahead/pgbackrest" "$(echo "scale=2; ${DRAIN_S[pgbackrest]} / ${DRAIN_S[walvault-lookahead]}" | bc -l)x"
    printf '%-22s %10s\n' "look-ahead/zstd -T2" "$(echo "scale=2; ${DRAIN_S["zstd -3 -T2"]} / ${DRAIN_S[walvault-lookahead]}" | bc -l)x"
    echo
    printf 'archive-push of a segment stored ahead: p50 %s ms over %s calls; sh -c true p50 %s ms (%sx the floor)\n' \
        "$AHEAD_P50" "$PUSH_CALLS" "$TRUE_P50" "$(echo "scale=2; $AHEAD_P50 / $TRUE_P50" | bc -l)"
    echo
    printf '%-22s %10s %10s  %s\n' "recovery (end of WAL)" "seconds" "MB/s" "rounds"
    for k in walvault-prefetch walvault-noprefetch pgbackrest "all WAL local" "local, CPU busy beside" "cp from a directory" "mv of a prepared file"; do
        printf '%-22s %10.2f %10s  %s\n' "$k" "${RECOVER_S[$k]}" "$(mbs "${RECOVER_S[$k]}")" "$(runs_of "${RECOVER_RUNS[$k]}")"
    done
    printf '%-22s %10s\n' "prefetch/pgbackrest" "$(echo "scale=2; ${RECOVER_S[pgbackrest]} / ${RECOVER_S[walvault-prefetch]}" | bc -l)x"
    printf '%-22s %10s\n' "prefetch vs local" "$(echo "scale=4; (${RECOVER_S[walvault-prefetch]} / ${RECOVER_S["all WAL local"]} - 1) * 100" | bc -l | xargs printf '%+.1f')%"
    printf '%-22s %10s\n' "prefetch vs cp" "$(echo "scale=4; (${RECOVER_S[walvault-prefetch]} / ${RECOVER_S["cp from a directory"]} - 1) * 100" | bc -l | xargs printf '%+.1f')%"
    printf '%-22s %10s\n' "prefetch vs mv" "$(echo "scale=4; (${RECOVER_S[walvault-prefetch]} / ${RECOVER_S["mv of a prepared file"]} - 1) * 100" | bc -l | xargs printf '%+.1f')%"
    printf '%-22s %10s\n' "busy beside vs local" "$(echo "scale=4; (${RECOVER_S["local, CPU busy beside"]} / ${RECOVER_S["all WAL local"]} - 1) * 100" | bc -l | xargs printf '%+.1f')%"
    printf '%-22s %10s\n' "mv vs local" "$(echo "scale=4; (${RECOVER_S["mv of a prepared file"]} / ${RECOVER_S["all WAL local"]} - 1) * 100" | bc -l | xargs printf '%+.1f')%"
    # Per round, in the round's own conditions (the machine's speed drifts between rounds).
    printf '%-22s %s\n' "prefetch vs local/rnd" "$(paste -d' ' <(tr ' ' '\n' <<<"${RECOVER_RUNS[walvault-prefetch]}" | grep .) <(tr ' ' '\n' <<<"${RECOVER_RUNS["all WAL local"]}" | grep .) | awk '{printf "%+.1f%% ", ($1 / $2 - 1) * 100}')"
    echo
    printf '%-22s %10s %10s  %s\n' "serial restore loop" "seconds" "MB/s" "rounds"
    for k in walvault-prefetch walvault-noprefetch pgbackrest "cp from a directory"; do
        printf '%-22s %10.2f %10s  %s\n' "$k" "${LOOP_S[$k]}" "$(echo "scale=1; $LOOP_BYTES / 1000000 / ${LOOP_S[$k]}" | bc -l)" "$(runs_of "${LOOP_RUNS[$k]}")"
    done
    printf '%-22s %10s\n' "prefetch/pgbackrest" "$(echo "scale=2; ${LOOP_S[pgbackrest]} / ${LOOP_S[walvault-prefetch]}" | bc -l)x"
} | tee "$OUT"
