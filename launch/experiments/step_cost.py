#!/usr/bin/python3
"""How a training step's cost grows on the CPU: step time against tokens per step and against
model width, for the tiny, small and medium presets, Trident beside eager PyTorch.

Every point is one `trident bench step --config P --set ... --json F` run: Trident's timed steps,
then the PyTorch reference's on the same model, batch and threads, and an sgemm, all in that
run. The rounds go over every point in turn, --repeats times, so that a slow phase of a shared
machine falls on all points alike; the tables give the median and the range of the rounds.

    /usr/bin/python3 launch/experiments/step_cost.py --trident build/launch/trident \\
        --out-dir docs/images

The two axes, each through the preset itself:
  tokens  train.global_batch scaled (seq_len fixed): the model and its optimizer stay the same,
          so the step is a fixed cost (optimizer, per-op overhead) plus one linear in tokens;
          attention is O(tokens · seq_len), linear too at a fixed seq_len.
  width   hidden_size, intermediate_size and moe_intermediate_size scaled together (heads, head
          dims, LoRA ranks, vocabulary, experts and depth fixed): the MLP and expert GEMMs grow
          as width², the projections to and from the fixed attention and vocabulary dims as
          width; the planner's model FLOPs per step say where in between each preset lies.
The growth column is the log-log slope from the smallest to the largest point of an axis, of
the measured medians and of the planner's FLOPs.

Writes step_cost.csv (every run), step_cost.md (medians, ranges, slopes) and step_cost.png.
"""
import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

from markdown_table import write_markdown_table

# Per preset: the factors of each axis (1 is the preset itself), the steps timed, and whether
# the PyTorch reference runs too. `medium` stays at or below its own size, where Trident's step
# takes about 18 GB; the eager reference does not fit a 24 GB machine there (the kernel killed
# it at 24.1 GB resident), so medium is Trident alone unless --medium-reference.
PRESETS = {
    "tiny": {"tokens": (0.5, 1, 2), "width": (0.5, 1, 2), "steps": 5, "warmup": 2,
             "reference": True},
    "small": {"tokens": (0.5, 1, 2), "width": (0.5, 1, 2), "steps": 5, "warmup": 2,
              "reference": True},
    "medium": {"tokens": (0.25, 0.5, 1), "width": (0.5, 0.75, 1), "steps": 2, "warmup": 1,
               "reference": False},
}
WIDTH_FIELDS = ("hidden_size", "intermediate_size", "moe_intermediate_size")
FIELDS = ["preset", "axis", "factor", "round", "tokens_per_step", "hidden_size",
          "intermediate_size", "moe_intermediate_size", "parameters", "model_gflop_per_step",
          "threads", "trident_step_s", "torch_step_s", "speedup", "ratio_to_sgemm",
          "peak_resident_mib", "load_avg"]


def preset_base(args, preset):
    """The preset's batch and widths, as `trident config --print` resolves them."""
    text = subprocess.run([args.trident, "config", "--config", preset, "--print"], check=True,
                          capture_output=True, text=True).stdout
    values = {}
    for line in text.splitlines():
        words = line.replace(":", " ").split()
        if len(words) == 2 and words[0] in WIDTH_FIELDS + ("global_batch",):
            values.setdefault(words[0], int(words[1]))
    missing = [f for f in WIDTH_FIELDS + ("global_batch",) if f not in values]
    if missing:
        sys.exit(f"step_cost: `trident config --config {preset} --print` printed no {missing}")
    return values


def points(args, preset, base):
    """(axis, factor, --set overrides) for every point of the preset, the preset itself once."""
    spec = PRESETS[preset]
    out = [("both", 1, [])]
    for factor in spec["tokens"]:
        if factor != 1:
            batch = max(1, round(base["global_batch"] * factor))
            # bench step trains the whole batch at once; the micro-batch follows so that the
            # config validates.
            out.append(("tokens", factor,
                        [f"train.global_batch={batch}", f"train.micro_batch={batch}"]))
    for factor in spec["width"]:
        if factor != 1:
            out.append(("width", factor,
                        [f"model.{f}={max(1, round(base[f] * factor))}" for f in WIDTH_FIELDS]))
    return out


def check_point(args, preset, sets):
    """Validates a point's config before any is timed: a bad one fails in seconds, not after
    half an hour of sweeping."""
    command = [args.trident, "config", "--config", preset]
    for s in sets:
        command += ["--set", s]
    status = subprocess.run(command, capture_output=True, text=True)
    if status.returncode != 0:
        sys.exit(f"step_cost: the {preset} point {' '.join(sets)} is not a valid config:\n"
                 f"{status.stderr.strip()}")


def run_point(args, preset, sets):
    """One `trident bench step` run; returns its JSON record with the load average added."""
    spec = PRESETS[preset]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "point.json")
        steps = args.steps or spec["steps"]
        warmup = spec["warmup"] if args.warmup is None else args.warmup
        command = [args.trident, "bench", "step", "--config", preset, "--steps", str(steps),
                   "--warmup", str(warmup), "--json", out]
        if args.threads:
            command += ["--threads", str(args.threads)]
        if args.no_reference or not (spec["reference"] or args.medium_reference):
            command.append("--no-reference")
        for s in sets:
            command += ["--set", s]
        load = os.getloadavg()[0]
        status = subprocess.run(command, timeout=args.timeout, stdout=subprocess.DEVNULL)
        if status.returncode != 0:
            sys.exit(f"step_cost: `{' '.join(command)}` failed (exit {status.returncode}); "
                     "its error is above")
        with open(out) as f:
            record = json.load(f)
    # Other processes take cores too: a point is only as good as the load it ran under.
    record["load_avg"] = max(load, os.getloadavg()[0])
    return record


def to_row(preset, axis, factor, round_, r):
    torch = r["torch_step_s"]
    return {"preset": preset, "axis": axis, "factor": factor, "round": round_,
            "tokens_per_step": r["tokens_per_step"], "hidden_size": r["hidden_size"],
            "intermediate_size": r["intermediate_size"],
            "moe_intermediate_size": r["moe_intermediate_size"], "parameters": r["parameters"],
            "model_gflop_per_step": r["model_gflop_per_step"], "threads": r["threads"],
            "trident_step_s": r["trident_step_s"], "torch_step_s": torch,
            "speedup": torch / r["trident_step_s"] if torch else None,
            "ratio_to_sgemm": r["ratio_to_sgemm"], "peak_resident_mib": r["peak_resident_mib"],
            "load_avg": round(r["load_avg"], 2)}


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    print("wrote", path)


def summarise(rows):
    """Per (preset, axis point): the medians and ranges over the rounds, in axis order."""
    groups = {}
    for r in rows:
        groups.setdefault((r["preset"], r["axis"], r["factor"]), []).append(r)
    summary = []
    for preset in PRESETS:
        for axis in ("tokens", "width"):
            for factor in PRESETS[preset][axis]:
                runs = groups.get((preset, "both" if factor == 1 else axis, factor))
                if not runs:
                    continue
                trident = [r["trident_step_s"] for r in runs]
                torch = [r["torch_step_s"] for r in runs if r["torch_step_s"]]
                speedups = [r["speedup"] for r in runs if r["speedup"]]
                summary.append({
                    "preset": preset, "axis": axis, "factor": factor, "runs": len(runs),
                    "tokens": runs[0]["tokens_per_step"], "hidden": runs[0]["hidden_size"],
                    "parameters": runs[0]["parameters"],
                    "gflop": runs[0]["model_gflop_per_step"],
                    "trident": statistics.median(trident), "trident_range": (min(trident), max(trident)),
                    "torch": statistics.median(torch) if torch else None,
                    "torch_range": (min(torch), max(torch)) if torch else None,
                    "speedup": statistics.median(speedups) if speedups else None,
                    "speedup_range": (min(speedups), max(speedups)) if speedups else None,
                    "ratio_to_sgemm": statistics.median(r["ratio_to_sgemm"] for r in runs)})
    return summary


def slope(points, x, y):
    """Log-log slope from the first to the last point."""
    first, last = points[0], points[-1]
    if not first[y] or not last[y] or first[x] == last[x]:
        return None
    return math.log(last[y] / first[y]) / math.log(last[x] / first[x])


def write_markdown(summary, path):
    def seconds(value, spread):
        return "–" if value is None else f"{value:.4g} ({spread[0]:.4g}–{spread[1]:.4g})"

    lines = []
    for s in summary:
        speedup = "–" if s["speedup"] is None else (
            f"{s['speedup']:.2f}× ({s['speedup_range'][0]:.2f}–{s['speedup_range'][1]:.2f})")
        lines.append(f"| {s['preset']} | {s['axis']} ×{s['factor']:g} | {s['tokens']} | "
                     f"{s['hidden']} | {s['parameters'] / 1e6:.3g}M | {s['gflop']:.3g} | "
                     f"{seconds(s['trident'], s['trident_range'])} | "
                     f"{seconds(s['torch'], s['torch_range'])} | {speedup} | "
                     f"{s['ratio_to_sgemm']:.2f} | {s['runs']} |")
    for preset in PRESETS:
        for axis, x in (("tokens", "tokens"), ("width", "hidden")):
            line = [s for s in summary if s["preset"] == preset and s["axis"] == axis]
            if len(line) < 2:
                continue
            growth = [slope(line, x, y) for y in ("gflop", "trident", "torch")]
            text = ["–" if g is None else f"{g:.2f}" for g in growth]
            lines.append(f"| {preset} | {axis} growth (log-log slope) | | | | {text[0]} | "
                         f"{text[1]} | {text[2]} | | | |")
    write_markdown_table(
        path, "| preset | point | tokens/step | hidden | parameters (MTP aside) | GFLOP/step | "
        "Trident s/step "
        "(median, range) | PyTorch s/step | speed-up | ratio to sgemm | rounds |", lines)


def plot(summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {"tiny": "tab:blue", "small": "tab:orange", "medium": "tab:green"}
    for ax, (axis, x, label) in zip(axes, (("tokens", "tokens", "tokens per step"),
                                           ("width", "hidden", "hidden size (width)"))):
        for preset in PRESETS:
            line = [s for s in summary if s["preset"] == preset and s["axis"] == axis]
            if not line:
                continue
            xs = [s[x] for s in line]
            for who, style in (("trident", "-o"), ("torch", "--s")):
                ys = [s[who] for s in line]
                if any(y is None for y in ys):
                    continue
                low = [y - s[who + "_range"][0] for y, s in zip(ys, line)]
                high = [s[who + "_range"][1] - y for y, s in zip(ys, line)]
                ax.errorbar(xs, ys, yerr=[low, high], fmt=style, color=colors[preset],
                            capsize=3, label=f"{preset}: {'Trident' if who == 'trident' else 'PyTorch eager'}")
            # What the planner's FLOPs predict, drawn through Trident's preset point.
            base = next((s for s in line if s["factor"] == 1), None)
            if base is not None:
                ax.plot(xs, [base["trident"] * s["gflop"] / base["gflop"] for s in line], ":",
                        color=colors[preset], alpha=0.7,
                        label=f"{preset}: model FLOPs (through Trident's preset point)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per training step (median, range)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"step time against {label}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("wrote", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trident", default="build/launch/trident")
    parser.add_argument("--out-dir", default="docs/images")
    parser.add_argument("--presets", default="tiny,small,medium",
                        help="comma-separated, of " + ", ".join(PRESETS))
    parser.add_argument("--repeats", type=int, default=3, help="rounds over every point (3)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both (default: what trident chooses)")
    parser.add_argument("--steps", type=int, default=0,
                        help="timed steps per point (default: 5, medium 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (default: 2, medium 1)")
    parser.add_argument("--no-reference", action="store_true", help="time Trident only")
    parser.add_argument("--medium-reference", action="store_true",
                        help="run the PyTorch reference for medium too (needs over 24 GB)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per point")
    args = parser.parse_args()
    presets = [p for p in args.presets.split(",") if p]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown or not presets:
        sys.exit(f"step_cost: --presets {args.presets}: valid names are {', '.join(PRESETS)}")
    if args.repeats < 1 or args.steps < 0 or (args.warmup is not None and args.warmup < 0):
        sys.exit(f"step_cost: --repeats {args.repeats} must be at least 1, --steps "
                 f"{args.steps} and --warmup {args.warmup} at least 0")
    if not os.access(args.trident, os.X_OK):
        sys.exit(f"step_cost: --trident {args.trident} is not an executable; build it first "
                 "(cmake --build build --target trident)")
    os.makedirs(args.out_dir, exist_ok=True)

    plan = [(p, axis, factor, sets) for p in presets
            for axis, factor, sets in points(args, p, preset_base(args, p))]
    for preset, _, _, sets in plan:
        check_point(args, preset, sets)
    rows = []
    for round_ in range(1, args.repeats + 1):
        for preset, axis, factor, sets in plan:
            print(f"[round {round_}/{args.repeats}] {preset} {axis} ×{factor:g}: "
                  f"{' '.join(sets) or '(the preset)'}", flush=True)
            rows.append(to_row(preset, axis, factor, round_, run_point(args, preset, sets)))
    write_csv(rows, os.path.join(args.out_dir, "step_cost.csv"))
    summary = summarise(rows)
    write_markdown(summary, os.path.join(args.out_dir, "step_cost.md"))
    plot(summary, os.path.join(args.out_dir, "step_cost.png"))


if __name__ == "__main__":
    main()
