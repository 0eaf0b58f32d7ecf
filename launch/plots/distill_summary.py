#!/usr/bin/env python3
"""The table of a distillation run (scripts/distill.sh): the teacher, its sampled data and the
three students, each with its held-out greedy accuracy and format rate and its wall time.

usage: distill_summary.py RUN_DIR     (prints Markdown)
"""
import json
import os
import sys


def read_json(path):
    with open(path) as f:
        return json.load(f)


def seconds(run_dir, name):
    path = os.path.join(run_dir, name + ".seconds")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return int(f.read())


def grpo_steps(run_dir):
    """Steps the GRPO student ran, from its metrics (the last step record)."""
    steps = 0
    with open(os.path.join(run_dir, "grpo.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "reward" in record:
                steps = max(steps, record.get("step", 0))
    return steps


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    run_dir = sys.argv[1]
    data = read_json(os.path.join(run_dir, "teacher.bin.summary.json"))
    rows = [("teacher (`small`, GRPO-trained)", "the main job", None, "teacher")]
    rows.append(("student, distilled", "SFT on the teacher's %d kept completions" %
                 data["kept"], seconds(run_dir, "distilled"), "distilled"))
    rows.append(("student, ground truth", "SFT on the %d reference solutions" %
                 data["prompts"], seconds(run_dir, "ground-truth"), "ground-truth"))
    steps = grpo_steps(run_dir)
    rows.append(("student, ground truth + GRPO", "the above, then %d GRPO step%s" %
                 (steps, "" if steps == 1 else "s"), seconds(run_dir, "grpo"), "grpo"))

    print("teacher data: %d prompts × %d samples, %d accepted (%.1f%%), %d kept, %d trained "
          "tokens, sampled in %s s" % (data["prompts"], data["samples"] // data["prompts"],
                                       data["accepted"], 100 * data["acceptance_rate"],
                                       data["kept"], data["trained_tokens"],
                                       seconds(run_dir, "sample")))
    print()
    print("| model | training | wall (s) | held-out accuracy | format rate |")
    print("|---|---|---|---|---|")
    for label, training, wall, name in rows:
        result = read_json(os.path.join(run_dir, name + ".eval.json"))
        print("| %s | %s | %s | %.1f%% | %.1f%% |" % (
            label, training, "" if wall is None else wall, 100 * result["accuracy"],
            100 * result["format_rate"]))


if __name__ == "__main__":
    main()
