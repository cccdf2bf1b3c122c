#!/usr/bin/env bash
# Runs every walvault test on a fresh Debian 12 machine: installs dependencies, builds, runs
# the unit tests and the integration tests (real PostgreSQL 15) through ctest, then all of
# them again on an AddressSanitizer + UndefinedBehaviorSanitizer build (a sanitizer report
# aborts the daemon, and the integration tests require a clean exit).
#   WALVAULT_SANITIZE=1   run only the sanitizer build
#   WALVAULT_SKIP_SANITIZER_PASS=1   skip the sanitizer pass
#   CTEST_ARGS="-L unit"  pass extra arguments to ctest (e.g. a label or -R pattern)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# The S3 tests start moto_server and use boto3 and the AWS CLI, which this machine kind has in
# root's pyenv (Debian 12 packages no moto): make them reachable from a non-login shell too.
if [ -d "$HOME/.pyenv/shims" ] && [[ ":$PATH:" != *":$HOME/.pyenv/shims:"* ]]; then
  export PATH="$HOME/.pyenv/shims:$PATH"
fi
command -v moto_server >/dev/null || echo "test.sh: WARNING: moto_server not found: the S3 tests will fail (moto 5 with its server extra)" >&2

run_suite() {  # build_dir ctest-args... ; cmake args come from $cmake_args
  local build_dir=$1
  shift
  cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
  cmake --build "$build_dir" -j"$(nproc)"
  # Integration tests wait on PostgreSQL, fsync and timers far more than they compute: two at
  # a time (nproc) halves the wall time; each uses its own ports, directories and processes.
  (cd "$build_dir" && ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@")
}

if [ "${WALVAULT_SANITIZE:-0}" = 1 ]; then
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DWALVAULT_SANITIZE=ON)
  # shellcheck disable=SC2086
  run_suite build-asan ${CTEST_ARGS:-}
  exit 0
fi

cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
# shellcheck disable=SC2086
run_suite build ${CTEST_ARGS:-}

if [ "${WALVAULT_SKIP_SANITIZER_PASS:-0}" != 1 ]; then
  echo "== all tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DWALVAULT_SANITIZE=ON)
  # shellcheck disable=SC2086
  run_suite build-asan ${CTEST_ARGS:-}
fi
