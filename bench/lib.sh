# Shared by the benchmark scripts (sourced after WORK, RUNQ, PIDS and log() are set).

# start_runq NAME CPUS [serve flags...]: runq on loopback, pinned to CPUS ("all":
# unpinned), its output in $WORK/NAME.log; waits for its "listening on" line and sets
# RQ_PID and RQ_URL.
start_runq() {
  local name="$1" cpus="$2"; shift 2
  local lg="$WORK/$name.log" pin=()
  [[ "$cpus" != all ]] && pin=(taskset -c "$cpus")
  "${pin[@]}" "$RUNQ" serve --host 127.0.0.1 --port 0 "$@" >"$lg" 2>&1 &
  RQ_PID=$!; PIDS+=("$RQ_PID")
  RQ_URL=""
  local i
  for i in $(seq 600); do
    RQ_URL="$(grep -so 'listening on http://[^ ]*' "$lg" | head -1 | cut -d' ' -f3 || true)"
    [[ -n "$RQ_URL" ]] && break
    kill -0 "$RQ_PID" 2>/dev/null || { cat "$lg" >&2; exit 1; }
    sleep 0.05
  done
  [[ -n "$RQ_URL" ]] || { echo "runq ($name) did not start" >&2; cat "$lg" >&2; exit 1; }
  log "runq $name: pid $RQ_PID at $RQ_URL (cpus $cpus) $*"
}
