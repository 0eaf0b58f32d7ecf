"""trident pretrain under mpirun: 2 data-parallel ranks (ZeRO-1 off and on), 2
tensor-parallel ranks, 2 data-parallel ranks with 2-way expert parallelism and 2 pipeline ranks
(ZB-H1) report the same per-step losses as one rank (relative 1e-5), only rank 0 writes the
metrics file, pipeline parallelism with ZeRO-1 matches too, and a layout the command does not
run yet (expert tensor parallelism) is refused with a message naming the field.

The tensor- and expert-parallel comparisons use AdamW eps 1e-6 on both sides: with eps 1e-8 the fp32
round-off of near-zero gradients, which differs between layouts, is amplified into O(lr) steps
(docs/tensor-parallel.md).

usage: check_pretrain_dp.py MPIRUN TRIDENT
"""
import json
import os
import subprocess
import sys
import tempfile

STEPS = 5
COMMON = ["--config", "tiny", "--set", f"train.steps={STEPS}", "--set", "train.global_batch=8",
          "--set", "train.micro_batch=2", "--set", "train.grad_clip=0.5", "--bucket-kb", "8",
          "--set", "checkpoint.dir="]


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

        tp_eps = ["--set", "train.adam_eps=1e-6"]
        single_eps = os.path.join(tmp, "single_eps.jsonl")
        run([trident, "pretrain", *COMMON, *tp_eps, "--metrics", single_eps])
        want_eps = losses(single_eps)
        tp_out = os.path.join(tmp, "tp2.jsonl")
        run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON, *tp_eps,
             "--set", "parallel.tp=2", "--set", "parallel.zero1=true", "--metrics", tp_out])
        got = losses(tp_out)
        if len(got) != STEPS:
            failures.append(f"tp 2: {len(got)} steps in the metrics file")
        for step, (a, b) in enumerate(zip(got, want_eps), start=1):
            if abs(a - b) > 1e-5 * abs(b):
                failures.append(f"tp 2 step {step}: loss {a} vs one rank {b}")
        print(f"tp 2: losses {got} (one rank {want_eps})")

        ep_out = os.path.join(tmp, "dp2_ep2.jsonl")
        run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON, *tp_eps,
             "--set", "parallel.dp=2", "--set", "parallel.ep=2", "--set", "parallel.a2a_chunks=2",
             "--set", "parallel.zero1=true", "--metrics", ep_out])
        got = losses(ep_out)
        if len(got) != STEPS:
            failures.append(f"dp 2 ep 2: {len(got)} steps in the metrics file")
        for step, (a, b) in enumerate(zip(got, want_eps), start=1):
            if abs(a - b) > 1e-5 * abs(b):
                failures.append(f"dp 2 ep 2 step {step}: loss {a} vs one rank {b}")
        print(f"dp 2 ep 2: losses {got}")

        pp_out = os.path.join(tmp, "pp2.jsonl")
        run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON, *tp_eps,
             "--set", "parallel.pp=2", "--set", "parallel.schedule=zb-h1", "--metrics", pp_out])
        got = losses(pp_out)
        if len(got) != STEPS:
            failures.append(f"pp 2: {len(got)} steps in the metrics file")
        for step, (a, b) in enumerate(zip(got, want_eps), start=1):
            if abs(a - b) > 1e-5 * abs(b):
                failures.append(f"pp 2 step {step}: loss {a} vs one rank {b}")
        print(f"pp 2: losses {got}")

        pp_zero1_out = os.path.join(tmp, "pp2_zero1.jsonl")
        run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON, *tp_eps,
             "--set", "parallel.pp=2", "--set", "parallel.zero1=true", "--metrics", pp_zero1_out])
        got = losses(pp_zero1_out)
        if len(got) != STEPS:
            failures.append(f"pp 2 ZeRO-1: {len(got)} steps in the metrics file")
        for step, (a, b) in enumerate(zip(got, want_eps), start=1):
            if abs(a - b) > 1e-5 * abs(b):
                failures.append(f"pp 2 ZeRO-1 step {step}: loss {a} vs one rank {b}")
        print(f"pp 2 ZeRO-1: losses {got}")

        refused = run([mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON,
                       "--set", "parallel.dp=2", "--set", "parallel.ep=2",
                       "--set", "parallel.etp=2"],
                      expect_ok=False)
        text = refused.stdout + refused.stderr
        if refused.returncode == 0 or "parallel.etp" not in text:
            failures.append(f"etp 2 was not refused clearly (exit "
                            f"{refused.returncode}):\n{text}")
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
