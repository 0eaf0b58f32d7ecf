"""Summarises an R1-Zero run (scripts/r1-zero.sh) from its GRPO JSONL metrics: the base model's
held-out greedy format rate and accuracy (the evaluation before GRPO), the same after GRPO, the
sampled rollouts' format rate and the mean completion length at the first and last steps, and
whether the recipe's targets are met (base format rate < 20%, after > 90%, accuracy +20 points).

    /usr/bin/python3 launch/plots/r1_zero_summary.py GRPO.jsonl [--json]
"""
import argparse
import json


def summarise(path):
    steps, final = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            if "eval_accuracy" in record:
                final = record
            elif "reward" in record:
                steps.append(record)
    if not steps or final is None or "eval_format_rate_before" not in final:
        raise SystemExit(f"{path}: no GRPO steps or no held-out evaluation before and after "
                         "(grpo.eval_prompts > 0)")
    lengths = [s["completion_length"] for s in steps]
    return {
        "steps": len(steps),
        "eval_prompts": final["eval_prompts"],
        "base_format_rate": final["eval_format_rate_before"],
        "base_accuracy": final["eval_accuracy_before"],
        "format_rate": final["eval_format_rate"],
        "accuracy": final["eval_accuracy"],
        "sampled_format_rate_first": steps[0]["format_rate"],
        "sampled_format_rate_last": steps[-1]["format_rate"],
        "sampled_accuracy_first": steps[0]["accuracy"],
        "sampled_accuracy_last": steps[-1]["accuracy"],
        "completion_length_first": lengths[0],
        "completion_length_last": lengths[-1],
        "completion_length_mean": sum(lengths) / len(lengths),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    s = summarise(args.metrics)
    if args.json:
        print(json.dumps(s))
        return
    gain = 100 * (s["accuracy"] - s["base_accuracy"])
    print(f"held-out greedy ({s['eval_prompts']} problems), base -> after {s['steps']} GRPO steps:")
    print(f"  format rate  {100 * s['base_format_rate']:5.1f}% -> {100 * s['format_rate']:5.1f}%")
    print(f"  accuracy     {100 * s['base_accuracy']:5.1f}% -> {100 * s['accuracy']:5.1f}% "
          f"({gain:+.1f} points)")
    print(f"sampled rollouts, step 1 -> {s['steps']}:")
    print(f"  format rate  {100 * s['sampled_format_rate_first']:5.1f}% -> "
          f"{100 * s['sampled_format_rate_last']:5.1f}%")
    print(f"  accuracy     {100 * s['sampled_accuracy_first']:5.1f}% -> "
          f"{100 * s['sampled_accuracy_last']:5.1f}%")
    print(f"  completion length (tokens, mean) {s['completion_length_first']:.1f} -> "
          f"{s['completion_length_last']:.1f} (mean over the steps {s['completion_length_mean']:.1f})")
    checks = [("base format rate < 20%", s["base_format_rate"] < 0.2),
              ("format rate after > 90%", s["format_rate"] > 0.9),
              ("accuracy +20 points or more", gain >= 20)]
    for name, ok in checks:
        print(f"target {name}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
