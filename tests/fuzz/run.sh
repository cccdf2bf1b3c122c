#!/usr/bin/env bash
# Builds walvault's libFuzzer targets with Debian's clang 14 (ASan + UBSan, libFuzzer coverage
# in every library) and runs each for SECONDS.
#   tests/fuzz/run.sh SECONDS [TARGET...]      (default: every target in tests/fuzz)
# Each target starts from its seed corpus (tests/fuzz/corpus/TARGET: real files, read only) plus
# what earlier runs found (BUILD/corpus/TARGET, kept between runs). A crash, a leak, an
# undefined behaviour report or an input slower than 10 s fails the run; its input is left in
# BUILD/crashes/TARGET/ (turn it into a unit test, then add it to the seeds). Prints each
# target's executions, executions per second, corpus size, and the coverage (edges) of the seeds
# alone against the coverage at the end of the run.
# Environment: WALVAULT_FUZZ_BUILD_DIR (default build-fuzz in the source tree).
# Needs clang-14 and libclang-rt-14-dev (scripts/install-deps.sh installs them; scripts/test.sh
# runs every target for 10 s beside its sanitizer pass).
set -euo pipefail

seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: SECONDS must be a positive whole number, not '$seconds'" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${WALVAULT_FUZZ_BUILD_DIR:-$src/build-fuzz}

for tool in clang-14 clang++-14 cmake; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed (apt-get install clang-14 libclang-rt-14-dev)" >&2; exit 1; }
done

CC=clang-14 CXX=clang++-14 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWALVAULT_FUZZ=ON -DWALVAULT_TESTS=OFF -DWALVAULT_WERROR=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_all >"$build/fuzz-build.log" 2>&1 || {
  tail -n 40 "$build/fuzz-build.log" >&2
  echo "run.sh: the fuzz build failed (log: $build/fuzz-build.log)" >&2
  exit 1
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for file in "$src"/tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$file" .cpp)"); done
fi

failed=()
printf '%-24s %12s %10s %8s %9s %9s  %s\n' target executions exec/s corpus seed-cov final-cov result
for target in "${targets[@]}"; do
  binary=$build/bin/$target
  [ -x "$binary" ] || { echo "run.sh: no fuzz target $target (tests/fuzz/$target.cpp)" >&2; exit 2; }
  seeds=$src/tests/fuzz/corpus/$target
  found=$build/corpus/$target
  crashes=$build/crashes/$target
  log=$build/$target.log
  mkdir -p "$found" "$crashes"
  inputs=("$found")
  [ -d "$seeds" ] && inputs+=("$seeds")
  max_len=65536
  # Coverage of the seeds alone (edges libFuzzer's INITED line counts), to show what fuzzing added.
  seed_cov=?
  if [ -d "$seeds" ]; then
    # (a seed that crashes is reported by the run below, with its input)
    seed_cov=$("$binary" -runs=0 -max_len="$max_len" "$seeds" 2>&1 | awk '/INITED/{for(i=1;i<=NF;i++) if($i=="cov:") print $(i+1)}' | tail -n 1) || true
  fi
  rc=0
  # -timeout: one input may take 10 s; -rss_limit_mb: a parser must not balloon on small input.
  timeout $((seconds + 120)) "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$crashes/" "${inputs[@]}" >"$log" 2>&1 || rc=$?
  runs=$(awk '/stat::number_of_executed_units/{print $2}' "$log")
  rate=$(awk '/stat::average_exec_per_sec/{print $2}' "$log")
  corpus=$(find "$found" -type f | wc -l)
  final_cov=$(awk '/ cov: /{for(i=1;i<=NF;i++) if($i=="cov:") c=$(i+1)} END{print c}' "$log")
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    result="FAILED (exit $rc; log $log; inputs in $crashes)"
    failed+=("$target")
    grep -m 3 -E 'ERROR: |runtime error: |SUMMARY: ' "$log" | sed 's/^/    /' >&2 || true
  fi
  printf '%-24s %12s %10s %8s %9s %9s  %s\n' "$target" "${runs:-?}" "${rate:-?}" "$corpus" \
    "${seed_cov:-?}" "${final_cov:-?}" "$result"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "run.sh: every target ran ${seconds} s without a finding"
