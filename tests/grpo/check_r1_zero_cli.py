#!/usr/bin/python3
"""The R1-Zero recipe's commands, shortened (scripts/r1-zero.sh, configs/r1-zero.textproto): a
few pretraining steps on the prose corpus (data.task "arithmetic_prose", train.mode
"pretrain"), GRPO from that checkpoint with the rule rewards, the held-out evaluation before and
after in the metrics, and the recipe's summary of them; then an out-of-range tagged share is
refused with a message naming the field.

usage: check_r1_zero_cli.py TRIDENT_BINARY WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = os.path.join(HERE, "..", "..", "launch", "plots", "r1_zero_summary.py")


def run(cmd, expect=0):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect, (cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc


def main():
    binary, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    ckpt = os.path.join(work, "pretrain")
    pretrain = run([binary, "pretrain", "--config", "r1-zero", "--set", "train.steps=3",
                    "--set", "train.warmup_steps=1", "--set", "train.log_every=1",
                    "--set", "data.eval_samples=16", "--checkpoint-dir", ckpt,
                    "--metrics", os.path.join(work, "pretrain.jsonl")])
    log = pretrain.stdout + pretrain.stderr
    records = [json.loads(l) for l in open(os.path.join(work, "pretrain.jsonl"))]
    losses = [r["loss"] for r in records if "loss" in r]
    assert len(losses) == 3 and all(l > 0 for l in losses), (losses, log)
    # Rows of seq_len + 1 = 129 tokens, one prose (or tagged) document each.
    assert all(r["tokens"] == 16 * 128 for r in records if "tokens" in r), records

    metrics = os.path.join(work, "grpo.jsonl")
    run([binary, "grpo", "--config", "r1-zero", "--init", os.path.join(ckpt, "step_3.h5"),
         "--set", "grpo.steps=2", "--set", "grpo.prompts_per_step=4", "--set", "grpo.group_size=2",
         "--set", "grpo.eval_prompts=4", "--set", "grpo.max_new_tokens=16",
         "--checkpoint-dir", os.path.join(work, "grpo"), "--metrics", metrics])
    steps = [json.loads(l) for l in open(metrics)]
    final = steps.pop()
    assert [s["step"] for s in steps] == [1, 2], steps
    assert all("completion_length" in s and "format_rate" in s for s in steps), steps
    for key in ("eval_accuracy_before", "eval_format_rate_before", "eval_accuracy",
                "eval_format_rate"):
        assert 0 <= final[key] <= 1, final
    summary = json.loads(run(["/usr/bin/python3", SUMMARY, metrics, "--json"]).stdout)
    assert summary["base_format_rate"] == final["eval_format_rate_before"], summary
    assert summary["steps"] == 2, summary
    assert summary["completion_length_first"] == steps[0]["completion_length"], summary

    for share in ("1.5", "-0.1"):
        bad = run([binary, "pretrain", "--config", "r1-zero", "--set",
                   f"data.prose_tagged_share={share}", "--set", "train.steps=1"], expect=2)
        assert f"data.prose_tagged_share = {share} must be in [0, 1]" in bad.stderr + bad.stdout, \
            bad.stderr
    print("r1-zero recipe commands: ok")


if __name__ == "__main__":
    main()
