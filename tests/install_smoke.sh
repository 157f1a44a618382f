#!/usr/bin/env bash
# End to end: `cmake --install` into a temporary prefix, move the prefix elsewhere (nothing may point back
# into the build or source tree), then run the installed binary from another directory: `run` with the
# dashboard on a free port must serve the dashboard HTML, uPlot and /api/health, and stop on SIGINT; `train`
# must load libiotpipe_torch.so from the prefix.
#   tests/install_smoke.sh BUILD_DIR
set -euo pipefail
build="$(cd "${1:?usage: install_smoke.sh BUILD_DIR}" && pwd)"
tmp="$(mktemp -d /tmp/iotpipe-install.XXXXXX)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install_smoke: FAIL: $*" >&2; [[ -f "$tmp/run.log" ]] && tail -n 30 "$tmp/run.log" >&2; exit 1; }

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log" >&2; fail "cmake --install"; }
mv "$tmp/prefix" "$tmp/moved"  # relocatable: found relative to the binary, not where it was installed
p="$tmp/moved"
for f in bin/iotpipe lib/libiotpipe_torch.so lib/libduckdb.so share/iotpipe/web/index.html share/iotpipe/web/app.js \
         share/iotpipe/web/style.css share/iotpipe/uplot/uPlot.iife.min.js; do
  [[ -e "$p/$f" ]] || fail "$f not installed"
done
ldd "$p/bin/iotpipe" >"$tmp/ldd.txt"
grep -Eq "libduckdb\.so => $p/(bin/\.\./)?lib/libduckdb\.so" "$tmp/ldd.txt" || { cat "$tmp/ldd.txt" >&2; fail "libduckdb.so not taken from <prefix>/lib"; }
! grep -q "not found" "$tmp/ldd.txt" || { cat "$tmp/ldd.txt" >&2; fail "unresolved library"; }
! ldd "$p/lib/libiotpipe_torch.so" | grep -q "not found" || fail "libiotpipe_torch.so has an unresolved library"

mkdir -p "$tmp/cwd"
cd "$tmp/cwd"
# Nothing from the build or test environment that could lead the binary to the source tree.
env -u IOTPIPE_SOURCE_DIR -u IOTPIPE_WEB_DIR -u IOTPIPE_TORCH_LIB LD_LIBRARY_PATH= \
  "$p/bin/iotpipe" run --sensors 5 --data-dir "$tmp/cwd/data" --http 127.0.0.1:0 --no-checkpoint >"$tmp/run.log" 2>&1 &
pid=$!
url=""
for _ in $(seq 1 200); do
  url="$(grep -o 'dashboard: http://[0-9.]*:[0-9]*/' "$tmp/run.log" | head -n1 | sed 's/^dashboard: //')" || true
  [[ -n "$url" ]] && break
  kill -0 "$pid" 2>/dev/null || fail "iotpipe run exited early"
  sleep 0.1
done
[[ -n "$url" ]] || fail "no dashboard URL printed"
grep -q "not found" "$tmp/run.log" && fail "the run could not find its files"
curl -sf "$url" -o "$tmp/index.html" || fail "GET / failed"
cmp -s "$tmp/index.html" "$p/share/iotpipe/web/index.html" || fail "GET / is not the installed dashboard"
grep -qi "<html" "$tmp/index.html" || fail "GET / is not HTML"
curl -sf "${url}app.js" -o /dev/null || fail "GET /app.js failed"
curl -sf "${url}vendor/uPlot.iife.min.js" -o /dev/null || fail "GET /vendor/uPlot.iife.min.js failed"
curl -sf "${url}api/health" -o "$tmp/health.json" || fail "GET /api/health failed"
grep -q '"status":"ok"' "$tmp/health.json" || { cat "$tmp/health.json" >&2; fail "/api/health is not ok"; }
kill -INT "$pid"
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "iotpipe run did not stop on SIGINT"
rc=0
wait "$pid" || rc=$?
pid=""
[[ $rc -eq 0 ]] || fail "iotpipe run exited with $rc after SIGINT"
# Training dlopens libiotpipe_torch.so from <prefix>/lib (before it reads data, so a short span is enough).
env -u IOTPIPE_TORCH_LIB LD_DEBUG=files "$p/bin/iotpipe" train --data-dir "$tmp/cwd/data" --model-dir "$tmp/cwd/models" \
  --epochs 1 >/dev/null 2>"$tmp/train.log" || true
grep -q "file=$p/lib/libiotpipe_torch.so" "$tmp/train.log" || fail "train did not load <prefix>/lib/libiotpipe_torch.so"
echo "install_smoke: ok ($url, prefix moved to $p)"
