"""The non-finite policy end to end: `trident pretrain` and `trident grpo` with an infinite
learning rate, alone and on 2 data-parallel ranks, exit 2 with one message naming the step and
the first non-finite tensor, and leave no checkpoint and no Hugging Face export behind (a
non-finite model is never saved); with `train.nonfinite=skip` they stop the same way, since an
update that makes weights non-finite cannot be skipped after the fact.

usage: check_nonfinite_cli.py MPIRUN TRIDENT
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from cli_runs import mpi, run, sets  # noqa: E402

PRETRAIN = ["pretrain", "--config", "tiny",
            *sets("train.steps=3", "train.lr=inf", "train.min_lr=0", "checkpoint.every=1")]
GRPO = ["grpo", "--config", "tiny",
        *sets("grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=2",
              "grpo.max_new_tokens=4", "grpo.eval_prompts=0", "grpo.lr=inf",
              "checkpoint.every=1")]
CASES = [
    ("pretrain, one rank", 1, PRETRAIN, [], "step 1: the update made weights non-finite"),
    ("pretrain, dp2, skip", 2, PRETRAIN, ["parallel.dp=2", "train.nonfinite=skip"],
     "step 1: the update made weights non-finite"),
    ("grpo, one rank", 1, GRPO, [], "GRPO step 1, update 1: the update made weights non-finite"),
    ("grpo, dp2", 2, GRPO, ["parallel.dp=2"],
     "GRPO step 1, update 1: the update made weights non-finite"),
]


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, ranks, command, assignments, words) in enumerate(CASES):
            checkpoints = os.path.join(tmp, f"ckpt{index}")
            export = os.path.join(tmp, f"hf{index}")
            result = run(mpi(mpirun, ranks, [trident, *command, *sets(*assignments),
                                             "--checkpoint-dir", checkpoints,
                                             "--save-hf", export]),
                         expect_ok=False, timeout=300)
            text = result.stdout + result.stderr
            if result.returncode != 2:
                failures.append(f"{name}: exit {result.returncode}, expected 2\n{text[-1500:]}")
            for expected in (words, "first non-finite tensor: weight model.",
                             "Stopping without saving"):
                if expected not in text:
                    failures.append(f"{name}: no '{expected}' in the output\n{text[-1500:]}")
            saved = os.listdir(checkpoints) if os.path.isdir(checkpoints) else []
            if saved:
                failures.append(f"{name}: a non-finite run left checkpoints {saved}")
            if os.path.exists(export):
                failures.append(f"{name}: a non-finite run exported {os.listdir(export)}")
            print(f"{name}: exit {result.returncode}, nothing saved")
    if failures:
        sys.exit("FAILED:\n" + "\n".join(failures))
    print("non-finite runs stop with the step and tensor named, nothing saved: OK")


if __name__ == "__main__":
    main()
