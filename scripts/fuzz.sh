#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, docs/hardening.md) for a fixed time and reports, per target,
# executions per second and the coverage reached; exits non-zero if any target found a crash,
# a leak, a timeout or an out-of-memory, and says where the input is.
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   default: 30 s each, every target, two at a time
# The targets are built in the AddressSanitizer build (build-asan/, clang, libFuzzer coverage),
# which `scripts/test.sh --sanitize address` shares. New inputs go to build-asan/fuzz-run/ (the
# seed corpora in fuzz/corpus/ are only read). A crash input, once fixed, belongs in
# fuzz/regressions/<target>/, which ctest replays in every build.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=scripts/sanitize.sh
source "$TRIDENT_ROOT/scripts/sanitize.sh"
cd "$TRIDENT_ROOT"
summary_on_exit

seconds=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(textproto_config hf_config_json safetensors_file token_file checkpoint_metadata
           reward_output tokenizer_json)
fi
dir=$(sanitizer_build_dir address)

step setup; run_setup; step_done
step build-fuzz
TRIDENT_ASAN_TARGETS=fuzz_targets sanitizer_build address
step_done

# fuzz_one TARGET: runs it for $seconds and writes its report line to its run folder.
fuzz_one() {
  local target=$1 work=$dir/fuzz-run/$1 status=0
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  "$dir/fuzz/fuzz_$target" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" "fuzz/corpus/$target" > "$work/log" 2>&1 || status=$?
  local execs rate cov ft found
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$work/log" | tail -1 | cut -d' ' -f2)
  found=$(find "$work/artifacts" -type f | head -1)
  local result=ok
  if [ -n "$found" ] || [ "$status" -ne 0 ]; then result="FOUND ${found:-exit $status}"; fi
  printf '%-20s %6ss %10s %9s %7s %7s  %s\n' "$target" "$seconds" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "$result" > "$work/report"
}

step fuzz
sanitizer_environment
# libFuzzer sets its own ASan options (leaks included); keep the suppressions and symbolizer.
unset ASAN_OPTIONS
pids=()
for target in "${targets[@]}"; do
  fuzz_one "$target" &
  pids+=($!)
  # Two at a time: one per core.
  if [ ${#pids[@]} -eq 2 ]; then wait "${pids[@]}"; pids=(); fi
done
if [ ${#pids[@]} -gt 0 ]; then wait "${pids[@]}"; fi
printf '%-20s %7s %10s %9s %7s %7s  %s\n' target time execs execs/s cov ft result
failed=0
for target in "${targets[@]}"; do
  cat "$dir/fuzz-run/$target/report"
  grep -q ' ok$' "$dir/fuzz-run/$target/report" || {
    failed=1
    tail -n 30 "$dir/fuzz-run/$target/log"
  }
done
step_done
exit "$failed"
