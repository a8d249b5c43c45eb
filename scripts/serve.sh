#!/usr/bin/env bash
# Installs the dependencies, builds runq (Release) and starts it on 127.0.0.1:8005
# with the embedded defaults: SQLite file ./runq.db and the echo agent.
# Extra arguments go to `runq serve` (see `build/runq serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DRUNQ_BUILD_TESTS=OFF
cmake --build build-release -j"$(nproc)" --target runq
exec ./build-release/runq serve "$@"
