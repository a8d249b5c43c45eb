#!/usr/bin/env bash
# Soak: steady mixed load against runq for N minutes (default 10), RSS sampled over time.
#
#   bash bench/soak.sh [MINUTES]
#
# Builds runq (Release, in build-release/) unless RUNQ_BIN names a binary, starts it on
# loopback with its own database in a temp dir and a short retention (so the database
# stays bounded), runs bench/soak_load.py (submits, status polls, result fetches, SSE
# streams) and prints a table of time vs RSS and jobs done, then a verdict on growth
# (average RSS of the last quarter against the first). Exit status 0 when flat and
# error-free. Not part of the test suite.
#
# Environment: RUNQ_BIN, SOAK_INTERVAL (seconds between samples, default 5),
# SOAK_RETENTION (default 30), SOAK_ARGS (more `runq serve` flags), PYTHON (python3).
set -euo pipefail

MINUTES="${1:-10}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"

if [[ -z "${RUNQ_BIN:-}" ]]; then
  cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  nice -n 10 cmake --build "$ROOT/build-release" -j2 --target runq
  RUNQ_BIN="$ROOT/build-release/runq"
fi

WORK="$(mktemp -d /tmp/runq-soak.XXXXXX)"
LOG="$WORK/runq.log"
"$RUNQ_BIN" serve --host 127.0.0.1 --port 0 --db "$WORK/soak.db" \
  --retention "${SOAK_RETENTION:-30}" --max-concurrent 8 ${SOAK_ARGS:-} >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  echo "server log and database: $WORK" >&2
}
trap cleanup EXIT

URL=""
for _ in $(seq 100); do
  URL="$(grep -o 'listening on http://[^ ]*' "$LOG" | head -1 | cut -d' ' -f3 || true)"
  [[ -n "$URL" ]] && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$URL" ]] || { echo "runq did not start" >&2; cat "$LOG" >&2; exit 1; }
echo "runq pid $PID at $URL ($RUNQ_BIN), $MINUTES min, db $WORK/soak.db" >&2

set +e
"$PYTHON" "$HERE/soak_load.py" --url "$URL" --pid "$PID" --minutes "$MINUTES" \
  --interval "${SOAK_INTERVAL:-5}"
RC=$?
set -e
DB_KIB=$(du -ck "$WORK"/soak.db* | tail -1 | cut -f1)
echo "database files at the end: ${DB_KIB} KiB"
exit "$RC"
