#!/usr/bin/env bash
# ctest monitoring_live: iotpipe with the real Prometheus and Alertmanager (Debian packages), loopback
# only, temporary directories, everything stopped at the end. Issue 19, point 2:
#  (a) 50 flagged readings of one episode give one alert in Alertmanager;
#  (b) a silence created in Alertmanager mutes it (the alert shows as suppressed);
#  (d) Prometheus scrapes iotpipe, evaluates a rule of deploy/prometheus/rules.yml (a copy with
#      `for: 0s` and 1 s intervals, scripts/monitoring) and the alert arrives in Alertmanager;
#  (c) Alertmanager going down is logged (once: rate-limited) and counted on iotpipe's /metrics.
# Usage: tests/monitoring_live.sh BUILD_DIR/iotpipe
set -euo pipefail
BIN="$(realpath "${1:?usage: $0 path/to/iotpipe}")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
T="$(mktemp -d /tmp/iotpipe-monitoring.XXXXXX)"
IOT_PID=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  [[ -n "$IOT_PID" ]] && kill "$IOT_PID" 2>/dev/null && wait "$IOT_PID" 2>/dev/null || true
  "$ROOT/scripts/monitoring" stop "$T" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- iotpipe stderr (tail)" >&2; tail -20 "$T/iotpipe.err" >&2 || true
  echo "--- alertmanager.log" >&2; tail -5 "$T/alertmanager.log" >&2 || true
  echo "--- prometheus.log" >&2; tail -5 "$T/prometheus.log" >&2 || true
  exit 1
}
# until SECONDS CMD...: retries CMD every 0.2 s; false after SECONDS (eval '...' re-expands each time).
until_ok() { local end=$((SECONDS + $1)); shift; while ! "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.2; done; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
metric() { curl -fsS "http://127.0.0.1:$IOT_PORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

IOT_PORT="$(free_port)"
SENSOR="pump-1/pressure"

# Alertmanager first (iotpipe posts to it from its first alert on); Prometheus once the data is in.
"$ROOT/scripts/monitoring" start "$T" "127.0.0.1:$IOT_PORT" alertmanager > /dev/null
source "$T/env"

python3 "$ROOT/tests/monitoring/make_episode.py" 5 300 > "$T/in.jsonl"
# --batch-size 1: the file source hands out a batch only when it is full (or at EOF), and the stream
# stays open below.
mkfifo "$T/feed"
"$BIN" process --input "$T/feed" --data-dir "$T/data" --no-checkpoint --quiet --batch-size 1 \
  --http "127.0.0.1:$IOT_PORT" --alertmanager "$AM_URL" --alertmanager-resend 1 \
  --alertmanager-labels env=test --alert-min-points 5 --alert-critical-score 0.9 \
  > "$T/iotpipe.out" 2> "$T/iotpipe.err" &
IOT_PID=$!
exec 3> "$T/feed"          # stays open: the stream goes on, silent, after the records below
cat "$T/in.jsonl" >&3

RECORDS="$(wc -l < "$T/in.jsonl")"
until_ok 20 eval '[[ "$(metric iotpipe_records_received_total)" == "$RECORDS" ]]' ||
  fail "iotpipe did not receive the $(wc -l < "$T/in.jsonl") records"
until_ok 10 eval '[[ "$(metric iotpipe_anomalies_predicted_total)" == 50 ]]' ||
  fail "expected 50 flagged readings, /metrics says $(metric iotpipe_anomalies_predicted_total)"
echo "ok: iotpipe flagged 50 readings of one episode of $SENSOR"

# (a) one alert in Alertmanager for the episode, and no other anomaly alert.
am_alerts() { curl -fsS "$AM_URL/api/v2/alerts?filter=alertname%3D%22IotpipeAnomaly%22"; }
until_ok 15 sh -c "test \"\$(curl -fsS '$AM_URL/api/v2/alerts' | jq 'length')\" -ge 1" || fail "no alert reached Alertmanager"
sleep 2  # resends (every 1 s) must not add alerts
n="$(am_alerts | jq --arg s "$SENSOR" '[.[] | select(.labels.sensor == $s)] | length')"
total="$(am_alerts | jq 'length')"
[[ "$n" == 1 && "$total" == 1 ]] || fail "expected exactly one IotpipeAnomaly alert (for $SENSOR), got $n of $total: $(am_alerts)"
am_alerts | jq -e --arg s "$SENSOR" '.[0] | .labels.env == "test" and .labels.severity == "critical"
  and .status.state == "active" and (.annotations.points | tonumber) >= 5' > /dev/null ||
  fail "unexpected alert: $(am_alerts)"
[[ "$(metric iotpipe_alerts_opened_total)" == 1 && "$(metric iotpipe_alerts_folded_total)" == 49 ]] ||
  fail "iotpipe counted $(metric iotpipe_alerts_opened_total) alerts, $(metric iotpipe_alerts_folded_total) folded"
echo "ok: (a) 50 flagged readings -> 1 alert in Alertmanager (1 opened, 49 folded)"

# (b) a silence mutes it.
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"; later="$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"
sid="$(curl -fsS -X POST -H 'Content-Type: application/json' "$AM_URL/api/v2/silences" -d "{
  \"matchers\": [{\"name\": \"sensor\", \"value\": \"$SENSOR\", \"isRegex\": false, \"isEqual\": true}],
  \"startsAt\": \"$now\", \"endsAt\": \"$later\", \"createdBy\": \"monitoring_live\", \"comment\": \"test\"}" |
  jq -r .silenceID)"
[[ -n "$sid" && "$sid" != null ]] || fail "silence not created"
until_ok 10 sh -c "curl -fsS '$AM_URL/api/v2/alerts?silenced=true' | jq -e --arg id '$sid' \
  '[.[] | select(.labels.sensor == \"$SENSOR\" and .status.state == \"suppressed\" and (.status.silencedBy | index(\$id)))] | length == 1'" ||
  fail "the alert is not suppressed by silence $sid: $(am_alerts)"
sleep 1.5  # a re-send by iotpipe must not un-silence it
curl -fsS "$AM_URL/api/v2/alerts?filter=sensor%3D%22$(jq -rn --arg s "$SENSOR" '$s|@uri')%22" |
  jq -e '.[0].status.state == "suppressed"' > /dev/null || fail "the alert is no longer suppressed after a re-send"
echo "ok: (b) silence $sid mutes it (state suppressed)"

# (d) Prometheus scrapes iotpipe, evaluates deploy/prometheus/rules.yml, the alert reaches Alertmanager.
# The records are all in and the stream is silent: IotpipeNoData (rate(received[5m]) == 0) must fire.
"$ROOT/scripts/monitoring" start "$T" "127.0.0.1:$IOT_PORT" prometheus > /dev/null 3>&-  # must not hold the feed open
until_ok 20 sh -c "curl -fsS '$PROM_URL/api/v1/query?query=up%7Bjob%3D%22iotpipe%22%7D' | jq -e '.data.result[0].value[1] == \"1\"'" ||
  fail "Prometheus does not scrape iotpipe: $(curl -fsS "$PROM_URL/api/v1/targets" | jq -c '.data.activeTargets[] | {health, lastError}')"
curl -fsS "$PROM_URL/api/v1/query?query=iotpipe_anomalies_predicted_total" | jq -e '.data.result[0].value[1] == "50"' > /dev/null ||
  fail "Prometheus does not see iotpipe_anomalies_predicted_total = 50"
until_ok 30 sh -c "curl -fsS '$AM_URL/api/v2/alerts?filter=alertname%3D%22IotpipeNoData%22' | jq -e --arg i '127.0.0.1:$IOT_PORT' \
  '[.[] | select(.labels.instance == \$i and .labels.job == \"iotpipe\")] | length == 1'" ||
  fail "IotpipeNoData did not reach Alertmanager; Prometheus alerts: $(curl -fsS "$PROM_URL/api/v1/alerts" | jq -c .data)"
echo "ok: (d) Prometheus scraped iotpipe, fired IotpipeNoData, Alertmanager has it"

# (c) Alertmanager goes down: iotpipe's re-sends fail, are counted, and logged once (rate-limited).
"$ROOT/scripts/monitoring" stop "$T" alertmanager
fails='iotpipe_alert_deliveries_total{receiver="alertmanager",outcome="failed"}'
until_ok 20 sh -c "test \"\$(curl -fsS http://127.0.0.1:$IOT_PORT/metrics | awk -v k='$fails' '\$1 == k {print \$2}')\" -ge 3" ||
  fail "failed deliveries not counted: $(metric "$fails")"
[[ "$(metric 'iotpipe_alert_receiver_up{receiver="alertmanager"}')" == 0 ]] || fail "iotpipe_alert_receiver_up is not 0"
lines="$(grep -c "delivery to alertmanager $AM_URL failed" "$T/iotpipe.err" || true)"
[[ "$lines" == 1 ]] || fail "expected 1 (rate-limited) failure line for $(metric "$fails") failures, got $lines"
echo "ok: (c) receiver down: $(metric "$fails") failed posts counted, logged once: $(grep "delivery to alertmanager" "$T/iotpipe.err" | head -1)"

# The end of the stream ends iotpipe cleanly.
exec 3>&-
for _ in $(seq 1 100); do kill -0 "$IOT_PID" 2>/dev/null || break; sleep 0.1; done
wait "$IOT_PID" || fail "iotpipe exited with $?"
IOT_PID=""
echo "PASS"
