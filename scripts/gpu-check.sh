#!/usr/bin/env bash
# Checks one GPU machine in one command, no MPI launcher: builds the CUDA op tests, the benchmark
# and `trident` for this GPU's architecture, runs every CUDA op against the CPU oracle, times the
# heavy ops against a bf16 GEMM of the same run, trains `small` 50 steps on the GPU in bf16 and on
# the CPU in fp32 and compares the losses, runs one GRPO step on the GPU, times a training step
# of one DeepSeek-V3 layer at 671B widths (MFU against the GPU's bf16 peak), then writes one JSON
# report and a short summary.
# docs/cuda.md ("One command on a GPU machine") says what it checks, what it does not check yet
# and why, the expected times and the report's fields.
#
#   bash scripts/gpu-check.sh [--out DIR] [--build-dir DIR] [--skip-build] [--iterations N]
#
# Exit status: 0 when every check that ran passed, or when there is no GPU (it says so, and the
# report says why); 1 when a check failed or the checks could not start (missing tools);
# 2 for a bad flag.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<EOF
usage: bash scripts/gpu-check.sh [options]
  --out DIR          report.json, summary.txt and logs/ go here (default: gpu-check/;
                     env TRIDENT_GPU_CHECK_OUT)
  --build-dir DIR    the build folder (default: build-gpu/; env TRIDENT_GPU_BUILD_DIR)
  --skip-build       reuse the build folder's programs (the tests, the benchmark, trident)
  --iterations N     timed iterations per benchmark case (default: 10)
  --help             this text
environment:
  CUDA_VISIBLE_DEVICES      the GPU to check (nvidia-smi's index or UUID; the first one listed)
  TRIDENT_NVCC              the CUDA compiler (default /usr/local/cuda/bin/nvcc, else nvcc on PATH)
  TRIDENT_CUDA_ARCHITECTURES  CMAKE_CUDA_ARCHITECTURES (default: the GPU's, e.g. 90-real)
  TRIDENT_NVIDIA_SMI        the nvidia-smi to ask (default: nvidia-smi on PATH)
  TRIDENT_PYTHON            the Python that writes the report (default: python3)
EOF
}

# Relative paths given on the command line are the caller's, not the repository root's.
caller_dir=$PWD
absolute() { case $1 in /*) echo "$1" ;; *) echo "$caller_dir/$1" ;; esac; }

out_dir=${TRIDENT_GPU_CHECK_OUT:-$TRIDENT_ROOT/gpu-check}
build_dir=${TRIDENT_GPU_BUILD_DIR:-$TRIDENT_ROOT/build-gpu}
skip_build=false
# Ten timed runs of each case, after its two warm-up runs, are 47 TFLOP of work in all (3.9 a
# round, 0.3 of it the fp32 attention kernels): seconds on an H100, unless a kernel runs at a
# small fraction of the GEMM rate.
iterations=10
valid_flags="--help, --out DIR, --build-dir DIR, --skip-build, --iterations N"
bad_flag() {
  echo "gpu-check: $1 (valid: $valid_flags)" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case $1 in
    --help | -h) usage; exit 0 ;;
    --out | --build-dir | --iterations)
      if [ $# -lt 2 ] || [ -z "$2" ]; then bad_flag "$1 needs a value"; fi
      case $1 in
        --out) out_dir=$2 ;;
        --build-dir) build_dir=$2 ;;
        --iterations)
          [[ $2 =~ ^[1-9][0-9]*$ ]] || bad_flag "--iterations '$2' is not a positive integer"
          iterations=$2 ;;
      esac
      shift 2 ;;
    --skip-build) skip_build=true; shift ;;
    *) bad_flag "unknown option '$1'" ;;
  esac
done
out_dir=$(absolute "$out_dir")
build_dir=$(absolute "$build_dir")
logs=$out_dir/logs
python=${TRIDENT_PYTHON:-python3}
targets=(test_cuda_device test_cuda_ops bench_cuda_ops trident)
# The training runs of step 6, each writing <run>.log and <run>.jsonl into the logs.
train_runs=(train_small_gpu train_small_cpu grpo_step_gpu)
# The layer step of step 7 (<run>.log and <run>.json).
layer_run=layer_step_gpu
cd "$TRIDENT_ROOT"

# --- what the report is made of ---------------------------------------------------------------
# EPOCHREALTIME (bash 5) times the steps to the millisecond; the locale may write a comma.
now() { echo "${EPOCHREALTIME/,/.}"; }
started=$(now)
report_args=()
# step NAME (common.sh) prints the banner; end_step STATUS records the step for the report.
step_start=
begin_step() { step "$1"; step_start=$(now); }
end_step() {
  report_args+=(--step "$TRIDENT_STEP_NAME" "$step_start" "$(now)" "$1")
  step_start=
}

# finish [ARGS...]: writes the report and the summary (scripts/gpu_check_report.py decides the
# result from what ran) and exits with the status it returns. Runs once; the EXIT trap calls it
# when a command fails unexpectedly, so even then the report says where the run stopped.
finished=false
finish() {
  finished=true
  trap - EXIT
  local status=0
  "$python" "$TRIDENT_ROOT/scripts/gpu_check_report.py" --out-dir "$out_dir" --logs "$logs" \
    --root "$TRIDENT_ROOT" --started "$started" "${report_args[@]}" "$@" || status=$?
  exit "$status"
}
# shellcheck disable=SC2317  # reached through the EXIT trap
on_exit() {
  local status=$?
  $finished && return
  if [ -n "$step_start" ]; then end_step failed; fi
  echo "gpu-check: stopped during '${TRIDENT_STEP_NAME:-start}' (exit $status)" >&2
  finish --aborted "${TRIDENT_STEP_NAME:-start}" "$status"
}

mkdir -p "$logs"
# The report needs Python; without it, say so and still end as the script would.
if ! command -v "$python" >/dev/null; then
  python_missing="no '$python' to write the report"
  python_missing+=" (scripts/setup.sh installs python3; TRIDENT_PYTHON chooses another)"
else
  python_missing=
  trap on_exit EXIT
fi
# This run's logs only: a file left by an earlier run would pass for one of this run's.
for name in probe.txt build.log "${targets[@]/%/.log}" "${targets[@]/%/.json}" \
            "${train_runs[@]/%/.log}" "${train_runs[@]/%/.jsonl}" "$layer_run.log" \
            "$layer_run.json"; do
  rm -f "$logs/$name"
done
# The training runs' checkpoints: this script's own folder, emptied, since a checkpoint folder
# that holds another run's files is refused.
train_dir=$logs/checkpoints
rm -rf "$train_dir"

# --- 1. a GPU, asked before anything is built --------------------------------------------------
begin_step probe
smi=${TRIDENT_NVIDIA_SMI:-nvidia-smi}
no_gpu=
gpu_line=
if [ "${CUDA_VISIBLE_DEVICES+set}" = set ] && [ -z "$CUDA_VISIBLE_DEVICES" ]; then
  no_gpu="CUDA_VISIBLE_DEVICES is set and empty, which hides every GPU"
elif ! command -v "$smi" >/dev/null; then
  if [[ $smi == */* ]]; then where="is not an executable"; else where="is not on PATH"; fi
  no_gpu="no nvidia-smi: '$smi' $where (no NVIDIA driver installed?)"
else
  # nvidia-smi ignores CUDA_VISIBLE_DEVICES, so the first GPU that lists is asked for by its
  # index or UUID. A MIG instance cannot be: then nvidia-smi's first GPU is asked about.
  id_flag=()
  first=${CUDA_VISIBLE_DEVICES:-}
  first=${first%%,*}
  if [ -n "$first" ] && [[ $first != MIG-* ]]; then id_flag=(--id="$first"); fi
  query=("--query-gpu=index,uuid,name,compute_cap,memory.total,driver_version"
         "--format=csv,noheader,nounits")
  probe=("$smi" "${id_flag[@]}" "${query[@]}")
  if probe_output=$(timeout 30 "${probe[@]}" 2>&1); then
    gpu_line=$(head -n 1 <<<"$probe_output")
    # A GPU is a line of the six fields asked for; anything else ("No devices were found") is not.
    if [ -z "$gpu_line" ]; then
      no_gpu="'${probe[*]}' listed no GPU"
    elif [ "$(tr -cd , <<<"$gpu_line" | wc -c)" -lt 5 ]; then
      no_gpu="'${probe[*]}' listed no GPU, it printed: $gpu_line"
      gpu_line=
    fi
  else
    status=$?
    no_gpu="'${probe[*]}' failed (exit $status): $(head -n 1 <<<"$probe_output")"
  fi
  printf '%s\n' "$probe_output" >"$logs/probe.txt"
fi
end_step "$([ -n "$gpu_line" ] && echo passed || echo no_gpu)"
if [ -n "$no_gpu" ]; then
  echo "gpu-check: no GPU, nothing checked: $no_gpu"
  if [ -n "$python_missing" ]; then
    echo "gpu-check: report not written: $python_missing"
    exit 0
  fi
  finish --no-gpu "$no_gpu"
fi
echo "GPU: $gpu_line"
[ -z "$python_missing" ] || { echo "gpu-check: $python_missing" >&2; exit 1; }

IFS=, read -r _ gpu_uuid _ gpu_cap _ <<<"$gpu_line"
gpu_uuid=${gpu_uuid// /}
gpu_cap=${gpu_cap// /}
report_args+=(--gpu "$gpu_line")
# The probed GPU is the one the programs use: CUDA numbers GPUs fastest first unless told
# otherwise, nvidia-smi by PCI bus, so an index is not passed on, the UUID is.
if [[ ${CUDA_VISIBLE_DEVICES:-} != MIG-* ]] && [[ $gpu_uuid == GPU-* ]]; then
  export CUDA_VISIBLE_DEVICES=$gpu_uuid
fi
report_args+=(--cuda-visible-devices "${CUDA_VISIBLE_DEVICES:-}")

# --- 2. the tools the build needs ---------------------------------------------------------------
begin_step tools
missing=()
# A reused build needs none of them.
if ! $skip_build; then
  # Where CMakeLists.txt looks: the toolkit's usual place, then PATH.
  if [ -n "${TRIDENT_NVCC:-}" ]; then
    nvcc=$TRIDENT_NVCC
    [ -x "$nvcc" ] || missing+=("nvcc (TRIDENT_NVCC=$nvcc is not an executable)")
  elif [ -x /usr/local/cuda/bin/nvcc ]; then
    nvcc=/usr/local/cuda/bin/nvcc
  elif ! nvcc=$(command -v nvcc); then
    missing+=("nvcc (not at /usr/local/cuda/bin/nvcc nor on PATH)")
  fi
  for tool in cmake ninja c++; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if command -v cmake >/dev/null; then
    cmake_version=$(cmake --version | head -n 1 | grep -oE '[0-9]+\.[0-9]+' | head -n 1)
    if [ "$(printf '%s\n3.25\n' "$cmake_version" | sort -V | head -n 1)" != 3.25 ]; then
      missing+=("cmake >= 3.25 (found $cmake_version)")
    fi
  fi
  if ! libraries=$(bash "$TRIDENT_ROOT/scripts/setup.sh" --check-libraries 2>&1); then
    missing+=("${libraries#setup: }")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  end_step failed
  list=$(printf '%s; ' "${missing[@]}")
  message="missing: ${list%; }. scripts/setup.sh installs the Debian packages (cmake, ninja,"
  message+=" the compiler, the libraries); the CUDA toolkit, with cuDNN and NCCL, comes from"
  message+=" NVIDIA (at /usr/local/cuda, or TRIDENT_NVCC)"
  echo "gpu-check: cannot build the checks: $message" >&2
  finish --error "$message"
fi
end_step passed

# --- 3. build, for this GPU's architecture only ------------------------------------------------
# One real architecture (e.g. 90-real) compiles each kernel once, for the GPU at hand; the
# project's default adds PTX for newer GPUs, which this check does not need.
if [ -n "${TRIDENT_CUDA_ARCHITECTURES:-}" ]; then
  arch=$TRIDENT_CUDA_ARCHITECTURES
elif [[ $gpu_cap =~ ^([0-9]+)\.([0-9]+)$ ]]; then
  arch="${BASH_REMATCH[1]}${BASH_REMATCH[2]}-real"
else
  message="nvidia-smi gave no compute capability ('$gpu_cap');"
  message+=" set TRIDENT_CUDA_ARCHITECTURES (e.g. 90-real)"
  echo "gpu-check: $message" >&2
  finish --error "$message"
fi
report_args+=(--build-dir "$build_dir" --targets "${targets[*]}")
begin_step build
program_path() {
  if [ "$1" = trident ]; then echo "$build_dir/launch/trident"; else echo "$build_dir/tests/cuda/$1"; fi
}
if $skip_build; then
  for target in "${targets[@]}"; do
    if [ ! -x "$(program_path "$target")" ]; then
      end_step failed
      message="--skip-build: no $(program_path "$target") to reuse; run without --skip-build"
      echo "gpu-check: $message" >&2
      finish --error "$message"
    fi
  done
  built_arch=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$build_dir/CMakeCache.txt" \
                 2>/dev/null || true)
  if [ "$built_arch" != "$arch" ]; then
    echo "gpu-check: warning: $build_dir was built for '$built_arch', this GPU is $arch"
  fi
  arch=${built_arch:-unknown}
  report_args+=(--build-reused)
  echo "reusing $build_dir (CUDA architectures $arch)"
  end_step passed
  report_args+=(--build-status passed)
else
  echo "building ${targets[*]} for $arch in $build_dir with $(nproc) jobs (log: $logs/build.log)"
  if TRIDENT_CUDA=ON TRIDENT_BUILD_DIR=$build_dir TRIDENT_BUILD_TARGETS="${targets[*]}" \
       bash "$TRIDENT_ROOT/scripts/build.sh" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
       -DCMAKE_CUDA_COMPILER="$nvcc" >"$logs/build.log" 2>&1; then
    end_step passed
    report_args+=(--build-status passed)
  else
    end_step failed
    report_args+=(--build-status failed --arch "$arch")
    echo "gpu-check: the build failed; from $logs/build.log:" >&2
    grep -E 'CMake Error|error:|FAILED' "$logs/build.log" | head -n 20 >&2 ||
      tail -n 20 "$logs/build.log" >&2
    finish
  fi
fi

report_args+=(--arch "$arch")

# --- 4. every CUDA op against the CPU, 5. the benchmark -----------------------------------------
# Each program has a time limit, so a hung kernel ends the check with a failure rather than
# never; the limits are far above what the programs should take, not a budget.
run_program() {
  local program=$1 limit=$2 status=0
  shift 2
  begin_step "$program"
  timeout -k 10 "$limit" "$build_dir/tests/cuda/$program" "$@" >"$logs/$program.log" 2>&1 ||
    status=$?
  report_args+=(--ran "$program" "$status")
  if [ "$status" -eq 0 ]; then end_step passed; else end_step failed; fi
  tail -n 3 "$logs/$program.log"
}
run_program test_cuda_device 120 --gtest_output="json:$logs/test_cuda_device.json"
run_program test_cuda_ops 300 --gtest_output="json:$logs/test_cuda_ops.json"
run_program bench_cuda_ops 240 --iterations "$iterations" --json "$logs/bench_cuda_ops.json"
report_args+=(--iterations "$iterations")

# --- 6. training: `small` on the GPU in bf16 and on the CPU in fp32, then a GRPO step on the GPU -
# The report compares the two runs' losses (gpu_check_report.py says how); the GRPO step starts
# from the GPU run's checkpoint.
train_run() {
  local run=$1 limit=$2 status=0
  shift 2
  begin_step "$run"
  timeout -k 10 "$limit" "$build_dir/launch/trident" "$@" --metrics "$logs/$run.jsonl" \
    --checkpoint-dir "$train_dir/$run" >"$logs/$run.log" 2>&1 || status=$?
  report_args+=(--ran "$run" "$status")
  if [ "$status" -eq 0 ]; then end_step passed; else end_step failed; fi
  tail -n 2 "$logs/$run.log"
}
small=(pretrain --config small --set train.steps=50 --set train.warmup_steps=5
       --set train.eval_every=0)
train_run train_small_gpu 240 "${small[@]}" --set train.device=cuda \
  --set train.param_dtype=bfloat16 --set train.activation_dtype=bfloat16
train_run train_small_cpu 240 "${small[@]}" --set train.device=cpu
train_run grpo_step_gpu 300 grpo --config small --init "$train_dir/train_small_gpu/step_50.h5" \
  --set train.device=cuda --set grpo.steps=1 --set grpo.eval_prompts=16

# --- 7. the layer step: one DeepSeek-V3 MoE layer at 671B widths, 4,096 tokens, bf16 ----------
# `trident bench step` times it against a bf16 GEMM on the same GPU and reports the MFU against
# the GPU's dense bf16 peak (configs/dsv3-layer.textproto; the report's target: MFU_TARGET).
begin_step "$layer_run"
layer_status=0
timeout -k 10 240 "$build_dir/launch/trident" bench step --config dsv3-layer --no-reference \
  --warmup 2 --steps 5 --json "$logs/$layer_run.json" >"$logs/$layer_run.log" 2>&1 ||
  layer_status=$?
report_args+=(--ran "$layer_run" "$layer_status")
if [ "$layer_status" -eq 0 ]; then end_step passed; else end_step failed; fi
grep -E '^(FLOP rate|MFU)' "$logs/$layer_run.log" || tail -n 2 "$logs/$layer_run.log"

# --- 8. the report ------------------------------------------------------------------------------
finish
