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
for tool in slurmctld slurmd sbatch scontrol; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not installed (scripts/setup.sh installs slurmctld slurmd slurm-client)"
    exit 77
  fi
done

work=$(mktemp -d)
cluster=$work/cluster
# Ports derived from the process id so concurrent test runs do not collide.
export TRIDENT_SLURMCTLD_PORT=$((20000 + ($$ % 5000) * 2))
export TRIDENT_SLURMD_PORT=$((TRIDENT_SLURMCTLD_PORT + 1))
cleanup() {
  "$source_dir/launch/slurm/local_cluster.sh" stop "$cluster" || true
  rm -rf "$work"
}
trap cleanup EXIT
if ! start_line=$(timeout 60 "$source_dir/launch/slurm/local_cluster.sh" start "$cluster" 4); then
  echo "FAIL: the local Slurm cluster did not start; daemon logs:"
  tail -n 20 "$cluster"/log/*.log 2>/dev/null || true
  exit 1
fi
eval "$start_line"
cd "$work"

echo "== a 2-task pretraining job"
timeout 120 sbatch --wait --output="$work/ok-%j.out" \
  --export=ALL,TRIDENT_BIN="$trident",TRIDENT_RUN="$work/run",OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  "$source_dir/launch/slurm/pretrain.sbatch" --config tiny --set parallel.dp=2 --set train.steps=5
log=$(cat "$work"/ok-*.out)
echo "$log" | tail -4
grep -q "2 tasks" <<<"$log" || { echo "FAIL: the job did not run 2 tasks"; exit 1; }
grep -q "trained 5 steps" <<<"$log" || { echo "FAIL: training did not finish"; exit 1; }
records=$(grep -c '"loss"' "$work/run/metrics.jsonl")
[ "$records" -eq 5 ] || { echo "FAIL: expected 5 metric records, found $records"; exit 1; }

echo "== a job with a layout that does not match its tasks must fail, naming the field"
if timeout 120 sbatch --wait --output="$work/bad-%j.out" \
  --export=ALL,TRIDENT_BIN="$trident",TRIDENT_RUN="$work/bad",OMPI_ALLOW_RUN_AS_ROOT=1,OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  "$source_dir/launch/slurm/pretrain.sbatch" --config tiny --set parallel.dp=3 --set train.steps=2; then
  echo "FAIL: a bad layout exited 0"; exit 1
fi
grep -q "parallel.dp" "$work"/bad-*.out || { echo "FAIL: the error does not name parallel.dp"; cat "$work"/bad-*.out; exit 1; }
grep "parallel.dp" "$work"/bad-*.out | head -1
echo "PASS: Slurm pretraining job ran and a bad job failed clearly"
