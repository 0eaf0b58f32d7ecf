"""`trident pretrain` end to end under mpirun against one rank: the same command line on one rank
and on data-, tensor-, expert- and pipeline-parallel layouts of 2, 4 and 8 ranks (ZeRO-1, chunked
all-to-all, ZB-H1, pp2·tp2·ep2 and pp2·dp2·tp2·ep2 among them) reports the one-rank losses and
gradient norms at every step within 1e-6 relative (clipping at 0.5 is active); only rank 0
writes the metrics file and prints progress; layouts the command does not run are refused with a
message naming the field (parallel.etp > 1, a capacity factor with tp > 1, an ep that does not
divide dp × tp, a rank count that does not fit the layout).

Every run uses AdamW eps 1e-6: with eps 1e-8 the fp32 round-off of near-zero gradients, which
differs between layouts, is amplified into O(lr) steps (docs/tensor-parallel.md).

usage: check_pretrain_cli.py MPIRUN TRIDENT
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from cli_runs import compare_steps, expect_refusal, mpi, run, sets, step_records  # noqa: E402

STEPS = 5
COMMON = ["pretrain", "--config", "tiny", "--bucket-kb", "8",
          *sets(f"train.steps={STEPS}", "train.global_batch=8", "train.micro_batch=2",
                "train.grad_clip=0.5", "train.adam_eps=1e-6", "checkpoint.dir=")]
LAYOUTS = [
    (2, ["parallel.dp=2"]),
    (2, ["parallel.dp=2", "parallel.zero1=true"]),
    (2, ["parallel.tp=2", "parallel.zero1=true"]),
    (2, ["parallel.dp=2", "parallel.ep=2", "parallel.a2a_chunks=2", "parallel.zero1=true"]),
    (2, ["parallel.tp=2", "parallel.ep=2", "parallel.a2a_chunks=2"]),
    (2, ["parallel.pp=2", "parallel.schedule=zb-h1"]),
    (2, ["parallel.pp=2", "parallel.zero1=true"]),
    (4, ["parallel.dp=2", "parallel.tp=2", "parallel.ep=2", "parallel.zero1=true"]),
    (4, ["parallel.dp=2", "parallel.tp=2", "parallel.ep=4", "parallel.a2a_chunks=3",
         "parallel.zero1=true"]),
    (4, ["parallel.pp=2", "parallel.tp=2", "parallel.ep=2"]),
    (8, ["parallel.pp=2", "parallel.dp=2", "parallel.tp=2", "parallel.ep=2"]),
]
REFUSALS = [
    (4, ["parallel.dp=2", "parallel.tp=2", "parallel.ep=2", "parallel.etp=2"],
     "expert tensor parallelism"),
    (2, ["parallel.tp=2", "parallel.ep=2", "parallel.capacity_factor=1.5"],
     "parallel.capacity_factor"),
    (2, ["parallel.tp=2", "parallel.ep=4"], "must divide parallel.dp × parallel.tp"),
    (2, [], "parallel.dp = 2"),  # two ranks for a one-rank layout
]


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        single = os.path.join(tmp, "single.jsonl")
        run([trident, *COMMON, "--metrics", single])
        want = step_records(single)
        if len(want) != STEPS:
            failures.append(f"one rank wrote {len(want)} steps, expected {STEPS}")
        for index, (ranks, assignments) in enumerate(LAYOUTS):
            name = f"{ranks} ranks, " + " ".join(assignments)
            out = os.path.join(tmp, f"layout{index}.jsonl")
            result = run(mpi(mpirun, ranks, [trident, *COMMON, *sets(*assignments),
                                             "--metrics", out]), expect_ok=False)
            if result.returncode != 0:
                failures.append(f"{name}: exit {result.returncode}\n{result.stderr[-2000:]}")
                continue
            got = step_records(out)
            failures += compare_steps(name, got, want, ("loss", "grad_norm"), 1e-6, STEPS)
            progress = [line for line in (result.stdout + result.stderr).splitlines()
                        if "step " in line and "loss" in line]
            if len(progress) != STEPS:
                failures.append(f"{name}: {len(progress)} progress lines, expected {STEPS} "
                                "(rank 0 only)")
            print(f"{name}: grad norms {[r['grad_norm'] for r in got]}")
        print(f"one rank: grad norms {[r['grad_norm'] for r in want]}")
        for ranks, assignments, words in REFUSALS:
            result = run(mpi(mpirun, ranks, [trident, *COMMON, *sets(*assignments)]),
                         expect_ok=False)
            failures += [f"{' '.join(assignments)}: {f}" for f in expect_refusal(result, words)]
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print("OK")


if __name__ == "__main__":
    main()
