"""Plots a training run's JSONL metrics (written by `trident pretrain --metrics`): loss, LM and
MTP loss, held-out loss, and the worst MoE layer's load imbalance (max/mean), against steps.

    /usr/bin/python3 launch/plots/loss_curve.py METRICS.jsonl OUT.png [--title TEXT]
"""
from metrics_plot import parse_args, plt, records, save


def main():
    args = parse_args(__doc__)
    steps, loss, lm, mtp, load, eval_steps, eval_loss = [], [], [], [], [], [], []
    for record in records(args.metrics):
        if "eval_lm_loss" in record:
            eval_steps.append(record["step"])
            eval_loss.append(record["eval_lm_loss"])
        elif "loss" in record:
            steps.append(record["step"])
            loss.append(record["loss"])
            lm.append(record["lm_loss"])
            mtp.append(record["mtp_loss"])
            load.append(record.get("expert_load_max_over_mean", 0.0))
    fig, (ax_loss, ax_load) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(steps, loss, label="total loss", lw=1)
    ax_loss.plot(steps, lm, label="LM loss", lw=1)
    ax_loss.plot(steps, mtp, label="MTP loss", lw=1)
    if eval_steps:
        ax_loss.plot(eval_steps, eval_loss, "o-", label="held-out LM loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (nats/token)")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_load.plot(steps, load, lw=1, color="tab:red")
    ax_load.set_xlabel("step")
    ax_load.set_ylabel("worst MoE layer: max load / mean load")
    ax_load.grid(alpha=0.3)
    save(fig, args)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
