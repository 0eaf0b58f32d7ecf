#!/usr/bin/env bash
# Sets the machine up, builds, and runs the whole test suite; exits non-zero on any failure.
# Extra arguments go to ctest, e.g. `bash scripts/test.sh -L core` runs the tests labelled core.
#   TRIDENT_SKIP_SETUP=1   skip the package check   TRIDENT_TEST_JOBS=n   parallel tests (2)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TRIDENT_ROOT"
summary_on_exit

step setup; run_setup; step_done
step build; bash scripts/build.sh; step_done

step test
allow_mpi_as_root
ctest --test-dir "$TRIDENT_BUILD_DIR" --output-on-failure -j "${TRIDENT_TEST_JOBS:-2}" "$@"
step_done
