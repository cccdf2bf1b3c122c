#!/usr/bin/env bash
# Metrics with a real Prometheus: walvaultd with metrics-listen serves /metrics, /healthz and
# /readyz while a real PostgreSQL 15 archives through it and a base backup is taken;
# `promtool check metrics` accepts the scrape; a Prometheus server started here on loopback
# scrapes it, and its HTTP API answers walvault_last_archived_timestamp_seconds (the newest
# segment's time) and every expression of the Grafana dashboard with data. The alert rules pass
# `promtool check rules` and their unit tests (each alert fires above its threshold, not
# below), and the PrometheusRule object holds the same rules. /readyz turns 503 naming the
# repository when it goes away, and 200 again when it is back. notify-command gets
# backup_finished after the backup, archive_failing while pushes fail with the repository
# gone, and archive_recovered once a push succeeds again.
# shellcheck disable=SC2119  # helpers with optional arguments called without any
source "$(dirname "$0")/lib.sh"
wv_setup
for tool in prometheus promtool curl jq python3; do
  command -v "$tool" >/dev/null || { echo "$WV_TEST_NAME: $tool is needed (apt-get install prometheus curl jq)" >&2; exit 2; }
done
RULES="$WV_REPO_ROOT/packaging/prometheus"
DASHBOARD="$WV_REPO_ROOT/packaging/grafana/walvault.json"

log "--- the alert rules"
wv_run -- promtool check rules "$RULES/walvault-rules.yaml"
check_rc 0 "promtool check rules walvault-rules.yaml"
wv_run -C "$RULES" -- promtool test rules walvault-rules.test.yaml walvault-rules.hourly.test.yaml
check_rc 0 "promtool test rules: every alert fires above its threshold and not below ($(_wv_oneline "$RUN_OUT$RUN_ERR" | cut -c1-200))"
alerts=$(python3 -c 'import sys, yaml; print(" ".join(r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"]))' "$RULES/walvault-rules.yaml")
tested=$(python3 -c 'import sys, yaml; print(" ".join(sorted({c["alertname"] for f in sys.argv[1:] for t in yaml.safe_load(open(f))["tests"] for c in t["alert_rule_test"]})))' \
  "$RULES/walvault-rules.test.yaml" "$RULES/walvault-rules.hourly.test.yaml")
check_eq "$tested" "$(tr ' ' '\n' <<<"$alerts" | sort | tr '\n' ' ' | sed 's/ $//')" "every alert has a unit test"
missing=""
for a in $alerts; do
  grep -q "^#### $a\$" "$WV_REPO_ROOT/docs/operator-guide.md" || missing+=" $a"
done
check_eq "$missing" "" "every alert has a runbook section '#### NAME' in docs/operator-guide.md"
same=$(python3 -c 'import sys, yaml; a = yaml.safe_load(open(sys.argv[1])); b = yaml.safe_load(open(sys.argv[2])); print(b["kind"] == "PrometheusRule" and b["spec"] == a)' \
  "$RULES/walvault-rules.yaml" "$RULES/walvault-prometheusrule.yaml")
check_eq "$same" True "the PrometheusRule object holds exactly the rules of walvault-rules.yaml"

log "--- walvaultd with metrics-listen, PostgreSQL archiving, a base backup"
PG="$T/pg"
pg_init "$PG"
PORT=${WV_PG_PORT[$PG]}
pick_port MPORT
METRICS="http://127.0.0.1:$MPORT"
install -d "$T/spool"
EVENTS="$T/work/events.jsonl"
printf '#!/bin/sh\ncat >> "%s"\n' "$EVENTS" >"$T/notify.sh"
chmod 755 "$T/notify.sh"
daemon_start --allow-uid postgres,root --spool "$T/spool" --metrics-listen "127.0.0.1:$MPORT" \
  --pg-conninfo "host=$T/pgsock port=$PORT user=postgres" --backup-chunk-size 1MiB \
  --notify-command "$T/notify.sh" --notify-archive-failing-after 2s
pg_start "$PG"
make_rows "$PG" 20000
wv_cli -u root --json backup --label metrics
assert_rc 0 "walvault backup"
BACKUP=$(jq_out '.id')
event_of() { [ -f "$EVENTS" ] && jq -c "select(.event == \"$1\")" "$EVENTS" | grep -q .; }
wait_for 20 "the backup_finished event" event_of backup_finished
check_eq "$(jq -r 'select(.event == "backup_finished") | [.id, .label, (.stored_bytes > 0)] | join(" ")' "$EVENTS" | head -n 1)" "$BACKUP metrics true" \
  "notify-command got backup_finished with the backup's id, label and size"
for _ in 1 2 3; do last=$(pg_switch "$PG"); done
wait_archived "$PG" "$last" 60
wv_get "$last" "$T/work/got"
assert_rc 0 "archive-get $last"
wv_get 0000000100000000000000FE "$T/work/none"
check_rc 1 "archive-get of a segment never archived"

# A real drill (tests/integration/drill.sh tests it in depth), so the drill metrics and the
# dashboard's drill panel have data.
wv_cli -u root --json drill --workdir "$T/drill" --no-amcheck
assert_rc 0 "walvault drill ($(jq_out -c '{ok, reason, rto_seconds}'))"

http_code() { curl -s -o "$T/work/http.body" -w '%{http_code}' --max-time 10 "$METRICS$1"; }
# For wait_for, which runs its command again each time (a $(...) argument would run once).
readyz_is() { [ "$(http_code /readyz)" = "$1" ]; }
check_eq "$(http_code /healthz)" 200 "/healthz answers 200"
wait_for 20 "/readyz to answer 200" readyz_is 200
ok "/readyz answers 200 ($(cat "$T/work/http.body"))"
check_eq "$(http_code /nowhere)" 404 "another path is 404"
check_eq "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "$METRICS/metrics")" 405 "POST is 405"
# Wait until the snapshot has seen the newest segment (it is read every 5 s).
newest_in_scrape() { curl -s --max-time 10 "$METRICS/metrics" >"$T/work/scrape.txt" && grep -q "segment=\"$last\"" "$T/work/scrape.txt"; }
wait_for 30 "the scrape to show $last" newest_in_scrape
ok "/metrics names $last as the newest archived segment"
wv_run -- sh -c "promtool check metrics < '$T/work/scrape.txt'"
check_rc 0 "promtool check metrics accepts the scrape"
check_eq "$RUN_OUT$RUN_ERR" "" "promtool check metrics has nothing to say"
check_match 'walvault_wal_pushed_total\{result="stored"\} [1-9]' "$(cat "$T/work/scrape.txt")" "pushes counted as stored"
check_match 'walvault_wal_fetched_total\{result="served"\} [1-9]' "$(cat "$T/work/scrape.txt")" "gets counted as served"
check_match 'walvault_wal_fetched_total\{result="not_found"\} [1-9]' "$(cat "$T/work/scrape.txt")" "a not-found get counted"
check_match 'walvault_backups\{state="complete"\} 1' "$(cat "$T/work/scrape.txt")" "the base backup counted as complete"
check_match 'walvault_wal_gaps 0' "$(cat "$T/work/scrape.txt")" "no WAL gap"
check_match "walvault_repository_up\\{repo=\"$REPO\"\\} 1" "$(cat "$T/work/scrape.txt")" "the repository is up"
check_match 'walvault_drill_last_success 1' "$(cat "$T/work/scrape.txt")" "the drill is counted as passed"
check_match 'walvault_drill_rto_seconds [0-9]' "$(cat "$T/work/scrape.txt")" "the drill's RTO is exported"

log "--- a real Prometheus scrapes it"
pick_port PPORT
PROM="http://127.0.0.1:$PPORT"
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$RULES/walvault-rules.yaml"]
scrape_configs:
  - job_name: walvault
    static_configs: [{targets: ["127.0.0.1:$MPORT"]}]
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" --web.listen-address="127.0.0.1:$PPORT" \
  >"$T/logs/prometheus.log" 2>&1 &
PROMETHEUS=$!
bg_register "$PROMETHEUS"
wait_for 60 "Prometheus on $PROM" curl -sf -o /dev/null "$PROM/-/ready"
ok "Prometheus ready on $PROM"
# promql EXPR: the query's result array (JSON) from Prometheus's HTTP API, at now.
promql() { curl -s --max-time 10 --get --data-urlencode "query=$1" "$PROM/api/v1/query"; }
has_data() { local r; r=$(promql "$1"); [ "$(jq -r '.status' <<<"$r")" = success ] && [ "$(jq -r '.data.result | length' <<<"$r")" -gt 0 ]; }
wait_for 60 "walvault_last_archived_timestamp_seconds in Prometheus" has_data walvault_last_archived_timestamp_seconds
age=$(promql 'time() - walvault_last_archived_timestamp_seconds' | jq -r '.data.result[0].value[1] | tonumber | floor')
[ "$age" -ge 0 ] && [ "$age" -lt 120 ] && ok "Prometheus: the newest WAL was archived ${age}s ago" ||
  soft_fail "Prometheus says the newest WAL is ${age}s old"
check_eq "$(promql 'walvault_last_archived_segment_info' | jq -r '.data.result[0].metric.segment')" "$last" "Prometheus: the newest segment is $last"
check_eq "$(promql 'up{job="walvault"}' | jq -r '.data.result[0].value[1]')" 1 "Prometheus: the walvault target is up"
# rate() needs two scrapes inside its window.
sleep 3
mapfile -t exprs < <(jq -r '.panels[].targets[].expr' "$DASHBOARD")
[ "${#exprs[@]}" -ge 10 ] || fail "only ${#exprs[@]} expressions in $DASHBOARD"
for e in "${exprs[@]}"; do
  q=${e//\$instance/.+}
  reply=$(promql "$q")
  if [ "$(jq -r '.status' <<<"$reply")" != success ]; then
    soft_fail "dashboard query does not parse: $q: $(jq -r '.error' <<<"$reply")"
  elif [ "$(jq -r '.data.result | length' <<<"$reply")" -eq 0 ]; then
    soft_fail "dashboard query returns no data: $q"
  fi
done
ok "all ${#exprs[@]} dashboard queries parse and return data"
firing=$(curl -s --max-time 10 "$PROM/api/v1/alerts" | jq -r '[.data.alerts[] | select(.state == "firing") | .labels.alertname] | join(",")')
check_eq "$firing" "" "no alert fires for a healthy walvault"

log "--- /readyz follows the repository"
cp "$PG/pg_wal/$last" "$T/work/$last" || fail "$last is gone from pg_wal"
chown postgres: "$T/work/$last"
mv "$REPO" "$REPO.away"
wv_push "$T/work/$last"
check_rc 1 "archive-push fails while the repository is gone"
wait_for 30 "/readyz to turn 503" readyz_is 503
check_contains "repository '$REPO' is not reachable" "$(cat "$T/work/http.body")" "/readyz names the repository"
check_eq "$(http_code /healthz)" 200 "/healthz stays 200 (liveness is not the repository's)"
repository_up_is() { [ "$(promql 'walvault_repository_up' | jq -r '.data.result[0].value[1]')" = "$1" ]; }
wait_for 30 "Prometheus to see the repository down" repository_up_is 0
ok "Prometheus: walvault_repository_up 0"
wv_push "$T/work/$last"
wait_for 30 "the archive_failing event" event_of archive_failing
ok "notify-command got archive_failing ($(jq -c 'select(.event == "archive_failing")' "$EVENTS" | head -n 1 | cut -c1-200))"
mv "$REPO.away" "$REPO"
wait_for 30 "/readyz to turn 200 again" readyz_is 200
ok "/readyz is 200 again once the repository is back"
wv_push "$T/work/$last"
check_rc 0 "archive-push of $last again (already archived: acknowledged)"
wait_for 30 "the archive_recovered event" event_of archive_recovered
check_eq "$(jq -r '.event' "$EVENTS" | grep -c archive_failing)" 1 "archive_failing was sent once for the episode"
check_contains "is reachable again" "$(cat "$T"/logs/walvaultd.*.log)" "walvaultd logged the repository's return"

log "--- a backup label that is not UTF-8 is refused, and walvaultd lives on"
wv_cli -u root backup --label "$(printf 'caf\351')"
check_rc 2 "walvault backup with a Latin-1 label is refused"
check_contains "must be UTF-8" "$RUN_ERR" "it says why"
check_daemons_alive
wv_cli -u root --json backup --label "café ☕"
assert_rc 0 "a UTF-8 label is fine"
backups_finished() { [ "$(jq -c 'select(.event == "backup_finished")' "$EVENTS" | wc -l)" -ge 2 ]; }
wait_for 20 "the second backup_finished event" backups_finished
check_eq "$(jq -r 'select(.event == "backup_finished") | .label' "$EVENTS" | tail -n 1)" "café ☕" "the event carries the label"

bg_stop "$PROMETHEUS"
pg_stop "$PG"
daemon_stop
finish
