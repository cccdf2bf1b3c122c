#!/usr/bin/env bash
# Out of the box as root: walvaultd started as root with only --repo, --socket (in a directory
# it creates itself), --pgdata and --allow-uid postgres, against a PostgreSQL whose pg_hba.conf
# allows only peer authentication (Debian's default for local connections). With no chmod or
# chgrp by the caller, the postgres user archives, takes `walvault backup` (walvaultd finds the
# server from postmaster.pid and runs pg_basebackup as the cluster's owner), gets every verb
# answered, prunes, and restores. A pgdata of another cluster stops walvaultd at start-up. A password given with `walvault backup -d` appears in no log,
# no status and no process listing.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD
SOCK="$T/walvault-run/walvault.sock"   # not the setgid directory the other tests use
PG="$T/pg"
pg_init "$PG"
printf 'local all all peer\nlocal replication all peer\n' >"$PG/pg_hba.conf"
chown postgres: "$PG/pg_hba.conf"
pg_start "$PG"
# pg_basebackup behind a wrapper that records its command line and user (how a process listing
# would show them) and whether a password came in its environment.
install -d -m 755 "$T/pgwrap"
cat >"$T/pgwrap/pg_basebackup" <<WRAP
#!/bin/sh
printf 'uid=%s argv=%s pgpassword=%s\n' "\$(id -un)" "\$*" "\${PGPASSWORD:+set}" >>"$T/work/pg_basebackup.calls"
exec "$PGBIN/pg_basebackup" "\$@"
WRAP
chmod 755 "$T/pgwrap/pg_basebackup"
daemon_start --pgdata "$PG" --pg-bindir "$T/pgwrap"
check_eq "$(stat -c '%U:%G %a' "$SOCK")" "root:postgres 660" "the socket is open to postgres's group, nothing done by hand"

psql_q "$PG" "create table t (id int primary key, note text)" >/dev/null
psql_q "$PG" "insert into t select g, 'row ' || g from generate_series(1, 5000) g" >/dev/null
wv_cli --json backup --label first
assert_rc 0 "walvault backup as postgres, with only --pgdata to find the server"
B1=$(jq_out .id)
check_eq "$(jq_out .complete)" true "backup $B1 complete"
logf="$T/logs/walvaultd.$WV_DAEMON_COUNT.log"

# -d with a password (peer authentication ignores it): it must not surface anywhere.
psql_q "$PG" "insert into t select g, 'row ' || g from generate_series(5001, 6000) g" >/dev/null
wv_cli --json backup --label second -d "dbname=postgres password=TopSecret-1234"
assert_rc 0 "walvault backup -d 'dbname=postgres password=…'"
B2=$(jq_out .id)
wv_cli_json status
check_eq "$(jq_out '.backup.id')" "$B2" "status shows backup $B2"
if grep -q "TopSecret-1234" "$logf"; then fail "the password appears in walvaultd's log"; fi
if grep -q "TopSecret-1234" <<<"$RUN_OUT"; then fail "the password appears in status"; fi
if grep -q "TopSecret-1234" "$T/work/pg_basebackup.calls"; then fail "the password is on pg_basebackup's command line"; fi
ok "the password appears in neither walvaultd's log, status nor pg_basebackup's command line"
calls=$(cat "$T/work/pg_basebackup.calls")
check_match "^uid=postgres argv=--pgdata=- .* pgpassword=\$" "$(head -n 1 <<<"$calls")" "first backup: pg_basebackup ran as postgres, no --dbname, no password"
check_match "^uid=postgres argv=--dbname=dbname=postgres --pgdata=- .* pgpassword=set\$" "$(tail -n 1 <<<"$calls")" \
  "second backup: --dbname without the password, which came as PGPASSWORD"

# Every verb answers the postgres user.
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
for verb in status list timelines verify plan "list --backups"; do
  # shellcheck disable=SC2086  # "list --backups" is two words on purpose
  wv_cli $verb
  check_rc 0 "walvault $verb as postgres"
done
wv_cli check
[ "$RUN_RC" -le 1 ] && [ -n "$RUN_OUT" ] && ok "walvault check answers postgres (exit $RUN_RC)" ||
  fail "walvault check as postgres exited $RUN_RC: $(_wv_oneline "$RUN_ERR")"
wv_cli prune --dry-run
check_rc 0 "walvault prune --dry-run as postgres"
wv_cli prune
check_rc 0 "walvault prune as postgres"
wv_cli reindex
check_rc 0 "walvault reindex as postgres"

# Restore the newest backup as postgres and start it.
psql_q "$PG" "insert into t select g, 'row ' || g from generate_series(6001, 7000) g" >/dev/null
last=$(pg_switch "$PG")
wait_archived "$PG" "$last" 60
R="$T/work/restored"
# With a relative --socket: restore_command must name the socket absolutely (PostgreSQL runs it
# in the data directory).
wv_run -u postgres -C "$T" -- "$T/bin/walvault" --socket "walvault-run/walvault.sock" restore --pgdata "$R"
assert_rc 0 "walvault restore as postgres (relative --socket)"
check_contains "restore_command = '$T/bin/archive-get --socket $SOCK %f %p'" "$(cat "$R/postgresql.auto.conf")" \
  "restore_command names the socket by its absolute path"
pg_adopt "$R"
printf 'local all all peer\nlocal replication all peer\n' >"$R/pg_hba.conf"
chown postgres: "$R/pg_hba.conf"
pg_start "$R"
wait_recovery_done "$R" 120
check_eq "$(psql_q "$R" "select count(*) from t")" 7000 "the restored cluster has every archived row"
pg_stop "$R"
pg_stop "$PG"
daemon_stop

# pgdata of another cluster: refused at start-up, naming both system identifiers.
pg_init "$T/other"
wv_run -- timeout 20 "$T/bin/walvaultd" --repo "$REPO" --socket "$SOCK" --allow-uid postgres --pgdata "$T/other"
check_rc 1 "walvaultd refuses a pgdata of another cluster"
check_match "pgdata '$T/other' is the cluster with system identifier [0-9]+, but repository .* holds WAL of [0-9]+" "$RUN_ERR$RUN_OUT" \
  "... naming both system identifiers"
finish
