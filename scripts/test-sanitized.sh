#!/usr/bin/env bash
# Builds runq and its tests under the sanitizers (g++) and runs them through ctest (GTest
# units + the pytest integration suite against the sanitized runq):
#   build-asan: AddressSanitizer + UndefinedBehaviorSanitizer (UB is fatal), leaks checked.
#               Everything: every unit test and the whole integration suite but the
#               dashboard's browser tests (tests/CMakeLists.txt, RUNQ_BROWSER_TESTS).
#   build-tsan: ThreadSanitizer. What runs on more than one thread: the unit tests and
#               integration files named in TSAN_UNIT_TESTS and TSAN_INTEGRATION_TESTS
#               below (the others are single-threaded code that TSan has nothing to say
#               about; they run in the normal build and under ASan+UBSan).
# Any report fails the run. Suppressions (proven false positives in third-party code
# only, each with its reason) are in tests/sanitizers/.
#   bash scripts/test-sanitized.sh            # both
#   bash scripts/test-sanitized.sh asan       # one of them
#   RUNQ_SKIP_DEPS=1: don't run scripts/install-deps.sh (scripts/test.sh already did)
#   CTEST_JOBS=N: ctest entries run side by side (default 4: the integration suite is
#   mostly waiting on servers and timers, see tests/CMakeLists.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
KINDS=("$@")
[ ${#KINDS[@]} -gt 0 ] || KINDS=(asan tsan)
JOBS="${JOBS:-$(nproc)}"
CTEST_JOBS="${CTEST_JOBS:-4}"

# What runs under TSan, by name (a unit test is tests/unit/<name>.cpp, an integration
# file tests/integration/<file>). A new test of threaded code belongs here.
# Units: the job service and its races, the scheduler's timers and cancel tokens, the
# store's group commit and concurrent readers, the HTTP server and client, the webhook
# dispatcher, the agents (worker and subprocess threads), the lock-free metrics, the
# key reload of auth and the log sink's flusher thread.
TSAN_UNIT_TESTS=(
  job_races_test job_events_races_test job_service_test router_test lease_lost_test
  postgres_store_test postgres_cluster_test
  timer_queue_test cancel_token_test group_commit_test sqlite_store_test
  http_server_test outbound_test webhook_dispatcher_test
  command_agent_test echo_agent_test prometheus_test auth_test batching_sink_test
)
# Integration: streams, cancel, shutdown and drain, scheduling, timeouts and retries,
# backpressure and retention, kill -9 storms, durability under load, webhooks, the
# command agent's progress.
TSAN_INTEGRATION_TESTS=(
  test_api_stream.py test_api_cancel_delete.py test_graceful_shutdown.py
  test_scheduling.py test_retries.py test_backpressure_retention_recovery.py
  test_crash_storm.py test_durability.py test_webhooks.py test_agent_command.py
)
# On PostgreSQL (both sanitizers): several real nodes on one database. (The whole suite
# runs on PostgreSQL in the normal build.)
PG_INTEGRATION_TESTS=(test_cluster.py test_cluster_news.py)
join() { local IFS=';'; echo "$*"; }

if [ "${RUNQ_SKIP_DEPS:-0}" != 1 ]; then
  bash scripts/install-deps.sh
fi

SUPP="$ROOT/tests/sanitizers"
for kind in "${KINDS[@]}"; do
  case "$kind" in
    asan) sanitize="address,undefined"; units=""; integration=""  # all
          export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
          export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
          export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp" ;;
    tsan) sanitize="thread"
          units="$(join "${TSAN_UNIT_TESTS[@]}")"
          integration="$(join "${TSAN_INTEGRATION_TESTS[@]}")"
          export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$SUPP/tsan.supp" ;;
    *) echo "unknown kind '$kind' (asan or tsan)" >&2; exit 2 ;;
  esac
  dir="build-$kind"
  t0=$(date +%s)
  # -O1 (what the sanitizers recommend) with line tables only: much faster to compile
  # than -O2 -g, stacks still name file and line. Assertions stay on.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DRUNQ_SANITIZE="$sanitize" -DRUNQ_UNIT_TESTS="$units" -DRUNQ_INTEGRATION_TESTS="$integration" \
    -DRUNQ_PG_INTEGRATION_TESTS="$(join "${PG_INTEGRATION_TESTS[@]}")" -DRUNQ_BROWSER_TESTS=OFF \
    >/dev/null
  nice -n 10 cmake --build "$dir" -j"$JOBS"
  t1=$(date +%s)
  echo "sanitized $kind: built in $(( t1 - t0 )) s"
  # The integration suite's own TIMEOUT (tests/CMakeLists.txt) is raised for sanitizer
  # builds; --timeout covers the unit tests.
  ctest --test-dir "$dir" --output-on-failure --timeout 600 -j"$CTEST_JOBS"
  t2=$(date +%s)
  echo "sanitized $kind: tests passed in $(( t2 - t1 )) s"
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS
done
