#!/usr/bin/env bash
# GRPO preemption → requeue → resume under a local Slurm (daemons stopped by their process ids),
# ending bit for bit where an uninterrupted run ends: a 2-task GRPO job (launch/slurm/grpo.sbatch,
# dp 2 with ZeRO-1, β > 0 so the reference model is saved too) writes periodic checkpoints; once
# the first exists the test sends the preemption warning to the batch shell
# (`scancel --signal=USR1 --batch`). The step saves and exits, the script requeues the job, the
# second start resumes from the newest checkpoint and runs to the end. Its final checkpoint
# (policy, AdamW moments, reference) must equal, tensor by tensor, that of the same GRPO run
# made by mpirun without interruption, and every step must be logged exactly once.
#   test_slurm_grpo_preempt_resume.sh SOURCE_DIR TRIDENT_BINARY
set -euo pipefail
source_dir=$1
trident=$2
# shellcheck source=tests/launch/slurm_test_lib.sh
source "$(dirname "$0")/slurm_test_lib.sh"
start_test_cluster "$source_dir" 4

steps=150
every=10
"$trident" pretrain --config tiny --set train.steps=2 --checkpoint-dir "$work/sft" \
  > "$work/sft.log" 2>&1 || { cat "$work/sft.log"; fail "could not make the starting weights"; }
init=$work/sft/step_2.h5
# Rewards that differ within a group (an untrained model's rule reward is 0 everywhere).
cat > "$work/reward.py" <<'PY'
import json, sys
for line in sys.stdin:
    print(sum(map(ord, json.loads(line)["completion"])) % 5)
PY
grpo_args=(--config tiny --set parallel.dp=2 --set parallel.zero1=true
  --set "grpo.steps=$steps" --set grpo.prompts_per_step=4 --set grpo.group_size=4
  --set grpo.max_new_tokens=8 --set grpo.eval_prompts=0 --set grpo.lr=1e-3
  --set grpo.beta=0.04 --set grpo.ref_refresh_every=7 --set grpo.temperature=1.5
  --set "grpo.reward_command=/usr/bin/python3 $work/reward.py" --set "checkpoint.every=$every")

echo "== the uninterrupted run (mpirun, same layout)"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 400 \
  mpirun -np 2 --oversubscribe "$trident" grpo --init "$init" "${grpo_args[@]}" \
  --checkpoint-dir "$work/straight" > "$work/straight.log" 2>&1 ||
  { tail -20 "$work/straight.log"; fail "the uninterrupted GRPO run failed"; }

echo "== the Slurm job"
ckpt=$work/run/checkpoints
id=$(timeout 30 sbatch --parsable --ntasks=2 --output="$work/job-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/run,TRIDENT_INIT=$init" \
  "$source_dir/launch/slurm/grpo.sbatch" "${grpo_args[@]}")
id=${id%%;*}
log=$work/job-$id.out
first_checkpoint=$(wait_for_first_checkpoint "$id" "$ckpt" "$log")
echo "first checkpoint: $first_checkpoint"
timeout 10 scancel --signal=USR1 --batch "$id"
state=$(wait_for_job "$id" 480)
echo "--- job log without the progress lines"
grep -vE "grpo step +[0-9]+/|checkpoint saved" "$log" || true
[ "$state" = COMPLETED ] || { cat "$log"; fail "the job ended $state"; }
restarts=$(job_field "$id" Restarts)
[ "${restarts:-0}" -ge 1 ] || fail "the job was not requeued (Restarts=$restarts)"
grep -q "(start 2)" "$log" || fail "the job did not start a second time"
second_start=$(sed -n '/(start 2)/,$p' "$log")
grep -q "resumed GRPO from" <<<"$second_start" || fail "the second start did not resume"
stopped_at=$(grep -o "saving a checkpoint after GRPO step [0-9]*" "$log" | grep -o "[0-9]*$" | head -1)
if [ -z "$stopped_at" ] || [ "$stopped_at" -ge "$steps" ]; then
  fail "the first start did not stop early"
fi
logged=$(grep -o '"step":[0-9]*' "$work/run/metrics.jsonl" | sort -t: -k2 -n | uniq -c |
  awk '$1 != 1' | wc -l)
records=$(grep -c '"reward"' "$work/run/metrics.jsonl")
if [ "$records" != "$steps" ] || [ "$logged" != 0 ]; then
  fail "metrics hold $records step records, some repeated ($logged); expected each of $steps once"
fi

/usr/bin/python3 - "$work/straight/step_$steps.h5" "$ckpt/step_$steps.h5" <<'PY'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    groups = ("weights", "optimizer/exp_avg", "optimizer/exp_avg_sq", "reference/weights")
    names = [f"{g}/{n}" for g in groups for n in a[g]]
    differ = [n for n in names if n not in b or not np.array_equal(a[n][()], b[n][()])]
    if differ:
        sys.exit(f"FAIL: the resumed job's final checkpoint differs in {len(differ)} of "
                 f"{len(names)} tensors: {differ[:4]}")
    print(f"final checkpoints equal in all {len(names)} tensors")
PY
echo "PASS: preempted after GRPO step $stopped_at of $steps, requeued (Restarts=$restarts), resumed, bit for bit at step $steps"
