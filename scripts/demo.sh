#!/usr/bin/env bash
# Sets the machine up, builds, and runs the main job end to end. Outputs go to runs/demo/.
#   TRIDENT_SKIP_SETUP=1   skip the package check    TRIDENT_DEMO_RANKS=n   SFT ranks (default 4)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_job

run_dir=$TRIDENT_ROOT/runs/demo
ranks=${TRIDENT_DEMO_RANKS:-4}
grpo_ranks=${TRIDENT_DEMO_GRPO_RANKS:-2}
mkdir -p "$run_dir"

# sft_layout: the SFT's parallel layout on $ranks ranks: pipeline (2 stages) × data × expert
# parallel when $ranks is a multiple of 4, data parallel otherwise.
sft_layout() {
  if [ $((ranks % 4)) -eq 0 ]; then
    echo "--set parallel.pp=2 --set parallel.dp=$((ranks / 2)) --set parallel.ep=2"
  else
    echo "--set parallel.dp=$ranks"
  fi
}

# sft_layout_name: the layout in a few characters, for plot titles (pp=2·dp=2·ep=2).
sft_layout_name() {
  sft_layout | sed 's/--set parallel\.//g; s/ /·/g'
}

# --------------------------------------------------------------------------------------------
# The main job:
#   1. cold start: SFT of the `small` DeepSeek-V3-shaped model (MLA, 16 routed + 1 shared
#      experts with grouped sigmoid routing, MTP) on the built-in arithmetic task over $ranks MPI
#      ranks: 2 pipeline stages (1F1B) × data parallel × expert parallel (ep = 2: each rank of a
#      stage holds 8 of the 16 routed experts and exchanges tokens all-to-all); the 600-step
#      schedule, with a checkpoint at step $sft_init_step, before the cosine decay has settled the
#      model (~58% held-out accuracy there against ~85% at step 600): GRPO's headroom;
#   2. GRPO from that checkpoint (resharded to whole weights; rule rewards: accuracy + format;
#      the settings are the `grpo` block of configs/small.textproto), data-parallel over
#      $grpo_ranks ranks, printing held-out greedy accuracy on 256 eval problems before and
#      after;
#   3. the SFT checkpoint as a Hugging Face directory (for `trident eval` / `generate`) and plots
#      of both runs.
# --------------------------------------------------------------------------------------------
sft_steps=${TRIDENT_DEMO_SFT_STEPS:-600}
sft_init_step=${TRIDENT_DEMO_SFT_INIT_STEP:-540}
main_job() {
  # The demo owns $run_dir and writes every output anew (trident itself never overwrites a
  # checkpoint directory of another run or an existing export).
  rm -rf "$run_dir/sft-checkpoints" "$run_dir/grpo-checkpoints" "$run_dir/sft-hf" \
      "$run_dir/grpo-hf"
  # shellcheck disable=SC2046  # the layout is several words on purpose
  on_ranks "$ranks" "$trident" pretrain --config small $(sft_layout) --set train.mode=sft \
      --set train.steps="$sft_steps" --set checkpoint.every="$sft_init_step" ${TRIDENT_DEMO_SET:-} \
      --metrics "$run_dir/pretrain.jsonl" --tensorboard "$run_dir/tensorboard" \
      --checkpoint-dir "$run_dir/sft-checkpoints"
  local sft_checkpoint=$run_dir/sft-checkpoints/step_$sft_init_step.h5
  "$trident" convert --input "$sft_checkpoint" --output "$run_dir/sft-hf"
  on_ranks "$grpo_ranks" "$trident" grpo --config small --init "$sft_checkpoint" \
      --set parallel.dp="$grpo_ranks" ${TRIDENT_DEMO_GRPO_SET:-} \
      --metrics "$run_dir/grpo.jsonl" --checkpoint-dir "$run_dir/grpo-checkpoints" \
      --save-hf "$run_dir/grpo-hf"
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 launch/plots/loss_curve.py "$run_dir/pretrain.jsonl" "$run_dir/pretrain.png" \
        --title "trident pretrain --config small (SFT, $(sft_layout_name))"
    /usr/bin/python3 launch/plots/grpo_curve.py "$run_dir/grpo.jsonl" "$run_dir/grpo.png" \
        --title "trident grpo --config small (dp=$grpo_ranks, from the SFT checkpoint)"
  fi
}

step demo; main_job; step_done

echo "demo outputs are in ${run_dir#"$TRIDENT_ROOT"/}/"
