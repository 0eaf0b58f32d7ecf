#!/usr/bin/env bash
# Real Slurm (local controller and node daemon, stopped by their process ids): GRPO jobs from
# a Hugging Face directory and from a Trident checkpoint with `sbatch --wait`, and an array job of 2 indices from a sweep file
# (launch/slurm/sweep.sbatch), each index training its own layout in its own run directory.
#   test_slurm_grpo_sweep.sh SOURCE_DIR TRIDENT_BINARY
set -euo pipefail
source_dir=$1
trident=$2
# shellcheck source=tests/launch/slurm_test_lib.sh
source "$(dirname "$0")/slurm_test_lib.sh"
start_test_cluster "$source_dir" 4

echo "== GRPO from an HF directory"
"$trident" pretrain --config tiny --set train.steps=2 --save-hf "$work/sft-hf" \
  --checkpoint-dir "$work/sft-ckpt" > "$work/sft.log" 2>&1 ||
  { cat "$work/sft.log"; fail "could not make the starting weights"; }
timeout 150 sbatch --wait --output="$work/grpo-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/grpo,TRIDENT_INIT=$work/sft-hf" \
  "$source_dir/launch/slurm/grpo.sbatch" --config tiny --set grpo.steps=2 ||
  { cat "$work"/grpo-*.out; fail "the GRPO job failed"; }
log=$(cat "$work"/grpo-*.out)
echo "$log" | tail -3
grep -q "initialised from HF weights in $work/sft-hf" <<<"$log" ||
  fail "GRPO did not start from the given weights"
grep -q "grpo step 2/2" <<<"$log" || fail "GRPO did not run its 2 steps"
[ -f "$work/grpo/hf/config.json" ] && [ -f "$work/grpo/hf/model.safetensors" ] ||
  fail "the trained policy was not exported to the run directory"
[ "$(grep -c '"step"' "$work/grpo/metrics.jsonl")" -ge 2 ] || fail "GRPO metrics missing"
ls "$work"/grpo/checkpoints/*.h5 > /dev/null 2>&1 || fail "no GRPO policy checkpoint in the run directory"

echo "== GRPO from a Trident checkpoint"
checkpoint=$(ls "$work"/sft-ckpt/step_*.h5 | tail -1)
timeout 150 sbatch --wait --output="$work/grpo-h5-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/grpo-h5,TRIDENT_INIT=$checkpoint" \
  "$source_dir/launch/slurm/grpo.sbatch" --config tiny --set grpo.steps=1 ||
  { cat "$work"/grpo-h5-*.out; fail "the GRPO job from a checkpoint failed"; }
grep -q "policy initialised from checkpoint $checkpoint" "$work"/grpo-h5-*.out ||
  fail "GRPO did not start from the checkpoint"
grep -q "grpo step 1/1" "$work"/grpo-h5-*.out || fail "GRPO from the checkpoint did not train"

echo "== a job without TRIDENT_INIT fails, naming it"
if timeout 60 sbatch --wait --output="$work/noinit-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/noinit" \
  "$source_dir/launch/slurm/grpo.sbatch" --config tiny > /dev/null; then
  fail "GRPO without starting weights exited 0"
fi
grep -q "TRIDENT_INIT" "$work"/noinit-*.out || fail "the error does not name TRIDENT_INIT"

echo "== an array job: 2 layouts from a sweep file"
cat > "$work/layouts.txt" <<'SWEEP'
# two layouts of 2 ranks
--set parallel.dp=2

--set parallel.dp=1 --set parallel.tp=2
SWEEP
submitted=$(timeout 30 sbatch --parsable --array=0-1 --ntasks=2 \
  --output="$work/sweep-%A_%a.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/sweep,TRIDENT_SWEEP=$work/layouts.txt" \
  "$source_dir/launch/slurm/sweep.sbatch" --config tiny --set train.steps=3)
array_id=${submitted%%;*}
echo "array job $array_id"
for index in 0 1; do
  state=$(wait_for_job "${array_id}_$index" 150)
  out=$(ls "$work"/sweep-"${array_id}"_"$index".out)
  [ "$state" = COMPLETED ] || { cat "$out"; fail "array index $index ended $state"; }
  grep -q "trained 3 steps" "$out" || fail "array index $index did not finish training"
  [ "$(grep -c '"loss"' "$work/sweep/$index/metrics.jsonl")" -eq 3 ] ||
    fail "array index $index: expected 3 metric records in its own run directory"
done
# Index 0 is data parallel (dp 0 and 1), index 1 tensor parallel (tp 0 and 1).
grep -q "^--set parallel.dp=2$" "$work/sweep/0/setting.txt" || fail "index 0 ran the wrong setting"
grep -q "^--set parallel.dp=1 --set parallel.tp=2$" "$work/sweep/1/setting.txt" ||
  fail "index 1 ran the wrong setting"
grep -q "^trident layout: rank=1 .* dp=1 tp=0 " "$work/sweep-${array_id}_0.out" ||
  fail "index 0 was not data parallel"
grep -q "^trident layout: rank=1 .* dp=0 tp=1 " "$work/sweep-${array_id}_1.out" ||
  fail "index 1 was not tensor parallel"
grep -q "tensor parallel: 2 rank" "$work/sweep-${array_id}_1.out" || fail "index 1 did not use tp 2"

echo "== an index past the end of the sweep file fails, naming the file"
if timeout 60 sbatch --wait --array=5 --output="$work/past-%A_%a.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/past,TRIDENT_SWEEP=$work/layouts.txt" \
  "$source_dir/launch/slurm/sweep.sbatch" --config tiny > /dev/null; then
  fail "array index 5 of a 2-line sweep exited 0"
fi
grep -q "has 2 setting(s)" "$work"/past-*.out || fail "the error does not count the settings"
echo "PASS: GRPO jobs from HF weights and from a checkpoint; 2-index sweep ran one layout per index"
