#!/usr/bin/env bash
# scripts/gpu-check.sh where there is no GPU, as CI machines are: it says so and exits 0 with a
# report that says why, building nothing. Then, with stand-in nvidia-smi programs: a driver
# that fails, one that lists nothing, one that prints "No devices were found",
# CUDA_VISIBLE_DEVICES empty (all "no GPU", exit 0); a GPU with no nvcc (one message naming it
# and scripts/setup.sh, exit 1, nothing built); a GPU that the test programs cannot use (with
# the CUDA test programs of BINARY_DIR, when built: every skip and the benchmark's "no device"
# are failures, exit 1); bad flags (exit 2). Last, the report writer on the results of a run
# that passed, which no machine here can produce. Runs no compiler and touches no GPU,
# wherever it runs.
#   test_gpu_check.sh SOURCE_DIR BINARY_DIR PYTHON
set -euo pipefail
source_dir=$1
binary_dir=$2
export TRIDENT_PYTHON=$3
script=$source_dir/scripts/gpu-check.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# run NAME EXPECTED_STATUS ARGS...: runs the script with its report in $work/NAME and its build
# folder at $work/NAME-build (which must never appear); the output is in $work/NAME.log.
run() {
  local name=$1 expected=$2 status=0
  shift 2
  echo "== $name"
  bash "$script" --out "$work/$name" --build-dir "$work/$name-build" "$@" >"$work/$name.log" 2>&1 ||
    status=$?
  cat "$work/$name.log"
  [ "$status" -eq "$expected" ] || fail "$name: exit $status, expected $expected"
  [ ! -e "$work/$name-build" ] || fail "$name: a build folder was created"
}
# report NAME PYTHON_EXPRESSION: the expression, on the report `r`, holds.
report() {
  "$TRIDENT_PYTHON" - "$work/$1/report.json" "$2" <<'EOF' || fail "$1: report.json: $2"
import json, sys
r = json.load(open(sys.argv[1]))
if not eval("(" + sys.argv[2] + ")"):
    print(json.dumps(r, indent=2))
    sys.exit(1)
EOF
}
expect_line() { grep -q -- "$2" "$work/$1.log" || fail "$1: no line with '$2'"; }

# A stand-in nvidia-smi: fake_smi NAME STATUS [LINE]: prints LINE, records its arguments, exits
# with STATUS.
fake_smi() {
  local path=$work/smi-$1
  printf '%s' "${3:-}" >"$path.out"
  [ -z "${3:-}" ] || echo >>"$path.out"
  cat >"$path" <<EOF
#!/bin/sh
echo "\$@" > "$path.args"
cat "$path.out"
exit $2
EOF
  chmod +x "$path"
  echo "$path"
}
h100="0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA H100 80GB HBM3, 9.0, 81559, 570.86.15"
no_gpu_report='r["result"] == "no_gpu" and r["gpu"] is None and r["reason"] and r["exit_status"] == 0
  and len(r["checks"]) == 6 and all(c["status"] == "not_run" for c in r["checks"].values())'

# This machine as it is (on a machine with a GPU the same path is taken through a missing
# nvidia-smi, below).
if command -v nvidia-smi >/dev/null; then
  echo "== as-is: skipped, nvidia-smi is installed here"
else
  run as-is 0
  expect_line as-is "^gpu-check: no GPU, nothing checked: no nvidia-smi"
  report as-is "$no_gpu_report and 'nvidia-smi' in r['reason']"
  report as-is 'r["checks"]["dsv3_layer_step_mfu"]["reason"] == "no GPU"'
  # A second run replaces the report in one rename, leaving no temporary file behind.
  echo '{"old": true}' >"$work/as-is/report.json"
  run as-is 0
  report as-is '"old" not in r'
  [ ! -e "$work/as-is/report.json.tmp" ] || fail "as-is: report.json.tmp left behind"
  grep -q "^gpu-check: NO GPU" "$work/as-is/summary.txt" || fail "as-is: summary.txt"
fi

TRIDENT_NVIDIA_SMI=$work/no-such-nvidia-smi run missing-smi 0
expect_line missing-smi "^gpu-check: no GPU, nothing checked: no nvidia-smi"
report missing-smi "$no_gpu_report"

broken="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
TRIDENT_NVIDIA_SMI=$(fake_smi broken 9 "$broken") run broken-driver 0
expect_line broken-driver "^gpu-check: no GPU, nothing checked: .*failed (exit 9): NVIDIA-SMI has failed"
report broken-driver "$no_gpu_report and 'exit 9' in r['reason']"

TRIDENT_NVIDIA_SMI=$(fake_smi empty 0) run lists-nothing 0
expect_line lists-nothing "^gpu-check: no GPU, nothing checked: .*listed no GPU"
report lists-nothing "$no_gpu_report"

TRIDENT_NVIDIA_SMI=$(fake_smi none-found 0 "No devices were found") run none-found 0
expect_line none-found "^gpu-check: no GPU, nothing checked: .*listed no GPU, it printed: No devices were found"
report none-found "$no_gpu_report"

CUDA_VISIBLE_DEVICES="" TRIDENT_NVIDIA_SMI=$(fake_smi hidden 0 "$h100") run hidden 0
expect_line hidden "^gpu-check: no GPU, nothing checked: CUDA_VISIBLE_DEVICES is set and empty"
report hidden "$no_gpu_report"

# A GPU, but no nvcc: one message naming it and where the tools come from; non-zero; a report
# that says the checks did not start. CUDA_VISIBLE_DEVICES picks the GPU nvidia-smi is asked
# about, and the programs would be given its UUID.
smi=$(fake_smi h100 0 "$h100")
CUDA_VISIBLE_DEVICES=1 TRIDENT_NVIDIA_SMI=$smi TRIDENT_NVCC=$work/no-such-nvcc run no-nvcc 1
expect_line no-nvcc "^gpu-check: cannot build the checks: missing: nvcc\
 (TRIDENT_NVCC=$work/no-such-nvcc is not an executable)\. scripts/setup.sh installs"
grep -q -- "--id=1 " "$smi.args" ||
  fail "no-nvcc: nvidia-smi was not asked about GPU 1: $(cat "$smi.args")"
report no-nvcc 'r["result"] == "error" and r["exit_status"] == 1 and "nvcc" in r["reason"]
  and r["gpu"]["name"] == "NVIDIA H100 80GB HBM3" and r["gpu"]["compute_capability"] == "9.0"
  and r["gpu"]["cuda_visible_devices"].startswith("GPU-11111111")
  and not any(c["status"] == "passed" for c in r["checks"].values())'

# The programs where they cannot use the GPU that nvidia-smi claims (its UUID is made up): every
# test skips, the benchmark finds no device and the GPU training runs stop saying why (the CPU
# run trains), and all of that is a failure.
if [ -x "$binary_dir/tests/cuda/test_cuda_ops" ] && [ -x "$binary_dir/tests/cuda/bench_cuda_ops" ] &&
   [ -x "$binary_dir/tests/cuda/test_cuda_device" ] && [ -x "$binary_dir/launch/trident" ]; then
  echo "== unusable-gpu"
  status=0
  TRIDENT_NVIDIA_SMI=$smi bash "$script" --out "$work/unusable-gpu" --build-dir "$binary_dir" \
    --skip-build --iterations 1 >"$work/unusable-gpu.log" 2>&1 || status=$?
  cat "$work/unusable-gpu.log"
  [ "$status" -eq 1 ] || fail "unusable-gpu: exit $status, expected 1"
  report unusable-gpu 'r["result"] == "failed" and r["build"]["reused"]
    and r["checks"]["cuda_op_tests"]["status"] == "failed"
    and r["checks"]["cuda_op_tests"]["skipped"] > 0
    and "skipped" in r["checks"]["cuda_op_tests"]["reason"]
    and r["checks"]["cuda_device_tests"]["status"] == "failed"
    and r["checks"]["cuda_op_benchmark"]["status"] == "failed"
    and "no usable GPU" in r["checks"]["cuda_op_benchmark"]["reason"]
    and r["checks"]["dsv3_layer_step_mfu"]["status"] == "failed"
    and "layer_step_gpu" in r["checks"]["dsv3_layer_step_mfu"]["reason"]
    and r["checks"]["train_small_gpu_bf16_vs_cpu_fp32"]["status"] == "failed"
    and "train_small_gpu" in r["checks"]["train_small_gpu_bf16_vs_cpu_fp32"]["reason"]
    and r["checks"]["grpo_step_gpu"]["status"] == "failed"
    and [s["name"] for s in r["steps"]]
        == ["probe", "tools", "build", "test_cuda_device", "test_cuda_ops", "bench_cuda_ops",
            "train_small_gpu", "train_small_cpu", "grpo_step_gpu", "layer_step_gpu"]
    and [s["status"] for s in r["steps"]][-4:] == ["failed", "passed", "failed", "failed"]'
  for run in train_small_gpu layer_step_gpu; do
    grep -q 'train.device = "cuda", but this process cannot use a GPU' \
      "$work/unusable-gpu/logs/$run.log" ||
      fail "unusable-gpu: the GPU run $run does not say why it stopped"
  done
else
  echo "== unusable-gpu: skipped, $binary_dir has no CUDA test programs"
fi

# Bad flags: one message naming the flag and the valid ones, exit 2, nothing written.
for flags in "--bogus" "--iterations 0" "--out"; do
  status=0
  # shellcheck disable=SC2086  # the flags are several words
  bash "$script" $flags >"$work/flag.log" 2>&1 || status=$?
  echo "== '$flags': exit $status: $(cat "$work/flag.log")"
  [ "$status" -eq 2 ] || fail "'$flags': exit $status, expected 2"
  grep -q "^gpu-check: .*(valid: --help, --out DIR, --build-dir DIR, --skip-build, --iterations N)$" \
    "$work/flag.log" || fail "'$flags': the message does not list the valid flags"
done
grep -q "unknown option '--bogus'" <(bash "$script" --bogus 2>&1) || fail "--bogus is not named"
bash "$script" --help | grep -q "^usage: bash scripts/gpu-check.sh" || fail "--help"

# The report of a run that passed: every test passed, the benchmark measured (made-up round
# figures), the training runs' metrics (made up: the GPU's losses 1% above the CPU's) and the
# layer step's figures (made up: 40% MFU). Without the layer step the result is "incomplete".
echo "== report of a passing run"
logs=$work/passing/logs
mkdir -p "$logs"
for program in test_cuda_device test_cuda_ops; do
  cat >"$logs/$program.json" <<'EOF'
{"tests": 2, "time": "1.5s", "testsuites": [{"name": "Suite", "testsuite": [
  {"name": "a", "status": "RUN", "result": "COMPLETED"},
  {"name": "b", "status": "RUN", "result": "COMPLETED"},
  {"name": "DISABLED_c", "status": "NOTRUN", "result": "SUPPRESSED"}]}]}
EOF
done
cat >"$logs/bench_cuda_ops.json" <<'EOF'
{"device": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": 90}, "iterations": 10,
 "baselines": {"bf16_gemm_8192": {"ms": 10.0, "tflops": 100.0},
               "fp32_gemm_4096": {"ms": 10.0, "tflops": 10.0}},
 "cases": [{"name": "linear o_proj 4096x16384 -> 7168", "ms": 10.0, "tflops": 50.0,
            "baseline": "bf16_gemm_8192", "ratio_to_baseline": 0.5}],
 "grouped_over_dense": 0.5}
EOF
# write_losses RUN SCALE: 50 steps of a falling loss, times SCALE.
write_losses() {
  "$TRIDENT_PYTHON" -c "
import json, sys
for s in range(1, 51):
    print(json.dumps({'step': s, 'loss': (7.0 - 0.1 * s) * $2, 'step_s': 0.01}))
print(json.dumps({'held_out_loss': 1.0}))" >"$logs/$1.jsonl"
}
write_losses train_small_cpu 1.0
write_losses train_small_gpu 1.01
echo '{"step": 1, "loss": 0.01, "reward": 0.4, "kl": 0.0, "grad_norm": 0.5, "rollout_s": 2.0}' \
  >"$logs/grpo_step_gpu.jsonl"
# write_layer MFU: the layer step's --json record (`trident bench step` on a GPU).
write_layer() {
  "$TRIDENT_PYTHON" -c "
import json
mfu = $1
print(json.dumps({'device': 'cuda', 'gpu': 'NVIDIA H100 80GB HBM3', 'trident_step_s': 0.5,
                  'tokens_per_step': 4096, 'model_gflop_per_step': 1000.0,
                  'model_tflops_per_s': 989.4 * mfu, 'peak_tflops': 989.4, 'mfu': mfu,
                  'sgemm_gflops': 700000.0, 'ratio_to_sgemm': 989.4 * mfu / 700.0,
                  'planned_memory_mib': 19763.2, 'peak_tensor_mib': 22528.0}))" \
    >"$logs/layer_step_gpu.json"
}
write_layer 0.4
t=$(date +%s)
passing_run() {
  "$TRIDENT_PYTHON" "$source_dir/scripts/gpu_check_report.py" --out-dir "$work/passing" \
    --logs "$logs" --root "$source_dir" --started "$t" --gpu "$h100" --build-dir "$work/b" \
    --arch 90-real --targets "test_cuda_device test_cuda_ops bench_cuda_ops trident" \
    --build-status passed --step build "$t" "$((t + 100))" passed --ran test_cuda_device 0 \
    --ran test_cuda_ops 0 --ran bench_cuda_ops 0 --iterations 10 --ran train_small_gpu 0 \
    --ran train_small_cpu 0 --ran grpo_step_gpu 0 --ran layer_step_gpu 0
}
passing_run >"$work/passing.log" || fail "passing: the report writer failed"
cat "$work/passing.log"
report passing 'r["result"] == "passed" and r["exit_status"] == 0
  and r["checks"]["cuda_op_tests"]["status"] == "passed" and r["checks"]["cuda_op_tests"]["passed"] == 2
  and r["checks"]["cuda_op_tests"]["disabled"] == 1
  and r["checks"]["cuda_op_benchmark"]["figures"]["baselines"]["bf16_gemm_8192"]["tflops"] == 100.0
  and all(c["status"] == "passed" for c in r["checks"].values())
  and abs(r["checks"]["dsv3_layer_step_mfu"]["figures"]["mfu"] - 0.4) < 1e-9
  and r["checks"]["train_small_gpu_bf16_vs_cpu_fp32"]["status"] == "passed"
  and abs(r["checks"]["train_small_gpu_bf16_vs_cpu_fp32"]["relative_difference"] - 0.01) < 1e-9
  and r["checks"]["grpo_step_gpu"]["status"] == "passed"
  and r["checks"]["grpo_step_gpu"]["figures"]["reward"] == 0.4
  and r["steps"][0]["seconds"] == 100'
grep -q "^gpu-check: PASSED" "$work/passing.log" || fail "passing: the headline"
grep -q "passed   dsv3_layer_step_mfu .*MFU 40.0% of 989.4 TFLOP/s (target 35%).*memory 22.0 GiB, planned 19.3 GiB" \
  "$work/passing.log" || fail "passing: the layer step's MFU and memory are not in the summary"
grep -q "passed   train_small_gpu_bf16_vs_cpu_fp32 .*relative difference 0.0100" \
  "$work/passing.log" || fail "passing: the loss comparison is not in the summary"
# Without the layer step's run the result is incomplete.
"$TRIDENT_PYTHON" "$source_dir/scripts/gpu_check_report.py" --out-dir "$work/passing" \
  --logs "$logs" --root "$source_dir" --started "$t" --gpu "$h100" --build-status passed \
  --ran test_cuda_device 0 --ran test_cuda_ops 0 --ran bench_cuda_ops 0 --ran train_small_gpu 0 \
  --ran train_small_cpu 0 --ran grpo_step_gpu 0 >"$work/no-layer.log" ||
  fail "no-layer: the report writer failed"
report passing 'r["result"] == "incomplete"
  and [n for n, c in r["checks"].items() if c["status"] == "not_run"] == ["dsv3_layer_step_mfu"]'
# Losses 5% apart, a GRPO step whose loss is NaN and a layer step at 20% MFU: each check fails,
# saying why.
write_losses train_small_gpu 1.05
echo '{"step": 1, "loss": NaN, "reward": 0.4}' >"$logs/grpo_step_gpu.jsonl"
write_layer 0.2
passing_run >"$work/diverged.log" && fail "diverged: the report writer exited 0"
report passing 'r["result"] == "failed"
  and "differs by 0.05" in r["checks"]["train_small_gpu_bf16_vs_cpu_fp32"]["reason"]
  and "not finite" in r["checks"]["grpo_step_gpu"]["reason"]
  and "MFU 20.0%" in r["checks"]["dsv3_layer_step_mfu"]["reason"]
  and "below the 35% target" in r["checks"]["dsv3_layer_step_mfu"]["reason"]'
write_losses train_small_gpu 1.01
echo '{"step": 1, "loss": 0.01, "reward": 0.4}' >"$logs/grpo_step_gpu.jsonl"
write_layer 0.4
# A program stopped at its time limit, before writing its results: a failure that says so.
rm "$logs/test_cuda_ops.json"
"$TRIDENT_PYTHON" "$source_dir/scripts/gpu_check_report.py" --out-dir "$work/passing" \
  --logs "$logs" --root "$source_dir" --started "$t" --gpu "$h100" --build-status passed \
  --ran test_cuda_device 0 --ran test_cuda_ops 124 --ran bench_cuda_ops 0 >"$work/timeout.log" &&
  fail "timeout: the report writer exited 0"
report passing 'r["result"] == "failed" and r["exit_status"] == 1
  and "time limit" in r["checks"]["cuda_op_tests"]["reason"]
  and r["checks"]["cuda_device_tests"]["status"] == "passed"'
echo "PASS"
