#!/usr/bin/env bash
# Distillation at small scale, as in DeepSeek-R1's distilled models: a smaller student learns
# from completions sampled from a GRPO-trained teacher, beside the same student trained on the
# ground-truth solutions and the same student improved with GRPO. Builds first; outputs go to
# runs/distill/.
#   TRIDENT_SKIP_SETUP=1          skip the package check
#   TRIDENT_DISTILL_TEACHER=path  the teacher: an HF directory or a checkpoint of a GRPO-trained
#                                 `small` model (default runs/demo/grpo-hf; scripts/demo.sh
#                                 makes it when it is missing)
#   TRIDENT_DISTILL_SET="--set train.seed=7"   overrides for every student run
#   TRIDENT_DISTILL_PROMPTS=n     prompts sampled from the teacher (default 4096)
#   TRIDENT_DISTILL_STEPS=n       SFT steps of each student (default 600)
#   TRIDENT_DISTILL_GRPO_STEPS=n  GRPO steps of the third student (default 12: about the wall
#                                 time of a 600-step SFT, see docs/grpo.md#distillation)
#   TRIDENT_DISTILL_DIR=dir       where the outputs go (default runs/distill)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
begin_job

run_dir=${TRIDENT_DISTILL_DIR:-$TRIDENT_ROOT/runs/distill}
teacher=${TRIDENT_DISTILL_TEACHER:-$TRIDENT_ROOT/runs/demo/grpo-hf}
prompts=${TRIDENT_DISTILL_PROMPTS:-4096}
sft_steps=${TRIDENT_DISTILL_STEPS:-600}
grpo_steps=${TRIDENT_DISTILL_GRPO_STEPS:-12}
ranks=2
# The prompts come from the train split of a seed no other run of the recipe trains on; every
# evaluation uses the held-out split of the preset's seed (disjoint from every train split).
data_seed=4242
eval_seed=1234
mkdir -p "$run_dir"

# --------------------------------------------------------------------------------------------
# The recipe (docs/grpo.md#distillation):
#   1. the teacher: the main job's GRPO-trained `small` model (scripts/demo.sh), evaluated;
#   2. its data: `trident sample-sft` samples 4 completions of each of $prompts train prompts at
#      the GRPO temperature and keeps the shortest correct, well-formatted one (best-of-4);
#   3. three students of configs/small-student.textproto (half the layers and the routed
#      experts), each from the same random initialisation:
#        distilled     SFT for $sft_steps steps on the teacher's completions;
#        ground truth  SFT for $sft_steps steps on the reference worked solutions of the same
#                      prompts (`trident data --synthetic`, every prompt, the teacher's
#                      failures included);
#        + GRPO        the ground-truth student improved with GRPO (the preset's rule rewards)
#                      for about the wall time of the distilled student's SFT;
#   4. a held-out greedy evaluation of each (256 problems) and a table of the results.
# --------------------------------------------------------------------------------------------

# timed NAME command...: runs a command and writes its wall time in seconds to NAME.seconds.
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  echo $((SECONDS - start)) > "$run_dir/$name.seconds"
}

# evaluate NAME HF_DIR: the held-out greedy accuracy and format rate, as JSON in NAME.eval.json.
evaluate() {
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$trident" eval --hf-dir "$2" --count 256 \
      --seed "$eval_seed" | tail -n 1 | tee "$run_dir/$1.eval.json"
}

# student NAME TRAIN_FILE: trains a student by SFT on a token file and exports it.
student() {
  local name=$1 data=$2
  rm -rf "$run_dir/$name-hf" "$run_dir/$name-checkpoints"
  # shellcheck disable=SC2086  # the overrides are several words on purpose
  timed "$name" on_ranks "$ranks" "$trident" pretrain --config small-student \
      --set parallel.dp="$ranks" --set train.mode=sft --set data.train_path="$data" \
      --set train.steps="$sft_steps" ${TRIDENT_DISTILL_SET:-} \
      --metrics "$run_dir/$name.jsonl" --checkpoint-dir "$run_dir/$name-checkpoints" \
      --save-hf "$run_dir/$name-hf"
  evaluate "$name" "$run_dir/$name-hf"
}

teacher_model() {
  if [ ! -e "$teacher" ] && [ -n "${TRIDENT_DISTILL_TEACHER:-}" ]; then
    echo "TRIDENT_DISTILL_TEACHER=$teacher: no such file or directory; give an HF directory" \
        "(config.json + safetensors) or a Trident checkpoint (step_<N>.h5)" >&2
    exit 2
  fi
  if [ ! -e "$teacher" ]; then
    echo "no teacher at $teacher: running the main job (scripts/demo.sh) to make one"
    TRIDENT_SKIP_SETUP=1 bash scripts/demo.sh
  fi
  local teacher_hf=$teacher
  if [ -f "$teacher" ]; then  # a checkpoint file: the evaluation reads an HF directory
    teacher_hf=$run_dir/teacher-hf
    rm -rf "$teacher_hf"
    "$trident" convert --input "$teacher" --output "$teacher_hf"
  fi
  evaluate teacher "$teacher_hf"
}

teacher_data() {
  rm -f "$run_dir"/teacher.bin "$run_dir"/teacher.jsonl "$run_dir"/teacher.bin.summary.json \
      "$run_dir"/ground-truth.bin
  timed sample on_ranks "$ranks" "$trident" sample-sft --init "$teacher" \
      --output "$run_dir/teacher.bin" --jsonl "$run_dir/teacher.jsonl" \
      --prompts "$prompts" --first 0 --seed "$data_seed" --samples 4 --temperature 0.7 \
      --max-new-tokens 64 --keep 1
  "$trident" data --synthetic arithmetic --count "$prompts" --digits 2 --seed "$data_seed" \
      --sft --output "$run_dir/ground-truth.bin"
}

students() {
  student distilled "$run_dir/teacher.bin"
  student ground-truth "$run_dir/ground-truth.bin"
  rm -rf "$run_dir/grpo-checkpoints" "$run_dir/grpo-hf"
  # shellcheck disable=SC2086
  timed grpo on_ranks "$ranks" "$trident" grpo --config small-student \
      --init "$run_dir/ground-truth-hf" --set parallel.dp="$ranks" \
      --set grpo.steps="$grpo_steps" --set grpo.eval_prompts=0 ${TRIDENT_DISTILL_SET:-} \
      --metrics "$run_dir/grpo.jsonl" --checkpoint-dir "$run_dir/grpo-checkpoints" \
      --save-hf "$run_dir/grpo-hf"
  evaluate grpo "$run_dir/grpo-hf"
}

report() {
  /usr/bin/python3 launch/plots/distill_summary.py "$run_dir" | tee "$run_dir/summary.md"
}

step teacher; teacher_model; step_done
step data; teacher_data; step_done
step students; students; step_done
step report; report; step_done
echo "distill outputs are in ${run_dir#"$TRIDENT_ROOT"/}/"
