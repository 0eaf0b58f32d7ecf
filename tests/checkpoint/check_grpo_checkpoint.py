"""trident grpo and checkpoints: a pretraining checkpoint initialises the GRPO policy
(`--init step_N.h5`), and GRPO writes checkpoints (checkpoint.dir, checkpoint.every, keep_last).
With grpo.lr = 0 the policy does not move, so the GRPO checkpoint's weights must equal the
pretraining checkpoint's bit for bit (read back with h5py); a GRPO checkpoint also holds the
AdamW moments and the GRPO state (a resume point: check_grpo_resume.py), records its GRPO step
and the model config, and is itself accepted by --init, which takes its weights only.

usage: check_grpo_checkpoint.py TRIDENT
"""
import os
import sys

import h5py
import numpy as np

from checkpoint_checks import report, run, scratch_dir

GRPO = ["--set", "grpo.prompts_per_step=2", "--set", "grpo.group_size=2", "--set",
        "grpo.max_new_tokens=6", "--set", "grpo.eval_prompts=0"]


def main():
    trident = sys.argv[1]
    failures = []
    with scratch_dir() as tmp:
        pre, rl, rl2 = (os.path.join(tmp, d) for d in ("pre", "rl", "rl2"))
        run([trident, "pretrain", "--config", "tiny", "--set", "train.steps=2", "--set",
             "train.global_batch=4", "--set", "train.micro_batch=2", "--checkpoint-dir", pre])
        source = os.path.join(pre, "step_2.h5")
        log = run([trident, "grpo", "--config", "tiny", *GRPO, "--set", "grpo.steps=3", "--set",
                   "grpo.lr=0", "--init", source, "--checkpoint-dir", rl, "--set",
                   "checkpoint.every=1", "--set", "checkpoint.keep_last=2"])
        if f"policy initialised from checkpoint {source}" not in log:
            failures.append("grpo did not report initialising from the checkpoint")
        names = sorted(os.listdir(rl))
        if names != ["step_2.h5", "step_3.h5"]:
            failures.append(f"grpo checkpoints {names}, expected step_2.h5 and step_3.h5")
        with h5py.File(source, "r") as a, h5py.File(os.path.join(rl, "step_3.h5"), "r") as b:
            if (b.attrs["step"] != 3 or b.attrs["has_optimizer"] != 1 or
                    '"trainer":"grpo"' not in b.attrs["trainer_state"]):
                failures.append(f"grpo checkpoint attrs step {b.attrs['step']} has_optimizer "
                                f"{b.attrs['has_optimizer']} trainer_state "
                                f"{b.attrs['trainer_state']}")
            weights = sorted(a["weights"].keys())
            if sorted(b["weights"].keys()) != weights:
                failures.append("grpo checkpoint holds other tensors than the pretraining one")
            moved = [n for n in weights
                     if n in b["weights"] and not np.array_equal(a["weights"][n][()],
                                                                 b["weights"][n][()])]
            if moved:
                failures.append(f"with grpo.lr=0 these tensors changed: {moved[:5]}")
        run([trident, "grpo", "--config", "tiny", *GRPO, "--set", "grpo.steps=1", "--init",
             os.path.join(rl, "step_3.h5"), "--checkpoint-dir", rl2])
        if os.listdir(rl2) != ["step_1.h5"]:
            failures.append(f"second grpo run wrote {os.listdir(rl2)}")
    report(failures, "grpo --init from a checkpoint and grpo checkpoints: OK")


if __name__ == "__main__":
    main()
