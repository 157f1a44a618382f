#!/usr/bin/env bash
# Kafka throughput through the local broker, broker included (a benchmark, not a test):
#   1. produce alone            iotpipe simulate --output kafka --rate max
#   2. consume-and-store alone  iotpipe process --source kafka (topic already full)
#   3. both together            iotpipe run --source kafka --rate max (producer + processor)
#   4. latency                  real-time producer at $RATE/s: p50/p99 of processing time - event time
# Usage: bench/kafka_throughput.sh [path/to/iotpipe]   (N=records, RATE=events/s for step 4)
# Needs a broker: scripts/kafka start (or IOTPIPE_KAFKA_BROKERS).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build/iotpipe}"
brokers="${IOTPIPE_KAFKA_BROKERS:-127.0.0.1:9092}"
n="${N:-2000000}"
rate="${RATE:-100000}"
parts="${PARTITIONS:-6}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
t="bench-$$-$(date +%s)"
idle=3
secs() { python3 -c "import time; print(time.monotonic())"; }
json() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

echo "records: $n, sensors: 1000, partitions: $parts, brokers: $brokers"
# 1. produce alone
"$bin" simulate --output kafka --brokers "$brokers" --topic "$t" --partitions "$parts" --sensors 1000 \
  --rate max --events "$n" 2>"$tmp/produce.log"
grep -o 'in [0-9.]* s = [0-9.kM]* rec/s; delivered [0-9]*, failed [0-9]*' "$tmp/produce.log" | sed 's/^/produce alone: /'

# 2. consume and store alone (the idle wait at the end is subtracted)
"$bin" process --source kafka --brokers "$brokers" --topic "$t" --group "g-$t" --data-dir "$tmp/d2" \
  --exit-when-idle "$idle" --quiet --no-checkpoint --summary-json "$tmp/c.json" 2>"$tmp/consume.log" || true
el="$(json "$tmp/c.json" elapsed_s)"; sent="$(json "$tmp/c.json" sent)"
python3 -c "import sys; e=float(sys.argv[1])-$idle; print(f'consume-and-store alone: {int(sys.argv[2])} records in {e:.2f} s = {int(sys.argv[2])/e:,.0f} rec/s')" "$el" "$sent"

# 3. both together: simulator -> broker -> processor in one command
"$bin" run --source kafka --brokers "$brokers" --topic "$t-both" --group "g-$t-both" --partitions "$parts" \
  --data-dir "$tmp/d3" --sensors 1000 --rate max --events "$n" --exit-when-idle "$idle" --quiet --no-checkpoint \
  --summary-json "$tmp/b.json" 2>"$tmp/both.log" || true
el="$(json "$tmp/b.json" elapsed_s)"; sent="$(json "$tmp/b.json" sent)"
python3 -c "import sys; e=float(sys.argv[1])-$idle; print(f'produce + consume-and-store together: {int(sys.argv[2])} records in {e:.2f} s = {int(sys.argv[2])/e:,.0f} rec/s')" "$el" "$sent"

# 4. latency at a steady real-time rate (event time = wall clock when produced)
"$bin" run --source kafka --brokers "$brokers" --topic "$t-lat" --group "g-$t-lat" --partitions "$parts" \
  --data-dir "$tmp/d4" --sensors 1000 --rate "$rate" --duration 20s --exit-when-idle "$idle" --quiet \
  --no-checkpoint 2>"$tmp/lat.log" || true
"$bin" query --data-dir "$tmp/d4" --format csv \
  "select count(*) as n,
          round(quantile_cont(epoch_ms(processing_timestamp) - epoch_ms(timestamp), 0.5)) as p50_ms,
          round(quantile_cont(epoch_ms(processing_timestamp) - epoch_ms(timestamp), 0.99)) as p99_ms
   from sensor_readings" | sed "s/^/latency at $rate ev\/s (processing - event time; files are durable <= 1 s later): /"
