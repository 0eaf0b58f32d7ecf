# shellcheck shell=bash
# Sourced by the Slurm tests: skips (exit 77) where Slurm is not installed, starts a local
# controller and node daemon (launch/slurm/local_cluster.sh) in a temporary directory, and stops
# them by their process ids however the test ends.
#   source slurm_test_lib.sh; start_test_cluster SOURCE_DIR CPUS   # sets $work, SLURM_CONF
for tool in slurmctld slurmd sbatch scontrol scancel; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not installed (scripts/setup.sh installs slurmctld slurmd slurm-client)"
    exit 77
  fi
done

fail() { echo "FAIL: $*"; exit 1; }

start_test_cluster() {
  local source_dir=$1 cpus=$2 start_line
  work=$(mktemp -d)
  test_cluster_dir=$work/cluster
  test_cluster_script=$source_dir/launch/slurm/local_cluster.sh
  # Ports derived from the process id so concurrent test runs do not collide.
  export TRIDENT_SLURMCTLD_PORT=$((20000 + ($$ % 5000) * 2))
  export TRIDENT_SLURMD_PORT=$((TRIDENT_SLURMCTLD_PORT + 1))
  trap stop_test_cluster EXIT
  if ! start_line=$(timeout 60 "$test_cluster_script" start "$test_cluster_dir" "$cpus"); then
    echo "FAIL: the local Slurm cluster did not start; daemon logs:"
    tail -n 20 "$test_cluster_dir"/log/*.log 2>/dev/null || true
    exit 1
  fi
  eval "$start_line"
  # What every job needs: Open MPI as root under srun, the checkout for the shared helpers.
  # shellcheck disable=SC2034  # used by the tests that source this file
  job_env="ALL,TRIDENT_HOME=$source_dir,OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
  cd "$work" || exit 1
}

stop_test_cluster() {
  # Jobs first (this private cluster runs only this test's jobs), so no step outlives slurmd.
  if [ -n "${SLURM_CONF:-}" ]; then
    local jobs
    jobs=$(timeout 5 squeue -h -o %A 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$jobs" ] && { timeout 10 scancel $jobs 2>/dev/null || true; }
    for _ in $(seq 1 20); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  "$test_cluster_script" stop "$test_cluster_dir" || true
  rm -rf "$work"
}

# job_field ID FIELD: one field of `scontrol show job` (JobState, Restarts, ExitCode, ...).
job_field() {
  timeout 10 scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# wait_for_first_checkpoint ID DIR LOG: until a complete step_*.h5 appears in DIR (at most
# 120 s) while job ID runs; prints its path, or fails showing LOG (on stderr: it runs inside
# a command substitution).
wait_for_first_checkpoint() {
  local id=$1 dir=$2 log=$3 found="" state
  for _ in $(seq 1 1200); do
    found=$(find "$dir" -mindepth 1 -maxdepth 1 -name 'step_*.h5' 2>/dev/null | head -1 || true)
    [ -n "$found" ] && { echo "$found"; return 0; }
    state=$(job_field "$id" JobState)
    [ "$state" = RUNNING ] || [ "$state" = PENDING ] ||
      { cat "$log" >&2; echo "FAIL: the job ended ($state) before writing a checkpoint" >&2; exit 1; }
    sleep 0.1
  done
  tail -20 "$log" >&2
  echo "FAIL: no checkpoint in $dir after 120 s" >&2
  exit 1
}

# wait_for_job ID SECONDS: until the job is in a final state; prints that state.
wait_for_job() {
  local id=$1 deadline=$((SECONDS + $2)) state
  while [ $SECONDS -lt "$deadline" ]; do
    state=$(job_field "$id" JobState)
    case "$state" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)
        echo "$state"; return 0 ;;
    esac
    sleep 1
  done
  echo "TIMEOUT_WAITING"
}
