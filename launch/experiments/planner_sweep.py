#!/usr/bin/python3
"""Sweep the cost model over cluster sizes for one config and plot the result.

Runs `trident plan --config CONFIG --sweep 64,...,4096 --csv CSV` (every size with the layout the
config names, ep capped by the ranks of a stage, and with the best layout the planner finds), then
draws predicted GPU-hours per trillion tokens, the busiest rank's memory, the step time and the
pipeline bubble's share of it against the GPU count; --markdown writes the same rows as a table.

    /usr/bin/python3 launch/experiments/planner_sweep.py --trident build/launch/trident \
        --config deepseek-v3-671b --out docs/images/planner_sweep.png
"""
import argparse
import csv
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from markdown_table import write_markdown_table  # noqa: E402

SIZES = [64, 128, 256, 512, 1024, 2048, 4096]
PUBLISHED_GPU_HOURS_PER_T = 180_000  # DeepSeek-V3 on 2048 H800 (docs/planner.md)


def run_sweep(args):
    command = [args.trident] + args.command.split() + [
        "--config", args.config, "--sweep", ",".join(str(n) for n in args.sizes),
        "--csv", args.csv]
    for extra in args.plan_arg:
        command += extra.split("=", 1) if extra.startswith("--") and "=" in extra else [extra]
    subprocess.run(command, check=True)
    with open(args.csv) as f:
        return list(csv.DictReader(f))


def plot(rows, args):
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    (ax_cost, ax_mem), (ax_step, ax_bubble) = axes
    hbm_usable = args.hbm_gib * args.hbm_usable_fraction
    for kind, style in (("configured", "o-"), ("best", "s--")):
        sel = [r for r in rows if r["kind"] == kind]
        gpus = [int(r["gpus"]) for r in sel]
        fits = [r["fits"] == "1" for r in sel]
        hours = [float(r["gpu_hours_per_trillion"]) / 1e3 for r in sel]
        mem = [float(r["peak_gib"]) for r in sel]
        label = "layout of the config (pp16, ep ≤ 64)" if kind == "configured" else "best layout found"
        ax_mem.plot(gpus, mem, style, label=label)
        ax_step.plot(gpus, [float(r["step_s"]) for r in sel], style, label=label)
        ax_bubble.plot(gpus, [100 * float(r["bubble_s"]) / float(r["step_s"]) for r in sel],
                       style, label=label)
        fit_g = [g for g, ok in zip(gpus, fits) if ok]
        fit_h = [h for h, ok in zip(hours, fits) if ok]
        ax_cost.plot(fit_g, fit_h, style, label=label + " (fits)")
        bad = [(g, h) for g, h, ok in zip(gpus, hours, fits) if not ok]
        if bad:
            ax_cost.plot([b[0] for b in bad], [b[1] for b in bad], "x", color="grey",
                         label=None if kind == "best" else "does not fit in HBM")
        for r in sel:
            if kind == "best" and r["fits"] == "1":
                ax_cost.annotate(f"pp{r['pp']} tp{r['tp']} ep{r['ep']}",
                                 (int(r["gpus"]), float(r["gpu_hours_per_trillion"]) / 1e3),
                                 textcoords="offset points", xytext=(0, -12), fontsize=6,
                                 ha="center")
    ax_cost.axhline(PUBLISHED_GPU_HOURS_PER_T / 1e3, color="red", lw=0.8, ls=":",
                    label="published: 180K (2048 H800, FP8)")
    ax_cost.set_xscale("log", base=2)
    ax_cost.set_xlabel("GPUs")
    ax_cost.set_ylabel("predicted K GPU-hours per trillion tokens")
    ax_cost.set_title(f"{args.config}: training cost")
    ax_cost.legend(fontsize=7)
    ax_cost.grid(alpha=0.3)
    ax_mem.axhline(hbm_usable, color="red", lw=0.8, ls=":",
                   label=f"usable HBM ({args.hbm_usable_fraction} × {args.hbm_gib:g} GiB)")
    ax_mem.set_xscale("log", base=2)
    ax_mem.set_yscale("log")
    ax_mem.set_xlabel("GPUs")
    ax_mem.set_ylabel("busiest rank's memory, GiB")
    ax_mem.set_title("memory per rank")
    ax_mem.legend(fontsize=7)
    ax_mem.grid(alpha=0.3)
    for ax in (ax_step, ax_bubble):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("GPUs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_step.set_yscale("log")
    ax_step.set_ylabel("predicted seconds per step")
    ax_step.set_title("step time (global batch fixed: 15360 × 4096 tokens)")
    ax_bubble.set_ylabel("% of the step")
    ax_bubble.set_title("pipeline bubble")
    if args.plan_arg:
        fig.suptitle("trident plan " + " ".join(args.plan_arg), fontsize=8, y=0.995)
    fig.tight_layout()
    fig.savefig(args.out, dpi=130)
    print("wrote", args.out)


def write_markdown(rows, path):
    """One table row per (GPU count, kind): the layout and what the planner predicts."""
    head = ("| GPUs | layout | pp | dp | tp | ep | edp | micro-batches | fits | peak GiB | "
            "step s | bubble % | K GPU-h / 10¹² tokens | MFU |")
    lines = []
    for r in rows:
        bubble = 100 * float(r["bubble_s"]) / float(r["step_s"])
        lines.append(
            f"| {r['gpus']} | {r['kind']} | {r['pp']} | {r['dp']} | {r['tp']} | {r['ep']} | "
            f"{r['edp']} | {r['microbatches']} | {'yes' if r['fits'] == '1' else 'no'} | "
            f"{float(r['peak_gib']):.1f} | {float(r['step_s']):.2f} | {bubble:.1f} | "
            f"{float(r['gpu_hours_per_trillion']) / 1e3:.0f} | {100 * float(r['mfu']):.1f}% |")
    write_markdown_table(path, head, lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trident", default="build/launch/trident")
    p.add_argument("--command", default="plan", help="subcommand that runs the model planner")
    p.add_argument("--config", default="deepseek-v3-671b")
    p.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    p.add_argument("--csv", default="planner_sweep.csv")
    p.add_argument("--out", default="docs/images/planner_sweep.png")
    p.add_argument("--plan-arg", action="append", default=[],
                   help="extra argument for trident plan, e.g. --plan-arg=--recompute=selective")
    p.add_argument("--markdown", help="also write the rows as a Markdown table to this file")
    p.add_argument("--hbm-gib", type=float, default=80.0)
    p.add_argument("--hbm-usable-fraction", type=float, default=0.92)
    args = p.parse_args()
    rows = run_sweep(args)
    if not rows:
        sys.exit("the sweep produced no rows")
    plot(rows, args)
    if args.markdown:
        write_markdown(rows, args.markdown)


if __name__ == "__main__":
    main()
