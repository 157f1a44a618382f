#!/usr/bin/env bash
# HTTP ingestion throughput on loopback: `iotpipe process --source http` written to by C concurrent
# curl clients, each POSTing R bodies of L line protocol lines (precision s, 1 field a line) to the
# InfluxDB v2 write path and waiting for each 204 (= durable) before the next.
# Usage: bench/http_ingest.sh build/iotpipe [clients=1] [requests=10] [lines=5000]
set -euo pipefail
BIN=${1:?usage: $0 path/to/iotpipe [clients] [requests] [lines]}
C=${2:-1} R=${3:-10} L=${4:-5000}
DIR=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
"$BIN" process --source http --http 127.0.0.1:0 --data-dir "$DIR/data" --no-checkpoint --quiet 2>"$DIR/log" &
PID=$!
for _ in $(seq 100); do grep -q 'dashboard: http' "$DIR/log" && break; sleep 0.1; done
PORT=$(sed -n 's|.*dashboard: http://[^ ]*:\([0-9]*\)/.*|\1|p' "$DIR/log" | head -1)
for c in $(seq "$C"); do
  for r in $(seq "$R"); do
    awk -v c="$c" -v r="$r" -v n="$L" 'BEGIN { for (i = 0; i < n; i++)
      printf "bench,client=c%d v=%d %d\n", c, i, 1764770000 + r * n + i }' >"$DIR/body-$c-$r"
  done
done
start=$(date +%s.%N)
for c in $(seq "$C"); do
  (for r in $(seq "$R"); do
     code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$DIR/body-$c-$r" \
       -H 'Content-Type: text/plain' "http://127.0.0.1:$PORT/api/v2/write?org=o&bucket=b&precision=s")
     [ "$code" = 204 ] || echo "client $c request $r: HTTP $code" >&2
   done) &
done
wait $(jobs -p | grep -v "^$PID$")
end=$(date +%s.%N)
records=$((C * R * L))
stored=$("$BIN" query --format csv --data-dir "$DIR/data" "select count(*) from sensor_readings" | tail -1)
echo "clients $C, requests $R each, $L lines a body: $records records in $(echo "$end - $start" | bc) s =" \
  "$(echo "$records / ($end - $start)" | bc) records/s (stored $stored)"
