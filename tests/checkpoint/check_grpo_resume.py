"""trident grpo resumes exactly, under mpirun with 2 ranks (dp2·ep2, ZeRO-1), each run a new job
of new processes. The runs use β > 0 with a reference refreshed every 3 steps, μ = 2 updates per
step, a held-out evaluation, and an external reward that differs within a group (an untrained
model's rule reward is 0 everywhere, which would leave nothing to learn):

1. exact resume: a 6-step run saving every 2 steps against `--resume auto` from its step-2
   checkpoint copied into a new directory: steps 3..6 log the same metrics (every field but the
   timings), and step_6.h5 holds the same weights, AdamW moments and reference model bit for bit;
   the final evaluation record (with the accuracy before GRPO, carried in the checkpoint) too;
2. another layout: the dp2·ep2 step-2 checkpoint resumed on one rank: the same rewards every
   step (the same rollouts) and final weights within 1e-4 relative;
3. preemption: SIGUSR1 sent to ONE rank of a running 40-step job: every rank stops after the
   same step, writes a checkpoint of it and exits 75; `--resume auto` runs to the end and its
   step_40.h5 equals an uninterrupted run's bit for bit;
4. refusals (exit 2, one message naming the file): resuming GRPO from a pretraining checkpoint,
   resuming pretraining from a GRPO checkpoint, and a β > 0 run resuming a β = 0 checkpoint.

usage: check_grpo_resume.py MPIRUN TRIDENT
"""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

from checkpoint_checks import preempt_one_rank, report, run, scratch_dir

EXIT_STOPPED_BY_SIGNAL = 75
GRPO = ["--config", "tiny", "--set", "grpo.prompts_per_step=4", "--set", "grpo.group_size=4",
        "--set", "grpo.max_new_tokens=8", "--set", "grpo.lr=1e-3", "--set", "grpo.beta=0.04",
        "--set", "grpo.ref_refresh_every=3", "--set", "grpo.updates_per_batch=2", "--set",
        "grpo.temperature=1.5", "--set", "grpo.warmup_steps=2"]
LAYOUT = ["--set", "parallel.dp=2", "--set", "parallel.ep=2", "--set", "parallel.zero1=true"]
GROUPS = ("weights", "optimizer/exp_avg", "optimizer/exp_avg_sq", "reference/weights")


def grpo(mpirun, trident, reward, *args, ranks=2):
    command = [trident, "grpo", *GRPO, "--set", f"grpo.reward_command=/usr/bin/python3 {reward}",
               *args]
    if ranks == 1:
        return command
    return [mpirun, "-np", str(ranks), "--oversubscribe", *command, *LAYOUT]


def records(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


def steps_of(path):
    return {r["step"]: r for r in records(path) if "reward" in r}


def differing(path_a, path_b, groups=GROUPS, tolerance=0.0):
    """Names of the tensors that differ (beyond `tolerance` relative) between two files."""
    out = []
    with h5py.File(path_a, "r") as a, h5py.File(path_b, "r") as b:
        for group in groups:
            if group not in a or group not in b:
                out.append(f"{group} missing")
                continue
            for name in a[group]:
                x, y = a[group][name][()], b[group][name][()]
                if tolerance == 0.0:
                    same = np.array_equal(x, y)
                else:
                    same = np.linalg.norm(x - y) <= tolerance * max(np.linalg.norm(x), 1e-30)
                if not same:
                    out.append(f"{group}/{name}")
    return out


def refused(command, words):
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    text = result.stdout + result.stderr
    if result.returncode == 2 and words in text:
        return None
    return f"exit {result.returncode}, expected 2 with '{words}': {' '.join(command)}\n{text[-2000:]}"


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    with scratch_dir() as tmp:
        reward = os.path.join(tmp, "reward.py")
        with open(reward, "w") as f:
            f.write("import sys, json\nfor l in sys.stdin:\n"
                    "    print(sum(map(ord, json.loads(l)['completion'])) % 5)\n")
        job = lambda *args, ranks=2: grpo(mpirun, trident, reward, *args, ranks=ranks)  # noqa

        # 1: exact resume in the same layout.
        straight, first = os.path.join(tmp, "straight.jsonl"), os.path.join(tmp, "a")
        run(job("--set", "grpo.steps=6", "--set", "grpo.eval_prompts=2", "--metrics", straight,
                "--checkpoint-dir", first, "--set", "checkpoint.every=2"))
        want = steps_of(straight)
        if sorted(want) != list(range(1, 7)) or all(r["reward_std"] == 0 for r in want.values()):
            failures.append(f"uninterrupted run: steps {sorted(want)}, rewards all equal?")
        second = os.path.join(tmp, "b")
        os.makedirs(second)
        shutil.copy(os.path.join(first, "step_2.h5"), second)
        resumed = os.path.join(tmp, "resumed.jsonl")
        log = run(job("--set", "grpo.steps=6", "--set", "grpo.eval_prompts=2", "--metrics",
                      resumed, "--checkpoint-dir", second, "--resume", "auto"))
        if "resumed GRPO from" not in log or "held-out greedy accuracy before" in log:
            failures.append("the resumed run did not say it resumed, or evaluated again before")
        got = steps_of(resumed)
        if sorted(got) != [3, 4, 5, 6]:
            failures.append(f"resumed run logged steps {sorted(got)}, expected 3..6")
        for step, record in sorted(got.items()):
            if record != want.get(step):
                failures.append(f"resumed step {step}: {record} != uninterrupted {want.get(step)}")
        final = [r for r in records(resumed) if "eval_accuracy" in r]
        want_final = [r for r in records(straight) if "eval_accuracy" in r]
        if final != want_final or not want_final:
            failures.append(f"final evaluation {final} != uninterrupted {want_final}")
        diff = differing(os.path.join(first, "step_6.h5"), os.path.join(second, "step_6.h5"))
        if diff:
            failures.append(f"resumed step_6.h5 differs from the uninterrupted one: {diff[:5]}")

        # 2: the dp2·ep2 checkpoint on one rank.
        one_dir, one = os.path.join(tmp, "one"), os.path.join(tmp, "one.jsonl")
        run(job("--set", "grpo.steps=6", "--set", "grpo.eval_prompts=0", "--metrics", one,
                "--checkpoint-dir", one_dir, "--resume", os.path.join(first, "step_2.h5"),
                ranks=1))
        got_one = steps_of(one)
        if sorted(got_one) != [3, 4, 5, 6]:
            failures.append(f"one-rank resume logged steps {sorted(got_one)}")
        for step, record in sorted(got_one.items()):
            if record["reward"] != want[step]["reward"]:
                failures.append(f"one-rank resume step {step}: reward {record['reward']} != "
                                f"{want[step]['reward']} (other rollouts)")
        diff = differing(os.path.join(first, "step_6.h5"), os.path.join(one_dir, "step_6.h5"),
                         ("weights",), tolerance=1e-4)
        if diff:
            failures.append(f"one-rank resume: weights beyond 1e-4 relative: {diff[:5]}")

        # 3: preemption by SIGUSR1 to one rank, against an uninterrupted 40-step run.
        longer = ["--set", "grpo.steps=40", "--set", "grpo.eval_prompts=0"]
        reference_dir = os.path.join(tmp, "long")
        run(job(*longer, "--checkpoint-dir", reference_dir))
        pre, metrics = os.path.join(tmp, "pre"), os.path.join(tmp, "pre.jsonl")
        status, out, problem = preempt_one_rank(
            job(*longer, "--metrics", metrics, "--checkpoint-dir", pre),
            lambda: os.path.exists(metrics) and len(steps_of(metrics)) >= 2)
        if problem:
            failures.append(problem)
        if status != EXIT_STOPPED_BY_SIGNAL:
            failures.append(f"preempted job exited {status}, expected "
                            f"{EXIT_STOPPED_BY_SIGNAL}\n{out[-3000:]}")
        last = max(steps_of(metrics)) if os.path.exists(metrics) else 0
        saved = sorted(os.listdir(pre)) if os.path.isdir(pre) else []
        if saved != [f"step_{last}.h5"] or not 0 < last < 40:
            failures.append(f"preempted after step {last}: checkpoints {saved}")
        run(job(*longer, "--metrics", metrics, "--checkpoint-dir", pre, "--resume", "auto"))
        if sorted(steps_of(metrics)) != list(range(1, 41)):
            failures.append(f"preempted + resumed metrics hold steps {sorted(steps_of(metrics))}")
        diff = differing(os.path.join(reference_dir, "step_40.h5"), os.path.join(pre, "step_40.h5"))
        if diff:
            failures.append(f"preempted at step {last} and resumed: step_40.h5 differs: {diff[:5]}")
        print(f"preempted after step {last} of 40; resumed to step 40 bit for bit")

        # 4: refusals.
        pretrained, beta0 = os.path.join(tmp, "pretrained"), os.path.join(tmp, "beta0")
        run([trident, "pretrain", "--config", "tiny", "--set", "train.steps=2", "--set",
             "train.global_batch=4", "--set", "train.micro_batch=2", "--checkpoint-dir",
             pretrained])
        run(job("--set", "grpo.steps=1", "--set", "grpo.beta=0", "--set", "grpo.eval_prompts=0",
                "--checkpoint-dir", beta0, ranks=1))
        checks = [
            (job("--set", "grpo.steps=2", "--resume", os.path.join(pretrained, "step_2.h5"),
                 ranks=1), "was not written by trident grpo"),
            ([trident, "pretrain", "--config", "tiny", "--set", "train.steps=8", "--resume",
              os.path.join(first, "step_6.h5")], "was written by another trainer"),
            (job("--set", "grpo.steps=4", "--set", "grpo.beta=0.1", "--resume",
                 os.path.join(beta0, "step_1.h5"), ranks=1), "holds no reference model"),
        ]
        for command, words in checks:
            problem = refused(command, words)
            if problem:
                failures.append(problem)
    report(failures, "grpo resume (exact, resharded, preempted) and its refusals: OK")


if __name__ == "__main__":
    main()
