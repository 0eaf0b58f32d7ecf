"""trident pretrain with checkpoints, under mpirun with 2 ranks (dp 2, ZeRO-1), each run a new
job of new processes:

1. exact resume: a 12-step run saving every 3 steps (keep_last 3) against `--resume auto` from
   step 6: the resumed run's losses for steps 7..12 equal the uninterrupted run's bit for bit
   (the JSONL holds shortest round-trip decimals), and keep_last left steps 6, 9, 12;
2. fault fallback: with step_12.h5 corrupted (bytes flipped inside a tensor) and step_9.h5
   truncated, `--resume auto` refuses both (logged, with the reason) and resumes from step 6;
3. preemption: SIGUSR1 sent to ONE rank of a running job: every rank stops after the same step,
   a checkpoint of that step is written, the job exits with status 75; `--resume auto` then
   runs to the end and its final loss equals the uninterrupted run's (a 300-step run, so the
   signal, sent once two steps are logged, lands long before the end: a step takes ~10 ms);
4. a dp2·ep2 ZeRO-1 checkpoint resumed by a new dp2·ep2 job (bit for bit) and by one rank
   without mpirun (resharded, ZeRO-1 shards re-split: losses within 1e-5 relative).

usage: check_pretrain_resume.py MPIRUN TRIDENT
"""
import json
import os
import subprocess
import sys

from checkpoint_checks import preempt_one_rank, report, run, scratch_dir

STEPS = 12
COMMON = ["--config", "tiny", "--set", f"train.steps={STEPS}", "--set", "train.global_batch=8",
          "--set", "train.micro_batch=2", "--set", "train.grad_clip=0.5", "--set",
          "train.warmup_steps=2", "--set", "parallel.dp=2", "--set", "parallel.zero1=true",
          "--bucket-kb", "8", "--set", "train.log_every=1"]
EXIT_STOPPED_BY_SIGNAL = 75
PREEMPT_STEPS = 300  # the preempted job's length: many steps after the signal is sent


def job(mpirun, trident, *args):
    return [mpirun, "-np", "2", "--oversubscribe", trident, "pretrain", *COMMON, *args]


def losses(path):
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def steps_in(directory):
    return sorted(int(n[5:-3]) for n in os.listdir(directory)
                  if n.startswith("step_") and n.endswith(".h5"))


def corrupt_inside_a_tensor(path):
    """Flips bytes well inside the file (tensor data, not the superblock)."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        block = bytearray(f.read(64))
        f.seek(size // 2)
        f.write(bytes(b ^ 0x5A for b in block))


def main():
    mpirun, trident = sys.argv[1], sys.argv[2]
    failures = []
    with scratch_dir() as tmp:
        ckpt = os.path.join(tmp, "ckpt")
        straight = os.path.join(tmp, "straight.jsonl")
        run(job(mpirun, trident, "--metrics", straight, "--checkpoint-dir", ckpt,
                "--set", "checkpoint.every=3", "--set", "checkpoint.keep_last=3"))
        want = losses(straight)
        if sorted(want) != list(range(1, STEPS + 1)):
            failures.append(f"uninterrupted run wrote steps {sorted(want)}")
        if steps_in(ckpt) != [6, 9, 12]:
            failures.append(f"keep_last 3 left checkpoints {steps_in(ckpt)}, expected [6, 9, 12]")

        # 1 + 2: the newest is corrupted, the next truncated: auto falls back to step 6.
        corrupt_inside_a_tensor(os.path.join(ckpt, "step_12.h5"))
        path9 = os.path.join(ckpt, "step_9.h5")
        with open(path9, "r+b") as f:
            f.truncate(os.path.getsize(path9) // 2)
        # A damaged file named explicitly is refused (exit 2, the reason named), not loaded.
        refused = subprocess.run(job(mpirun, trident, "--resume",
                                     os.path.join(ckpt, "step_12.h5")),
                                 capture_output=True, text=True, timeout=240)
        if refused.returncode == 0 or "checksum mismatch" not in refused.stdout + refused.stderr:
            failures.append(f"--resume of a corrupted file: exit {refused.returncode}\n"
                            f"{refused.stdout}{refused.stderr}")
        resumed = os.path.join(tmp, "resumed.jsonl")
        log = run(job(mpirun, trident, "--metrics", resumed, "--checkpoint-dir", ckpt,
                      "--resume", "auto", "--set", "checkpoint.every=0"))
        for name in ("step_12.h5", "step_9.h5"):
            if not any("refusing checkpoint" in l and name in l for l in log.splitlines()):
                failures.append(f"no refusal of {name} logged")
        if "resumed from" not in log or "step_6.h5" not in log:
            failures.append("the run did not report resuming from step_6.h5")
        got = losses(resumed)
        if sorted(got) != list(range(7, STEPS + 1)):
            failures.append(f"resumed run wrote steps {sorted(got)}, expected 7..{STEPS}")
        for step, loss in sorted(got.items()):
            if loss != want.get(step):
                failures.append(f"resumed step {step}: loss {loss!r} != uninterrupted "
                                f"{want.get(step)!r}")
        if 12 not in steps_in(ckpt):
            failures.append("the resumed run did not save its final checkpoint")

        # 4: a dp2·ep2 ZeRO-1 job's checkpoint, resumed by a new dp2·ep2 job (bit for bit) and
        # by one rank without mpirun (resharded: within 1e-5 relative; AdamW eps 1e-6 keeps
        # that about the layout, see tests/dp/test_mesh_training.cpp).
        ep_args = ["--set", "parallel.ep=2", "--set", "train.adam_eps=1e-6"]
        ep_dir = os.path.join(tmp, "ep")
        ep_straight = os.path.join(tmp, "ep_straight.jsonl")
        run(job(mpirun, trident, *ep_args, "--metrics", ep_straight, "--checkpoint-dir", ep_dir,
                "--set", "checkpoint.every=6"))
        ep_want = losses(ep_straight)
        ep_resumed = os.path.join(tmp, "ep_resumed.jsonl")
        run(job(mpirun, trident, *ep_args, "--metrics", ep_resumed,
                "--resume", os.path.join(ep_dir, "step_6.h5")))
        if sorted(losses(ep_resumed)) != list(range(7, STEPS + 1)):
            failures.append(f"dp2·ep2 resume wrote steps {sorted(losses(ep_resumed))}")
        for step, loss in sorted(losses(ep_resumed).items()):
            if loss != ep_want.get(step):
                failures.append(f"dp2·ep2 resumed step {step}: loss {loss!r} != "
                                f"{ep_want.get(step)!r}")
        single = [a for a in COMMON]
        single[single.index("parallel.dp=2")] = "parallel.dp=1"
        one = os.path.join(tmp, "ep_to_one.jsonl")
        run([trident, "pretrain", *single, "--set", "train.adam_eps=1e-6", "--metrics", one,
             "--resume", os.path.join(ep_dir, "step_6.h5")])
        got_one = losses(one)
        if sorted(got_one) != list(range(7, STEPS + 1)):
            failures.append(f"one-rank resume of the dp2·ep2 checkpoint wrote {sorted(got_one)}")
        for step, loss in sorted(got_one.items()):
            if abs(loss - ep_want[step]) > 1e-5 * abs(ep_want[step]):
                failures.append(f"one rank from dp2·ep2 step {step}: loss {loss} vs "
                                f"{ep_want[step]}")

        # 3: preemption, on a longer run and its own uninterrupted reference.
        longer = ["--set", f"train.steps={PREEMPT_STEPS}", "--set", "checkpoint.every=0"]
        reference = os.path.join(tmp, "preempt-reference.jsonl")
        run(job(mpirun, trident, *longer, "--metrics", reference, "--checkpoint-dir",
                os.path.join(tmp, "preempt-reference")))
        want_long = losses(reference)
        pre = os.path.join(tmp, "pre")
        metrics = os.path.join(tmp, "preempted.jsonl")
        status, out, problem = preempt_one_rank(
            job(mpirun, trident, *longer, "--metrics", metrics, "--checkpoint-dir", pre),
            lambda: os.path.exists(metrics) and len(losses(metrics)) >= 2)
        if problem:
            failures.append(problem)
        if status != EXIT_STOPPED_BY_SIGNAL:
            failures.append(f"preempted job exited {status}, expected "
                            f"{EXIT_STOPPED_BY_SIGNAL}\n{out}")
        stopped = losses(metrics)
        last = max(stopped) if stopped else 0
        if steps_in(pre) != [last] or not 0 < last < PREEMPT_STEPS:
            failures.append(f"preempted after step {last}: checkpoints {steps_in(pre)}")
        log = run(job(mpirun, trident, *longer, "--metrics", metrics, "--checkpoint-dir", pre,
                      "--resume", "auto"))
        final = losses(metrics)
        if sorted(final) != list(range(1, PREEMPT_STEPS + 1)):
            failures.append(f"preempted + resumed metrics hold steps {sorted(final)}")
        elif final[PREEMPT_STEPS] != want_long[PREEMPT_STEPS]:
            failures.append(f"final loss after preemption {final[PREEMPT_STEPS]!r} != "
                            f"uninterrupted {want_long[PREEMPT_STEPS]!r}")
        print(f"preempted after step {last} of {PREEMPT_STEPS}; final loss "
              f"{final.get(PREEMPT_STEPS)!r} (uninterrupted {want_long.get(PREEMPT_STEPS)!r})")
    report(failures, "pretrain resume, fallback and preemption: OK")


if __name__ == "__main__":
    main()
