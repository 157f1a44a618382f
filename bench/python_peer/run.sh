#!/usr/bin/env bash
# Side-by-side comparison with a Python pipeline of the original design (same machine, same run, same
# detector type). Installs its own pinned PyPI packages into .deps/pyvenv-peer on first use.
#   bench/python_peer/run.sh [SENSORS] [EVENTS]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/.deps/pyvenv-peer"
if [[ ! -f "$venv/.ok" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/bench/python_peer/requirements.txt" >/dev/null
  touch "$venv/.ok"
fi
sensors="${1:-1000}"
events="${2:-300000}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
py=$("$venv/bin/python" "$root/bench/python_peer/peer.py" "$sensors" "$events" "$out/py")
bin="${IOTPIPE:-$root/build/iotpipe}"
cpp=$("$bin" run --sensors "$sensors" --events "$((events * 20))" --rate max --quiet --http off --no-checkpoint \
      --data-dir "$out/cpp" --summary-json - 2>/dev/null)
"$venv/bin/python" - "$py" "$cpp" <<'PY'
import json, sys
py, cpp = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"python_events_per_s": py["events_per_s"], "iotpipe_events_per_s": cpp["events_per_s"],
                  "ratio": cpp["events_per_s"] / py["events_per_s"], "python": py, "iotpipe_events": cpp["sent"]}))
PY
