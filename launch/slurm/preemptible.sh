# shellcheck shell=bash
# Sourced by the job scripts in launch/slurm/: runs one srun step so that a preemption warning
# turns into save → requeue → resume instead of lost work.
#
#   run_preemptible srun --mpi=pmix trident pretrain ...
#
# Slurm sends the warning to this batch shell (`#SBATCH --signal=B:USR1@SECONDS`, or by hand
# `scancel --signal=USR1 --batch JOB`). The shell forwards USR1 to srun, which forwards it to
# every task; trident saves a checkpoint and exits; the script then requeues the job
# (`scontrol requeue`, the job keeps its id and run directory) and the next start resumes from
# the newest checkpoint (checkpoint.resume = auto). Without the warning the step's exit status
# is returned unchanged.

trident_preempted=0
trident_step_pid=""

trident_on_warning() {
  trident_preempted=1
  echo "trident job ${SLURM_JOB_ID:-?}: preemption warning, asking the step to save and exit"
  if [ -n "$trident_step_pid" ]; then
    kill -USR1 "$trident_step_pid" 2>/dev/null || true
  fi
}

run_preemptible() {
  "$@" &
  trident_step_pid=$!
  trap trident_on_warning USR1
  local status=0
  while :; do
    status=0
    wait "$trident_step_pid" || status=$?
    # A signal interrupts `wait` (status > 128) while the step still runs: wait again.
    kill -0 "$trident_step_pid" 2>/dev/null || break
  done
  trap - USR1
  if [ "$trident_preempted" -eq 1 ]; then
    echo "trident job ${SLURM_JOB_ID:-?}: step ended with status $status after the warning; requeueing"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
  fi
  return "$status"
}
