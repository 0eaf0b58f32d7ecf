#!/usr/bin/env bash
# Sets the machine up, builds, and runs the main job end to end. Outputs go to runs/demo/.
#   TRIDENT_SKIP_SETUP=1   skip the package check    TRIDENT_DEMO_RANKS=n   MPI ranks (default 2)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$TRIDENT_ROOT"
summary_on_exit

step setup; run_setup; step_done
step build; bash scripts/build.sh; step_done

trident=$TRIDENT_BUILD_DIR/launch/trident
run_dir=$TRIDENT_ROOT/runs/demo
ranks=${TRIDENT_DEMO_RANKS:-2}
mkdir -p "$run_dir"
allow_mpi_as_root

# on_ranks command...: runs a command on $ranks MPI ranks of this machine.
on_ranks() {
  mpirun -np "$ranks" "$@"
}

# --------------------------------------------------------------------------------------------
# The main job: pretrain the `small` DeepSeek-V3-shaped model (MLA, 16 routed + 1 shared
# experts with grouped sigmoid routing, MTP) on the built-in arithmetic task, print the loss
# falling, evaluate on held-out problems, export the weights and plot the run.
# --------------------------------------------------------------------------------------------
main_job() {
  "$trident" pretrain --config small ${TRIDENT_DEMO_SET:-} \
      --metrics "$run_dir/pretrain.jsonl" --tensorboard "$run_dir/tensorboard" \
      --save-hf "$run_dir/small-hf"
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 launch/plots/loss_curve.py "$run_dir/pretrain.jsonl" "$run_dir/pretrain.png" \
        --title "trident pretrain --config small"
  fi
}

step demo; main_job; step_done

echo "demo outputs are in ${run_dir#"$TRIDENT_ROOT"/}/"
