#!/usr/bin/python3
"""Draws a pipeline schedule timeline written by `trident plan --schedule ... --png FILE`.

Input CSV columns: rank,kind,microbatch,stage,chunk,start,end,overlapped (compute actions).
One row of boxes per rank (rank 0 on top), coloured by action kind, shaded by chunk,
labelled with the micro-batch id; parts of an overlapped F&B block are hatched.
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# (even chunk, odd chunk) colours per kind.
COLOURS = {
    "F": ("#4c72b0", "#8fb0e0"),
    "B": ("#dd8452", "#f2bc96"),
    "W": ("#55a868", "#9fd4ad"),
}


def read_rows(path):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in ("rank", "microbatch", "stage", "chunk", "overlapped"):
            row[key] = int(row[key])
        for key in ("start", "end"):
            row[key] = float(row[key])
    return rows


def draw(rows, png, title):
    ranks = max(row["rank"] for row in rows) + 1
    step = max(row["end"] for row in rows)
    width = min(60.0, max(8.0, step * 0.25))
    fig, ax = plt.subplots(figsize=(width, 0.6 * ranks + 1.4))
    label_size = 7 if step < 120 else 5
    for row in rows:
        colour = COLOURS[row["kind"]][row["chunk"] % 2]
        duration = row["end"] - row["start"]
        y = ranks - 1 - row["rank"]
        ax.broken_barh([(row["start"], duration)], (y + 0.08, 0.84), facecolors=colour,
                       edgecolors="black", linewidth=0.4,
                       hatch="//" if row["overlapped"] else None)
        ax.text(row["start"] + duration / 2, y + 0.5, str(row["microbatch"]), ha="center",
                va="center", fontsize=label_size)
    ax.set_xlim(0, step)
    ax.set_ylim(0, ranks)
    ax.set_yticks([ranks - 1 - r + 0.5 for r in range(ranks)])
    ax.set_yticklabels([f"rank {r}" for r in range(ranks)])
    ax.set_xlabel("time")
    ax.set_title(title)
    handles = [
        Patch(facecolor=COLOURS["F"][0], label="F forward"),
        Patch(facecolor=COLOURS["B"][0], label="B backward (input)"),
        Patch(facecolor=COLOURS["W"][0], label="W backward (weight)"),
        Patch(facecolor="white", edgecolor="black", label="lighter: second chunk"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="overlapped F&B"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.35 / (0.3 * ranks)),
              ncol=5, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--png", required=True)
    parser.add_argument("--title", default="pipeline schedule")
    args = parser.parse_args()
    rows = read_rows(args.csv)
    if not rows:
        raise SystemExit("no compute actions in " + args.csv)
    draw(rows, args.png, args.title)


if __name__ == "__main__":
    main()
