#!/usr/bin/env bash
# Sets the machine up, builds, and runs the whole test suite; exits non-zero on any failure.
# Extra arguments go to ctest, e.g. `bash scripts/test.sh -L core` runs the tests labelled core.
# Tests labelled `slow` (the 8-rank layout sweeps) are left out unless TRIDENT_SLOW_TESTS=1.
#   --sanitize address   AddressSanitizer + UndefinedBehaviorSanitizer build (clang, in
#                        build-asan/, with libFuzzer coverage so scripts/fuzz.sh reuses it): the
#                        unit tests and the multi-rank tests of up to 4 ranks
#   --sanitize thread    ThreadSanitizer build (build-tsan/): the communication, expert-parallel,
#                        pipeline and step-engine tests
#   TRIDENT_SKIP_SETUP=1   skip the package check   TRIDENT_TEST_JOBS=n   parallel tests (2)
# docs/hardening.md says what each variant runs and why.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TRIDENT_ROOT"
summary_on_exit

sanitize=""
if [ "${1:-}" = "--sanitize" ]; then
  sanitize=${2:-}
  shift 2 || shift 1
fi

case "$sanitize" in
  "")
    setup_and_build
    step test
    allow_mpi_as_root
    exclude_slow=(-LE slow)
    if [ "${TRIDENT_SLOW_TESTS:-0}" = 1 ]; then exclude_slow=(); fi
    ctest --test-dir "$TRIDENT_BUILD_DIR" --output-on-failure -j "${TRIDENT_TEST_JOBS:-2}" \
      "${exclude_slow[@]}" "$@"
    step_done
    ;;
  address|thread)
    # shellcheck source=scripts/sanitize.sh
    source scripts/sanitize.sh
    step setup; run_setup; step_done
    step "build-$sanitize"; sanitizer_build "$sanitize"; step_done
    step "test-$sanitize"; sanitizer_test "$sanitize" "$@"; step_done
    ;;
  *)
    echo "test.sh: --sanitize '$sanitize': valid values are address and thread" >&2
    exit 2
    ;;
esac
