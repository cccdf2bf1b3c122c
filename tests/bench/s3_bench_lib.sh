# Shared by the benchmarks (sourced, not run): a loopback S3 store for STORE=s3.
# moto_server on 127.0.0.1 (plain http, as the root of truth), tests/s3/fault_proxy.py in front
# of it serving https with a certificate of a CA made here; both tools talk to the proxy only,
# which logs every request ("METHOD PATH -> STATUS") and adds the pass's delay to each.
# Needs, from the sourcing script: TMP, repo_root, S3_BUCKET, log, die, an S3_PIDS array (stop_s3
# stops them; call it from the cleanup trap).
# shellcheck shell=bash
free_port() {   # below the kernel's ephemeral range, in no socket state at all
    local p start=$((20000 + RANDOM % 12000))
    for ((p = start; p < start + 500; p++)); do
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return 0; fi
    done
    return 1
}

TLS=$TMP/tls
PROXY_LOG=$TMP/log/proxy.log
# serve WHAT LOG CHECK CMD...: start CMD in the background (an argument "@PORT" = a free port) and
# wait until "CHECK PORT" succeeds; if CMD exits first (the port was taken meanwhile), another port.
# Sets SERVE_PORT; the PID goes to S3_PIDS (stopped by cleanup).
serve() {
    local what=$1 logf=$2 check=$3 try i pid a args
    shift 3
    for ((try = 1; try <= 5; try++)); do
        SERVE_PORT=$(free_port) || die "no free loopback port"
        args=(); for a in "$@"; do [[ $a == @PORT ]] && a=$SERVE_PORT; args+=("$a"); done
        "${args[@]}" >> "$logf" 2>&1 &
        pid=$!
        S3_PIDS+=("$pid")
        for ((i = 0; i < 300; i++)); do
            "$check" "$SERVE_PORT" && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && die "$what did not answer on port $SERVE_PORT within 60 s (log: $logf)"
        wait "$pid" 2>/dev/null
        S3_PIDS=("${S3_PIDS[@]:0:${#S3_PIDS[@]}-1}")
        log "$what exited at start on port $SERVE_PORT (taken meanwhile?); trying another port"
    done
    die "$what did not start (log: $logf)"
}
moto_up() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"; }
proxy_up() { curl -sf -o /dev/null --max-time 2 --cacert "$TLS/ca.pem" "https://127.0.0.1:$1/__proxy__/mode"; }
start_s3() {
    local keys
    mkdir -p "$TLS"
    {
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -days 2 \
            -subj "/CN=walvault bench CA" &&
        openssl req -newkey rsa:2048 -nodes -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=127.0.0.1" &&
        # IP: for walvaultd and curl; DNS: pgBackRest 2.45 matches only dNSName entries
        printf 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
            > "$TLS/server.ext" &&
        openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -days 2 \
            -extfile "$TLS/server.ext" -out "$TLS/server.pem"
    } > "$TMP/log/openssl.log" 2>&1 || { cat "$TMP/log/openssl.log" >&2; die "openssl could not make the test CA"; }
    chmod 755 "$TLS"; chmod 644 "$TLS/ca.pem"
    serve moto_server "$TMP/log/moto.log" moto_up moto_server -H 127.0.0.1 -p @PORT
    S3_UP=http://127.0.0.1:$SERVE_PORT
    mapfile -t keys < <(timeout 60 python3 "$repo_root/tests/s3/moto_bootstrap.py" "$S3_UP" "$S3_BUCKET")
    [[ ${#keys[@]} -eq 2 ]] || die "tests/s3/moto_bootstrap.py did not print a key and a secret"
    export AWS_ACCESS_KEY_ID=${keys[0]} AWS_SECRET_ACCESS_KEY=${keys[1]}
    serve "fault proxy" "$PROXY_LOG" proxy_up python3 "$repo_root/tests/s3/fault_proxy.py" --listen @PORT \
        --upstream "$S3_UP" --tls-cert "$TLS/server.pem" --tls-key "$TLS/server.key"
    PROXY_PORT=$SERVE_PORT
    PROXY=https://127.0.0.1:$PROXY_PORT
    S3_DESC="moto_server $(python3 -c 'import moto; print(moto.__version__)') on $S3_UP (no signature checks), behind tests/s3/fault_proxy.py on $PROXY (TLS, test CA)"
    log "S3: $S3_DESC"
}
proxy_delay() {
    curl -sf -o /dev/null --max-time 10 --cacert "$TLS/ca.pem" -X PUT --data "$1" "$PROXY/__proxy__/delay-ms" \
        || die "fault proxy: cannot set delay-ms to $1"
}
# pgBackRest's archive-async forks a detached process that holds a lock in lock-path while it
# pushes or prefetches: its PIDs, from /proc/locks (read only, so no lock is taken here)
pgbr_async_pids() {
    local f ino p
    for f in "$TMP"/pgbr/lock/*.lock; do
        [[ -e $f ]] || continue
        ino=$(stat -c %i "$f" 2>/dev/null) || continue
        while read -r p; do
            grep -qa pgbackrest "/proc/$p/cmdline" 2>/dev/null && echo "$p"
        done < <(awk -v ino="$ino" '$2 == "FLOCK" { n = split($6, a, ":"); if (a[n] == ino) print $5 }' /proc/locks)
    done
    return 0
}
stop_s3() {
    local p i
    for p in $(pgbr_async_pids); do kill -TERM "$p" 2>/dev/null; done
    for p in "${S3_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${S3_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    S3_PIDS=()
}
# pgbr_s3_repo PATH: pgBackRest's [global] lines for a repository at PATH in the bucket, through
# the proxy (start_s3 first).
pgbr_s3_repo() {
    cat <<EOF
repo1-type=s3
repo1-path=$1
repo1-s3-bucket=$S3_BUCKET
repo1-s3-endpoint=127.0.0.1
repo1-storage-port=$PROXY_PORT
repo1-storage-ca-file=$TLS/ca.pem
repo1-s3-uri-style=path
repo1-s3-region=us-east-1
repo1-s3-key=$AWS_ACCESS_KEY_ID
repo1-s3-key-secret=$AWS_SECRET_ACCESS_KEY
EOF
}
