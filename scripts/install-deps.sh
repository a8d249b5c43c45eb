#!/usr/bin/env bash
# Installs what runq needs, from Debian 12's packages.
#   install-deps.sh          what building and testing need (scripts/test.sh)
#   install-deps.sh build    only what building the server needs (scripts/serve.sh)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
BUILD=(build-essential cmake g++ pkg-config ca-certificates curl
       libboost1.81-dev nlohmann-json3-dev libspdlog-dev libsqlite3-dev libssl-dev
       libcli11-dev libpq-dev)
# g++ brings its sanitizer runtimes (libasan8, libubsan1, libtsan2: scripts/test-sanitized.sh);
# postgresql-15: the tests start throwaway servers of their own (scripts/pg-test-server.sh);
# the package's own "main" cluster stays down (no systemd here) and is not used.
# clang-14, libclang-rt-14-dev (libFuzzer) and llvm-14 (llvm-symbolizer) are for scripts/fuzz.sh.
# chromium, chromium-driver and python3-selenium: the dashboard's browser tests.
TEST=(openssl libgtest-dev postgresql-15
      clang-14 libclang-rt-14-dev llvm-14
      python3 python3-httpx python3-pytest python3-psycopg2 python3-fusepy fuse
      chromium chromium-driver python3-selenium)
$SUDO apt-get update
if [ "${1:-}" = build ]; then
  $SUDO apt-get install -y --no-install-recommends "${BUILD[@]}"
else
  $SUDO apt-get install -y --no-install-recommends "${BUILD[@]}" "${TEST[@]}"
fi
