#!/usr/bin/env bash
# R1-Zero at small scale: a base model pretrained on plain text only, then GRPO with the rule
# rewards straight from it, no SFT in between. Builds first; outputs go to runs/r1-zero/.
#   TRIDENT_SKIP_SETUP=1       skip the package check
#   TRIDENT_R1Z_RANKS=n        ranks of both phases (default 2, data parallel)
#   TRIDENT_R1Z_SET="--set train.seed=7"         overrides for both phases (the seed: both)
#   TRIDENT_R1Z_PRETRAIN_SET / TRIDENT_R1Z_GRPO_SET   overrides for one phase
#   TRIDENT_R1Z_DIR=dir        where the outputs go (default runs/r1-zero)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_job

run_dir=${TRIDENT_R1Z_DIR:-$TRIDENT_ROOT/runs/r1-zero}
ranks=${TRIDENT_R1Z_RANKS:-2}
mkdir -p "$run_dir"

# --------------------------------------------------------------------------------------------
# The recipe (configs/r1-zero.textproto; docs/grpo.md#r1-zero):
#   1. pretraining (train.mode "pretrain": loss on every token) of the `small` model on
#      data.task "arithmetic_prose": each document is a problem ("58+67=") and its worked
#      solution in prose; only data.prose_tagged_share (4%) of them are in the
#      <think>…</think><answer>…</answer> form the rewards ask for;
#   2. GRPO from the last pretraining checkpoint with the rule rewards (accuracy + 0.5 ×
#      format) on the same prompts, with a greedy held-out evaluation of 256 problems before
#      (the base model's accuracy and format rate) and after;
#   3. a summary of both evaluations and of the completion length, and a plot of the curves.
# --------------------------------------------------------------------------------------------
pretrain() {
  rm -rf "$run_dir/pretrain-checkpoints" "$run_dir/grpo-checkpoints" "$run_dir/grpo-hf"
  # shellcheck disable=SC2086  # the overrides are several words on purpose
  on_ranks "$ranks" "$trident" pretrain --config r1-zero --set parallel.dp="$ranks" \
      ${TRIDENT_R1Z_SET:-} ${TRIDENT_R1Z_PRETRAIN_SET:-} \
      --metrics "$run_dir/pretrain.jsonl" --checkpoint-dir "$run_dir/pretrain-checkpoints"
}

grpo() {
  local base
  base=$(ls -v "$run_dir"/pretrain-checkpoints/step_*.h5 | tail -n 1)
  # shellcheck disable=SC2086
  on_ranks "$ranks" "$trident" grpo --config r1-zero --init "$base" --set parallel.dp="$ranks" \
      ${TRIDENT_R1Z_SET:-} ${TRIDENT_R1Z_GRPO_SET:-} \
      --metrics "$run_dir/grpo.jsonl" --checkpoint-dir "$run_dir/grpo-checkpoints" \
      --save-hf "$run_dir/grpo-hf"
}

report() {
  /usr/bin/python3 launch/plots/r1_zero_summary.py "$run_dir/grpo.jsonl" | tee "$run_dir/summary.txt"
  if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    /usr/bin/python3 launch/plots/grpo_curve.py "$run_dir/grpo.jsonl" "$run_dir/grpo.png" \
        --title "R1-Zero: GRPO from the prose-pretrained base (dp=$ranks)"
  fi
}

echo "load average at the start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
step pretrain; pretrain; step_done
step grpo; grpo; step_done
step report; report; step_done
echo "load average at the end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "r1-zero outputs are in ${run_dir#"$TRIDENT_ROOT"/}/"
