#!/usr/bin/env bash
# Runs every walvault test on a fresh Debian 12 machine: installs dependencies, builds, runs
# the unit tests and the integration tests (real PostgreSQL 15) through ctest, then all of
# them again on an AddressSanitizer + UndefinedBehaviorSanitizer build (a sanitizer report
# aborts the daemon, and the integration tests require a clean exit). Between the two, the
# packaging tests (ctest label `packaging`: the .deb, the container image and pod, the
# Kubernetes manifests and Helm chart) run once, one at a time, on the release build; they test
# what is shipped, so never under the sanitizers. Beside the sanitizer pass, niced, every fuzz
# target (tests/fuzz, clang 14) runs briefly from its seeds: a crash fails the run.
#   WALVAULT_SANITIZE=1   run only the sanitizer build
#   WALVAULT_SKIP_FUZZ=1  skip the fuzz stage; WALVAULT_FUZZ_SECONDS=N: seconds per target (10)
#   WALVAULT_SKIP_SANITIZER_PASS=1   skip the sanitizer pass
#   WALVAULT_SKIP_PACKAGING=1   skip the packaging tests
#   CTEST_ARGS="-L unit"  pass extra arguments to ctest (e.g. a label or -R pattern); the
#                         release pass then runs exactly what they select, packaging included
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

# The S3 tests start moto_server and use boto3 and the AWS CLI, which this machine kind has in
# root's pyenv (Debian 12 packages no moto): make them reachable from a non-login shell too.
if [ -d "$HOME/.pyenv/shims" ] && [[ ":$PATH:" != *":$HOME/.pyenv/shims:"* ]]; then
  export PATH="$HOME/.pyenv/shims:$PATH"
fi
command -v moto_server >/dev/null || echo "test.sh: WARNING: moto_server not found: the S3 tests will fail (moto 5 with its server extra)" >&2

# Every step returns its failure: these run on the left of `||`, where bash ignores set -e.
build_tree() {  # build_dir ; cmake args come from $cmake_args
  cmake -S . -B "$1" "${cmake_args[@]}" >/dev/null || return
  cmake --build "$1" -j"$(nproc)" || return
}
run_ctest() {  # build_dir ctest-args...
  local build_dir=$1
  shift
  # Integration tests wait on PostgreSQL, fsync and timers far more than they compute: two at
  # a time (nproc) halves the wall time; each uses its own ports, directories and processes.
  (cd "$build_dir" && ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@")
}
run_suite() { build_tree "$1" || return; run_ctest "$@"; }

sanitizer_args=(-DCMAKE_BUILD_TYPE=Debug -DWALVAULT_SANITIZE=ON)
if [ "${WALVAULT_SANITIZE:-0}" = 1 ]; then
  cmake_args=("${sanitizer_args[@]}")
  # shellcheck disable=SC2086
  run_suite build-asan -LE packaging ${CTEST_ARGS:-}
  exit 0
fi

started=$(date +%s)
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ -n "${CTEST_ARGS:-}" ]; then
  # shellcheck disable=SC2086
  run_suite build $CTEST_ARGS
elif [ "${WALVAULT_SKIP_PACKAGING:-0}" = 1 ]; then
  run_suite build -LE packaging
else
  build_tree build
  # The packaging tests run one at a time, beside the release suite and niced: the
  # integration tests mostly wait (measured: 200 CPU-seconds in 340 s on 2 cores), and the
  # .deb's compile takes that idle CPU instead of adding its 230 s after them.
  packaging_log=build/packaging-tests.log
  echo "== packaging tests (.deb, container image and pod, manifests, Helm chart) beside the release suite; output: $packaging_log"
  (cd build && exec nice -n 19 ctest --output-on-failure -L packaging) >"$packaging_log" 2>&1 &
  packaging_pid=$!
  suite_rc=0
  run_ctest build -LE packaging || suite_rc=$?
  packaging_rc=0
  wait "$packaging_pid" || packaging_rc=$?
  echo "== packaging tests (label packaging)"
  grep -v '^ok: ' "$packaging_log" || true
  [ "$suite_rc" = 0 ] && [ "$packaging_rc" = 0 ] || {
    echo "test.sh: release suite exit $suite_rc, packaging tests exit $packaging_rc (full output: $packaging_log)" >&2
    exit 1
  }
fi
echo "test.sh: release pass took $(( $(date +%s) - started )) s"

# The fuzz stage: built and run niced beside the sanitizer pass, whose integration tests leave
# CPU idle while they wait on PostgreSQL and timers.
fuzz_pid=""
if [ -z "${CTEST_ARGS:-}" ] && [ "${WALVAULT_SKIP_FUZZ:-0}" != 1 ]; then
  fuzz_log=build/fuzz-stage.log
  echo "== fuzz targets, ${WALVAULT_FUZZ_SECONDS:-10} s each from their seeds, beside the next pass; output: $fuzz_log"
  nice -n 19 bash tests/fuzz/run.sh "${WALVAULT_FUZZ_SECONDS:-10}" >"$fuzz_log" 2>&1 &
  fuzz_pid=$!
fi

sanitizer_rc=0
if [ "${WALVAULT_SKIP_SANITIZER_PASS:-0}" != 1 ]; then
  echo "== all tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
  started=$(date +%s)
  cmake_args=("${sanitizer_args[@]}")
  # shellcheck disable=SC2086
  run_suite build-asan -LE packaging ${CTEST_ARGS:-} || sanitizer_rc=$?
  echo "test.sh: sanitizer pass took $(( $(date +%s) - started )) s"
fi

fuzz_rc=0
if [ -n "$fuzz_pid" ]; then
  wait "$fuzz_pid" || fuzz_rc=$?
  echo "== fuzz targets"
  cat "$fuzz_log"
fi
[ "$sanitizer_rc" = 0 ] && [ "$fuzz_rc" = 0 ] || {
  echo "test.sh: sanitizer pass exit $sanitizer_rc, fuzz stage exit $fuzz_rc" >&2
  exit 1
}
