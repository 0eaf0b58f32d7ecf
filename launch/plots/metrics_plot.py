"""What the metrics plots share: their command line (METRICS.jsonl OUT.png [--title TEXT]), the
JSONL records, and writing the figure. matplotlib draws off-screen (Agg)."""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401  (re-exported for the plots)


def parse_args(doc):
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("metrics")
    parser.add_argument("out")
    parser.add_argument("--title", default="")
    return parser.parse_args()


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def save(fig, args):
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
