#!/usr/bin/env bash
# Installs the dependencies, builds runq and runs every test (GTest units and the
# pytest integration suite against the real binary) through ctest; then the same suite
# built with ASan+UBSan and with TSan (scripts/test-sanitized.sh), then each libFuzzer
# target for FUZZ_SECONDS (default 20) (scripts/fuzz.sh). Prints how long each part took.
#   RUNQ_TEST_QUICK=1: only the first part (the normal build and suite).
#   CTEST_JOBS=N: ctest entries run side by side (default 4; the integration suite is
#   split in entries that are mostly waiting, see tests/CMakeLists.txt).
# The normal build is RelWithDebInfo with line tables only (-g1): stacks still name file
# and line, and it compiles and links about a fifth faster than with full -g.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C  # '.' as the decimal point of the timings
export FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
export CTEST_JOBS="${CTEST_JOBS:-4}"

timings=()
report() {
  [ ${#timings[@]} -gt 0 ] || return 0
  echo "test.sh timings:"
  printf '  %s\n' "${timings[@]}"
}
trap report EXIT
part() {  # part NAME COMMAND...: runs it and records its wall-clock and CPU time
  local name="$1" tf wall user sys
  shift
  tf=$(mktemp)
  local TIMEFORMAT="%R %U %S"
  { time "$@" 2>&3; } 3>&2 2>"$tf"
  read -r wall user sys <"$tf"
  rm -f "$tf"
  timings+=("$(printf '%-34s %6.0f s wall %7.0f s CPU' "$name" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')")")
  echo "test.sh: ${timings[-1]}"
}

part "install dependencies" bash scripts/install-deps.sh
part "configure + build (build/)" bash -c \
  'cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" &&
   cmake --build build -j"$(nproc)"'
part "ctest (build/)" ctest --test-dir build --output-on-failure --timeout 1500 -j"$CTEST_JOBS"
if [ "${RUNQ_TEST_QUICK:-0}" = 1 ]; then exit 0; fi
export RUNQ_SKIP_DEPS=1
part "ASan+UBSan build + ctest" bash scripts/test-sanitized.sh asan
part "TSan build + ctest" bash scripts/test-sanitized.sh tsan
part "fuzzers build + ${FUZZ_SECONDS} s each" bash scripts/fuzz.sh
