#!/usr/bin/env bash
# runq benchmark suite (issue 6). Run as root on Debian 12 from a checkout:
#
#   bash bench/run.sh                 # full run (about 3-4 minutes plus the build)
#   QUICK=1 bash bench/run.sh         # smoke run: short wrk runs, 10^4 rows, fewer samples
#
# Installs wrk, nginx-light, FastAPI/uvicorn, gnuplot and valgrind from Debian, builds runq
# Release in build-release/, starts everything on loopback with free ports, servers pinned
# to core 0 and the load generator to core 1 (taskset), and measures:
#   1. status GET throughput and p50/p99 (wrk -t1 -c50, keep-alive) of one finished job,
#      runq (--io-threads 1 --access-log off) beside nginx (one worker, access_log off)
#      at its best: the same JSON from memory (`return 200`, the baseline) and from a
#      cached file; and runq again with its access log on;
#   2. the same against a FastAPI app on uvicorn (one worker) answering it from a dict;
#   (runq runs with --access-log off throughout, like nginx and uvicorn here, except in
#   the one GET row and the callgrind count that show the access log's cost)
#   3. submit throughput and p99 at 50 connections (each 202 durable: counted in the
#      database after the server stops), and end-to-end jobs completed per second (echo);
#   4. dispatch latency (started_at - created_at) on an idle server;
#   5. scale: 10^6 jobs in the database: start-up time (default flags, after a clean stop,
#      and with --check-db full), status GET throughput, RSS; and the
#      RSS cost of 10^4 idle keep-alive connections;
#   6. cost: instructions per status GET under valgrind --tool=callgrind.
# Prints a markdown table, writes bench/results/<UTC timestamp>.json (and latest.json) and
# a gnuplot chart bench/results/<UTC timestamp>.png (and latest.png).
#
# Environment: DURATION (wrk seconds, default 10; QUICK default 2), QUICK=1, ROWS (jobs in
# the scale test, default 10^6; QUICK 10^4), DISPATCH_N (200), CALLGRIND_K (2000),
# IDLE_CONNS (10000), SKIP_INSTALL=1 (no apt-get), SKIP_BUILD=1 (use RUNQ_BIN or
# build-release/runq), RUNQ_COMMIT (label for the binary, default git describe --dirty),
# KEEP=1 (keep the temp dir), SERVER_CPU (0), CLIENT_CPU (1).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export BENCH_DIR="$HERE"
QUICK="${QUICK:-0}"
if [[ "$QUICK" == 1 ]]; then
  DURATION="${DURATION:-2}"; ROWS="${ROWS:-10000}"; DISPATCH_N="${DISPATCH_N:-50}"
  CALLGRIND_K="${CALLGRIND_K:-300}"; IDLE_CONNS="${IDLE_CONNS:-2000}"; WARMUP=1
  ROUNDS="${ROUNDS:-1}"
else
  DURATION="${DURATION:-10}"; ROWS="${ROWS:-1000000}"; DISPATCH_N="${DISPATCH_N:-200}"
  CALLGRIND_K="${CALLGRIND_K:-2000}"; IDLE_CONNS="${IDLE_CONNS:-10000}"; WARMUP=2
  ROUNDS="${ROUNDS:-3}"
fi
SCPU="${SERVER_CPU:-0}"
CCPU="${CLIENT_CPU:-1}"
PY=/usr/bin/python3            # Debian's python (FastAPI and uvicorn are Debian packages)

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# ---- install and build ---------------------------------------------------------------
if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  bash "$ROOT/scripts/install-deps.sh"          # runs apt-get update first
  $SUDO apt-get install -y --no-install-recommends \
    wrk nginx-light python3-fastapi python3-uvicorn gnuplot-nox valgrind \
    util-linux procps python3
fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DRUNQ_BUILD_TESTS=OFF >/dev/null
  nice -n 10 cmake --build "$ROOT/build-release" -j"$(nproc)" --target runq
fi
RUNQ="${RUNQ_BIN:-$ROOT/build-release/runq}"
[[ -x "$RUNQ" ]] || { echo "no runq binary at $RUNQ" >&2; exit 1; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# Room for 10^4 idle connections (the server and the client inherit it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

# ---- scratch space and cleanup --------------------------------------------------------
WORK="$(mktemp -d /tmp/runq-bench.XXXXXX)"
chmod 755 "$WORK"                 # nginx's worker (user nobody) reads the static file
RES="$WORK/res"; mkdir -p "$RES"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
vmrss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
drop_pid() {  # stop one process we started (SIGTERM, wait) and forget it
  local p="$1" keep=() q
  kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  for q in "${PIDS[@]}"; do [[ "$q" != "$p" ]] && keep+=("$q"); done
  PIDS=("${keep[@]}")
}
wait_http() {  # URL: until it answers
  local i
  for i in $(seq 300); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.05
  done
  echo "no answer from $1" >&2; return 1
}

source "$HERE/lib.sh"  # start_runq

# run_wrk NAME URL [script]: warm-up (unless NO_WARMUP=1), then the measured run; result
# in $RES/NAME.json.
run_wrk() {
  local name="$1" url="$2" script="${3:-$HERE/wrk_get.lua}"
  [[ "${NO_WARMUP:-0}" == 1 ]] || \
    taskset -c "$CCPU" wrk -t1 -c50 -d"${WARMUP}s" -s "$script" "$url" >/dev/null
  taskset -c "$CCPU" wrk -t1 -c50 -d"${DURATION}s" --latency -s "$script" "$url" >"$WORK/wrk-$name.txt"
  grep '^WRKJSON ' "$WORK/wrk-$name.txt" | cut -d' ' -f2- >"$RES/$name.json"
  log "wrk $name: $(cat "$RES/$name.json")"
}
# run_rounds NAME=URL...: $ROUNDS rounds, each one wrk run per server in turn (the servers
# are all up, idle ones cost nothing), so a change in the machine's load hits all of them;
# $RES/NAME.json is the round with the median req/s, plus every round's req/s.
run_rounds() {
  local r pair
  for r in $(seq "$ROUNDS"); do
    for pair in "$@"; do
      if [[ "$r" == 1 ]]; then run_wrk "${pair%%=*}_r$r" "${pair#*=}"
      else NO_WARMUP=1 run_wrk "${pair%%=*}_r$r" "${pair#*=}"; fi
    done
  done
  for pair in "$@"; do
    "$PY" - "$RES" "${pair%%=*}" "$ROUNDS" <<'PYEOF'
import json, os, sys
res, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = []
for r in range(1, n + 1):
    p = os.path.join(res, f"{name}_r{r}.json")
    runs.append(json.load(open(p)))
    os.rename(p, p + ".round")
best = sorted(runs, key=lambda d: d["rps"])[(n - 1) // 2]
best = dict(best, rounds_rps=[d["rps"] for d in runs])
json.dump(best, open(os.path.join(res, f"{name}.json"), "w"))
PYEOF
    log "median of $ROUNDS rounds ${pair%%=*}: $(cat "$RES/${pair%%=*}.json")"
  done
}
stats() { curl -sf "$1/stats"; }
jq_py() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- the machine ----------------------------------------------------------------------
{
  echo "{"
  echo "\"started_utc\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "\"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "\"cpu_model\": \"$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)\","
  echo "\"cpus\": $(nproc),"
  echo "\"mem_total_mib\": $(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo),"
  echo "\"kernel\": \"$(uname -r)\","
  echo "\"runq_version\": \"$("$RUNQ" --version 2>&1 | head -1)\","
  echo "\"git_commit\": \"${RUNQ_COMMIT:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}\","
  echo "\"runq_bin\": \"$RUNQ\","
  echo "\"nginx_version\": \"$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')\","
  echo "\"uvicorn_version\": \"$("$PY" -c 'import uvicorn; print(uvicorn.__version__)')\","
  echo "\"fastapi_version\": \"$("$PY" -c 'import fastapi; print(fastapi.__version__)')\","
  echo "\"duration_s\": $DURATION, \"rounds\": $ROUNDS, \"quick\": $QUICK, \"rows\": $ROWS,"
  echo "\"dispatch_n\": $DISPATCH_N, \"callgrind_k\": $CALLGRIND_K, \"idle_conns\": $IDLE_CONNS,"
  echo "\"server_cpu\": \"$SCPU\", \"client_cpu\": \"$CCPU\""
  echo "}"
} >"$RES/meta.json"
log "machine load at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- a seed database: one finished job ------------------------------------------------
SEED="$WORK/seed.db"
start_runq seed "$SCPU" --db "$SEED"
JOB="$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"prompt":"bench"}' \
        "$RQ_URL/api/v1/runs" | jq_py 'd["job_id"]')"
curl -sf "$RQ_URL/api/v1/runs/$JOB?wait=10" >/dev/null
drop_pid "$RQ_PID"
STATUS_PATH="/api/v1/runs/$JOB"
log "seed job $JOB"

# ---- 1 and 2: status GET, runq vs nginx vs FastAPI --------------------------------------
cp "$SEED" "$WORK/get.db"
start_runq get "$SCPU" --db "$WORK/get.db" --io-threads 1 --max-connections $((IDLE_CONNS + 1000)) \
  --access-log off
GET_PID=$RQ_PID; GET_URL=$RQ_URL
# the same with its access log on (runq's default; nginx and uvicorn run without one)
cp "$SEED" "$WORK/get_log.db"
start_runq get_log "$SCPU" --db "$WORK/get_log.db" --io-threads 1
GETLOG_PID=$RQ_PID; GETLOG_URL=$RQ_URL
curl -sf -o "$WORK/body.json" "$GET_URL$STATUS_PATH"
log "status body: $(wc -c <"$WORK/body.json") bytes"

# nginx-light, one worker, the same body from memory (its ceiling, the baseline) and as a
# static file at the same path (bench/nginx.conf.tmpl)
NGX="$WORK/nginx"; mkdir -p "$NGX/www/api/v1/runs"
cp "$WORK/body.json" "$NGX/www$STATUS_PATH"
chmod -R a+rX "$NGX"
NPORT="$(free_port)"; NRPORT="$(free_port)"
"$PY" - "$HERE/nginx.conf.tmpl" "$NGX/nginx.conf" "$WORK/body.json" <<PYEOF
import sys
body = open(sys.argv[3]).read()
assert "'" not in body and "\$" not in body and "\\\\" not in body, "body needs nginx quoting"
conf = open(sys.argv[1]).read()
for k, v in {"@PORT@": "$NPORT", "@RPORT@": "$NRPORT", "@ROOT@": "$NGX/www",
             "@PREFIX@": "$NGX", "@PATH@": "$STATUS_PATH", "@BODY@": body}.items():
    conf = conf.replace(k, v)
open(sys.argv[2], "w").write(conf)
PYEOF
taskset -c "$SCPU" "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" 2>"$NGX/stderr.log" &
NGX_PID=$!; PIDS+=("$NGX_PID")
for port in "$NPORT" "$NRPORT"; do
  wait_http "http://127.0.0.1:$port$STATUS_PATH"
  cmp -s "$WORK/body.json" <(curl -sf "http://127.0.0.1:$port$STATUS_PATH") \
    || { echo "nginx on $port serves a different body" >&2; exit 1; }
done

# FastAPI on uvicorn, one worker, the same JSON from a dict
FPORT="$(free_port)"
( cd "$HERE" && BENCH_BODY_FILE="$WORK/body.json" exec taskset -c "$SCPU" "$PY" -m uvicorn \
    fastapi_app:app --host 127.0.0.1 --port "$FPORT" --workers 1 --log-level warning \
    --no-access-log ) >"$WORK/uvicorn.log" 2>&1 &
FA_PID=$!; PIDS+=("$FA_PID")
wait_http "http://127.0.0.1:$FPORT$STATUS_PATH"
"$PY" - "$WORK/body.json" "http://127.0.0.1:$FPORT$STATUS_PATH" <<'PYEOF' || { echo "FastAPI answers different JSON" >&2; exit 1; }
import json, sys, urllib.request
a = json.load(open(sys.argv[1])); b = json.load(urllib.request.urlopen(sys.argv[2]))
sys.exit(0 if a == b else 1)
PYEOF
run_rounds "runq_get=$GET_URL$STATUS_PATH" "nginx_get=http://127.0.0.1:$NRPORT$STATUS_PATH" \
  "nginx_file_get=http://127.0.0.1:$NPORT$STATUS_PATH" \
  "fastapi_get=http://127.0.0.1:$FPORT$STATUS_PATH" "runq_get_log=$GETLOG_URL$STATUS_PATH"
echo "{\"rss_kib\": $(vmrss_kib "$GET_PID")}" >"$RES/runq_get_rss.json"
drop_pid "$NGX_PID"
drop_pid "$FA_PID"
drop_pid "$GETLOG_PID"

# ---- 5b: 10^4 idle keep-alive connections (on the GET server) ---------------------------
log "opening $IDLE_CONNS idle keep-alive connections"
taskset -c "$CCPU" "$PY" "$HERE/idle_conns.py" "$GET_URL" "$STATUS_PATH" "$GET_PID" "$IDLE_CONNS" \
  >"$RES/idle_conns.json"
log "idle: $(cat "$RES/idle_conns.json")"
drop_pid "$GET_PID"

# ---- 3: submit throughput, durability, end-to-end --------------------------------------
start_runq submit "$SCPU" --db "$WORK/submit.db" --access-log off
SUB_PID=$RQ_PID; SUB_URL=$RQ_URL
taskset -c "$CCPU" wrk -t1 -c50 -d"${WARMUP}s" -s "$HERE/wrk_post.lua" "$SUB_URL/api/v1/runs" >/dev/null
# wait for the warm-up's jobs to drain so the measured window starts idle
for _ in $(seq 1200); do
  q="$(stats "$SUB_URL" | jq_py 'd["by_status"].get("queued",0)+d["by_status"].get("running",0)')"
  [[ "$q" == 0 ]] && break; sleep 0.05
done
BEFORE="$(stats "$SUB_URL")"
T0="$(date +%s.%N)"
taskset -c "$CCPU" wrk -t1 -c50 -d"${DURATION}s" --latency -s "$HERE/wrk_post.lua" \
  "$SUB_URL/api/v1/runs" >"$WORK/wrk-submit.txt"
T1="$(date +%s.%N)"
AFTER_WRK="$(stats "$SUB_URL")"
grep '^WRKJSON ' "$WORK/wrk-submit.txt" | cut -d' ' -f2- >"$RES/submit.json"
log "wrk submit: $(cat "$RES/submit.json")"
# The drain's end is the last job's completed_at, read from the database afterwards: a
# /stats counts every job (7 ms with 7*10^4 of them), so polling it often would take its
# share of the server's core from the jobs being measured.
for _ in $(seq 1500); do
  q="$(stats "$SUB_URL" | jq_py 'd["by_status"].get("queued",0)+d["by_status"].get("running",0)')"
  [[ "$q" == 0 ]] && break; sleep 0.2
done
AFTER="$(stats "$SUB_URL")"
echo "{\"rss_kib\": $(vmrss_kib "$SUB_PID")}" >"$RES/submit_rss.json"
drop_pid "$SUB_PID"
# durable: every acknowledged job is in the database once the server is gone
read -r ROWS_IN_DB T2 < <("$PY" -c 'import sqlite3,sys; n, last = sqlite3.connect(sys.argv[1]).execute("select count(*), max(completed_at) from jobs").fetchone(); print(n, last / 1e6)' "$WORK/submit.db")
"$PY" - "$BEFORE" "$AFTER_WRK" "$AFTER" "$T0" "$T1" "$T2" "$ROWS_IN_DB" "$RES/submit.json" \
  >"$RES/e2e.json" <<'PYEOF'
import json, sys
b, aw, a = (json.loads(x) for x in sys.argv[1:4])
t0, t1, t2 = (float(x) for x in sys.argv[4:7])
rows = int(sys.argv[7]); w = json.load(open(sys.argv[8]))
s = lambda d: d["by_status"].get("succeeded", 0)
acked = w["requests"] - w["err_status"]
done = s(a) - s(b)
print(json.dumps({
    "acked": acked, "submitted_seen": a["total_jobs"] - b["total_jobs"],
    "rows_in_db_after_stop": rows, "rows_before": b["total_jobs"],
    "durable_ok": rows - b["total_jobs"] >= acked,
    "succeeded": done, "failed": a["by_status"].get("failed", 0) - b["by_status"].get("failed", 0),
    "drain_s": round(t2 - t0, 3), "e2e_jobs_per_s": round(done / (t2 - t0), 1),
    "completed_during_wrk_per_s": round((s(aw) - s(b)) / (t1 - t0), 1),
}))
PYEOF
log "e2e: $(cat "$RES/e2e.json")"

# diagnostic: the submit path alone (jobs held by the echo agent's sleep, so workers do
# not claim and finish jobs in the measured window)
# Every job stays queued: room for all of them (the default --max-queued would answer 429).
start_runq submit_hold "$SCPU" --db "$WORK/submit_hold.db" --drain-timeout 0 --access-log off \
  --max-queued 10000000
run_wrk submit_hold "$RQ_URL/api/v1/runs" "$HERE/wrk_post_hold.lua"
drop_pid "$RQ_PID"

# ---- 4: dispatch latency on an idle server ---------------------------------------------
start_runq dispatch "$SCPU" --db "$WORK/dispatch.db"
taskset -c "$CCPU" "$PY" "$HERE/dispatch.py" "$RQ_URL" "$DISPATCH_N" >"$RES/dispatch.json"
log "dispatch: $(cat "$RES/dispatch.json")"
drop_pid "$RQ_PID"

# ---- 5: scale, $ROWS jobs ----------------------------------------------------------------
cp "$SEED" "$WORK/big.db"
log "filling big.db with $ROWS jobs"
nice -n 5 "$PY" "$HERE/fill_db.py" "$WORK/big.db" "$ROWS"
echo "{\"db_bytes\": $(du -cb "$WORK"/big.db* | tail -1 | cut -f1)}" >"$RES/big_db.json"
taskset -c "$SCPU" "$PY" "$HERE/startup.py" 5 -- "$RUNQ" serve --host 127.0.0.1 --port 0 \
  --db "$WORK/big.db" --io-threads 1 >"$RES/startup_big.json"
# the default (--check-db after-crash) skips quick_check after a clean stop (startup.py
# stops each start cleanly); --check-db full reads the whole file on every start
taskset -c "$SCPU" "$PY" "$HERE/startup.py" 5 -- "$RUNQ" serve --host 127.0.0.1 --port 0 \
  --db "$WORK/big.db" --io-threads 1 --check-db full >"$RES/startup_big_full.json"
taskset -c "$SCPU" "$PY" "$HERE/startup.py" 5 -- "$RUNQ" serve --host 127.0.0.1 --port 0 \
  --db "$WORK/get.db" --io-threads 1 >"$RES/startup_small.json"
log "start-up: big $(cat "$RES/startup_big.json"), small $(cat "$RES/startup_small.json")"
# the same GET on the empty database, interleaved with the big one (same rounds)
cp "$SEED" "$WORK/small.db"
start_runq small "$SCPU" --db "$WORK/small.db" --io-threads 1 --access-log off
SMALL_PID=$RQ_PID; SMALL_URL=$RQ_URL
start_runq big "$SCPU" --db "$WORK/big.db" --io-threads 1 --access-log off
echo "{\"rss_kib\": $(vmrss_kib "$RQ_PID")}" >"$RES/big_rss_idle.json"
# a job in the middle of the table too (a different id than the template's)
MID="$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select id from jobs where seq=(select max(seq)/2 from jobs)").fetchone()[0])' "$WORK/big.db")"
run_rounds "small_get=$SMALL_URL$STATUS_PATH" "big_get=$RQ_URL$STATUS_PATH" \
  "big_get_mid=$RQ_URL/api/v1/runs/$MID"
echo "{\"rss_kib\": $(vmrss_kib "$RQ_PID")}" >"$RES/big_rss_after.json"
drop_pid "$RQ_PID"
drop_pid "$SMALL_PID"

# ---- 6: instructions per status GET (callgrind) ----------------------------------------
cg_run() {  # cg_run NAME K [flags]: runq under callgrind, K GETs on one keep-alive connection
  local name="$1" k="$2"; shift 2
  cp "$SEED" "$WORK/cg-$name.db"
  local lg="$WORK/cg-$name.log"
  taskset -c "$SCPU" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-$name.out" \
    "$RUNQ" serve --host 127.0.0.1 --port 0 --db "$WORK/cg-$name.db" --io-threads 1 \
    --drain-timeout 0 "$@" >"$lg" 2>&1 &
  local pid=$! url="" i
  PIDS+=("$pid")
  for i in $(seq 1200); do
    url="$(grep -so 'listening on http://[^ ]*' "$lg" | head -1 | cut -d' ' -f3 || true)"
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$lg" >&2; exit 1; }
    sleep 0.05
  done
  [[ -n "$url" ]] || { echo "runq under callgrind did not start" >&2; exit 1; }
  taskset -c "$CCPU" "$PY" "$HERE/gets.py" "$url$STATUS_PATH" "$k"
  drop_pid "$pid"
  awk '/^summary:/ {print $2}' "$WORK/cg-$name.out" >"$WORK/cg-$name.ir"
}
log "callgrind: 0 and $CALLGRIND_K GETs, access log off and on"
cg_run zero 0 --access-log off
cg_run k "$CALLGRIND_K" --access-log off
cg_run zero_log 0
cg_run k_log "$CALLGRIND_K"
"$PY" - "$WORK" "$CALLGRIND_K" >"$RES/callgrind.json" <<'PYEOF'
import json, sys
w, k = sys.argv[1], int(sys.argv[2])
ir = {n: int(open(f"{w}/cg-{n}.ir").read()) for n in ("zero", "k", "zero_log", "k_log")}
print(json.dumps({"k": k, **{f"ir_{n}": v for n, v in ir.items()},
                  "ir_per_get": (ir["k"] - ir["zero"]) // k,
                  "ir_per_get_log": (ir["k_log"] - ir["zero_log"]) // k}))
PYEOF
log "callgrind: $(cat "$RES/callgrind.json")"
cp "$WORK/cg-k.out" "$RES/callgrind.out" 2>/dev/null || true

# ---- report ------------------------------------------------------------------------------
echo "{\"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"finished_utc\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >"$RES/end.json"
mkdir -p "$HERE/results"
"$PY" "$HERE/report.py" "$RES" "$HERE/results"
