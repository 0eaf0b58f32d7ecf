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
# The main job:
#   1. cold start: a short SFT of the `small` DeepSeek-V3-shaped model (MLA, 16 routed + 1 shared
#      experts with grouped sigmoid routing, MTP) on the built-in arithmetic task, data-parallel
#      over $ranks MPI ranks with bucketed gradient reduction ($sft_steps steps; fewer leave
#      more headroom for GRPO: 450 steps give about 36-41% held-out accuracy, 600 about 58%);
#   2. GRPO from those weights (rule rewards: accuracy + format; the settings are the `grpo`
#      block of configs/small.textproto), data-parallel over the same ranks, printing held-out
#      greedy accuracy on 256 eval problems before and after;
#   3. plots of both runs.
# --------------------------------------------------------------------------------------------
sft_steps=${TRIDENT_DEMO_SFT_STEPS:-600}
main_job() {
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} on_ranks -x OMP_NUM_THREADS \
      "$trident" pretrain --config small --set parallel.dp="$ranks" --set train.mode=sft \
      --set train.steps="$sft_steps" ${TRIDENT_DEMO_SET:-} \
      --metrics "$run_dir/pretrain.jsonl" --tensorboard "$run_dir/tensorboard" \
      --checkpoint-dir "$run_dir/sft-checkpoints" --save-hf "$run_dir/sft-hf"
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} on_ranks -x OMP_NUM_THREADS \
      "$trident" grpo --config small --init-hf "$run_dir/sft-hf" --set parallel.dp="$ranks" \
      ${TRIDENT_DEMO_GRPO_SET:-} \
      --metrics "$run_dir/grpo.jsonl" --checkpoint-dir "$run_dir/grpo-checkpoints" \
      --save-hf "$run_dir/grpo-hf"
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 launch/plots/loss_curve.py "$run_dir/pretrain.jsonl" "$run_dir/pretrain.png" \
        --title "trident pretrain --config small (SFT, dp=$ranks)"
    /usr/bin/python3 launch/plots/grpo_curve.py "$run_dir/grpo.jsonl" "$run_dir/grpo.png" \
        --title "trident grpo --config small (dp=$ranks)"
  fi
}

step demo; main_job; step_done

echo "demo outputs are in ${run_dir#"$TRIDENT_ROOT"/}/"
