#!/usr/bin/env bash
# launch/mpirun/trident-mpirun.sh for real with 4 ranks: every rank prints exactly one layout
# line, and its coordinates are the mesh's (tp innermost: rank = dp · tp_size + tp; with
# expert parallelism ep innermost of the MoE refold: rank = edp · ep_size + ep). Then the
# several-node command line (dry run) and the wrapper's refusals.
#   test_mpirun_layout.sh SOURCE_DIR TRIDENT_BINARY
set -euo pipefail
source_dir=$1
export TRIDENT_BIN=$2
wrapper=$source_dir/launch/mpirun/trident-mpirun.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# check_layout LOG RANK EXPECTED_FIELDS...: the one line of RANK has every "key=value" given.
check_layout() {
  local log=$1 rank=$2 line field
  shift 2
  local count
  count=$(grep -c "^trident layout: rank=$rank " "$log" || true)
  [ "$count" -eq 1 ] || fail "rank $rank printed $count layout lines, expected 1"
  line=$(grep "^trident layout: rank=$rank " "$log")
  for field in world=4 host= node=0/1 "local_rank=$rank" pp=0 device= threads= "$@"; do
    grep -qE "(^| )$field" <<<"$line" || fail "rank $rank: '$field' missing in: $line"
  done
}

echo "== 4 ranks, dp 2 × tp 2"
timeout 120 "$wrapper" -n 4 -- pretrain --config tiny --set parallel.dp=2 --set parallel.tp=2 \
  --set train.steps=2 --checkpoint-dir "$work/tp-ckpt" > "$work/tp.log" 2>&1 || { cat "$work/tp.log"; fail "the dp×tp run failed"; }
grep "^trident layout:" "$work/tp.log"
[ "$(grep -c '^trident layout:' "$work/tp.log")" -eq 4 ] || fail "expected 4 layout lines"
for rank in 0 1 2 3; do
  check_layout "$work/tp.log" "$rank" "dp=$((rank / 2))" "tp=$((rank % 2))" ep=0 "edp=$rank"
done
grep -q "trained 2 steps" "$work/tp.log" || fail "the dp×tp run did not finish training"

echo "== 4 ranks, dp 4 with ep 2"
timeout 120 "$wrapper" -n 4 -- pretrain --config tiny --set parallel.dp=4 --set parallel.ep=2 \
  --set train.steps=2 --checkpoint-dir "$work/ep-ckpt" > "$work/ep.log" 2>&1 || { cat "$work/ep.log"; fail "the dp×ep run failed"; }
for rank in 0 1 2 3; do
  check_layout "$work/ep.log" "$rank" "dp=$rank" tp=0 "ep=$((rank % 2))" "edp=$((rank / 2))"
done

echo "== several nodes from a hostfile (command line only)"
printf '# two nodes\nnode01 slots=8\nnode02 slots=8\n' > "$work/hosts"
command=$(NCCL_IB_HCA=mlx5 "$wrapper" --hostfile "$work/hosts" --gpu --dry-run -- pretrain \
  --config small --set parallel.dp=16)
echo "$command"
for piece in "-np 16" "--map-by ppr:8:node" "--hostfile $work/hosts" "--bind-to core" \
  "-x NCCL_IB_HCA=mlx5" "-x NCCL_DEBUG=WARN" "--mca pml ucx" "pretrain --config small"; do
  grep -qF -- "$piece" <<<"$command" || fail "multi-node command lacks '$piece'"
done

echo "== refusals name the option"
if "$wrapper" -n 32 --hostfile "$work/hosts" --dry-run -- pretrain 2> "$work/err"; then
  fail "32 ranks on 2 nodes × 8 were accepted"
fi
grep -q -- "--per-node" "$work/err" || fail "the refusal does not name --per-node: $(cat "$work/err")"
if "$wrapper" --bind everywhere --dry-run -- pretrain 2> "$work/err"; then
  fail "--bind everywhere was accepted"
fi
grep -q -- "--bind" "$work/err" || fail "the refusal does not name --bind"
echo "PASS: 4 ranks printed their layouts; the multi-node command line is complete"
