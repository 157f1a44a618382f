#!/usr/bin/env bash
# Side-by-side comparison with a Python pipeline of the original design (same machine, same run, same
# detector type). Installs its own pinned PyPI packages into .deps/pyvenv-peer on first use (the LSTM
# mode needs PyTorch: a large download, PyPI's Linux wheel brings the CUDA libraries; CPU is used).
#   bench/python_peer/run.sh [SENSORS] [EVENTS] [baseline|lstm|both]
# baseline: Python's streaming z-score vs iotpipe's baseline detector (SENSORS, EVENTS; iotpipe 20x EVENTS,
#           or CPP_EVENTS_FACTOR x EVENTS: CPP_EVENTS_FACTOR=1 runs both sides on the same event count).
# lstm:     a PyTorch LSTM autoencoder (W=32, H=32) scored per window vs iotpipe --detector lstm with a
#           model trained here on a small simulated history (LSTM_SENSORS=100, LSTM_EVENTS=20000 for
#           Python; iotpipe 50x LSTM_EVENTS, or CPP_LSTM_FACTOR x). Python runs PyTorch on 1 thread (PEER_TORCH_THREADS):
#           a batch-1 window is too small to split, and the producer thread needs the other core.
# ROUNDS (default 3): the two sides run alternately this many times (Python, iotpipe, Python, ...), so
# a slow spell of the machine hits both; the ratio is that of the two medians, with each round's too.
# Prints one JSON line per detector type with both rates and the ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.deps/pyvenv-peer"
mode="${3:-baseline}"
req="$root/bench/python_peer/requirements.txt"
stamp="$(sha256sum "$req" | cut -c1-16)"
if [[ ! -f "$venv/.ok-$stamp" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >/dev/null
  touch "$venv/.ok-$stamp"
fi
sensors="${1:-1000}"
events="${2:-300000}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
bin="${IOTPIPE:-$root/build/iotpipe}"
rounds="${ROUNDS:-3}"
compare() {  # $1 detector type, $2 file of Python JSON lines, $3 file of iotpipe JSON lines (one per round)
  "$venv/bin/python" - "$1" "$2" "$3" <<'PY'
import json, statistics, sys
det = sys.argv[1]
py = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
cpp = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
pr, cr = [p["events_per_s"] for p in py], [c["events_per_s"] for c in cpp]
print(json.dumps({"detector": det, "rounds": len(pr),
                  "python_events_per_s": statistics.median(pr), "iotpipe_events_per_s": statistics.median(cr),
                  "ratio": statistics.median(cr) / statistics.median(pr),
                  "ratio_per_round": [round(c / p, 1) for p, c in zip(pr, cr)],
                  "python_per_round": [round(x) for x in pr], "iotpipe_per_round": [round(x) for x in cr],
                  "python": py[-1], "iotpipe_events": cpp[-1]["sent"], "iotpipe_detector": cpp[-1].get("detector")}))
PY
}
if [[ "$mode" == baseline || "$mode" == both ]]; then
  for _ in $(seq "$rounds"); do
    rm -rf "$out/py" "$out/cpp"
    "$venv/bin/python" "$root/bench/python_peer/peer.py" "$sensors" "$events" "$out/py" baseline >>"$out/py.jsonl"
    "$bin" run --sensors "$sensors" --events "$((events * ${CPP_EVENTS_FACTOR:-20}))" --rate max --quiet --http off \
      --no-checkpoint --data-dir "$out/cpp" --summary-json - 2>/dev/null | tr -d '\n' >>"$out/cpp.jsonl"
    echo >>"$out/cpp.jsonl"
  done
  compare baseline "$out/py.jsonl" "$out/cpp.jsonl"
fi
if [[ "$mode" == lstm || "$mode" == both ]]; then
  ls="${LSTM_SENSORS:-100}"
  le="${LSTM_EVENTS:-20000}"
  # A model for iotpipe: a small simulated history, one short training run (the cost of scoring does
  # not depend on the weights; Python's model has the same shape with seeded random weights).
  "$bin" run --sensors "$ls" --events 200000 --rate max --quiet --http off --no-checkpoint \
    --data-dir "$out/hist" >/dev/null 2>&1
  # The history spans the last few minutes of sensor time (--rate max ends at now): train on an explicit
  # span around it (--since 7d leaves the newest day for validation, which would hold all of it).
  "$bin" train --data-dir "$out/hist" --model-dir "$out/models" --from "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" \
    --to "$(date -u -d '+10 minutes' +%Y-%m-%dT%H:%M:%SZ)" --window 32 --hidden 32 --epochs 1 \
    --max-windows 2000 --seed 1 --threads 1 --torch-threads 1 --promote production >/dev/null 2>&1
  for _ in $(seq "$rounds"); do
    rm -rf "$out/pyl" "$out/cppl"
    PEER_TORCH_THREADS="${PEER_TORCH_THREADS:-1}" "$venv/bin/python" "$root/bench/python_peer/peer.py" \
      "$ls" "$le" "$out/pyl" lstm 2>/dev/null >>"$out/pyl.jsonl"
    "$bin" run --sensors "$ls" --events "$((le * ${CPP_LSTM_FACTOR:-50}))" --rate max --quiet --http off --no-checkpoint \
      --detector lstm --model-dir "$out/models" --model production --data-dir "$out/cppl" --summary-json - 2>/dev/null |
      tr -d '\n' >>"$out/cppl.jsonl"
    echo >>"$out/cppl.jsonl"
  done
  compare lstm "$out/pyl.jsonl" "$out/cppl.jsonl"
fi
