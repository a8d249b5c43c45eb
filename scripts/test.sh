#!/usr/bin/env bash
# Installs the dependencies, builds runq and runs every test (GTest units and the
# pytest integration suite against the real binary) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure --timeout 1500
