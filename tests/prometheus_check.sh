#!/usr/bin/env bash
# ctest prometheus_config: deploy/prometheus/ passes `promtool check config` and `promtool check rules`,
# and a real /metrics scrape of a running iotpipe passes `promtool check metrics` (naming, HELP/TYPE,
# units). Also checks that the per-sensor series are bounded by --metrics-top-sensors (the top N by
# flagged readings) and that every metric the rules use is exposed.
# Usage: tests/prometheus_check.sh BUILD_DIR/iotpipe
set -euo pipefail
BIN="$(realpath "${1:?usage: $0 path/to/iotpipe}")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
T="$(mktemp -d /tmp/iotpipe-promcheck.XXXXXX)"
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -5 "$T/err" >&2 || true; exit 1; }

promtool check config "$ROOT/deploy/prometheus/prometheus.yml" || fail "promtool check config"
promtool check rules "$ROOT/deploy/prometheus/rules.yml" || fail "promtool check rules"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
# A simulated fleet with anomalies on many sensors, an Alertmanager URL (nothing listens: the delivery
# series exist), and a bound of 3 per-sensor series.
"$BIN" run --sensors 200 --duration 600 --rate max --seed 3 --data-dir "$T/data" --quiet \
  --http "127.0.0.1:$port" --http-linger 60 --metrics-top-sensors 3 \
  --alertmanager http://127.0.0.1:9 --alert-webhook http://127.0.0.1:9/hook > "$T/out" 2> "$T/err" &
PID=$!
for _ in $(seq 1 100); do grep -q "done:" "$T/err" 2>/dev/null && break; sleep 0.1; done
grep -q "done:" "$T/err" || fail "the run did not finish"
curl -fsS "http://127.0.0.1:$port/metrics" > "$T/metrics" || fail "no /metrics"
out="$(promtool check metrics < "$T/metrics" 2>&1)" || fail "promtool check metrics: $out"
[[ -z "$out" ]] || fail "promtool check metrics reports problems: $out"
echo "ok: promtool check metrics on $(grep -vc '^#' "$T/metrics") samples"

series="$(grep -c '^iotpipe_sensor_anomalies_total{' "$T/metrics" || true)"
[[ "$series" == 3 ]] || fail "expected 3 per-sensor series (--metrics-top-sensors 3), got $series"
echo "ok: per-sensor series bounded to 3"

# Every metric the rules use is exposed by iotpipe (or by the drift monitor of ML runs: iotpipe_drift_*).
for m in $(grep -o 'iotpipe_[a-z_]*' "$ROOT/deploy/prometheus/rules.yml" | sort -u); do
  [[ "$m" == iotpipe_drift_* ]] && continue
  grep -q "^# TYPE $m " "$T/metrics" || fail "rules.yml uses $m, which /metrics does not expose"
done
echo "ok: every metric in rules.yml is exposed"
grep -q '^iotpipe_alert_deliveries_total{receiver="alertmanager",outcome="failed"}' "$T/metrics" ||
  fail "no Alertmanager delivery series"
echo PASS
