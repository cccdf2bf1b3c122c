#!/usr/bin/env bash
# backup-schedule: with a schedule that fires every minute, walvaultd takes a base backup by itself
# (trigger "schedule" in status), stored and complete like one from `walvault backup`.
source "$(dirname "$0")/lib.sh"
wv_setup
PG="$T/pg"
pg_init "$PG"
daemon_start --allow-uid postgres,root --pg-conninfo "host=$T/pgsock port=${WV_PG_PORT[$PG]} user=postgres" --backup-schedule '* * * * *'
pg_start "$PG"
deadline=$((SECONDS + 150))  # a run before PostgreSQL is up fails; the next minute counts
while [ $SECONDS -lt $deadline ]; do
  wv_cli_json list --backups
  n=$(jq_out '[.backups[] | select(.stored != null)] | length')
  [ "$n" -ge 1 ] && break
  sleep 2
done
[ "$n" -ge 1 ] || fail "no scheduled backup stored within 150 s"
ok "a scheduled backup was stored"
wv_cli_json status
assert_eq "$(jq_out .backup.trigger)" schedule "status names the schedule as the trigger"
assert_eq "$(jq_out .backup_schedule)" "* * * * *" "status shows the schedule"
daemon_stop
finish
