"""trident pretrain under mpirun: 2 data-parallel ranks (ZeRO-1 off and on) report the same
per-step losses as one rank (relative 1e-5), only rank 0 writes the metrics file, and a layout
the command does not run yet is refused with a message naming the fields.

usage: check_pretrain_dp.py MPIRUN TRIDENT
"""
import json
import os
import subprocess
import sys
import tempfile

STEPS = 5
COMMON = ["--config", "tiny", "--set", f"train.steps={STEPS}", "--set", "train.global_batch=8",
          "--set", "train.micro_batch=2", "--set", "train.grad_clip=0.5", "--bucket-kb", "8"]


def run(command, expect_ok=True):
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    if expect_ok and result.returncode != 0:
        sys.exit(f"FAILED ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}")
    return result


def losses(path):
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return [r["loss"] for r in records if "loss" in r]


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        single = os.path.join(tmp, "single.jsonl")
        run([trident, "pretrain", *COMMON, "--metrics", single])
        want = losses(single)
        if len(want) != STEPS:
            failures.append(f"one rank wrote {len(want)} steps, expected {STEPS}")
        for zero1 in ("false", "true"):
            out = os.path.join(tmp, f"dp2_zero1_{zero1}.jsonl")
            result = run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON,
                          "--set", "parallel.dp=2", "--set", f"parallel.zero1={zero1}",
                          "--metrics", out])
            got = losses(out)
            if len(got) != STEPS:
                failures.append(f"dp 2 zero1 {zero1}: {len(got)} steps in the metrics file")
            for step, (a, b) in enumerate(zip(got, want), start=1):
                if abs(a - b) > 1e-5 * abs(b):
                    failures.append(f"dp 2 zero1 {zero1} step {step}: loss {a} vs one rank {b}")
            progress = [l for l in result.stdout.splitlines() + result.stderr.splitlines()
                        if "step " in l and "loss" in l]
            if len(progress) != STEPS:
                failures.append(f"dp 2 zero1 {zero1}: {len(progress)} progress lines, expected "
                                f"{STEPS} (rank 0 only)")
            print(f"dp 2 zero1 {zero1}: losses {got}")
        print(f"one rank: losses {want}")

        refused = run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON,
                       "--set", "parallel.tp=2"], expect_ok=False)
        text = refused.stdout + refused.stderr
        if refused.returncode == 0 or "data parallelism only" not in text or "parallel.tp = 2" not in text:
            failures.append(f"tp 2 was not refused clearly (exit {refused.returncode}):\n{text}")
        mismatch = run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON],
                       expect_ok=False)
        text = mismatch.stdout + mismatch.stderr
        if mismatch.returncode == 0 or "parallel.dp = 2" not in text:
            failures.append(f"2 ranks with parallel.dp = 1 was not refused clearly:\n{text}")
    if failures:
        sys.exit("\n".join(failures))
    print("ok")


if __name__ == "__main__":
    main()
