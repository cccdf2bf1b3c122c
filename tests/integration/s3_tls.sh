#!/usr/bin/env bash
# An S3 repository over https: moto_server serves TLS with a certificate signed by a test CA
# made here (openssl), given to walvaultd by s3-ca-file. Real PostgreSQL 15 archives through
# it and archive-get reads back the same bytes. Then walvaultd is started with the wrong CA,
# and with none (the system's CAs): it refuses to start, saying the certificate is not trusted
# and which option fixes it, and stores nothing.
# shellcheck disable=SC2119,SC2317  # helpers with optional arguments called without any; wait_for callbacks
source "$(dirname "$0")/lib.sh"
wv_setup
for tool in jq moto_server python3 openssl curl; do
  command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed" >&2; exit 2; }
done

# make_ca NAME: a self-signed CA in $T/tls/NAME.{pem,key}.
TLS="$T/tls"
mkdir -p "$TLS"
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS/$1.key" -out "$TLS/$1.pem" -days 2 \
    -subj "/CN=walvault test $1" 2>>"$T/logs/openssl.log" || fail "openssl could not make CA $1"
}
make_ca ca
make_ca other-ca
openssl req -newkey rsa:2048 -nodes -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=127.0.0.1" \
  2>>"$T/logs/openssl.log" || fail "openssl could not make the server's request"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/server.ext"
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial -days 2 \
  -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>>"$T/logs/openssl.log" || fail "openssl could not sign the server's certificate"

pick_port S3_PORT
S3_ENDPOINT="https://127.0.0.1:$S3_PORT"
moto_server -H 127.0.0.1 -p "$S3_PORT" -c "$TLS/server.pem" -k "$TLS/server.key" >"$T/logs/moto.log" 2>&1 &
bg_register $!
moto_up() { curl -s -o /dev/null --cacert "$TLS/ca.pem" "$S3_ENDPOINT/"; }
wait_for 60 "moto_server on $S3_ENDPOINT" moto_up
mapfile -t KEYS < <(AWS_CA_BUNDLE="$TLS/ca.pem" python3 "$WV_REPO_ROOT/tests/s3/moto_bootstrap.py" "$S3_ENDPOINT" walvault)
[ "${#KEYS[@]}" -eq 2 ] || fail "tests/s3/moto_bootstrap.py did not print a key and a secret"
export AWS_ACCESS_KEY_ID=${KEYS[0]} AWS_SECRET_ACCESS_KEY=${KEYS[1]}

PG="$T/pg"
pg_init "$PG"
S3_ARGS=(--s3-endpoint "$S3_ENDPOINT" --s3-uri-style path --spool "$T/spool")

log "--- walvaultd with the wrong CA, then with the system's: refused at start"
# start_refused TAG ARGS...: walvaultd must exit non-zero within 60 s; its log in RUN_ERR.
start_refused() {
  local tag=$1 rc=0
  shift
  timeout 60 "$T/bin/walvaultd" --repo s3://walvault/tls --socket "$T/refused.sock" "${S3_ARGS[@]}" "$@" \
    >"$T/logs/walvaultd.$tag.log" 2>&1 </dev/null || rc=$?
  RUN_RC=$rc
  RUN_ERR=$(cat "$T/logs/walvaultd.$tag.log")
}
start_refused wrong-ca --s3-ca-file "$TLS/other-ca.pem"
case $RUN_RC in 0 | 124) fail "walvaultd with the wrong CA: exit $RUN_RC (expected a refusal, not a start or a hang)" ;; esac
check_contains "not trusted" "$RUN_ERR" "wrong CA: walvaultd refuses to start (exit $RUN_RC): the certificate is not trusted"
check_contains "s3-ca-file" "$RUN_ERR" "... and it names the option that fixes it"
start_refused system-cas
case $RUN_RC in 0 | 124) fail "walvaultd with the system's CAs: exit $RUN_RC" ;; esac
check_contains "not trusted" "$RUN_ERR" "no s3-ca-file: the test CA is not among the system's, refused too (exit $RUN_RC)"
check_eq "$(curl -s --cacert "$TLS/ca.pem" "$S3_ENDPOINT/walvault?list-type=2&prefix=tls/" | grep -c '<Key>' || true)" 0 \
  "the refused starts stored nothing"

log "--- over https with s3-ca-file: archiving and archive-get"
daemon_start --repo s3://walvault/tls "${S3_ARGS[@]}" --s3-ca-file "$TLS/ca.pem"
check_contains "serving 's3://walvault/tls ($S3_ENDPOINT)'" "$(cat "$T/logs/walvaultd.1.log")" "walvaultd serves the bucket over https"
pg_start "$PG"
psql_q "$PG" "create table t as select g as id, md5(g::text) as payload from generate_series(1, 20000) g" >/dev/null
first=$(pg_switch "$PG")
psql_q "$PG" "insert into t select g, md5(g::text) from generate_series(20001, 40000) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last"
mkdir -p "$T/work/orig"
for s in $(seg_range "$first" "$last"); do cp "$PG/pg_wal/$s" "$T/work/orig/$s"; done
check_eq "$(psql_q "$PG" "select failed_count from pg_stat_archiver")" 0 "PostgreSQL archived $first .. $last over https without a failure"
pg_stop "$PG"
for s in $(seg_range "$first" "$last"); do
  wv_get_cmp "$s" "$T/work/orig/$s" || fail "archive-get $s over https"
  ok "archive-get $s over https: the bytes PostgreSQL wrote"
done
wv_cli status
check_rc 0 "walvault status on the https repository"
daemon_stop
check_eq "$WV_DAEMON_RC" 0 "walvaultd stops cleanly"
finish
