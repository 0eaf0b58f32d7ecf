#!/usr/bin/python3
"""The distillation recipe's commands, shortened (scripts/distill.sh, configs/small-student):
a teacher (here the `small` model trained 2 steps, its samples accepted by an external reward
that pays every completion, since an untrained model never earns the rule reward) is sampled
into an SFT file, the ground-truth file of the same prompts is written, the student preset is
SFT-trained on each and one of them improved with a GRPO step, every model is evaluated, and
the recipe's summary table is checked against those outputs.

usage: check_distill_cli.py TRIDENT_BINARY WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = os.path.join(HERE, "..", "..", "launch", "plots", "distill_summary.py")
PROMPTS = 8


def run(cmd, expect=0):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect, (cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


def evaluate(binary, work, name, hf_dir):
    out = run([binary, "eval", "--hf-dir", hf_dir, "--count", "4", "--seed", "1234",
               "--max-new-tokens", "8"]).stdout.strip().splitlines()[-1]
    with open(os.path.join(work, name + ".eval.json"), "w") as f:
        f.write(out + "\n")
    return json.loads(out)


def student(binary, work, name, data, steps):
    run([binary, "pretrain", "--config", "small-student", "--set", "train.mode=sft",
         "--set", f"data.train_path={data}", "--set", f"train.steps={steps}",
         "--set", "train.warmup_steps=1", "--set", "train.log_every=1",
         "--set", "data.eval_samples=4", "--checkpoint-dir", os.path.join(work, name + "-ckpt"),
         "--metrics", os.path.join(work, name + ".jsonl"),
         "--save-hf", os.path.join(work, name + "-hf")])
    with open(os.path.join(work, name + ".seconds"), "w") as f:
        f.write("1\n")
    return evaluate(binary, work, name, os.path.join(work, name + "-hf"))


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "reward.py"), "w") as f:
        f.write("import sys\nfor line in sys.stdin:\n    print(1)\n")

    run([binary, "pretrain", "--config", "small", "--set", "train.mode=sft", "--set",
         "train.steps=2", "--set", "train.warmup_steps=1", "--set", "data.eval_samples=4",
         "--checkpoint-dir", os.path.join(work, "teacher-ckpt"),
         "--save-hf", os.path.join(work, "teacher-hf")])
    evaluate(binary, work, "teacher", os.path.join(work, "teacher-hf"))

    teacher_bin = os.path.join(work, "teacher.bin")
    run([binary, "sample-sft", "--init", os.path.join(work, "teacher-ckpt", "step_2.h5"),
         "--output", teacher_bin, "--prompts", str(PROMPTS), "--first", "0", "--seed", "4242",
         "--samples", "2", "--temperature", "0.7", "--max-new-tokens", "12", "--keep", "1",
         "--reward-command", f"/usr/bin/python3 {work}/reward.py"])
    truth_bin = os.path.join(work, "ground-truth.bin")
    run([binary, "data", "--synthetic", "arithmetic", "--count", str(PROMPTS), "--digits", "2",
         "--seed", "4242", "--sft", "--output", truth_bin])
    with open(os.path.join(work, "sample.seconds"), "w") as f:
        f.write("1\n")

    results = {"distilled": student(binary, work, "distilled", teacher_bin, 2),
               "ground-truth": student(binary, work, "ground-truth", truth_bin, 2)}
    run([binary, "grpo", "--config", "small-student", "--init",
         os.path.join(work, "ground-truth-hf"), "--set", "grpo.steps=1",
         "--set", "grpo.prompts_per_step=2", "--set", "grpo.group_size=2",
         "--set", "grpo.eval_prompts=0", "--set", "grpo.max_new_tokens=8",
         "--metrics", os.path.join(work, "grpo.jsonl"),
         "--checkpoint-dir", os.path.join(work, "grpo-ckpt"),
         "--save-hf", os.path.join(work, "grpo-hf")])
    with open(os.path.join(work, "grpo.seconds"), "w") as f:
        f.write("1\n")
    results["grpo"] = evaluate(binary, work, "grpo", os.path.join(work, "grpo-hf"))

    table = run(["/usr/bin/python3", SUMMARY, work]).stdout
    lines = table.splitlines()
    # Every sample is accepted and best-of-2 keeps one per prompt.
    assert lines[0].startswith(f"teacher data: {PROMPTS} prompts × 2 samples, {2 * PROMPTS} "
                               f"accepted (100.0%), {PROMPTS} kept"), table
    rows = [l for l in lines if l.startswith("| student")]
    assert len(rows) == 3, table
    assert f"SFT on the teacher's {PROMPTS} kept completions" in rows[0], table
    assert f"SFT on the {PROMPTS} reference solutions" in rows[1], table
    assert "then 1 GRPO step |" in rows[2], table
    for row, name in zip(rows, ("distilled", "ground-truth", "grpo")):
        accuracy = f"{100 * results[name]['accuracy']:.1f}%"
        assert row.split("|")[4].strip() == accuracy, (row, results[name])
    print("distillation recipe commands: ok")


if __name__ == "__main__":
    main()
