#!/usr/bin/env bash
# Installs what runq needs to build and test, from Debian 12's packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
# g++ brings its sanitizer runtimes (libasan8, libubsan1, libtsan2: scripts/test-sanitized.sh);
# postgresql-15: the tests start throwaway servers of their own (scripts/pg-test-server.sh);
# the package's own "main" cluster stays down (no systemd here) and is not used.
# clang-14, libclang-rt-14-dev (libFuzzer) and llvm-14 (llvm-symbolizer) are for scripts/fuzz.sh.
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake g++ pkg-config ca-certificates curl openssl \
  libboost1.81-dev nlohmann-json3-dev libspdlog-dev libsqlite3-dev libssl-dev \
  libcli11-dev libgtest-dev libpq-dev postgresql-15 \
  clang-14 libclang-rt-14-dev llvm-14 \
  python3 python3-httpx python3-pytest python3-psycopg2 python3-fusepy fuse
