#!/usr/bin/env bash
# Before/after benchmark of two iotpipe binaries, alternating runs (issue 15's acceptance method).
#   bench/before_after.sh BEFORE_BIN AFTER_BIN [RUNS (7)] [KAFKA_RUNS (5)]
# Starts a private broker on 127.0.0.1:29192 for the Kafka group and stops it after. Prints, per figure,
# every run of each side and the ratio of the medians (after / before). Take it on a quiet machine.
set -euo pipefail
before="$1" after="$2" runs="${3:-7}" kruns="${4:-5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'IOTPIPE_KAFKA_PORT=29192 IOTPIPE_KAFKA_HOME=$out/kafka "$root/scripts/kafka" stop >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
for i in $(seq "$runs"); do
  "$before" bench --quick --only e2e --json "$out/e2e-before-$i.json" >/dev/null 2>&1
  "$after" bench --quick --only e2e --json "$out/e2e-after-$i.json" >/dev/null 2>&1
done
if IOTPIPE_KAFKA_PORT=29192 IOTPIPE_KAFKA_HOME="$out/kafka" "$root/scripts/kafka" start >/dev/null 2>&1; then
  for i in $(seq "$kruns"); do
    "$before" bench --quick --only kafka --brokers 127.0.0.1:29192 --json "$out/kafka-before-$i.json" >/dev/null 2>&1
    "$after" bench --quick --only kafka --brokers 127.0.0.1:29192 --json "$out/kafka-after-$i.json" >/dev/null 2>&1
  done
fi
python3 - "$out" <<'PY'
import glob, json, statistics, sys
d = sys.argv[1]
for grp, key in [("e2e", "e2e_baseline_events_per_s"), ("e2e", "e2e_lstm_events_per_s"),
                 ("kafka", "kafka_consume_store_records_per_s")]:
    side = {s: [json.load(open(f)).get(key) for f in sorted(glob.glob(f"{d}/{grp}-{s}-*.json"))] for s in ("before", "after")}
    if not side["before"] or None in side["before"] + side["after"]:
        print(f"{key}: not measured"); continue
    r = statistics.median(side["after"]) / statistics.median(side["before"])
    print(f"{key}: before {[round(x) for x in side['before']]} after {[round(x) for x in side['after']]} ratio {r:.3f}")
PY
