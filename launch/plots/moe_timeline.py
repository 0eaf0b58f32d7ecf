#!/usr/bin/python3
"""Draws one MoE layer's forward + backward timeline from per-rank Chrome traces.

Input: the trace_rank<N>.json files written by `trident bench moe --trace DIR` (or any trace
with a compute-track span named like --span). For each span name given (default: the bench's
"layer overlap" and "layer no-overlap"), one panel with two rows per rank: "compute" (the
expert-parallel phases in colour, other compute in grey, time blocked waiting for
communication hatched red) and "comm" (all-to-alls in flight from post to completion;
overlapping operations are stacked). Time is in ms from the span's earliest start over ranks;
every panel uses the same scale.

  /usr/bin/python3 launch/plots/moe_timeline.py DIR --png docs/images/moe_timeline.png
"""
import argparse
import glob
import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

PHASES = [  # (name prefix, colour, legend)
    ("ep shared expert", "#8172b3", "shared expert (fwd)"),
    ("ep router+shared backward", "#b39ddb", "router + shared expert (bwd)"),
    ("ep experts fwd", "#4c72b0", "routed experts fwd, per chunk"),
    ("ep experts bwd", "#dd8452", "routed experts bwd (input), per chunk"),
    ("ep expert weight grads", "#55a868", "routed experts bwd (weights)"),
    ("ep plan", "#c44e52", "plan (counts exchange)"),
]
OTHER = "#bbbbbb"
WAIT = "#ff9896"
COMM = "#937860"


def load(directory):
    ranks = {}
    for path in sorted(glob.glob(os.path.join(directory, "trace_rank*.json"))):
        rank = int(re.search(r"trace_rank(\d+)\.json$", path).group(1))
        with open(path) as handle:
            data = json.load(handle)
        threads = {}
        for e in data["traceEvents"]:
            if e.get("ph") == "M" and e.get("name") == "thread_name":
                threads[e["tid"]] = e["args"]["name"]
        events = [dict(e, track=threads.get(e["tid"], "?"))
                  for e in data["traceEvents"] if e.get("ph") == "X"]
        ranks[rank] = events
    if not ranks:
        raise SystemExit(f"no trace_rank*.json in {directory}")
    return ranks


def window(events, span):
    for e in events:
        if e["name"] == span and e["track"] == "compute":
            return e["ts"], e["ts"] + e["dur"]
    return None


def phase_of(name):
    for prefix, colour, _ in PHASES:
        if name.startswith(prefix):
            return colour
    return None


def draw_panel(ax, ranks, span, t0, length):
    rows = []
    for rank in sorted(ranks):
        events = ranks[rank]
        bounds = window(events, span)
        if bounds is None:
            raise SystemExit(f"rank {rank}: no compute span named '{span}'")
        start, end = bounds
        inside = [e for e in events if e["ts"] >= start - 1 and e["ts"] + e["dur"] <= end + 1]
        base = 2 * (len(ranks) - 1 - rank)
        y_comm, y_compute = base, base + 1
        rows += [(y_compute + 0.5, f"rank {rank} compute"), (y_comm + 0.5, f"rank {rank} comm")]
        compute = [e for e in inside if e["track"].startswith("compute") and e["name"] != span]
        phases = [e for e in compute if phase_of(e["name"])]
        # Grey: compute outside the phases (router, gate-weighted sums, copies).
        for e in compute:
            if e["name"] in ("moe forward", "moe backward") or phase_of(e["name"]):
                continue
            if any(p["ts"] <= e["ts"] and e["ts"] + e["dur"] <= p["ts"] + p["dur"] for p in phases):
                continue
            ax.broken_barh([((e["ts"] - t0) / 1e3, e["dur"] / 1e3)], (y_compute + 0.1, 0.8),
                           facecolors=OTHER, linewidth=0)
        for e in phases:
            ax.broken_barh([((e["ts"] - t0) / 1e3, e["dur"] / 1e3)], (y_compute + 0.1, 0.8),
                           facecolors=phase_of(e["name"]), edgecolors="black", linewidth=0.3)
            label = e["name"].rsplit(" ", 1)[-1]
            if label.isdigit() and e["dur"] / 1e3 > length * 0.02:
                ax.text((e["ts"] - t0 + e["dur"] / 2) / 1e3, y_compute + 0.5, label,
                        ha="center", va="center", fontsize=6, color="white")
        for e in inside:
            if e["track"].startswith("comm wait"):
                ax.broken_barh([((e["ts"] - t0) / 1e3, e["dur"] / 1e3)], (y_compute + 0.1, 0.8),
                               facecolors="none", edgecolors=WAIT, hatch="////", linewidth=0.5)
        # Comm lanes ("comm", "comm 2", ...) share the row.
        comm = [e for e in inside if e["track"].startswith("comm") and
                not e["track"].startswith("comm wait")]
        lanes = sorted({e["track"] for e in comm}, key=lambda t: (len(t), t))
        height = 0.8 / max(1, len(lanes))
        for e in comm:
            lane = lanes.index(e["track"])
            ax.broken_barh([((e["ts"] - t0) / 1e3, e["dur"] / 1e3)],
                           (y_comm + 0.1 + lane * height, height * 0.9), facecolors=COMM,
                           edgecolors="black", linewidth=0.3)
    ax.set_ylim(0, 2 * len(ranks))
    ax.set_yticks([y for y, _ in rows])
    ax.set_yticklabels([label for _, label in rows], fontsize=8)
    ax.set_xlim(0, length)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace_dir")
    parser.add_argument("--png", required=True)
    parser.add_argument("--span", action="append",
                        help="compute span(s) to draw, one panel each "
                             "(default: 'layer overlap' and 'layer no-overlap')")
    parser.add_argument("--title", default="One MoE layer, forward + backward")
    args = parser.parse_args()
    spans = args.span or ["layer overlap", "layer no-overlap"]
    ranks = load(args.trace_dir)
    limits = {}
    for span in spans:
        bounds = [window(events, span) for events in ranks.values()]
        if any(b is None for b in bounds):
            raise SystemExit(f"span '{span}' missing on some rank")
        limits[span] = (min(b[0] for b in bounds), max(b[1] for b in bounds))
    length = max(end - start for start, end in limits.values()) / 1e3
    fig, axes = plt.subplots(len(spans), 1, figsize=(12, 1.0 + len(spans) * (0.9 * len(ranks) + 0.6)),
                             squeeze=False)
    for ax, span in zip(axes[:, 0], spans):
        t0, end = limits[span]
        draw_panel(ax, ranks, span, t0, length)
        ax.set_title(f"{span}: {(end - t0) / 1e3:.1f} ms", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("ms")
    handles = [Patch(facecolor=c, label=label) for _, c, label in PHASES]
    handles += [Patch(facecolor=OTHER, label="other compute"),
                Patch(facecolor="none", edgecolor=WAIT, hatch="////", label="blocked on comm"),
                Patch(facecolor=COMM, label="all-to-all in flight")]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7, frameon=False)
    fig.suptitle(args.title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    fig.savefig(args.png, dpi=130)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
