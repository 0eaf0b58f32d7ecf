# shellcheck shell=bash
# Shared by the scripts in this folder (sourced, not run): the repository root, step timing,
# and the Open MPI settings that let multi-rank programs run as root on one machine.

TRIDENT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TRIDENT_BUILD_DIR=${TRIDENT_BUILD_DIR:-build}
export TRIDENT_ROOT TRIDENT_BUILD_DIR

# step NAME: prints a banner and remembers when the step began; step_done records its duration
# for the summary.
step() {
  TRIDENT_STEP_NAME=$1
  TRIDENT_STEP_START=$SECONDS
  printf '\n==> %s\n' "$TRIDENT_STEP_NAME"
}
step_done() {
  local took=$((SECONDS - TRIDENT_STEP_START))
  TRIDENT_STEP_TIMES+=("$(printf '%-8s %4ds' "$TRIDENT_STEP_NAME" "$took")")
}
TRIDENT_STEP_TIMES=()

# summary_on_exit: when the script ends, however it ends, prints each step's time, the
# outcome and the total elapsed time.
summary_on_exit() {
  TRIDENT_STARTED=$SECONDS
  trap print_summary EXIT
}
print_summary() {
  local status=$?
  printf '\n==> summary\n'
  if [ ${#TRIDENT_STEP_TIMES[@]} -gt 0 ]; then printf '  %s\n' "${TRIDENT_STEP_TIMES[@]}"; fi
  if [ "$status" -eq 0 ]; then
    echo "  PASSED in $((SECONDS - TRIDENT_STARTED))s"
  else
    echo "  FAILED during '${TRIDENT_STEP_NAME:-start}' (exit $status)" \
         "after $((SECONDS - TRIDENT_STARTED))s"
  fi
}

# Open MPI refuses to run as root and to place more ranks than cores unless told to; the tests
# and the demo start several ranks on machines with few cores.
allow_mpi_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  export OMPI_MCA_rmaps_base_oversubscribe=1
}

# on_ranks n command...: runs a command on n MPI ranks of this machine, one thread each unless
# OMP_NUM_THREADS says otherwise (the ranks share the cores).
on_ranks() {
  local n=$1
  shift
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} mpirun -np "$n" -x OMP_NUM_THREADS "$@"
}

# begin_job: the start of the scripts that run a job (demo.sh, r1-zero.sh, distill.sh): from
# the repository root, with the step summary at exit, set up and built, mpirun allowed as
# root; `trident` names the binary.
begin_job() {
  cd "$TRIDENT_ROOT" || exit 1
  summary_on_exit
  setup_and_build
  allow_mpi_as_root
  # shellcheck disable=SC2034  # read by the script that called begin_job
  trident=$TRIDENT_BUILD_DIR/launch/trident
}

# The first two steps of the entry scripts (demo.sh, test.sh): install what is missing, then
# build.
setup_and_build() {
  step setup; run_setup; step_done
  step build; bash "$TRIDENT_ROOT/scripts/build.sh"; step_done
}

# Runs setup.sh unless TRIDENT_SKIP_SETUP=1 (for machines that are known to be ready).
run_setup() {
  if [ "${TRIDENT_SKIP_SETUP:-0}" = 1 ]; then
    echo "setup skipped (TRIDENT_SKIP_SETUP=1)"
  else
    bash "$TRIDENT_ROOT/scripts/setup.sh"
  fi
}
