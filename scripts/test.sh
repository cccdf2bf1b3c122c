#!/usr/bin/env bash
# Runs every walvault test on a fresh Debian 12 machine: installs dependencies, builds, runs
# the unit tests and the integration tests (real PostgreSQL 15) through ctest.
#   WALVAULT_SANITIZE=1   build and test with AddressSanitizer + UndefinedBehaviorSanitizer
#   CTEST_ARGS="-L unit"  pass extra arguments to ctest (e.g. a label or -R pattern)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${WALVAULT_SANITIZE:-0}" = 1 ]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DWALVAULT_SANITIZE=ON)
fi

cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
cd "$build_dir"
# shellcheck disable=SC2086
ctest --output-on-failure --timeout 600 ${CTEST_ARGS:-}
