#!/usr/bin/env bash
# Preemption → requeue → resume, for real under a local Slurm (daemons stopped by their process
# ids): a 2-task pretraining job (launch/slurm/pretrain.sbatch) writes periodic checkpoints; once
# the first one exists the test sends the preemption warning to the batch shell
# (`scancel --signal=USR1 --batch`, what `--signal=B:USR1@120` does before the time limit). The
# step saves and exits, the script requeues the job, the second start resumes from the newest
# checkpoint (checkpoint.resume = auto) and the job completes at the same final step, without
# training step 1 again.
#   test_slurm_preempt_resume.sh SOURCE_DIR TRIDENT_BINARY
set -euo pipefail
source_dir=$1
trident=$2
# shellcheck source=tests/launch/slurm_test_lib.sh
source "$(dirname "$0")/slurm_test_lib.sh"
start_test_cluster "$source_dir" 4

# Steps of 32 × 64 tokens: long enough that the warning lands well before the end even on an
# idle machine (the first checkpoint comes at step 10 of 120), short enough under load.
steps=120
every=10
ckpt=$work/run/checkpoints
id=$(timeout 30 sbatch --parsable --output="$work/job-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/run" \
  "$source_dir/launch/slurm/pretrain.sbatch" --config tiny --set parallel.dp=2 \
  --set train.steps=$steps --set train.global_batch=32 --set train.seq_len=64 \
  --set train.log_every=20 --set checkpoint.every=$every)
id=${id%%;*}
log=$work/job-$id.out
echo "job $id: $steps steps, a checkpoint every $every"

echo "== wait for the first checkpoint"
first_checkpoint=$(wait_for_first_checkpoint "$id" "$ckpt" "$log")
echo "first checkpoint: $first_checkpoint"

echo "== preemption warning to the batch shell"
timeout 10 scancel --signal=USR1 --batch "$id"
state=$(wait_for_job "$id" 480)
echo "--- job log without the progress lines"
grep -vE "step +[0-9]+/|checkpoint saved" "$log" || true
[ "$state" = COMPLETED ] || { cat "$log"; fail "the job ended $state"; }
restarts=$(job_field "$id" Restarts)
[ "${restarts:-0}" -ge 1 ] || fail "the job was not requeued (Restarts=$restarts)"
grep -q "preemption warning" "$log" || fail "the batch shell did not see the warning"
grep -q "requeueing" "$log" || fail "the script did not requeue the job"
grep -q "(start 2)" "$log" || fail "the job did not start a second time"
# The second start must resume: step 1 is trained exactly once over both starts.
first_steps=$(grep -c "step     1/$steps " "$log" || true)
[ "$first_steps" -eq 1 ] || fail "step 1 was trained $first_steps times: the second start did not resume"
second_start=$(sed -n '/(start 2)/,$p' "$log")
grep -qi "resum" <<<"$second_start" || fail "the second start does not say it resumed"
grep -q "trained .* steps\|step *$steps/$steps" <<<"$second_start" ||
  fail "the second start did not finish training"
grep -q "step *$steps/$steps " <<<"$second_start" || fail "the job did not reach step $steps"
last_step=$(grep '"loss"' "$work/run/metrics.jsonl" | tail -1 | sed 's/.*"step":\([0-9]*\).*/\1/')
[ "$last_step" = "$steps" ] || fail "the last metrics record is step $last_step, expected $steps"
echo "PASS: preempted at a checkpoint, requeued (Restarts=$restarts), resumed, finished at step $steps"
