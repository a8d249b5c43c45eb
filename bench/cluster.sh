#!/usr/bin/env bash
# runq on PostgreSQL, several nodes (issue 10's benchmarks). Run as root on Debian 12 from
# a checkout:
#
#   bash bench/cluster.sh              # full run (about 5 minutes plus the build)
#   QUICK=1 bash bench/cluster.sh      # smoke run: 60 jobs per scale-out case, 2 s wrk runs
#
# Starts a throwaway PostgreSQL 15 (scripts/pg-test-server.sh, PG_FSYNC=on: fsync,
# synchronous_commit and full_page_writes on, plus shared_buffers/wal_buffers/max_wal_size
# tuning, nothing unsafe) in a temp dir, and measures:
#   1. scale-out: jobs completed per second by 1, 2 and 3 runq nodes (--max-concurrent 4
#      each) on one database (a fresh database per case); SCALE_JOBS echo jobs that sleep
#      SLEEP_S, submitted spread over the nodes, from the first submit to the last
#      completed_at; and from the database that every job ran exactly once (attempts = 1);
#   2. durable submits/s (wrk -t1 -c50 with bench/wrk_post.lua, as bench/run.sh) and
#      end-to-end jobs/s of one node on PostgreSQL beside SQLite (a file in the same temp
#      dir), runq on CPU 0 and wrk on CPU 1; postgres on CPU 0 with runq (the CPU budget
#      SQLite's in-process store has) and, as a second row, unpinned (CPUs 0-1). Every
#      202 is checked in the database after runq stops (--max-queued 10^7 on these nodes:
#      the default 10^5 would answer 429 to a 10 s run of the submit-alone diagnostic); CPU per core and per process,
#      PostgreSQL's commits and WAL fsyncs during the run are recorded.
# Prints a markdown table and writes bench/results/cluster-<UTC start>.json.
#
# Environment: QUICK=1, SCALE_JOBS (300; QUICK 60), SLEEP_S (0.2), NODES ("1 2 3"),
# DURATION (wrk seconds, 10; QUICK 2), PG_PLACEMENTS ("0 0-1": CPUs of postgres in test 2),
# HOLD=0 (skip the submit-alone diagnostic rows), PG_NODE_FLAGS (more runq flags for the
# PostgreSQL node of test 2, e.g. "--max-concurrent 64 --db-pool 32"), SKIP_INSTALL=1, SKIP_BUILD=1 (use
# RUNQ_BIN or build-release/runq), RUNQ_COMMIT, KEEP=1 (keep the temp dir: logs, PGDATA),
# SERVER_CPU (0), CLIENT_CPU (1), PG_TUNING (the server options besides durability).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
export BENCH_DIR="$HERE"
QUICK="${QUICK:-0}"
if [[ "$QUICK" == 1 ]]; then
  DURATION="${DURATION:-2}"; SCALE_JOBS="${SCALE_JOBS:-60}"; WARMUP=1
else
  DURATION="${DURATION:-10}"; SCALE_JOBS="${SCALE_JOBS:-300}"; WARMUP=2
fi
SLEEP_S="${SLEEP_S:-0.2}"
NODES="${NODES-1 2 3}"            # NODES="" skips test 1
PG_PLACEMENTS="${PG_PLACEMENTS:-0 0-1}"
SCPU="${SERVER_CPU:-0}"
CCPU="${CLIENT_CPU:-1}"
PY=/usr/bin/python3
# An expert's settings for a fair durable run: room for the working set and the WAL of a
# run (no checkpoint mid-run), pg_stat_statements for the cause analysis. No unsafe ones.
PG_TUNING="${PG_TUNING:--c shared_buffers=256MB -c wal_buffers=16MB -c max_wal_size=8GB -c min_wal_size=1GB -c checkpoint_timeout=30min -c checkpoint_completion_target=0.9 -c shared_preload_libraries=pg_stat_statements -c track_wal_io_timing=on}"

log() { echo "[cluster $(date -u +%H:%M:%S)] $*" >&2; }

# ---- install and build ---------------------------------------------------------------
if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  bash "$ROOT/scripts/install-deps.sh"          # runs apt-get update; postgresql-15, psycopg2
  $SUDO apt-get install -y --no-install-recommends wrk util-linux procps python3 \
    python3-psycopg2 postgresql-15 curl
fi
if [[ "${SKIP_BUILD:-0}" != 1 && -z "${RUNQ_BIN:-}" ]]; then
  cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release -DRUNQ_BUILD_TESTS=OFF >/dev/null
  nice -n 10 cmake --build "$ROOT/build-release" -j"$(nproc)" --target runq
fi
RUNQ="${RUNQ_BIN:-$ROOT/build-release/runq}"
[[ -x "$RUNQ" ]] || { echo "no runq binary at $RUNQ" >&2; exit 1; }

# ---- scratch space and cleanup --------------------------------------------------------
WORK="$(mktemp -d /tmp/runq-cluster.XXXXXX)"
chmod 755 "$WORK"
RES="$WORK/res"; mkdir -p "$RES"
PGDIR="$WORK/pg"
PIDS=()
PG_UP=0
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ "$PG_UP" == 1 ]]; then
    bash "$ROOT/scripts/pg-test-server.sh" stop "$PGDIR" fast 2>/dev/null ||
      bash "$ROOT/scripts/pg-test-server.sh" stop "$PGDIR" immediate 2>/dev/null || true
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_pid() {  # stop one process we started (SIGTERM, wait) and forget it
  local p="$1" keep=() q
  kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  for q in "${PIDS[@]}"; do [[ "$q" != "$p" ]] && keep+=("$q"); done
  PIDS=("${keep[@]}")
}
source "$HERE/lib.sh"  # start_runq
stats() { curl -sf "$1/stats"; }
jq_py() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
pending() { stats "$1" | jq_py 'd["by_status"].get("queued",0)+d["by_status"].get("running",0)'; }
# Polls every 0.2 s: a /stats counts every job (on PostgreSQL a scan of the table, 10-15 ms
# with 3*10^4 jobs), so a closer poll would take its share of the core being measured.
wait_drained() {  # URL [max seconds]
  local i n=$(( ${2:-600} * 5 ))
  for i in $(seq "$n"); do [[ "$(pending "$1")" == 0 ]] && return 0; sleep 0.2; done
  log "queue not drained at $1"; return 1
}
psql_q() { "$PY" - "$1" "$2" <<'PYEOF'
import psycopg2, sys
c = psycopg2.connect(sys.argv[1]); c.autocommit = True
cur = c.cursor(); cur.execute(sys.argv[2])
if cur.description: print("\n".join("|".join(str(x) for x in r) for r in cur.fetchall()))
PYEOF
}
newdb() {  # NAME: a fresh database, echoes its URI
  psql_q "$PGURI" "DROP DATABASE IF EXISTS $1" >/dev/null
  psql_q "$PGURI" "CREATE DATABASE $1" >/dev/null
  psql_q "${PGURI%/*}/$1" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  echo "${PGURI%/*}/$1"
}
pg_pids() { local pm; pm="$(head -1 "$PGDIR/data/postmaster.pid")"; echo "$pm"; pgrep -P "$pm" || true; }
pg_pin() {  # CPUS: postgres and every child it has or will fork (they inherit it)
  local p
  for p in $(pg_pids); do taskset -p -c "$1" "$p" >/dev/null 2>&1 || true; done
}

# ---- the machine and postgres ---------------------------------------------------------
STARTED="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "machine load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
PGURI="$(PG_FSYNC=on PG_OPTS="$PG_TUNING" bash "$ROOT/scripts/pg-test-server.sh" start "$PGDIR")"
PG_UP=1
log "postgres at $PGURI (fsync on), pids $(pg_pids | tr '\n' ' ')"
psql_q "$PGURI" "SELECT name, setting FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','wal_sync_method','shared_buffers','wal_buffers','max_wal_size','commit_delay')" \
  | tr '\n' ' ' >"$WORK/pg_settings.txt"
log "settings: $(cat "$WORK/pg_settings.txt")"
FSYNC_JSON="$(nice -n 5 "$PY" "$HERE/cluster.py" fsync "$WORK/fsync.probe")"
rm -f "$WORK/fsync.probe"
log "fdatasync probe: $FSYNC_JSON"
{
  echo "{"
  echo "\"started_utc\": \"$STARTED\","
  echo "\"loadavg_start\": \"$(cut -d' ' -f1-3 /proc/loadavg)\","
  echo "\"cpu_model\": \"$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)\","
  echo "\"cpus\": $(nproc),"
  echo "\"mem_total_mib\": $(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo),"
  echo "\"kernel\": \"$(uname -r)\","
  echo "\"runq_version\": \"$("$RUNQ" --version 2>&1 | head -1)\","
  echo "\"git_commit\": \"${RUNQ_COMMIT:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}\","
  echo "\"pg_version\": \"$(psql_q "$PGURI" "SHOW server_version" | cut -d' ' -f1)\","
  echo "\"pg_opts\": \"PG_FSYNC=on (fsync, synchronous_commit, full_page_writes on) $PG_TUNING\","
  echo "\"pg_settings\": \"$(cat "$WORK/pg_settings.txt")\","
  echo "\"fsync\": $FSYNC_JSON,"
  echo "\"quick\": $QUICK, \"duration_s\": $DURATION, \"scale_jobs\": $SCALE_JOBS, \"sleep_s\": $SLEEP_S,"
  echo "\"pg_node_flags\": \"${PG_NODE_FLAGS:-}\","
  echo "\"server_cpu\": \"$SCPU\", \"client_cpu\": \"$CCPU\""
  echo "}"
} >"$RES/meta.json"

# ---- 1: scale-out, 1..3 nodes on one database ------------------------------------------
# Nodes, postgres and the client unpinned: the work is 4 sleeping jobs per node, the
# claims and endings are some 20-60 transactions per second.
for n in $NODES; do
  DB="$(newdb "scale$n")"
  pg_pin 0-"$(( $(nproc) - 1 ))"
  URLS=() NPIDS=()
  for i in $(seq "$n"); do
    start_runq "scale$n-node$i" all --db "$DB" --max-concurrent 4 --node-name "n$i" --access-log off
    URLS+=("$RQ_URL"); NPIDS+=("$RQ_PID")
  done
  log "scale-out: $n node(s), $SCALE_JOBS jobs of $SLEEP_S s"
  "$PY" "$HERE/cluster.py" scaleout "$(IFS=,; echo "${URLS[*]}")" "$SCALE_JOBS" "$SLEEP_S" "$DB" \
    >"$RES/scale_$n.json"
  log "scale $n: $(cat "$RES/scale_$n.json")"
  for p in "${NPIDS[@]}"; do drop_pid "$p"; done
  # anything a node logged at warning level or worse
  for i in $(seq "$n"); do
    grep -iE 'warn|error|critical|lost its lease' "$WORK/scale$n-node$i.log" | head -5 \
      | sed "s/^/[node scale$n-node$i] /" >&2 || true
  done
done

# ---- 2: durable submits and end-to-end, one node: SQLite, PostgreSQL ---------------------
# measure KEY DBARG DBKIND: warm-up, drain, measured wrk run, drain, stop, count rows.
measure() {
  local key="$1" db="$2" kind="$3"
  local extra=()
  [[ "$kind" == pg && -n "${PG_NODE_FLAGS:-}" ]] && read -r -a extra <<<"$PG_NODE_FLAGS"
  start_runq "sub_$key" "$SCPU" --db "$db" --access-log off --max-queued 10000000 "${extra[@]}"
  local pid=$RQ_PID url=$RQ_URL
  taskset -c "$CCPU" wrk -t1 -c50 -d"${WARMUP}s" -s "$HERE/wrk_post.lua" "$url/api/v1/runs" >/dev/null
  wait_drained "$url"
  local before after_wrk after t0 t1 t2 rows pguri="-"
  [[ "$kind" == pg ]] && pguri="$db"
  [[ "$kind" == pg ]] && psql_q "$db" "SELECT pg_stat_statements_reset()" >/dev/null
  before="$(stats "$url")"
  t0="$(date +%s.%N)"
  "$PY" "$HERE/cluster.py" run "$RES/run_$key.json" "$(groups_json "$pid" "$kind")" "$pguri" "$url" \
    "$WORK/wrk-$key.txt" -- taskset -c "$CCPU" wrk -t1 -c50 -d"${DURATION}s" --latency \
    -s "$HERE/wrk_post.lua" "$url/api/v1/runs"
  t1="$(date +%s.%N)"
  after_wrk="$(stats "$url")"
  grep '^WRKJSON ' "$WORK/wrk-$key.txt" | cut -d' ' -f2- >"$RES/sub_$key.json"
  log "wrk submit $key: $(cat "$RES/sub_$key.json")"
  wait_drained "$url" 900
  after="$(stats "$url")"
  if [[ "$kind" == pg ]]; then  # the statements of the measured run and the drain
    psql_q "$db" "SELECT calls, round(total_exec_time::numeric,1) AS ms, round(mean_exec_time::numeric,3) AS mean_ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 12" \
      >"$RES/pgss_$key.txt" || true
  fi
  drop_pid "$pid"
  grep -iE 'warn|error|critical' "$WORK/sub_$key.log" | head -5 | sed "s/^/[node sub_$key] /" >&2 || true
  # the rows, and the drain's end: the last job's completed_at
  if [[ "$kind" == pg ]]; then read -r rows t2 < <("$PY" "$HERE/cluster.py" pgcount "$db")
  else read -r rows t2 < <("$PY" -c 'import sqlite3,sys; n, last = sqlite3.connect(sys.argv[1]).execute("select count(*), max(completed_at) from jobs").fetchone(); print(n, last / 1e6)' "$db")
  fi
  "$PY" "$HERE/cluster.py" e2e "$before" "$after_wrk" "$after" "$t0" "$t1" "$t2" "$rows" \
    "$RES/sub_$key.json" "$RES/run_$key.json" >"$RES/e2e_$key.json"
  rm -f "$RES/run_$key.json"
  log "e2e $key: $(cat "$RES/e2e_$key.json")"
  if [[ "${HOLD:-1}" == 1 ]]; then  # the submit path alone: jobs held by an hour's sleep
    local hdb
    if [[ "$kind" == pg ]]; then hdb="$(newdb "hold_$key")"; else hdb="$WORK/hold_$key.db"; fi
    start_runq "hold_$key" "$SCPU" --db "$hdb" --access-log off --drain-timeout 0 \
      --max-queued 10000000 "${extra[@]}"
    taskset -c "$CCPU" wrk -t1 -c50 -d"${WARMUP}s" -s "$HERE/wrk_post_hold.lua" "$RQ_URL/api/v1/runs" >/dev/null
    pguri="-"; [[ "$kind" == pg ]] && pguri="$hdb"
    "$PY" "$HERE/cluster.py" run "$RES/holdrun_$key.json" "$(groups_json "$RQ_PID" "$kind")" "$pguri" \
      "$RQ_URL" "$WORK/wrk-hold-$key.txt" -- taskset -c "$CCPU" wrk -t1 -c50 -d"${DURATION}s" \
      --latency -s "$HERE/wrk_post_hold.lua" "$RQ_URL/api/v1/runs"
    grep '^WRKJSON ' "$WORK/wrk-hold-$key.txt" | cut -d' ' -f2- >"$RES/hold_$key.json"
    log "submit alone $key: $(cat "$RES/hold_$key.json")"
    drop_pid "$RQ_PID"
  fi
}
groups_json() {  # RUNQ_PID KIND: the processes whose CPU is counted
  if [[ "$2" == pg ]]; then
    echo "{\"runq\": [$1], \"postgres\": [$(pg_pids | paste -sd,)]}"
  else
    echo "{\"runq\": [$1]}"
  fi
}

measure sqlite "$WORK/submit.db" sqlite
for cpus in $PG_PLACEMENTS; do
  key="pg_cpu${cpus//-/_}"
  pg_pin "$cpus"
  if [[ "$cpus" == "$SCPU" ]]; then txt="postgres on CPU $cpus with runq"
  else txt="postgres unpinned (CPUs $cpus; wrk on CPU $CCPU)"; fi
  echo "{\"cpus\": \"$cpus\", \"text\": \"$txt\"}" >"$RES/where_$key.json"
  measure "$key" "$(newdb "sub_$key")" pg
done
pg_pin 0-"$(( $(nproc) - 1 ))"

# ---- report ------------------------------------------------------------------------------
echo "{\"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\", \"finished_utc\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >"$RES/end.json"
for f in "$RES"/pgss_*.txt; do  # fold the statement tables into JSON for the report
  [[ -e "$f" ]] || continue
  "$PY" -c 'import json,sys; print(json.dumps({"top_statements": open(sys.argv[1]).read().splitlines()}))' "$f" \
    >"${f%.txt}.json"; rm -f "$f"
done
mkdir -p "$HERE/results"
"$PY" "$HERE/cluster.py" report "$RES" "$HERE/results"
