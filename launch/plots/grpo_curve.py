"""Plots a GRPO run's JSONL metrics (written by `trident grpo --metrics`): mean reward, sampled
accuracy and format rate per step, with the held-out greedy accuracy before and after training
(the final record) marked at both ends.

    /usr/bin/python3 launch/plots/grpo_curve.py METRICS.jsonl OUT.png [--title TEXT]
"""
from metrics_plot import parse_args, plt, records, save


def main():
    args = parse_args(__doc__)
    steps, reward, accuracy, fmt = [], [], [], []
    held_out = {}
    for record in records(args.metrics):
        if "eval_accuracy" in record:
            held_out = record
        elif "reward" in record:
            steps.append(record["step"])
            reward.append(record["reward"])
            accuracy.append(record["accuracy"])
            fmt.append(record["format_rate"])
    fig, (ax_reward, ax_rates) = plt.subplots(1, 2, figsize=(11, 4))
    ax_reward.plot(steps, reward, lw=1.2, color="tab:purple")
    ax_reward.set_xlabel("GRPO step")
    ax_reward.set_ylabel("mean reward (accuracy + 0.5 · format)")
    ax_reward.grid(alpha=0.3)
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
    save(fig, args)


if __name__ == "__main__":
    main()
