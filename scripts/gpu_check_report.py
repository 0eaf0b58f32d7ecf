#!/usr/bin/env python3
"""Writes scripts/gpu-check.sh's report (report.json) and summary (summary.txt, also printed)
from what the script collected: the GPU probe, the steps' times, the gtest JSON files and
bench_cuda_ops' JSON in the logs folder. Exits with the script's exit status: 0 when every check
that ran passed (or there is no GPU), 1 otherwise. Standard library only.

Both files are written beside their final name and renamed into place, so a reader (or a run
that is interrupted) sees the previous file or the new one, never part of one.
"""
import argparse
import json
import math
import os
import socket
import subprocess
import sys
from datetime import datetime, timezone

SCHEMA = "trident-gpu-check/1"
# The bound for one run on one H100, build included.
BUDGET_SECONDS = 480
GTESTS = {"cuda_device_tests": "test_cuda_device", "cuda_op_tests": "test_cuda_ops"}
BENCH = "bench_cuda_ops"
# The training runs gpu-check.sh makes with `trident` (their metrics are <run>.jsonl in the logs).
TRAIN_GPU, TRAIN_CPU, GRPO_GPU = "train_small_gpu", "train_small_cpu", "grpo_step_gpu"
LAYER_GPU = "layer_step_gpu"
TRAIN_STEPS = 50
# The bf16 GPU run against the fp32 CPU run: the mean loss of the last 10 of the 50 steps, as a
# relative difference. On the CPU, bf16 against fp32 for the same 50 steps differs by 0.0055
# (single steps by up to 0.019, hence the mean); the bound leaves the GPU's own summation orders
# and exp about five times that (docs/cuda.md, "The training checks").
LOSS_TOLERANCE = 0.03
# The layer step's model FLOP utilisation against the GPU's dense bf16 peak that the check asks
# for (docs/cuda.md, "The layer step").
MFU_TARGET = 0.35
TRAINING_CHECKS = ["train_small_gpu_bf16_vs_cpu_fp32", "grpo_step_gpu", "dsv3_layer_step_mfu"]
CHECK_ORDER = ["cuda_device_tests", "cuda_op_tests", "cuda_op_benchmark", *TRAINING_CHECKS]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--logs", required=True)
    p.add_argument("--root", required=True, help="repository root, for the commit")
    p.add_argument("--started", type=float, required=True, help="epoch seconds")
    p.add_argument("--no-gpu", metavar="REASON", help="no usable GPU, and why")
    p.add_argument("--error", metavar="MESSAGE", help="the run could not start its checks")
    p.add_argument("--aborted", nargs=2, metavar=("STEP", "STATUS"),
                   help="the script stopped unexpectedly during STEP with exit STATUS")
    p.add_argument("--gpu", metavar="CSV",
                   help="nvidia-smi's index, uuid, name, compute_cap, memory.total, driver_version")
    p.add_argument("--cuda-visible-devices")
    p.add_argument("--arch", help="CMAKE_CUDA_ARCHITECTURES of the build")
    p.add_argument("--build-dir")
    p.add_argument("--build-reused", action="store_true")
    p.add_argument("--build-status", choices=["passed", "failed"])
    p.add_argument("--targets", default="")
    p.add_argument("--iterations", type=int)
    p.add_argument("--step", nargs=4, action="append", default=[],
                   metavar=("NAME", "START", "END", "STATUS"))
    p.add_argument("--ran", nargs=2, action="append", default=[], metavar=("PROGRAM", "EXIT"),
                   help="a test or benchmark program that ran, with its exit status")
    return p.parse_args()


def utc(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def commit(root):
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return None
    return {"hash": head, "dirty": dirty} if head else None


def parse_gpu(csv, visible):
    fields = [f.strip() for f in csv.split(",")]
    index, uuid, name, cap, memory, driver = (fields + [""] * 6)[:6]
    gpu = {"index": index, "uuid": uuid, "name": name, "compute_capability": cap,
           "driver_version": driver}
    try:
        gpu["memory_mib"] = int(float(memory))
    except ValueError:
        gpu["memory_mib"] = None
    gpu["cuda_visible_devices"] = visible
    return gpu


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def exited(status):
    """How a program ended, from its exit status under timeout(1)."""
    if status in (124, 137):
        return f"was stopped at its time limit (exit {status})"
    return f"exited with status {status}"


def first_skip_reason(log):
    """The message of the first GTEST_SKIP in a gtest log (the JSON output leaves it out): the
    line after "file:line: Skipped"."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "?"
    for i, line in enumerate(lines[:-1]):
        if line.endswith(": Skipped"):
            return lines[i + 1].strip() or "?"
    return "?"


def gtest_check(program, exit_status, logs):
    """A gtest program's check: passed only if it exited 0, wrote its JSON, and skipped nothing
    (on a machine with a GPU, a skip means the GPU was not usable)."""
    log = os.path.join(logs, program + ".log")
    check = {"program": program, "exit_status": exit_status, "log": log}
    results = read_json(os.path.join(logs, program + ".json"))
    if results is None:
        check.update(status="failed",
                     reason=f"{program} {exited(exit_status)} without writing its results; "
                            f"see {log}")
        return check
    passed, failed, skipped, disabled = [], [], [], []
    for suite in results.get("testsuites", []):
        for test in suite.get("testsuite", []):
            name = f"{suite.get('name')}.{test.get('name')}"
            if test.get("failures"):
                failed.append(name)
            elif test.get("result") == "SKIPPED":
                skipped.append(name)
            elif test.get("status") == "NOTRUN":  # DISABLED_ in the source: not this check's
                disabled.append(name)
            else:
                passed.append(name)
    check.update(passed=len(passed), failed=len(failed), skipped=len(skipped),
                 disabled=len(disabled), failed_tests=failed, skipped_tests=skipped,
                 seconds=float(str(results.get("time", "0")).rstrip("s") or 0))
    if skipped:
        check["skip_reason"] = first_skip_reason(log)
    if failed or skipped or exit_status != 0 or not passed:
        check["status"] = "failed"
        why = []
        if failed:
            why.append(f"{len(failed)} failed")
        if skipped:
            why.append(f"{len(skipped)} skipped (with a GPU present a skip means it was not "
                       f"usable): {check['skip_reason']}")
        if exit_status != 0 and not failed:
            why.append(f"it {exited(exit_status)}")
        if not passed and not why:
            why.append("no test ran")
        check["reason"] = "; ".join(why) + f"; see {log}"
    else:
        check["status"] = "passed"
    return check


def bench_check(exit_status, logs):
    log = os.path.join(logs, BENCH + ".log")
    check = {"program": BENCH, "exit_status": exit_status, "log": log}
    record = read_json(os.path.join(logs, BENCH + ".json"))
    if exit_status != 0 or record is None:
        check.update(status="failed",
                     reason=f"{BENCH} {exited(exit_status)}"
                            f"{'' if record else ' without writing its figures'}; see {log}")
        return check
    if record.get("device") is None:
        check.update(status="failed",
                     reason=f"{BENCH} found no usable GPU: {record.get('reason', '?')}")
        return check
    check["status"] = "passed"
    check["figures"] = record
    return check


def not_run(reason):
    return {"status": "not_run", "reason": reason}


def step_records(path):
    """The per-step records of a `trident pretrain` or `trident grpo` metrics file."""
    records = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if "step" in record and "loss" in record:
                    records.append(record)
    except OSError:
        pass
    return records


def run_failure(run, status, logs):
    """Why a training run failed, or None when it exited 0."""
    if status == 0:
        return None
    return f"`trident` ({run}) {exited(status)}; see {os.path.join(logs, run + '.log')}"


def train_check(ran, logs):
    """`small` 50 steps on the GPU in bf16 against the CPU in fp32, from the same seed."""
    if TRAIN_GPU not in ran or TRAIN_CPU not in ran:
        return None
    for run in (TRAIN_GPU, TRAIN_CPU):
        failure = run_failure(run, ran[run], logs)
        if failure:
            return {"status": "failed", "reason": failure}
    gpu = step_records(os.path.join(logs, TRAIN_GPU + ".jsonl"))
    cpu = step_records(os.path.join(logs, TRAIN_CPU + ".jsonl"))
    if len(gpu) < TRAIN_STEPS or len(cpu) < TRAIN_STEPS:
        return {"status": "failed",
                "reason": f"{len(gpu)} GPU and {len(cpu)} CPU steps recorded, expected "
                          f"{TRAIN_STEPS} each; see {logs}"}
    gpu_losses = [r["loss"] for r in gpu[:TRAIN_STEPS]]
    cpu_losses = [r["loss"] for r in cpu[:TRAIN_STEPS]]
    if not all(math.isfinite(x) for x in gpu_losses):
        return {"status": "failed", "reason": "the GPU run's loss is not finite"}
    gpu_mean = sum(gpu_losses[-10:]) / 10
    cpu_mean = sum(cpu_losses[-10:]) / 10
    difference = abs(gpu_mean - cpu_mean) / cpu_mean
    check = {"status": "passed" if difference <= LOSS_TOLERANCE else "failed",
             "steps": TRAIN_STEPS, "first_loss": {"gpu": gpu_losses[0], "cpu": cpu_losses[0]},
             "last10_mean_loss": {"gpu": gpu_mean, "cpu": cpu_mean},
             "relative_difference": difference, "tolerance": LOSS_TOLERANCE,
             "gpu_step_seconds": sum(r.get("step_s", 0.0) for r in gpu[1:TRAIN_STEPS])
                                 / (TRAIN_STEPS - 1)}
    if check["status"] == "failed":
        check["reason"] = (f"the mean loss of the last 10 steps differs by {difference:.4f} "
                           f"(GPU {gpu_mean:.4f}, CPU {cpu_mean:.4f}; bound {LOSS_TOLERANCE})")
    return check


def grpo_check(ran, logs):
    """One GRPO step on the GPU from the GPU run's checkpoint: it ends, its figures finite."""
    if GRPO_GPU not in ran:
        return None
    failure = run_failure(GRPO_GPU, ran[GRPO_GPU], logs)
    if failure:
        return {"status": "failed", "reason": failure}
    records = step_records(os.path.join(logs, GRPO_GPU + ".jsonl"))
    if not records:
        return {"status": "failed", "reason": f"no GRPO step recorded; see {logs}"}
    step = records[0]
    figures = {k: step[k] for k in ("loss", "reward", "kl", "grad_norm", "entropy") if k in step}
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in figures.values()):
        return {"status": "failed", "reason": f"a figure of the GRPO step is not finite: {figures}",
                "figures": figures}
    return {"status": "passed", "figures": figures,
            "seconds": {k: step[k] for k in ("rollout_s", "update_s") if k in step}}


def layer_check(ran, logs):
    """One DeepSeek-V3 MoE layer at 671B widths, 4,096 tokens, bf16 (`trident bench step
    --config dsv3-layer`): its model FLOP rate against the GPU's dense bf16 peak (MFU) and
    against a bf16 GEMM timed in the same run. Passed when the MFU reaches MFU_TARGET."""
    if LAYER_GPU not in ran:
        return None
    failure = run_failure(LAYER_GPU, ran[LAYER_GPU], logs)
    if failure:
        return {"status": "failed", "reason": failure}
    record = read_json(os.path.join(logs, LAYER_GPU + ".json"))
    if not record or record.get("mfu") is None:
        return {"status": "failed",
                "reason": f"the layer step wrote no figures; see {os.path.join(logs, LAYER_GPU)}.log"}
    figures = {"gpu": record.get("gpu"), "step_seconds": record.get("trident_step_s"),
               "tokens": record.get("tokens_per_step"),
               "model_gflop_per_step": record.get("model_gflop_per_step"),
               "model_tflops_per_s": record.get("model_tflops_per_s"),
               "peak_tflops": record.get("peak_tflops"), "mfu": record["mfu"],
               "bf16_gemm_tflops": record["sgemm_gflops"] / 1e3,
               "ratio_to_gemm": record.get("ratio_to_sgemm"),
               # The planner's memory for the step against the GPU allocator's peak: reported,
               # not judged (docs/cuda.md, "The layer step").
               "planned_memory_mib": record.get("planned_memory_mib"),
               "peak_tensor_mib": record.get("peak_tensor_mib")}
    check = {"status": "passed" if record["mfu"] >= MFU_TARGET else "failed",
             "figures": figures, "target_mfu": MFU_TARGET}
    if check["status"] == "failed":
        check["reason"] = (f"MFU {100 * record['mfu']:.1f}% of the dense bf16 peak "
                           f"({figures['peak_tflops']:g} TFLOP/s), below the "
                           f"{100 * MFU_TARGET:.0f}% target")
    return check


def build_report(a):
    finished = datetime.now(timezone.utc).timestamp()
    steps = [{"name": n, "seconds": round(float(e) - float(s), 3), "status": st}
             for n, s, e, st in a.step]
    report = {
        "schema": SCHEMA,
        "started_at": utc(a.started),
        "finished_at": utc(finished),
        "host": socket.gethostname(),
        "commit": commit(a.root),
        "gpu": None,
        "steps": steps,
        "total_seconds": round(finished - a.started, 3),
        "budget_seconds": BUDGET_SECONDS,
        "logs": a.logs,
    }
    checks = {}
    if a.no_gpu is not None:
        report.update(result="no_gpu", reason=a.no_gpu)
        checks = {name: not_run("no GPU") for name in CHECK_ORDER}
    else:
        report["gpu"] = parse_gpu(a.gpu, a.cuda_visible_devices) if a.gpu else None
        if a.build_dir:
            report["build"] = {"dir": a.build_dir, "cuda_architectures": a.arch,
                               "targets": a.targets.split(), "reused": a.build_reused,
                               "status": a.build_status}
        ran = {program: int(status) for program, status in a.ran}
        stop = None
        if a.error is not None:
            stop = a.error
        elif a.build_status == "failed":
            stop = f"the build failed; see {os.path.join(a.logs, 'build.log')}"
        elif a.aborted:
            stop = f"the check stopped during '{a.aborted[0]}' (exit {a.aborted[1]})"
        for name, program in GTESTS.items():
            if program in ran:
                checks[name] = gtest_check(program, ran[program], a.logs)
            else:
                checks[name] = not_run(stop or "not reached")
        if BENCH in ran:
            checks["cuda_op_benchmark"] = bench_check(ran[BENCH], a.logs)
            if a.iterations:
                checks["cuda_op_benchmark"]["iterations"] = a.iterations
        else:
            checks["cuda_op_benchmark"] = not_run(stop or "not reached")
        for name, check in (("train_small_gpu_bf16_vs_cpu_fp32", train_check(ran, a.logs)),
                            ("grpo_step_gpu", grpo_check(ran, a.logs)),
                            ("dsv3_layer_step_mfu", layer_check(ran, a.logs))):
            checks[name] = check if check is not None else not_run(stop or "not reached")
        statuses = [c["status"] for c in checks.values()]
        if a.error is not None:
            report.update(result="error", reason=a.error)
        elif "failed" in statuses or a.build_status == "failed" or a.aborted:
            report["result"] = "failed"
            if stop:
                report["reason"] = stop
        elif "not_run" in statuses:
            report["result"] = "incomplete"
        else:
            report["result"] = "passed"
    report["checks"] = checks
    report["exit_status"] = 0 if report["result"] in ("passed", "incomplete", "no_gpu") else 1
    return report


def describe(check, report):
    if check["status"] == "not_run":
        # The reason the whole run gave is printed once, above.
        return "(see above)" if check["reason"] == report.get("reason") else check["reason"]
    if "passed" in check:
        text = (f"{check['passed']} passed, {check['failed']} failed, {check['skipped']} skipped "
                f"({check['seconds']:.1f} s)")
        if check["failed_tests"]:
            names = check["failed_tests"]
            text += ": " + ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        if check["skipped_tests"]:
            text += f"; skipped because: {check['skip_reason']}"
        return text
    if "relative_difference" in check:
        text = (f"last 10 of {check['steps']} steps: GPU bf16 "
                f"{check['last10_mean_loss']['gpu']:.4f}, CPU fp32 "
                f"{check['last10_mean_loss']['cpu']:.4f}, relative difference "
                f"{check['relative_difference']:.4f} (bound {check['tolerance']}); "
                f"{check['gpu_step_seconds'] * 1000:.1f} ms per GPU step")
        return text if check["status"] == "passed" else check["reason"]
    if "target_mfu" in check:
        f = check["figures"]
        text = (f"MFU {100 * f['mfu']:.1f}% of {f['peak_tflops']:g} TFLOP/s (target "
                f"{100 * check['target_mfu']:.0f}%): {f['model_tflops_per_s']:.1f} TFLOP/s, "
                f"{f['step_seconds'] * 1000:.0f} ms per step of {f['tokens']} tokens; bf16 GEMM "
                f"{f['bf16_gemm_tflops']:.1f} TFLOP/s, ratio {f['ratio_to_gemm']:.3f}")
        if f.get("planned_memory_mib") and f.get("peak_tensor_mib"):
            text += (f"; memory {f['peak_tensor_mib'] / 1024:.1f} GiB, planned "
                     f"{f['planned_memory_mib'] / 1024:.1f} GiB")
        return check.get("reason", text) if check["status"] == "failed" else text
    if "figures" in check and "baselines" not in check["figures"]:
        f = check["figures"]
        return check.get("reason") or ", ".join(f"{k} {v:.4g}" for k, v in f.items())
    if "figures" in check:
        f = check["figures"]
        base = f["baselines"]
        text = (f"bf16 GEMM 8192³ {base['bf16_gemm_8192']['tflops']:.1f} TFLOP/s, "
                f"fp32 GEMM 4096³ {base['fp32_gemm_4096']['tflops']:.1f} TFLOP/s; "
                f"grouped/dense {f.get('grouped_over_dense', float('nan')):.2f}")
        for case in f.get("cases", []):
            text += (f"\n{'':44}{case['name'][:46]:46} {case['tflops']:8.1f} TFLOP/s "
                     f"{case['ratio_to_baseline']:6.3f} x")
        return text
    return check.get("reason", "")


def summary(report, report_path):
    lines = []
    result = report["result"]
    headline = {
        "passed": "PASSED: every check ran and passed",
        "incomplete": "INCOMPLETE: every check that ran passed; "
                      f"{sum(c['status'] == 'not_run' for c in report['checks'].values())} "
                      "not run",
        "failed": "FAILED",
        "no_gpu": "NO GPU: nothing checked",
        "error": "ERROR: the checks could not start",
    }[result]
    lines.append(f"gpu-check: {headline}")
    if report.get("reason"):
        lines.append(f"  {report['reason']}")
    gpu = report.get("gpu")
    if gpu:
        lines.append(f"  GPU {gpu['index']}: {gpu['name']} (compute capability "
                     f"{gpu['compute_capability']}, {gpu['memory_mib']} MiB, driver "
                     f"{gpu['driver_version']})")
    if report.get("build"):
        b = report["build"]
        lines.append(f"  build: {b['dir']} (CUDA architectures {b['cuda_architectures']}"
                     f"{', reused' if b['reused'] else ''})")
    labels = {"passed": "passed", "failed": "FAILED", "not_run": "not run"}
    if result == "no_gpu":
        lines.append("  not run: " + ", ".join(CHECK_ORDER))
    else:
        for name in CHECK_ORDER:
            check = report["checks"].get(name)
            if check:
                lines.append(f"  {labels[check['status']]:8} {name:32} {describe(check, report)}")
    if report["steps"]:
        lines.append("  steps: " + ", ".join(
            f"{s['name']} {s['seconds']:.1f} s" + ("" if s["status"] == "passed" else
                                                   f" ({s['status']})")
            for s in report["steps"]))
    budget = ""
    if gpu:
        budget = (f" ({'within' if report['total_seconds'] <= BUDGET_SECONDS else 'OVER'} the "
                  f"budget of {BUDGET_SECONDS} s on one H100)")
    lines.append(f"  total {report['total_seconds']:.1f} s{budget}")
    lines.append(f"  report: {report_path}")
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    temp = path + ".tmp"
    with open(temp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temp, path)


def main():
    a = parse_args()
    report = build_report(a)
    os.makedirs(a.out_dir, exist_ok=True)
    report_path = os.path.join(a.out_dir, "report.json")
    text = summary(report, report_path)
    write_atomically(report_path, json.dumps(report, indent=2) + "\n")
    write_atomically(os.path.join(a.out_dir, "summary.txt"), text)
    sys.stdout.write("\n" + text)
    return report["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
