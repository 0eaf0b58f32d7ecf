"""Plots a GRPO run's JSONL metrics (written by `trident grpo --metrics`): mean reward, sampled
accuracy and format rate per step, with the held-out greedy accuracy before and after training
(the final record) marked at both ends, and the mean completion length per step; and, where the
records have them, the share of groups with zero reward variance and the sampled accuracy by
difficulty (carries).

    /usr/bin/python3 launch/plots/grpo_curve.py METRICS.jsonl OUT.png [--title TEXT]
"""
from metrics_plot import parse_args, plt, records, save


def main():
    args = parse_args(__doc__)
    steps, reward, accuracy, fmt, flat, length = [], [], [], [], [], []
    by_carries = {}
    held_out = {}
    for record in records(args.metrics):
        if "eval_accuracy" in record:
            held_out = record
        elif "reward" in record:
            steps.append(record["step"])
            reward.append(record["reward"])
            accuracy.append(record["accuracy"])
            fmt.append(record["format_rate"])
            if "completion_length" in record:
                length.append(record["completion_length"])
            if "zero_variance_groups" in record:
                flat.append(record["zero_variance_groups"])
            for bucket, value in record.get("accuracy_by_carries", {}).items():
                by_carries.setdefault(bucket, []).append((record["step"], value))
    panels = 3 if flat else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4))
    ax_reward, ax_rates = axes[0], axes[1]
    ax_reward.plot(steps, reward, lw=1.2, color="tab:purple")
    ax_reward.set_xlabel("GRPO step")
    ax_reward.set_ylabel("mean reward (accuracy + 0.5 · format)")
    ax_reward.grid(alpha=0.3)
    if len(length) == len(steps):
        # On its own axis: the length moves with what the policy writes (prose cut at
        # max_new_tokens, or the shorter tagged form), not with the reward's scale.
        ax_length = ax_reward.twinx()
        ax_length.plot(steps, length, lw=1.0, ls="--", color="tab:green")
        ax_length.set_ylabel("mean completion length (tokens, dashed)", color="tab:green")
    ax_rates.plot(steps, accuracy, lw=1.2, label="accuracy (sampled rollouts)")
    ax_rates.plot(steps, fmt, lw=1.2, label="format rate (sampled rollouts)")
    if "eval_accuracy_before" in held_out and steps:
        ax_rates.plot([0, steps[-1]],
                      [held_out["eval_accuracy_before"], held_out["eval_accuracy"]], "o--",
                      color="black", label="held-out greedy accuracy (before, after)")
    ax_rates.set_xlabel("GRPO step")
    ax_rates.set_ylabel("fraction")
    ax_rates.set_ylim(0, 1.02)
    ax_rates.legend(loc="lower right")
    ax_rates.grid(alpha=0.3)
    if flat:
        ax_groups = axes[2]
        ax_groups.plot(steps, flat, lw=1.2, color="tab:gray", label="groups with zero variance")
        for bucket in sorted(by_carries):
            points = by_carries[bucket]
            ax_groups.plot([p[0] for p in points], [p[1] for p in points], lw=1.0,
                           label=f"accuracy, {bucket} carries")
        ax_groups.set_xlabel("GRPO step")
        ax_groups.set_ylabel("fraction")
        ax_groups.set_ylim(0, 1.02)
        ax_groups.legend(loc="best", fontsize=8)
        ax_groups.grid(alpha=0.3)
    save(fig, args)


if __name__ == "__main__":
    main()
