# shellcheck shell=bash
# The sanitizer variants (sourced by test.sh and fuzz.sh): where each builds, what it builds and
# which tests it runs. docs/hardening.md has the reasons.
#   address: clang, ASan + UBSan (any UB fatal) + libFuzzer coverage, -O1, in build-asan/;
#            every test target; runs the unit tests and the multi-rank tests of up to 4 ranks.
#   thread:  clang, TSan, -O1, in build-tsan/; the targets of the threaded tests only.

sanitizer_build_dir() {
  case "$1" in
    address) echo "${TRIDENT_ASAN_BUILD_DIR:-build-asan}" ;;
    thread) echo "${TRIDENT_TSAN_BUILD_DIR:-build-tsan}" ;;
  esac
}

# The tests each variant runs, as a ctest label expression (-L) and an exclusion (-LE).
#  address: everything but the 6- and 8-rank tests (named *np6*, *np8*), the Python reference,
#           the golden comparison and the benchmark checks against PyTorch (labels reference,
#           golden: they test PyTorch against Trident's plain build), CUDA
#           (no device), Slurm, and the long killed-and-resumed run (the same jobs run in the
#           plain suite). With TRIDENT_SANITIZE_SCOPE=ci (.ci/run) also without the tests
#           labelled sanitizer_long: the multi-rank sweeps that take minutes each under ASan on
#           2 cores (tests/CMakeLists.txt lists them and their times).
#  thread:  the tests labelled tsan (tests/CMakeLists.txt): communication, expert parallel,
#           pipeline and the step engine (dp, train) of up to 4 ranks, the threaded parts.
sanitizer_ctest_args() {
  case "$1" in
    address)
      local long=""
      if [ "${TRIDENT_SANITIZE_SCOPE:-all}" = ci ]; then long="|sanitizer_long"; fi
      echo "-LE reference|cuda|slurm|golden|long|slow$long -E np6|np8" ;;
    thread) echo "-L tsan" ;;
  esac
}

# The build targets behind those tests (thread: only these are built); TRIDENT_ASAN_TARGETS
# narrows the address build (scripts/fuzz.sh builds only the fuzz targets).
sanitizer_targets() {
  case "$1" in
    address) echo "${TRIDENT_ASAN_TARGETS:-all}" ;;
    thread) echo "tsan_suite" ;;
  esac
}

sanitizer_build() {
  local kind=$1 dir
  dir=$(sanitizer_build_dir "$kind")
  local fuzz=OFF
  [ "$kind" = address ] && fuzz=ON
  TRIDENT_BUILD_DIR=$dir TRIDENT_CUDA=OFF TRIDENT_BUILD_TARGETS=$(sanitizer_targets "$kind") \
    bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
      -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTRIDENT_WERROR=OFF \
      -DTRIDENT_BUILD_BENCHMARKS=OFF -DTRIDENT_SANITIZE="$kind" -DTRIDENT_FUZZ="$fuzz"
}

# The runtime options: findings are fatal and name the suppressions file that was read.
sanitizer_environment() {
  local kind=${1:-address} supp=$TRIDENT_ROOT/tests/sanitizers
  if [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
    export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
  fi
  # Open MPI's and PMIx's components stay loaded after finalize, so that reports through them
  # have module names. Leak checking is set per pass (sanitizer_test).
  export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
  export ASAN_OPTIONS="abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
  # TSan: the libraries it cannot see into (Open MPI, OpenBLAS, libomp) are not instrumented, so
  # their interceptors count only when called from Trident's code (ignore_noninstrumented_modules,
  # as LLVM recommends with Archer); Archer, LLVM's OpenMP tool, tells TSan where OpenMP's
  # fork, join, barriers and locks order the threads of a parallel region.
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:report_signal_unsafe=0:ignore_noninstrumented_modules=1"
  local archer=/usr/lib/llvm-14/lib/libarcher.so
  if [ "$kind" = thread ] && [ -f "$archer" ]; then export OMP_TOOL_LIBRARIES=$archer; fi
}

sanitizer_test() {
  local kind=$1 dir
  shift
  dir=$(sanitizer_build_dir "$kind")
  allow_mpi_as_root
  sanitizer_environment "$kind"
  # shellcheck disable=SC2046  # the label expressions are several words on purpose
  set -- $(sanitizer_ctest_args "$kind") "$@"
  if [ "$kind" != address ]; then
    ctest --test-dir "$dir" --output-on-failure -j "${TRIDENT_TEST_JOBS:-2}" "$@"
    return
  fi
  # Two passes. The unit tests (label unit: single-process gtest cases) run with LeakSanitizer.
  # Every process that starts MPI runs without it: Open MPI keeps what MPI_Init allocates until
  # exit by design, and ASan's fast unwinder cannot follow those allocations' stacks through the
  # uninstrumented library to a frame a suppression could name; the slow unwinder can, but
  # makes every allocation of a multi-rank test 4 to 20 times slower.
  local status=0
  ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=1" \
    ctest --test-dir "$dir" --output-on-failure -j "${TRIDENT_TEST_JOBS:-2}" -L unit "$@" ||
    status=$?
  # The second pass's exclusion adds unit to the first argument pair's (-LE).
  local exclude="$2|unit"
  shift 2
  ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
    ctest --test-dir "$dir" --output-on-failure -j "${TRIDENT_TEST_JOBS:-2}" -LE "$exclude" \
    "$@" || status=$?
  return "$status"
}
