#!/usr/bin/env bash
# Builds the whole project and its tests under the sanitizers (g++) and runs the full
# ctest suite (GTest units + the pytest integration suite against the sanitized runq):
#   build-asan: AddressSanitizer + UndefinedBehaviorSanitizer (UB is fatal), leaks checked
#   build-tsan: ThreadSanitizer
# Any report fails the run. Suppressions (proven false positives in third-party code
# only, each with its reason) are in tests/sanitizers/.
#   bash scripts/test-sanitized.sh            # both
#   bash scripts/test-sanitized.sh asan       # one of them
#   RUNQ_SKIP_DEPS=1: don't run scripts/install-deps.sh (scripts/test.sh already did)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
KINDS=("$@")
[ ${#KINDS[@]} -gt 0 ] || KINDS=(asan tsan)
JOBS="${JOBS:-$(nproc)}"

if [ "${RUNQ_SKIP_DEPS:-0}" != 1 ]; then
  bash scripts/install-deps.sh
fi

SUPP="$ROOT/tests/sanitizers"
for kind in "${KINDS[@]}"; do
  case "$kind" in
    asan) sanitize="address,undefined"
          export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
          export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
          export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$SUPP/ubsan.supp" ;;
    tsan) sanitize="thread"
          export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$SUPP/tsan.supp" ;;
    *) echo "unknown kind '$kind' (asan or tsan)" >&2; exit 2 ;;
  esac
  dir="build-$kind"
  t0=$(date +%s)
  # -O1 (what the sanitizers recommend) with line tables only: much faster to compile
  # than -O2 -g, stacks still name file and line. Assertions stay on.
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DRUNQ_SANITIZE="$sanitize" >/dev/null
  nice -n 10 cmake --build "$dir" -j"$JOBS"
  t1=$(date +%s)
  echo "sanitized $kind: built in $(( t1 - t0 )) s"
  # The integration suite's own TIMEOUT (tests/CMakeLists.txt) is raised for sanitizer
  # builds; --timeout covers the unit tests.
  ctest --test-dir "$dir" --output-on-failure --timeout 600
  t2=$(date +%s)
  echo "sanitized $kind: tests passed in $(( t2 - t1 )) s"
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS
done
