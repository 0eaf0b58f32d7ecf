"""trident pretrain under mpirun with expert parallelism together with tensor parallelism:
dp1·tp2·ep2 (2 ranks), dp2·tp2·ep2 and dp2·tp2·ep4 (4 ranks, ZeRO-1, chunked all-to-all) report
the one-rank per-step losses and gradient norms (relative 1e-5), and what the command still
does not run is refused with a message naming the field: parallel.etp > 1, a capacity factor
together with tp > 1, and an ep that does not divide dp × tp.

Both sides use AdamW eps 1e-6 (docs/tensor-parallel.md explains why).

usage: check_pretrain_ep_tp.py MPIRUN TRIDENT
"""
import json
import os
import subprocess
import sys
import tempfile

STEPS = 5
COMMON = ["--config", "tiny", "--set", f"train.steps={STEPS}", "--set", "train.global_batch=8",
          "--set", "train.micro_batch=2", "--set", "train.grad_clip=0.5",
          "--set", "train.adam_eps=1e-6", "--bucket-kb", "8",
          "--set", "checkpoint.dir="]  # many runs, compared by their metrics: no checkpoints


def run(command):
    return subprocess.run(command, capture_output=True, text=True, timeout=240)


def metrics(path):
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return [(r["loss"], r["grad_norm"]) for r in records if "loss" in r]


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        single = os.path.join(tmp, "single.jsonl")
        result = run([trident, "pretrain", *COMMON, "--metrics", single])
        if result.returncode != 0:
            sys.exit(f"one rank failed:\n{result.stdout}\n{result.stderr}")
        want = metrics(single)

        layouts = [
            (2, ["parallel.tp=2", "parallel.ep=2", "parallel.a2a_chunks=2"]),
            (4, ["parallel.dp=2", "parallel.tp=2", "parallel.ep=2", "parallel.zero1=true"]),
            (4, ["parallel.dp=2", "parallel.tp=2", "parallel.ep=4", "parallel.a2a_chunks=3",
                 "parallel.zero1=true"]),
        ]
        for ranks, sets in layouts:
            name = " ".join(sets)
            out = os.path.join(tmp, f"run{len(name)}_{ranks}.jsonl")
            flags = [arg for s in sets for arg in ("--set", s)]
            result = run([mpirun, "-np", str(ranks), "--oversubscribe", trident, "pretrain",
                          *COMMON, *flags, "--metrics", out])
            if result.returncode != 0:
                failures.append(f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}")
                continue
            got = metrics(out)
            if len(got) != STEPS:
                failures.append(f"{name}: {len(got)} steps in the metrics file")
            for step, ((loss, norm), (want_loss, want_norm)) in enumerate(zip(got, want), 1):
                if abs(loss - want_loss) > 1e-5 * abs(want_loss):
                    failures.append(f"{name} step {step}: loss {loss} vs one rank {want_loss}")
                if abs(norm - want_norm) > 1e-5 * abs(want_norm):
                    failures.append(f"{name} step {step}: grad norm {norm} vs one rank {want_norm}")
            print(f"{ranks} ranks, {name}: losses {[l for l, _ in got]}")
        print(f"one rank: losses {[l for l, _ in want]}")

        refusals = [
            (4, ["parallel.dp=2", "parallel.tp=2", "parallel.ep=2", "parallel.etp=2"],
             "expert tensor parallelism"),
            (2, ["parallel.tp=2", "parallel.ep=2", "parallel.capacity_factor=1.5"],
             "parallel.capacity_factor"),
            (2, ["parallel.tp=2", "parallel.ep=4"], "must divide parallel.dp × parallel.tp"),
        ]
        for ranks, sets, message in refusals:
            flags = [arg for s in sets for arg in ("--set", s)]
            result = run([mpirun, "-np", str(ranks), "--oversubscribe", trident, "pretrain",
                          *COMMON, *flags])
            text = result.stdout + result.stderr
            if result.returncode == 0 or message not in text:
                failures.append(f"{' '.join(sets)}: expected a refusal naming '{message}', got "
                                f"exit {result.returncode}:\n{text[-1500:]}")
            else:
                print(f"{' '.join(sets)}: refused ({message})")
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print("OK")


if __name__ == "__main__":
    main()
