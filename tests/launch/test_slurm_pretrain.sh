#!/usr/bin/env bash
# Real Slurm: starts a one-machine controller and node daemon (launch/slurm/local_cluster.sh),
# submits launch/slurm/pretrain.sbatch with `sbatch --wait` for 2 tasks of the tiny model
# (srun --mpi=pmix, data parallel), checks the exit code, the log and the metrics; then submits
# a job with a bad layout and checks that it fails with the field named. Stops the daemons it
# started by their process ids, however the test ends.
#   test_slurm_pretrain.sh SOURCE_DIR TRIDENT_BINARY
set -euo pipefail
source_dir=$1
trident=$2
# shellcheck source=tests/launch/slurm_test_lib.sh
source "$(dirname "$0")/slurm_test_lib.sh"
start_test_cluster "$source_dir" 4

echo "== a 2-task pretraining job"
timeout 120 sbatch --wait --output="$work/ok-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/run" \
  "$source_dir/launch/slurm/pretrain.sbatch" --config tiny --set parallel.dp=2 --set train.steps=5
log=$(cat "$work"/ok-*.out)
echo "$log" | tail -4
grep -q "2 tasks" <<<"$log" || { echo "FAIL: the job did not run 2 tasks"; exit 1; }
grep -q "trained 5 steps" <<<"$log" || { echo "FAIL: training did not finish"; exit 1; }
records=$(grep -c '"loss"' "$work/run/metrics.jsonl")
[ "$records" -eq 5 ] || { echo "FAIL: expected 5 metric records, found $records"; exit 1; }
grep -q '"mfu"' "$work/run/metrics.jsonl" || fail "the metrics have no mfu field"
[ "$(grep -c '^trident layout:' <<<"$log")" -eq 2 ] || fail "expected a layout line per task"

echo "== a job with a layout that does not match its tasks must fail, naming the field"
if timeout 120 sbatch --wait --output="$work/bad-%j.out" \
  --export="$job_env,TRIDENT_BIN=$trident,TRIDENT_RUN=$work/bad" \
  "$source_dir/launch/slurm/pretrain.sbatch" --config tiny --set parallel.dp=3 --set train.steps=2; then
  echo "FAIL: a bad layout exited 0"; exit 1
fi
grep -q "parallel.dp" "$work"/bad-*.out || { echo "FAIL: the error does not name parallel.dp"; cat "$work"/bad-*.out; exit 1; }
grep "parallel.dp" "$work"/bad-*.out | head -1
echo "PASS: Slurm pretraining job ran and a bad job failed clearly"
