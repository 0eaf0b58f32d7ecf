#!/usr/bin/env bash
# Sets the machine up, builds, and runs the whole test suite; exits non-zero on any failure.
# Extra arguments go to ctest, e.g. `bash scripts/test.sh -L core` runs the tests labelled core.
# Tests labelled `slow` (the 8-rank layout sweeps) are left out unless TRIDENT_SLOW_TESTS=1.
#   TRIDENT_SKIP_SETUP=1   skip the package check   TRIDENT_TEST_JOBS=n   parallel tests (2)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TRIDENT_ROOT"
summary_on_exit

setup_and_build

step test
allow_mpi_as_root
exclude_slow=(-LE slow)
if [ "${TRIDENT_SLOW_TESTS:-0}" = 1 ]; then exclude_slow=(); fi
ctest --test-dir "$TRIDENT_BUILD_DIR" --output-on-failure -j "${TRIDENT_TEST_JOBS:-2}" \
  "${exclude_slow[@]}" "$@"
step_done
